"""Caffe's command-line tool (`caffe`): where it is, the PYTHONPATH it needs to run the layers,
and a `caffe time` run of a net with both.

The tool embeds Python and sees no venv, no .pth file and no editable install: it needs
PYTHONPATH to name every folder this process imported its non-standard-library modules from
(the layer's package, pycaffe, numpy, numba, protobuf, ...). tool_pythonpath works that out from
the modules this process has loaded, so it is right for this Python, whatever installed them.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional, Tuple

from .cases import LAYERS
from .nets import dummy_data, python_loss
from .report import FAIL, PASS, SKIP, Row

ITERATIONS = 3
TIMEOUT = 600
_LAYER_TIME = re.compile(r"\]\s+(\S+)\s+(forward|backward): ([0-9.e+-]+) ms\.")


def find_tool(given: Optional[str]) -> Tuple[Optional[str], str]:
    """(path of the caffe tool or None, where it was found): --caffe, else PATH, else beside
    pycaffe in the usual build layout (<caffe>/python beside <caffe>/build/tools)."""
    if given:
        # Absolute: the tool runs in a temp folder with venvs off PATH (tool_env), where a
        # relative path or a venv's command would name nothing. A bare name is looked up on PATH.
        absolute = os.path.abspath(given) if os.sep in given else shutil.which(given)
        return absolute or given, "--caffe"
    on_path = shutil.which("caffe")
    if on_path:
        return on_path, "PATH"
    import caffe
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(caffe.__file__))))
    for folder in ("build", ".build_release"):
        for name in ("caffe", "caffe.bin"):
            candidate = os.path.join(root, folder, "tools", name)
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                return candidate, "beside pycaffe"
    return None, "not on PATH, not beside pycaffe"


def tool_pythonpath() -> List[str]:
    """The sys.path folders this process imported its modules from, outside the standard
    library, in sys.path order: what PYTHONPATH must name for the caffe tool's embedded Python."""
    entries = []
    for entry in sys.path:
        path = os.path.realpath(entry or os.getcwd())
        if os.path.isdir(path) and path not in entries:
            entries.append(path)
    # Each module's folder is the longest entry holding its file (sys.path may nest folders).
    by_length = sorted(entries, key=len, reverse=True)
    used = set()
    for name, module in list(sys.modules.items()):
        if name == "__main__":   # the script that started this process (the tool has its own)
            continue
        files = [getattr(module, "__file__", None)] + list(getattr(module, "__path__", None) or ())
        for file in filter(None, files):
            file = os.path.realpath(file)
            used.add(next((e for e in by_length if file.startswith(e + os.sep)), None))
    # The standard library's own folders: the tool's Python has them.
    stdlib = os.path.dirname(os.path.realpath(os.__file__))
    used -= {None, stdlib, os.path.join(stdlib, "lib-dynload")}
    return [e for e in entries if e in used]


def time_net(module: str) -> str:
    """A net with both layers on DummyData, for `caffe time` (force_backward, so that the
    layers' backward computes gradients)."""
    text = "force_backward: true\n"
    for layer in LAYERS:
        case = layer.cases[0]
        tag = layer.name
        tops = [(f"score_{tag}", (64, case.shape[1]), 'type: "gaussian" std: 3'),
                (f"label_{tag}", (64,), 'type: "constant" value: 1')]
        text += (dummy_data(f"data_{tag}", tops)
                 + python_loss(tag, module, layer.name, case.settings,
                               bottoms=(f"score_{tag}", f"label_{tag}")))
    return text


def tool_env(pythonpath: List[str]) -> Dict[str, str]:
    """os.environ for the tool: PYTHONPATH = pythonpath, glog to stderr, and on PATH, in place of
    a venv's bin folder, the bin folder of the Python the venv was made from (the shell with the
    venv deactivated, or a job script). The tool's embedded Python looks for `python3` on PATH:
    a venv it finds there (pyvenv.cfg) it takes up whatever PYTHONPATH says, so the row would not
    show that the printed PYTHONPATH is enough; and it takes its standard library from that
    python3, so it must be the Python pycaffe was built for (this one's base)."""
    path = []
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        if folder and os.path.isfile(os.path.join(folder, os.pardir, "pyvenv.cfg")):
            folder = os.path.join(sys.base_prefix, "bin")
        if folder and folder not in path:
            path.append(folder)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(pythonpath), PATH=os.pathsep.join(path),
               GLOG_logtostderr="1", GLOG_minloglevel="0")
    env.pop("VIRTUAL_ENV", None)
    return env


def run_caffe_time(tool: str, module: str, pythonpath: List[str], gpu: bool
                   ) -> Tuple[int, str, Dict[str, Dict[str, float]]]:
    """(exit code, log, {layer: {'forward': ms, 'backward': ms}}) of `caffe time` on time_net,
    with PYTHONPATH = pythonpath and no venv on PATH (tool_env)."""
    env = tool_env(pythonpath)
    with tempfile.TemporaryDirectory(prefix="focal_loss_check_") as folder:
        path = os.path.join(folder, "time_net.prototxt")
        with open(path, "w") as f:
            f.write(time_net(module))
        argv = [tool, "time", f"--model={path}", f"--iterations={ITERATIONS}"]
        if gpu:
            argv.append("--gpu=0")
        done = subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True,
                              timeout=TIMEOUT)
    log = done.stdout + done.stderr
    times: Dict[str, Dict[str, float]] = {}
    for name, direction, ms in _LAYER_TIME.findall(log):
        times.setdefault(name, {})[direction] = float(ms)
    return done.returncode, log, times


def rows(group: str, tool: Optional[str], found: str, module: str, pythonpath: List[str],
         gpu: bool = False) -> List[Row]:
    """One row per layer: `caffe time` ran it forward and backward (the figure: its ms)."""
    names = [f"{layer.name} forward+backward in `caffe time`" for layer in LAYERS]
    if tool is None:
        return [Row(group, "caffe time", "-", f"{SKIP}: no caffe binary",
                    f"no caffe binary {found}; pass --caffe /path/to/caffe/build/tools/caffe to "
                    "check the tool too")]
    try:
        code, log, times = run_caffe_time(tool, module, pythonpath, gpu)
    except OSError as error:     # the same rows fail, so the summary counts the same rows
        advice = (f"make it executable (chmod +x {tool}) or " if isinstance(error, PermissionError)
                  else "")
        return [Row(group, name, "-", FAIL, f"{tool} could not be started ({type(error).__name__}: "
                                            f"{error}); {advice}pass a working tool with --caffe PATH")
                for name in names]
    result = []
    for layer, name in zip(LAYERS, names):
        got = times.get(layer.name, {})
        if code == 0 and {"forward", "backward"} <= got.keys():
            result.append(Row(group, name, f"forward {got['forward']:.3g} ms, backward "
                                    f"{got['backward']:.3g} ms", PASS))
            continue
        tail = " | ".join(line.strip() for line in log.strip().splitlines()[-6:])
        result.append(Row(group, name, "-", FAIL, (
            f"{tool} time exited {code} without timing the layer; the log ends: {tail} -- The "
            "tool must come from the same Caffe build as pycaffe (built against this Python) and "
            "be run with the PYTHONPATH printed above; pass another tool with --caffe PATH")))
    return result
