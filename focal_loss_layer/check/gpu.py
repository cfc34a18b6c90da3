"""Can this Caffe run in GPU mode? Asked in a child process: a CPU-only Caffe answers GPU calls
with LOG(FATAL) ("Cannot use GPU in CPU-only Caffe"), which aborts the process that asks."""
import os
import subprocess
import sys
from dataclasses import dataclass

_PROBE = """
import caffe, tempfile
caffe.set_mode_gpu()
caffe.set_device(0)
with tempfile.NamedTemporaryFile("w", suffix=".prototxt") as f:
    f.write('layer { name: "x" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 } } }'
            'layer { name: "fc" type: "InnerProduct" bottom: "x" top: "y" '
            'inner_product_param { num_output: 2 } }')
    f.flush()
    caffe.Net(f.name, caffe.TEST).forward()
print("GPU OK")
"""
CPU_ONLY_MESSAGE = "CPU-only Caffe"


@dataclass(frozen=True)
class Mode:
    """usable: GPU mode works here; build: 'CPU-only' or 'GPU'; why: what the probe said."""

    usable: bool
    build: str
    why: str


def probe(pycaffe_folder: str) -> Mode:
    """Run a one-layer net in GPU mode on device 0 in a child Python that imports the same
    pycaffe (its folder first on PYTHONPATH)."""
    path = os.pathsep.join(p for p in (pycaffe_folder, os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, PYTHONPATH=path, GLOG_minloglevel="0", GLOG_logtostderr="1")
    done = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True,
                          timeout=300)
    if done.returncode == 0 and "GPU OK" in done.stdout:
        return Mode(True, "GPU", "caffe.set_mode_gpu() and a net on device 0 ran")
    lines = [line.strip() for line in (done.stderr + done.stdout).splitlines() if line.strip()]
    said = next((line for line in lines if CPU_ONLY_MESSAGE in line), lines[-1] if lines else "")
    said = said.split("] ", 1)[-1]   # drop glog's prefix
    if CPU_ONLY_MESSAGE in said:
        return Mode(False, "CPU-only", f'caffe.set_device(0) says "{said}"')
    return Mode(False, "GPU", f"GPU mode failed (exit {done.returncode}): {said}")
