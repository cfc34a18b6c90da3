"""numba's on-disk cache is invalidated by a change to any source a compiled pass is built from
(focal_loss_layer.compiled_cache): a copy of the package, both layers' passes compiled into a
NUMBA_CACHE_DIR, loaded from it by a second process, then a helper in kernels.py that both passes
inline changed in the copy: a third process with the same cache folder gets both new results."""
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from focal_loss_layer import compiled_cache

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Forward of both kernels on fixed inputs; prints the package's folder, both losses and how many
# compiled versions each pass loaded from the cache.
SCRIPT = textwrap.dedent('''
    import json, os
    import numpy as np
    import focal_loss_layer
    from focal_loss_layer import kernels, softmax_kernels
    from focal_loss_layer.fast import FocalLossKernel
    from focal_loss_layer.params import parse_param_str, parse_softmax_param_str
    from focal_loss_layer.softmax_fast import SoftmaxFocalLossKernel
    logits = np.linspace(-3, 3, 24, dtype=np.float32).reshape(2, 3, 4)
    targets = (np.arange(24).reshape(2, 3, 4) % 5 == 0).astype(np.float32)
    classes = np.array([[0, 1, 2, 1], [2, 2, 0, 1]], np.float32)
    sigmoid = FocalLossKernel(parse_param_str(""), logits.shape, targets.shape)
    softmax = SoftmaxFocalLossKernel(parse_softmax_param_str(""), logits.shape, classes.shape)
    print(json.dumps({
        "package": os.path.dirname(focal_loss_layer.__file__),
        "sigmoid": sigmoid.forward(logits, targets), "softmax": softmax.forward(logits, classes),
        "loaded": {name: sum(dispatcher.stats.cache_hits.values()) for name, dispatcher in
                   (("sigmoid", kernels.focal_pass), ("softmax", softmax_kernels.softmax_pass))}}))
''')
# log1p_unit, inlined by both passes (softplus in focal_pass, log Z in softmax_pass), doubled.
HELPER = "    return _TWO * s * (_ONE + s2 * (k3"
CHANGED_HELPER = "    return _TWO * _TWO * s * (_ONE + s2 * (k3"


def run(root, cache):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "NUMBA_", "FOCAL_LOSS_"))}
    env.update(PYTHONPATH=str(root), NUMBA_CACHE_DIR=str(cache))
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=str(root), env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["package"] == str(root / "focal_loss_layer")
    return result


def test_a_change_to_a_shared_helper_recompiles_both_passes(tmp_path):
    root, cache = tmp_path / "copy", tmp_path / "numba-cache"
    shutil.copytree(os.path.join(REPO, "focal_loss_layer"), root / "focal_loss_layer",
                    ignore=shutil.ignore_patterns("__pycache__"))
    first = run(root, cache)
    again = run(root, cache)
    assert again["loaded"] == {"sigmoid": 1, "softmax": 1}, again   # the cache is in use
    assert (again["sigmoid"], again["softmax"]) == (first["sigmoid"], first["softmax"])
    kernels_py = root / "focal_loss_layer" / "kernels.py"
    source = kernels_py.read_text()
    assert source.count(HELPER) == 1
    kernels_py.write_text(source.replace(HELPER, CHANGED_HELPER))
    changed = run(root, cache)
    assert changed["loaded"] == {"sigmoid": 0, "softmax": 0}, changed
    assert changed["sigmoid"] != pytest.approx(first["sigmoid"], rel=1e-3)
    assert changed["softmax"] != pytest.approx(first["softmax"], rel=1e-3)


def test_the_stamp_covers_the_modules_a_pass_imports_and_nothing_else():
    assert compiled_cache.source_modules("focal_loss_layer.softmax_kernels") == [
        "focal_loss_layer.compiled_cache", "focal_loss_layer.kernels",
        "focal_loss_layer.softmax_kernels"]
    assert compiled_cache.source_modules("focal_loss_layer.kernels") == [
        "focal_loss_layer.compiled_cache", "focal_loss_layer.kernels"]
    assert (compiled_cache.sources_stamp("focal_loss_layer.kernels")
            != compiled_cache.sources_stamp("focal_loss_layer.softmax_kernels"))
