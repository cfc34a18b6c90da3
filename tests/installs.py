"""Installing the project the way a user does: a copy of only what the package needs (setup.py,
README.md, focal_loss_layer/: no Makefile, scripts, tests or git checkout), fresh venvs, pip
from the local cache, and child processes with a clean environment."""
import os
import shutil
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE_FILES = ("setup.py", "README.md")
PIP = ("-m", "pip", "--disable-pip-version-check")


def run(argv, check=True, **kwargs):
    """subprocess.run with text output; asserts exit 0 unless check is False."""
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=600,
                          **kwargs)
    if check:
        assert done.returncode == 0, f"{argv} failed:\n{done.stdout}\n{done.stderr}"
    return done


def clean_env(**extra):
    """os.environ without the variables that would let a child see this checkout or its venv
    (PYTHON*, NUMBA_*, XDG_*, FOCAL_LOSS_*), quiet glog, plus extra."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "NUMBA_", "XDG_", "FOCAL_LOSS_"))}
    env.update(GLOG_minloglevel="2", **extra)
    return env


def copy_source(folder):
    """folder/source: the files `pip install .` and `pip wheel .` need, and nothing else."""
    source = folder / "source"
    source.mkdir()
    for name in PACKAGE_FILES:
        shutil.copy(os.path.join(REPO, name), source)
    shutil.copytree(os.path.join(REPO, "focal_loss_layer"), source / "focal_loss_layer",
                    ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc"))
    return source


def make_venv(folder, with_pip=True):
    """(python, site-packages) of a new venv at folder, made from this interpreter's base Python."""
    run([sys.executable, "-m", "venv"] + ([] if with_pip else ["--without-pip"]) + [folder])
    python = str(folder / "bin" / "python")
    site_packages = run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
                        ).stdout.strip()
    return python, site_packages


def build_wheel(source, folder):
    """`pip wheel .` of the source copy into folder (no dependencies, this venv's setuptools);
    the wheel's path."""
    run([sys.executable, *PIP, "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", folder, source], cwd=str(folder))
    wheels = [name for name in os.listdir(folder) if name.endswith(".whl")]
    assert len(wheels) == 1, wheels
    return folder / wheels[0]
