"""One training run: a copy of a committed solver and net pointed at this run's data and folder,
then `caffe train` (the real tool) as a subprocess per stage (a warm-up, then the main schedule
resumed from its .solverstate: examples.common.protocol), the full log kept in a file and read
as it arrives to draw the progress bar."""
import os
import subprocess
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from google.protobuf import text_format

from .caffe_log import LossCurves
from .progress import ProgressBar, shown

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CAFFE_TOOL = os.path.join(REPO, ".venv", "bin", "caffe")


@dataclass
class Stage:
    """One `caffe train` process: its solver copy, and the .solverstate it resumes from."""

    solver: str
    max_iter: int
    snapshot_prefix: str
    resume: Optional[str] = None


@dataclass
class Run:
    """The files of one run, all inside run_dir: one stage, or a warm-up stage and the main one
    (examples.common.protocol)."""

    run_dir: str
    stages: List[Stage]
    log: str         # the full Caffe log of every stage
    weights: str     # final weights, written by snapshot_after_train

    @property
    def max_iter(self) -> int:
        return self.stages[-1].max_iter

    @property
    def snapshot_prefix(self) -> str:
        return self.stages[-1].snapshot_prefix

    def snapshot(self, iteration: int) -> str:
        """The weights the main stage saved at an iteration."""
        return f"{self.snapshot_prefix}_iter_{iteration}.caffemodel"


def prepare_run(solver_template: str, data_dir: str, run_dir: str,
                overrides: Optional[Dict] = None) -> Run:
    """Write run_dir/solver.prototxt and run_dir/train.prototxt from the committed ones: a
    one-stage run.

    solver_template: a solver under prototxt/, whose `net` is relative to the repository root;
    data_dir: the folder holding this example's train.txt and test.txt (HDF5Data sources);
    overrides: solver fields to replace (the quick mode's shorter schedule).
    The copies use absolute paths, so `caffe train` may run from any directory.
    """
    return prepare_stages(solver_template, data_dir, run_dir, {"": overrides or {}})


def prepare_stages(solver_template: str, data_dir: str, run_dir: str,
                   stages: Dict[str, Dict], net_text: Optional[str] = None) -> Run:
    """A run of one or more stages from one committed solver and its HDF5Data net: per stage
    {name: solver fields} (examples.common.protocol.Protocol.stages), run in that order, each
    but the first resumed from the previous one's last .solverstate. The stages share one net
    copy (run_dir/train.prototxt); stage `name` reads run_dir/solver_<name>.prototxt (solver.
    prototxt for a single stage named "") and snapshots to run_dir/<name or "snapshot">_iter_*.
    HDF5Data starts again at the first batch in each stage: after a warm-up the data order
    restarts, as at an epoch boundary. net_text: a net to train instead of the solver's."""
    from caffe.proto import caffe_pb2  # needs pycaffe: imported when a run is prepared

    template = caffe_pb2.SolverParameter()
    text_format.Merge(read_text(solver_template), template)
    net = caffe_pb2.NetParameter()
    text_format.Merge(net_text or read_text(os.path.join(REPO, template.net)), net)
    for layer in net.layer:
        if layer.type == "HDF5Data":
            # Committed sources name results/data/<example>/{train,test}.txt: keep the file name.
            source = os.path.basename(layer.hdf5_data_param.source)
            layer.hdf5_data_param.source = os.path.abspath(os.path.join(data_dir, source))
    os.makedirs(run_dir, exist_ok=True)
    run_dir = os.path.abspath(run_dir)
    net_path = os.path.join(run_dir, "train.prototxt")
    write_text(net_path, text_format.MessageToString(net))
    names = list(stages)
    solvers = []
    for name in names:
        solver = caffe_pb2.SolverParameter()
        solver.CopyFrom(template)
        set_fields(solver, stages[name])
        solver.net = net_path
        last = name == names[-1]
        solver.snapshot_prefix = os.path.join(run_dir, "snapshot" if last else name)
        path = os.path.join(run_dir, f"solver_{name}.prototxt" if name else "solver.prototxt")
        write_text(path, text_format.MessageToString(solver))
        solvers.append((path, solver.max_iter, solver.snapshot_prefix))
    return chained(run_dir, solvers)


def chained(run_dir: str, solvers: List[Tuple[str, int, str]]) -> Run:
    """A Run of solver copies [(path, max_iter, snapshot_prefix)] run in order, each but the
    first resumed from the previous one's last .solverstate; one log, run_dir/caffe.log."""
    stages: List[Stage] = []
    for path, max_iter, prefix in solvers:
        resume = (f"{stages[-1].snapshot_prefix}_iter_{stages[-1].max_iter}.solverstate"
                  if stages else None)
        stages.append(Stage(path, max_iter, prefix, resume))
    return Run(run_dir, stages, os.path.join(run_dir, "caffe.log"),
               f"{stages[-1].snapshot_prefix}_iter_{stages[-1].max_iter}.caffemodel")


def set_fields(solver, fields: Dict) -> None:
    """Set solver fields; a list replaces a repeated field (stepvalue, test_iter)."""
    for name, value in fields.items():
        if isinstance(value, (list, tuple)):
            field = getattr(solver, name)
            del field[:]
            field.extend(value)
        else:
            setattr(solver, name, value)


# One Caffe process per core: OpenBLAS and the layer's passes on one thread each. Two such
# processes at once trained 1.7-2.2x as many iterations per second as one process with every
# thread on this 2-core machine (docs/examples.md, "How the study runs").
SINGLE_THREADED = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
                   "FOCAL_LOSS_NUM_THREADS": "1"}


def train(run: Run, title: str, single_threaded: bool = False,
          progress: bool = True) -> LossCurves:
    """Run `caffe train` for each stage of run, one after the other, into one log; show a
    progress bar (progress=False: the finishing line only, for runs side by side); return the
    loss curves. Raises RuntimeError, quoting the log's end, if Caffe fails."""
    env = dict(os.environ, GLOG_logtostderr="1", GLOG_minloglevel="0",
               **(SINGLE_THREADED if single_threaded else {}))
    bar = ProgressBar(title, run.max_iter, quiet=not progress)
    curves = LossCurves()
    returncode = 0
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
            returncode = caffe.returncode
            if returncode != 0:
                break
    return finish(run, returncode, bar, curves)


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

