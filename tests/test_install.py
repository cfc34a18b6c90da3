"""Installs anywhere: a non-editable `pip install .` into a fresh venv that sees pycaffe, run from
a read-only site-packages with no writable cache folder (a read-only bind mount in a private
mount namespace, made with unshare), and with NUMBA_CACHE_DIR honoured."""
import os
import sysconfig
import textwrap

import pytest
from installs import PIP, clean_env, copy_source, make_venv, run

# Builds a net with the layer from the installed package, runs forward and backward, compares
# them with the numpy core, and prints where the package came from and the warnings it gave.
USER_SCRIPT = textwrap.dedent('''
    import json, os, sys, tempfile, warnings
    import numpy as np
    warnings.simplefilter("always")
    with warnings.catch_warnings(record=True) as caught:
        import caffe, focal_loss_layer
        import focal_loss_layer.softmax_fast   # both layers' passes: still one warning
        from focal_loss_layer.core import sigmoid_focal_loss_and_gradient
        from focal_loss_layer.labels import read_labels
        caffe.set_mode_cpu()
        net_text = """force_backward: true
        layer { name: "score" type: "Input" top: "score" input_param { shape { dim: 4 dim: 3 } } }
        layer { name: "label" type: "Input" top: "label" input_param { shape { dim: 4 } } }
        layer { name: "loss" type: "Python" bottom: "score" bottom: "label" top: "loss"
          python_param { module: "focal_loss_layer" layer: "FocalLossLayer"
                         param_str: "{'focusing_parameter': 2.5}" }
          loss_weight: 1 }
        """
        with tempfile.NamedTemporaryFile("w", suffix=".prototxt", delete=False) as f:
            f.write(net_text)
        net = caffe.Net(f.name, caffe.TRAIN)
        logits = np.linspace(-3, 3, 12).reshape(4, 3).astype(np.float32)
        labels = np.array([0, 1, 2, 3], np.float32)
        net.blobs["score"].data[...] = logits
        net.blobs["label"].data[...] = labels
        loss = net.forward()["loss"].item()
        net.backward()
        read = read_labels(labels, logits.shape)
        ref_loss, ref_grad = sigmoid_focal_loss_and_gradient(logits.astype(np.float64), read.targets,
                                                focusing_parameter=2.5)
        print(json.dumps({
            "package": os.path.dirname(focal_loss_layer.__file__),
            "loss_error": abs(loss - ref_loss) / ref_loss,
            "grad_error": float(np.max(np.abs(net.blobs["score"].diff - ref_grad))),
            "warnings": [str(w.message) for w in caught
                         if "focal_loss_layer" in str(w.message)]}))
''')


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(python, site-packages) of a fresh venv with the project pip-installed (not editable).
    Its dependencies and pycaffe come from the project's .venv through a .pth file, as a user's
    venv would see a system-wide Caffe."""
    root = tmp_path_factory.mktemp("install")
    source = copy_source(root)
    python, site_packages = make_venv(root / "venv", with_pip=False)
    ours = sysconfig.get_paths()["purelib"]          # the project's .venv: numpy, numba, pip
    caffe_python = open(os.path.join(ours, "caffe.pth")).read().strip()
    with open(os.path.join(site_packages, "project_venv.pth"), "w") as f:
        f.write(f"{ours}\n{caffe_python}\n")
    run([python, *PIP, "install", "--quiet", "--no-deps", "--no-build-isolation", source],
        cwd=str(root))
    return python, site_packages, root


def _result(done):
    import json
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_pip_install_is_not_editable_and_the_layer_runs_from_site_packages(installed, tmp_path):
    python, site_packages, _ = installed
    done = run([python, "-c", USER_SCRIPT], cwd=str(tmp_path),
               env=clean_env(NUMBA_CACHE_DIR=str(tmp_path / "numba")))
    result = _result(done)
    assert result["package"] == os.path.join(site_packages, "focal_loss_layer")
    assert result["loss_error"] < 1e-5 and result["grad_error"] < 1e-6


def test_numba_cache_dir_is_honoured(installed, tmp_path):
    python, site_packages, _ = installed
    cache = tmp_path / "numba-cache"
    done = run([python, "-c", USER_SCRIPT], cwd=str(tmp_path), env=clean_env(NUMBA_CACHE_DIR=str(cache)))
    assert _result(done)["warnings"] == []
    cached = [name for _, _, names in os.walk(cache) for name in names]
    assert any(name.startswith("kernels.focal_pass") and name.endswith(".nbi") for name in cached), cached


def _read_only_command(site_packages, python, home):
    """argv that bind-mounts site_packages and home read-only in a private mount namespace and
    runs the user script there (as root: unshare -m; otherwise a user namespace: unshare -rm)."""
    flags = ["-m"] if os.geteuid() == 0 else ["-r", "-m"]
    shell = ('mount --bind -o ro "$1" "$1" && mount --bind -o ro "$2" "$2" && '
             'exec "$3" -c "$4"')
    return (["unshare", *flags, "sh", "-c", shell, "sh", site_packages, str(home), python,
             USER_SCRIPT])


def test_read_only_install_without_a_writable_cache_compiles_in_memory_with_one_warning(
        installed, tmp_path):
    python, site_packages, _ = installed
    home = tmp_path / "home"
    home.mkdir()
    done = run(_read_only_command(site_packages, python, home), cwd="/",
                env=clean_env(HOME=str(home)))
    result = _result(done)
    assert result["package"] == os.path.join(site_packages, "focal_loss_layer")
    assert result["loss_error"] < 1e-5 and result["grad_error"] < 1e-6
    assert len(result["warnings"]) == 1, result["warnings"]
    assert "NUMBA_CACHE_DIR" in result["warnings"][0]
    assert "no locator available" in result["warnings"][0]
    # Nothing was written where the process could not write.
    assert not any(name.endswith((".nbi", ".nbc")) for _, _, names in os.walk(home)
                   for name in names)
