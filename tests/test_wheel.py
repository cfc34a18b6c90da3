"""The own-Caffe path as a user meets it: `pip wheel .` of a copy holding only the package's
files; the wheel installed (not editable) into a fresh venv that holds only pycaffe's runtime
packages (requirements/caffe-runtime.txt with the constraints); pycaffe on PYTHONPATH; the
console scripts run from a folder outside the checkout. Without PYTHONPATH the check and the
layers say what is missing."""
import json
import os
import sys

import caffe
import pytest
from installs import PIP, REPO, build_wheel, clean_env, copy_source, make_venv, run

PYCAFFE_FOLDER = os.path.dirname(os.path.dirname(os.path.abspath(caffe.__file__)))


@pytest.fixture(scope="module")
def user_venv(tmp_path_factory):
    """(venv bin folder, site-packages, a working folder outside the checkout)."""
    root = tmp_path_factory.mktemp("wheel")
    wheel = build_wheel(copy_source(root), root)
    python, site_packages = make_venv(root / "venv")
    requirements = os.path.join(REPO, "requirements")
    run([python, *PIP, "install", "--quiet", "-c", os.path.join(requirements, "constraints.txt"),
         "-r", os.path.join(requirements, "caffe-runtime.txt")], env=clean_env())
    run([python, *PIP, "install", "--quiet", "-c", os.path.join(requirements, "constraints.txt"),
         wheel], env=clean_env())
    work = root / "work"
    work.mkdir()
    return root / "venv" / "bin", site_packages, work


def user_env(bin_folder, pythonpath=True):
    """A shell of the user's: the venv's bin first on PATH (no caffe there), pycaffe on
    PYTHONPATH when asked."""
    env = clean_env(PATH=f"{bin_folder}{os.pathsep}/usr/bin{os.pathsep}/bin")
    if pythonpath:
        env["PYTHONPATH"] = PYCAFFE_FOLDER
    return env


def test_the_wheel_holds_the_package_and_its_version(user_venv):
    bin_folder, site_packages, work = user_venv
    script = ("import importlib.metadata as m, json, focal_loss_layer as f; print(json.dumps("
              "[f.__file__, f.__version__, m.version('focal_loss_layer')]))")
    done = run([bin_folder / "python", "-c", script], cwd=str(work), env=user_env(bin_folder))
    where, version, installed = json.loads(done.stdout)
    assert where == os.path.join(site_packages, "focal_loss_layer", "__init__.py")
    assert version == installed
    assert not any(name.startswith("__editable__") or name.endswith(".egg-link")
                   for name in os.listdir(site_packages))


def test_focal_loss_check_passes_from_outside_the_checkout(user_venv):
    bin_folder, site_packages, work = user_venv
    done = run([bin_folder / "focal-loss-check"], check=False, cwd=str(work),
               env=user_env(bin_folder))
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert f"from {os.path.join(site_packages, 'focal_loss_layer')}\n" in out
    assert f"pycaffe        {caffe.__file__}" in out
    pythonpath = out.split("export PYTHONPATH=", 1)[1].splitlines()[0].split(os.pathsep)
    # pycaffe's folder (PYTHONPATH) and the venv's site-packages, in this Python's sys.path order.
    assert pythonpath == [PYCAFFE_FOLDER, site_packages]
    assert "FocalLossLayer forward+backward in `caffe time`" in out
    assert "SoftmaxFocalLossLayer\n  net vs core" in out
    assert "skipped: CPU-only build" in out
    assert out.rstrip().splitlines()[-1].startswith("all ") and "rows passed, 1 skipped" in out


