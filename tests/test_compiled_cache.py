"""numba's on-disk cache of the compiled passes (focal_loss_layer.kernels) never serves stale
machine code, and survives what users do to it: every compiled function lives in kernels.py,
which imports nothing else of the package, so numba's stamp of that one file covers all the code
a pass is built from; an edit of a helper both passes inline recompiles both; two processes
compiling into one empty cache at once both succeed; a process killed mid-compile leaves a cache
the next process can use. (Read-only installs: tests/test_install.py.)"""
import ast
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from focal_loss_layer import kernels

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Forward of both kernels on fixed inputs; prints the package's folder, both losses and how many
# compiled versions each pass loaded from the cache.
SCRIPT = textwrap.dedent('''
    import json, os
    import numpy as np
    import focal_loss_layer
    from focal_loss_layer import kernels
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
                   (("sigmoid", kernels.focal_pass), ("softmax", kernels.softmax_pass))}}))
''')
# log1p_unit, inlined by both passes (softplus in focal_pass, log Z in softmax_pass), doubled.
HELPER = "    return _TWO * s * (_ONE + s2 * (k3"
CHANGED_HELPER = "    return _TWO * _TWO * s * (_ONE + s2 * (k3"


def start(root, cache):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "NUMBA_", "FOCAL_LOSS_"))}
    env.update(PYTHONPATH=str(root), NUMBA_CACHE_DIR=str(cache))
    return subprocess.Popen([sys.executable, "-c", SCRIPT], cwd=str(root), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process, root):
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr
    result = json.loads(stdout.strip().splitlines()[-1])
    assert result["package"] == str(root / "focal_loss_layer")
    return result


def run(root, cache):
    return finish(start(root, cache), root)


@pytest.fixture
def copy(tmp_path):
    """(a copy of the package's folder's parent, an empty cache folder)."""
    root = tmp_path / "copy"
    shutil.copytree(os.path.join(REPO, "focal_loss_layer"), root / "focal_loss_layer",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return root, tmp_path / "numba-cache"


def test_a_change_to_a_shared_helper_recompiles_both_passes(copy):
    root, cache = copy
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


def test_two_processes_compiling_into_one_empty_cache_at_once_both_succeed(copy):
    root, cache = copy
    both = [finish(process, root) for process in [start(root, cache), start(root, cache)]]
    assert both[0]["sigmoid"] == both[1]["sigmoid"] and both[0]["softmax"] == both[1]["softmax"]
    later = run(root, cache)
    assert later["loaded"] == {"sigmoid": 1, "softmax": 1}, later
    assert later["sigmoid"] == both[0]["sigmoid"]


def test_a_process_killed_mid_compile_leaves_a_usable_cache(copy):
    root, cache = copy
    reference = run(root, cache.parent / "other-cache")
    victim = start(root, cache)
    time.sleep(4)                     # importing numba and the package, then compiling (~20 s)
    assert victim.poll() is None, "the process ended before it could be killed mid-compile"
    victim.send_signal(signal.SIGKILL)
    victim.communicate()
    after = run(root, cache)
    assert (after["sigmoid"], after["softmax"]) == (reference["sigmoid"], reference["softmax"])
    assert run(root, cache)["loaded"] == {"sigmoid": 1, "softmax": 1}


def test_the_compiled_module_imports_nothing_else_of_the_package():
    """numba's cache stamps a function with its defining file alone: a helper imported from
    another module of the package could change without kernels.py's passes recompiling."""
    tree = ast.parse(open(kernels.__file__, encoding="utf-8").read())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {("." * node.level) + (node.module or "") for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom)}
    assert imported == {"warnings", "numpy", "numba"}, imported


def test_only_numbas_public_api_is_used():
    """numba.core, numba.extending.intrinsic and llvmlite change between releases (numba 0.60
    and 0.61 failed on an llvmlite attribute of 0.45)."""
    for name in os.listdir(os.path.dirname(kernels.__file__)):
        if name.endswith(".py"):
            text = open(os.path.join(os.path.dirname(kernels.__file__), name),
                        encoding="utf-8").read()
            for private in ("numba.core", "numba.extending", "llvmlite", "intrinsic"):
                assert private not in text, (name, private)
