"""The project's own Caffe build, wired into .venv: pycaffe, the `caffe` tool, the build cache.

These use a Python loss layer defined here (not FocalLossLayer), so they test the set-up itself."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap

import caffe
import numpy as np
from caffe_nets import CAFFE_TOOL, REPO, load_net, run_caffe_tool

from focal_loss_layer.check.nets import inner_product, input_layer, python_loss

VENV_PYTHON = os.path.join(REPO, ".venv", "bin", "python")

# A minimal Python loss: 0.5·Σ(x − y)² / N, whose backward records top[0].diff[0] in a file named
# by param_str and scales by it (the line Caffe's own pyloss.py example forgets).
PROBE_LAYER_SOURCE = textwrap.dedent('''
    import caffe
    import numpy as np

    class ProbeEuclideanLoss(caffe.Layer):
        def setup(self, bottom, top):
            self.record = self.param_str

        def reshape(self, bottom, top):
            top[0].reshape(1)

        def forward(self, bottom, top):
            self.diff = bottom[0].data - bottom[1].data
            top[0].data[...] = 0.5 * np.sum(self.diff ** 2) / bottom[0].num

        def backward(self, top, propagate_down, bottom):
            if self.record:
                with open(self.record, "a") as f:
                    f.write("%r\\n" % float(top[0].diff[0]))
            if propagate_down[0]:
                bottom[0].diff[...] = top[0].diff[0] * self.diff / bottom[0].num
''')


def write_probe_module(folder):
    with open(os.path.join(folder, "probe_loss.py"), "w") as f:
        f.write(PROBE_LAYER_SOURCE)


def regression_net(record="", loss_weight=1.0, data_source=None, batch=16):
    """A linear regression net: HDF5 data (for the tool) or Input blobs (for pycaffe)."""
    if data_source:
        inputs = (f'layer {{ name: "data" type: "HDF5Data" top: "x" top: "y" '
                  f'hdf5_data_param {{ source: "{data_source}" batch_size: {batch} }} }}\n')
    else:
        inputs = input_layer("x", (batch, 4)) + input_layer("y", (batch, 1))
    return (inputs + inner_product("fc", "x", "pred", 1, weight_filler='type: "constant" value: 0')
            + python_loss("loss", "probe_loss", "ProbeEuclideanLoss", record, bottoms=("pred", "y"),
                          loss_weight=loss_weight))


def write_regression_data(folder, n=256):
    import h5py
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5, 3.0]) + 0.1).astype(np.float32).reshape(n, 1)
    path = os.path.join(folder, "train.h5")
    with h5py.File(path, "w") as f:
        f["x"], f["y"] = x, y
    with open(os.path.join(folder, "train.txt"), "w") as f:
        f.write(path + "\n")
    return os.path.join(folder, "train.txt")


def test_pycaffe_imports_from_the_venv_with_the_python_layer():
    done = subprocess.run([VENV_PYTHON, "-c", "import caffe, focal_loss_layer; "
                           "print('Python' in caffe.layer_type_list())"],
                          capture_output=True, text=True, cwd="/")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"
    assert "Python" in caffe.layer_type_list()


def train_with_the_tool(folder, record="", loss_weight=1.0, solver_settings=""):
    """Write the probe module, data, net and solver into folder; run `caffe train` there."""
    write_probe_module(folder)
    source = write_regression_data(folder)
    (folder / "net.prototxt").write_text(regression_net(record, loss_weight, data_source=source))
    (folder / "solver.prototxt").write_text(
        'net: "net.prototxt"\nlr_policy: "fixed"\nsolver_mode: CPU\nrandom_seed: 1\n'
        'snapshot_after_train: false\n' + solver_settings)
    code, log = run_caffe_tool(["train", "--solver=solver.prototxt"], cwd=folder,
                               extra_pythonpath=str(folder))
    assert code == 0, log[-3000:]
    return log


def test_caffe_tool_trains_a_python_loss_layer_and_its_loss_decreases(tmp_path):
    log = train_with_the_tool(tmp_path, solver_settings="base_lr: 0.05\nmomentum: 0.9\n"
                                                        "max_iter: 40\ndisplay: 5\n")
    losses = [float(v) for v in re.findall(r"Iteration \d+, loss = ([\d.e+-]+)", log)]
    assert len(losses) >= 8, log[-3000:]
    assert losses[-1] < 0.1 * losses[0], losses


def test_loss_weight_reaches_python_layer_backward_under_pycaffe(tmp_path):
    write_probe_module(tmp_path)
    record = tmp_path / "diff.txt"
    sys.path.insert(0, str(tmp_path))
    try:
        net = load_net("force_backward: true\n" + regression_net(str(record), loss_weight=2.5))
        net.blobs["x"].data[...] = 1.0
        net.forward()
        net.backward()
    finally:
        sys.path.remove(str(tmp_path))
    assert record.read_text().split() == ["2.5"]
    # The weighted gradient reached the learnable layer: dL/dpred = 2.5·(pred − y)/N.
    np.testing.assert_allclose(net.blobs["pred"].diff, 2.5 * net.blobs["pred"].data / 16)


def test_loss_weight_reaches_python_layer_backward_under_the_tool(tmp_path):
    record = tmp_path / "diff.txt"
    train_with_the_tool(tmp_path, str(record), 2.5, solver_settings="base_lr: 0.01\nmax_iter: 3\n")
    assert record.read_text().split() == ["2.5", "2.5", "2.5"]


def test_second_build_run_is_a_cache_hit_that_compiles_nothing():
    caffe_root = open(os.path.join(REPO, ".venv", ".caffe-root")).read().strip()
    stamp = os.path.join(caffe_root, ".focal-loss-build-complete")
    stamp_before = open(stamp).read(), os.stat(stamp).st_mtime_ns
    done = subprocess.run([os.path.join(REPO, "scripts", "build_caffe.sh"), VENV_PYTHON],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "cache hit" in done.stderr and "compiling" not in done.stderr, done.stderr
    assert done.stdout.strip().splitlines()[-1] == caffe_root
    assert (open(stamp).read(), os.stat(stamp).st_mtime_ns) == stamp_before


def test_caffe_tool_wrapper_sees_venv_packages():
    assert os.access(CAFFE_TOOL, os.X_OK)
    text = open(CAFFE_TOOL).read()
    assert REPO in text and "site-packages" in text


def test_build_folder_changes_with_the_patches(tmp_path):
    """The cache key covers the patches: an edited patch maps to a new build folder."""
    scripts = tmp_path / "scripts"
    shutil.copytree(os.path.join(REPO, "scripts"), scripts)

    def where():
        done = subprocess.run([str(scripts / "build_caffe.sh"), VENV_PYTHON, "--where"],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert where() == open(os.path.join(REPO, ".venv", ".caffe-root")).read().strip()
    patch = next((scripts / "caffe" / "patches").glob("*.patch"))
    patch.write_text(patch.read_text() + "\n")
    assert where() != open(os.path.join(REPO, ".venv", ".caffe-root")).read().strip()


def test_without_root_missing_packages_are_named_with_the_sudo_line():
    """Not root and a package missing: print the exact apt-get line and stop, install nothing.
    dpkg-query is replaced by one that reports every package as not installed."""
    # pytest's tmp_path (and maybe the checkout) lies under a root-only folder; the unprivileged
    # user must reach the script and the fake, so both go to a folder of their own.
    fake_bin = tempfile.mkdtemp(prefix="fake-dpkg-", dir="/tmp")
    try:
        os.chmod(fake_bin, 0o755)
        script = shutil.copy(os.path.join(REPO, "scripts", "install_system_packages.sh"), fake_bin)
        with open(os.path.join(fake_bin, "dpkg-query"), "w") as f:
            f.write("#!/bin/sh\nexit 1\n")
        os.chmod(os.path.join(fake_bin, "dpkg-query"), 0o755)
        env = dict(os.environ, PATH=f"{fake_bin}:/usr/bin:/bin")
        done = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                               script],
                              env=env, capture_output=True, text=True, timeout=60)
    finally:
        shutil.rmtree(fake_bin)
    assert done.returncode == 1, done.stderr
    assert "sudo apt-get install -y build-essential patch" in done.stderr
    assert "libboost-python-dev" in done.stderr and "libhdf5-dev" in done.stderr
    assert "not root, so not installing them myself" in done.stderr
