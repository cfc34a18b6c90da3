"""One SSD-lite arm trained by `caffe train` in two solver stages: the linear warm-up
(prototxt/ssd/solver_<arm>_warmup.prototxt), then the main schedule resumed from its
.solverstate (`caffe train --snapshot=...`), the way docs/ssd.md describes a warm-up in a Caffe
without a warm-up policy. Both stages write one log (run_dir/caffe.log) and draw one progress
bar; examples.common.training does the single-stage runs of the other examples.
"""
import ast
import os
import re
import subprocess
from dataclasses import dataclass
from typing import Dict, List, Optional

from google.protobuf import text_format

from ..common.caffe_log import LossCurves
from ..common.progress import ProgressBar
from ..common.training import CAFFE_TOOL, REPO, finish, read_text, write_text
from .batches import path_of

_TESTING = re.compile(r"Iteration (\d+), Testing net \(#0\)")
_DETECTION_EVAL = re.compile(r"Test net output #\d+: detection_eval = (\S+)")


@dataclass
class Stage:
    solver: str        # the solver copy `caffe train` reads
    max_iter: int
    snapshot_prefix: str
    resume: Optional[str] = None   # the .solverstate it starts from


@dataclass
class Run:
    run_dir: str
    stages: List[Stage]
    log: str
    weights: str       # the final weights (snapshot_after_train of the last stage)


def prepare(key: str, data_dir: str, run_dir: str, overrides: Dict[str, Dict]) -> Run:
    """Copies of the committed solvers (prototxt/ssd/solver_<key>_warmup, solver_<key>) and train
    net in run_dir, with absolute paths: the data layers read data_dir's npz files; the second
    stage's net starts its training batches where the warm-up's ended (first_batch).
    overrides: {"warmup": {...}, "main": {...}} solver fields to set (the quick schedule, the
    test passes, a rate sweep's base_lr)."""
    from caffe.proto import caffe_pb2  # needs pycaffe: imported when a run is prepared

    os.makedirs(run_dir, exist_ok=True)
    run_dir = os.path.abspath(run_dir)
    stages = []
    for stage, suffix, prefix in (("warmup", "_warmup", "warmup"), ("main", "", "snapshot")):
        solver = caffe_pb2.SolverParameter()
        text_format.Merge(read_text(os.path.join(REPO, "prototxt", "ssd",
                                             f"solver_{key}{suffix}.prototxt")), solver)
        for name, value in overrides.get(stage, {}).items():
            if name in ("test_iter", "stepvalue"):
                field = getattr(solver, name)
                del field[:]
                field.extend(value)
            else:
                setattr(solver, name, value)
        net = caffe_pb2.NetParameter()
        text_format.Merge(read_text(os.path.join(REPO, solver.net)), net)
        first_batch = stages[-1].max_iter if stages else 0
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
        resume = (f"{stages[-1].snapshot_prefix}_iter_{stages[-1].max_iter}.solverstate"
                  if stages else None)
        stages.append(Stage(path, solver.max_iter, solver.snapshot_prefix, resume))
    return Run(run_dir, stages, os.path.join(run_dir, "caffe.log"),
               f"{stages[-1].snapshot_prefix}_iter_{stages[-1].max_iter}.caffemodel")


def train(run: Run, title: str) -> LossCurves:
    """Both stages, one after the other, into one log and one progress bar; the loss curves.
    RuntimeError, quoting the log's end, if a stage fails."""
    env = dict(os.environ, GLOG_logtostderr="1", GLOG_minloglevel="0")
    bar = ProgressBar(title, run.stages[-1].max_iter)
    curves = LossCurves()
    with open(run.log, "w") as log:
        for stage in run.stages:
            command = [CAFFE_TOOL, "train", f"--solver={stage.solver}"] + (
                [f"--snapshot={stage.resume}"] if stage.resume else [])
            log.write(f"# {' '.join(command)}\n")
            log.flush()
            with subprocess.Popen(command, cwd=run.run_dir, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, bufsize=1) as caffe:
                for line in caffe.stdout:
                    log.write(line)
                    iteration = curves.read_line(line)
                    if iteration is not None:
                        bar.update(iteration, curves.train[-1][1])
            if caffe.returncode != 0:
                break
    return finish(run, caffe.returncode, bar, curves)


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

