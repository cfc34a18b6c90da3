"""`caffe time` (Caffe's own tool, .venv/bin/caffe) on the example head nets, parsed into each
layer's forward/backward milliseconds and the loss layer's share of the net's time."""
import os
import re
import subprocess

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH_DIR)
CAFFE_TOOL = os.path.join(REPO, ".venv", "bin", "caffe")
NETS = ("head_focal.prototxt", "head_sce.prototxt")

_LAYER = re.compile(r"\]\s+(\S+)\s+(forward|backward): ([0-9.e+-]+) ms\.")
_TOTAL = re.compile(r"Average (Forward|Backward) pass: ([0-9.e+-]+) ms\.")


def command(net, iterations):
    return [CAFFE_TOOL, "time", f"--model=benchmarks/{net}", f"--iterations={iterations}"]


def caffe_time(net, iterations):
    """{'layers': {name: {'forward': ms, 'backward': ms}}, 'forward': ms, 'backward': ms}."""
    env = dict(os.environ, GLOG_logtostderr="1", GLOG_minloglevel="0")
    env.pop("PYTHONPATH", None)
    done = subprocess.run(command(net, iterations), cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=1200)
    log = done.stdout + done.stderr
    if done.returncode != 0:
        raise RuntimeError(f"caffe time failed ({done.returncode}):\n{log[-3000:]}")
    layers = {}
    for name, direction, ms in _LAYER.findall(log):
        layers.setdefault(name, {})[direction] = float(ms)
    totals = {direction.lower(): float(ms) for direction, ms in _TOTAL.findall(log)}
    return dict(layers=layers, **totals)


def report(iterations):
    """Lines of text: the command, and per net the loss layer's time and share."""
    lines = []
    for net in NETS:
        result = caffe_time(net, iterations)
        loss = result["layers"]["loss"]
        total = result["forward"] + result["backward"]
        loss_total = loss["forward"] + loss["backward"]
        lines.append(
            f"  {net:<20} loss layer forward {loss['forward']:7.2f} ms of {result['forward']:7.2f} "
            f"({loss['forward'] / result['forward']:5.1%}), backward {loss['backward']:6.2f} ms of "
            f"{result['backward']:7.2f} ({loss['backward'] / result['backward']:5.1%}), "
            f"forward+backward {loss_total / total:5.1%}")
    lines.insert(0, "  $ " + " ".join(os.path.relpath(a, REPO) if a.startswith(REPO) else a
                                       for a in command("<net>", iterations)))
    return lines
