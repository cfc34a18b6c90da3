"""The two solver stages of an SSD-lite arm: the linear warm-up
(prototxt/ssd/solver_<arm>_warmup.prototxt), then the main schedule resumed from its
.solverstate (`caffe train --snapshot=...`), the way docs/ssd.md describes a warm-up in a Caffe
without a warm-up policy; examples.common.training.train runs them. Each stage has its own net
copy: the Python data layer starts the main stage's batches where the warm-up's ended.
"""
import ast
import os
import re
from typing import Dict, List

from google.protobuf import text_format

from ..common.training import REPO, Run, chained, read_text, set_fields, write_text
from .batches import path_of

_TESTING = re.compile(r"Iteration (\d+), Testing net \(#0\)")
_DETECTION_EVAL = re.compile(r"Test net output #\d+: detection_eval = (\S+)")


def prepare(key: str, data_dir: str, run_dir: str, overrides: Dict[str, Dict]) -> Run:
    """Copies of the committed solvers (prototxt/ssd/solver_<key>_warmup, solver_<key>) and train
    net in run_dir, with absolute paths: the data layers read data_dir's npz files; the second
    stage's net starts its training batches where the warm-up's ended (first_batch).
    overrides: {"warmup": {...}, "main": {...}} solver fields to set (the quick schedule, the
    test passes, a rate sweep's base_lr)."""
    from caffe.proto import caffe_pb2  # needs pycaffe: imported when a run is prepared

    os.makedirs(run_dir, exist_ok=True)
    run_dir = os.path.abspath(run_dir)
    solvers = []
    for stage, suffix, prefix in (("warmup", "_warmup", "warmup"), ("main", "", "snapshot")):
        solver = caffe_pb2.SolverParameter()
        text_format.Merge(read_text(os.path.join(REPO, "prototxt", "ssd",
                                             f"solver_{key}{suffix}.prototxt")), solver)
        set_fields(solver, overrides.get(stage, {}))
        net = caffe_pb2.NetParameter()
        text_format.Merge(read_text(os.path.join(REPO, solver.net)), net)
        first_batch = solvers[-1][1] if solvers else 0
        for layer in net.layer:
            if layer.python_param.module == "examples.ssd.data_layer":
                param = _literal(layer.python_param.param_str)
                param["source"] = os.path.abspath(path_of(
                    data_dir, os.path.splitext(os.path.basename(param["source"]))[0]))
                if layer.include and layer.include[0].phase == caffe_pb2.TRAIN:
                    param["first_batch"] = first_batch
                layer.python_param.param_str = repr(param)
        solver.net = os.path.join(run_dir, f"train_{stage}.prototxt")
        solver.snapshot_prefix = os.path.join(run_dir, prefix)
        write_text(solver.net, text_format.MessageToString(net))
        path = os.path.join(run_dir, f"solver_{stage}.prototxt")
        write_text(path, text_format.MessageToString(solver))
        solvers.append((path, solver.max_iter, solver.snapshot_prefix))
    return chained(run_dir, solvers)


def read_detection_eval(log_path: str) -> List[List[float]]:
    """[iteration, validation mAP] of each test pass in a log: what the solver's eval_type
    "detection" writes (11-point VOC AP at IoU 0.5, averaged over the classes with objects):

        ... solver.cpp:...] Iteration 500, Testing net (#0)
        ... solver.cpp:...]     Test net output #0: detection_eval = 0.4321
    """
    curve, iteration = [], None
    with open(log_path) as f:
        for line in f:
            testing = _TESTING.search(line)
            if testing:
                iteration = int(testing.group(1))
                continue
            value = _DETECTION_EVAL.search(line)
            if value and iteration is not None:
                curve.append([iteration, float(value.group(1))])
                iteration = None
    return curve


def _literal(text: str) -> dict:
    return ast.literal_eval(text)

