"""One training run: a copy of a committed solver and net pointed at this run's data and folder,
then `caffe train` (the real tool) as a subprocess, its full log kept in a file and read as it
arrives to draw the progress bar."""
import os
import subprocess
from dataclasses import dataclass
from typing import Dict, Optional

from google.protobuf import text_format

from .caffe_log import LossCurves
from .progress import ProgressBar, shown

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CAFFE_TOOL = os.path.join(REPO, ".venv", "bin", "caffe")


@dataclass
class Run:
    """The files of one run, all inside run_dir."""

    run_dir: str
    solver: str      # the solver copy `caffe train` reads
    net: str         # the train/test net copy the solver names
    log: str         # the full Caffe log
    weights: str     # final weights, written by snapshot_after_train
    max_iter: int


def prepare_run(solver_template: str, data_dir: str, run_dir: str,
                overrides: Optional[Dict[str, int]] = None) -> Run:
    """Write run_dir/solver.prototxt and run_dir/train.prototxt from the committed ones.

    solver_template: a solver under prototxt/, whose `net` is relative to the repository root;
    data_dir: the folder holding this example's train.txt and test.txt (HDF5Data sources);
    overrides: solver fields to replace (the quick mode's shorter schedule).
    The copies use absolute paths, so `caffe train` may run from any directory.
    """
    from caffe.proto import caffe_pb2  # needs pycaffe: imported when a run is prepared

    solver = caffe_pb2.SolverParameter()
    text_format.Merge(read_text(solver_template), solver)
    net = caffe_pb2.NetParameter()
    text_format.Merge(read_text(os.path.join(REPO, solver.net)), net)
    for layer in net.layer:
        if layer.type == "HDF5Data":
            # Committed sources name results/data/<example>/{train,test}.txt: keep the file name.
            source = os.path.basename(layer.hdf5_data_param.source)
            layer.hdf5_data_param.source = os.path.abspath(os.path.join(data_dir, source))
    for name, value in (overrides or {}).items():
        setattr(solver, name, value)
    os.makedirs(run_dir, exist_ok=True)
    run_dir = os.path.abspath(run_dir)
    net_path = os.path.join(run_dir, "train.prototxt")
    solver.net = net_path
    solver.snapshot_prefix = os.path.join(run_dir, "snapshot")
    write_text(net_path, text_format.MessageToString(net))
    solver_path = os.path.join(run_dir, "solver.prototxt")
    write_text(solver_path, text_format.MessageToString(solver))
    return Run(run_dir, solver_path, net_path, os.path.join(run_dir, "caffe.log"),
               f"{solver.snapshot_prefix}_iter_{solver.max_iter}.caffemodel", solver.max_iter)


def train(run: Run, title: str) -> LossCurves:
    """Run `caffe train` on run.solver; show a progress bar; return the loss curves.
    Raises RuntimeError, quoting the log's end, if Caffe fails."""
    env = dict(os.environ, GLOG_logtostderr="1", GLOG_minloglevel="0")
    bar = ProgressBar(title, run.max_iter)
    curves = LossCurves()
    with open(run.log, "w") as log, subprocess.Popen(
            [CAFFE_TOOL, "train", f"--solver={run.solver}"], cwd=run.run_dir, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1) as caffe:
        for line in caffe.stdout:
            log.write(line)
            iteration = curves.read_line(line)
            if iteration is not None:
                bar.update(iteration, curves.train[-1][1])
    return finish(run, caffe.returncode, bar, curves)


def finish(run, returncode: int, bar: ProgressBar, curves: LossCurves) -> LossCurves:
    """After `caffe train` of run (its .log and .weights paths): the curves, or RuntimeError
    quoting the log's end when Caffe failed or left no final weights."""
    if returncode != 0 or not os.path.exists(run.weights):
        bar.finish("FAILED")
        raise RuntimeError(f"caffe train exited with {returncode}; the log ends:\n"
                           f"{log_tail(run.log)}\nfull log: {run.log}")
    bar.finish(f"done, final train loss {curves.train[-1][1]:.4g}, log {shown(run.log)}")
    return curves


def read_text(path: str) -> str:
    """A text file's contents (the examples' solvers, nets and logs)."""
    with open(path) as f:
        return f.read()


def write_text(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def log_tail(path: str, lines: int = 25) -> str:
    with open(path) as f:
        return "".join(f.readlines()[-lines:])


def write_prototxts(folder: str, files) -> None:
    """Write the generated prototxts {name: text} into folder (an example's prototxt.main),
    printing each path."""
    os.makedirs(folder, exist_ok=True)
    for name, text in files.items():
        write_text(os.path.join(folder, name), text)
        print(os.path.relpath(os.path.join(folder, name), REPO))

