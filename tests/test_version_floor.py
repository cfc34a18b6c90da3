"""The version floors setup.py declares are tested: requirements/floor.txt pins the oldest Python,
numpy and numba setup.py accepts, scripts/floor_venv.sh installs them from PyPI into a venv of
their own (once, cached), and tests/floor_check.py runs both layers' compiled passes against the
numpy cores there. The first run downloads about 65 MB and numba compiles: a few minutes."""
import ast
import os
import re
import subprocess

import pytest
from installs import REPO, clean_env

FLOOR_FILE = os.path.join(REPO, "requirements", "floor.txt")
TIMEOUT = 1800   # seconds: downloads, and numba compiling both layers' passes


def run(argv, env):
    """subprocess.run with text output and TIMEOUT; asserts exit 0, showing the output if not."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, env=env)
    assert done.returncode == 0, f"{argv} failed:\n{done.stdout}\n{done.stderr}"
    return done


def release(version):
    """'1.22' and '1.22.0' alike, as (1, 22): a version of digits and dots, trailing zeros dropped."""
    parts = [int(part) for part in version.split(".")]
    while parts and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def floor_pins():
    """(python "X.Y", {name: version}) from requirements/floor.txt."""
    with open(FLOOR_FILE, encoding="utf-8") as f:
        text = f.read()
    python = re.search(r"^# python (\d+\.\d+)$", text, re.M)
    assert python, "requirements/floor.txt has no '# python X.Y' line"
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)$", text, re.M))
    return python.group(1), pins


def setup_floors():
    """(python floor, {name: floor}) from the literals of setup.py's setup(...) call."""
    with open(os.path.join(REPO, "setup.py"), encoding="utf-8") as f:
        tree = ast.parse(f.read())
    call = next(node for node in ast.walk(tree)
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setup")
    keywords = {k.arg: ast.literal_eval(k.value) for k in call.keywords
                if k.arg in ("python_requires", "install_requires")}
    python = re.fullmatch(r">=(\d+\.\d+)", keywords["python_requires"])
    assert python, f"python_requires {keywords['python_requires']!r} is not '>=X.Y'"
    floors = {}
    for requirement in keywords["install_requires"]:
        found = re.fullmatch(r"([A-Za-z0-9_.-]+)>=([0-9.]+)", requirement)
        assert found, f"install_requires entry {requirement!r} is not 'name>=version'"
        floors[found.group(1)] = found.group(2)
    return python.group(1), floors


def test_floor_pins_equal_setup_py_floors():
    """Both ways, so neither file can move alone. protobuf is only the Caffe parts' (not in the
    floor venv); llvmlite is numba's, pinned at the oldest numba's floor accepts."""
    python, pins = floor_pins()
    setup_python, floors = setup_floors()
    assert python == setup_python
    assert set(floors) - {"protobuf"} == set(pins) - {"llvmlite"}
    for name in set(floors) - {"protobuf"}:
        assert release(pins[name]) == release(floors[name]), name


@pytest.fixture(scope="module")
def floor_python():
    """The floor venv's interpreter (scripts/floor_venv.sh, cached across runs)."""
    python, _ = floor_pins()
    # The cache folder's variables pass (FOCAL_LOSS_CAFFE_CACHE, XDG_CACHE_HOME); PYTHON* do not.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    done = run([os.path.join(REPO, "scripts", "floor_venv.sh"), python], env)
    return done.stdout.strip().splitlines()[-1]


def test_floor_venv_has_the_floor_versions(floor_python):
    """The pins, installed; and llvmlite's is the oldest the floor numba asks for."""
    python, pins = floor_pins()
    script = ("import platform, importlib.metadata as m; print(platform.python_version()); "
              f"print(*(m.version(n) for n in {sorted(pins)!r})); "
              "print(*(r for r in m.requires('numba') if r.startswith('llvmlite')))")
    lines = run([floor_python, "-c", script], clean_env()).stdout.split("\n")
    assert lines[0].rsplit(".", 1)[0] == python
    assert dict(zip(sorted(pins), lines[1].split())) == pins
    llvmlite_floor = re.search(r">=\s*(\d+(?:\.\d+)*)", lines[2])
    assert llvmlite_floor and release(llvmlite_floor.group(1)) == release(pins["llvmlite"]), lines[2]


def test_compiled_passes_match_the_cores_at_the_floors(floor_python, tmp_path):
    env = clean_env(PYTHONPATH=REPO, NUMBA_CACHE_DIR=str(tmp_path), PYTHONDONTWRITEBYTECODE="1")
    done = run([floor_python, os.path.join(REPO, "tests", "floor_check.py")], env)
    assert "cases match the numpy cores" in done.stdout