def test_without_pycaffe_the_check_and_the_layer_say_what_is_needed(user_venv):
    bin_folder, _, work = user_venv
    done = run([bin_folder / "focal-loss-check"], check=False, cwd=str(work),
               env=user_env(bin_folder, pythonpath=False))
    assert done.returncode == 2
    assert "`WITH_PYTHON_LAYER := 1`" in done.stderr and "PYTHONPATH" in done.stderr
    done = run([bin_folder / "python", "-c", "import focal_loss_layer; focal_loss_layer.FocalLossLayer"],
               check=False, cwd=str(work), env=user_env(bin_folder, pythonpath=False))
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("focal_loss_layer.pycaffe.PycaffeMissing: FocalLossLayer and "
                           "SoftmaxFocalLossLayer need pycaffe"), last
    assert "`WITH_PYTHON_LAYER := 1`" in last and "PYTHONPATH" in last


def test_focal_loss_balances_runs_as_a_console_script(user_venv):
    bin_folder, _, work = user_venv
    done = run([bin_folder / "focal-loss-balances", "--help"], cwd=str(work),
               env=user_env(bin_folder, pythonpath=False))
    assert "class_balances" in done.stdout
    # h5py is not among pycaffe's runtime packages: the tool says how to get it.
    (work / "labels.h5").write_bytes(b"\x89HDF\r\n\x1a\n")
    done = run([bin_folder / "focal-loss-balances", "labels.h5"], check=False, cwd=str(work),
               env=user_env(bin_folder, pythonpath=False))
    assert done.returncode == 2
    assert "needs h5py" in done.stderr and "pip install h5py" in done.stderr


def test_caffe_train_runs_the_layer_with_the_printed_pythonpath(user_venv):
    """docs/install.md's training step: export PYTHONPATH=$(focal-loss-check --print-pythonpath),
    then Caffe's own `caffe train` (the tool beside pycaffe, in Caffe's build layout)."""
    bin_folder, _, work = user_venv
    done = run([bin_folder / "focal-loss-check", "--print-pythonpath"], cwd=str(work),
               env=user_env(bin_folder))
    pythonpath = done.stdout.strip()
    assert PYCAFFE_FOLDER in pythonpath.split(os.pathsep)
    (work / "net.prototxt").write_text(
        'layer { name: "data" type: "DummyData" top: "x" top: "label" dummy_data_param {\n'
        '  data_filler { type: "gaussian" std: 1 } data_filler { type: "constant" value: 1 }\n'
        '  shape { dim: 8 dim: 4 } shape { dim: 8 } } }\n'
        'layer { name: "fc" type: "InnerProduct" bottom: "x" top: "score" inner_product_param {\n'
        '  num_output: 3 weight_filler { type: "gaussian" std: 0.1 } } }\n'
        'layer { name: "loss" type: "Python" bottom: "score" bottom: "label" top: "loss"\n'
        '  python_param { module: "focal_loss_layer" layer: "FocalLossLayer"\n'
        '                 param_str: "{\'focusing_parameter\': 2, \'alpha\': 0.25}" }\n'
        '  loss_weight: 1 }\n')
    (work / "solver.prototxt").write_text('net: "net.prototxt"\nbase_lr: 0.5\nlr_policy: "fixed"\n'
                                          'max_iter: 20\ndisplay: 10\nsolver_mode: CPU\n')
    tool = os.path.join(os.path.dirname(PYCAFFE_FOLDER), "build", "tools", "caffe")
    # A job script's shell: no venv on PATH (the tool's embedded Python would take up an
    # activated one through `python3` on PATH), only the printed PYTHONPATH; the Python that
    # Caffe was built against first on PATH (the tool's Python takes its standard library from it).
    base_bin = os.path.join(sys.base_prefix, "bin")
    env = dict(user_env(bin_folder), PATH=os.pathsep.join([base_bin, "/usr/bin", "/bin"]),
               PYTHONPATH=pythonpath, GLOG_minloglevel="0", GLOG_logtostderr="1")
    done = run([tool, "train", "--solver=solver.prototxt"], cwd=str(work), env=env)
    losses = [float(line.rsplit("loss = ", 1)[1]) for line in done.stderr.splitlines()
              if "] Iteration" in line and "loss = " in line]
    assert len(losses) == 3 and losses[-1] < losses[0], done.stderr[-2000:]
