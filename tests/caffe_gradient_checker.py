"""Caffe's own C++ GradientChecker on a Python loss layer: compile and run
tests/caffe_gradient_check/python_loss_gradient_check.cpp against the project's Caffe build.

The program links the build's libcaffe.so and gtest (compiled from the build's
src/gtest/gtest-all.cpp) and embeds Python through Caffe's PythonLayer factory. Both are compiled
once (about 8 s on 2 cores) and kept outside the checkout, in
${FOCAL_LOSS_CAFFE_CACHE:-~/.cache/focal_loss_layer}/gradient-check/, named by a hash of the
sources, the flags and the Caffe build: a later session reuses them, any change compiles anew.
"""
import hashlib
import json
import os
import re
import subprocess
import sysconfig
import tempfile
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

from caffe_nets import REPO

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "caffe_gradient_check")
SOURCE = os.path.join(HERE, "python_loss_gradient_check.cpp")
# As Caffe was built (scripts/caffe/Makefile.config.in): CPU_ONLY changes Caffe's class layouts,
# so it must match.
DEFINES = ("-DCPU_ONLY", "-DWITH_PYTHON_LAYER", "-DNDEBUG")


@dataclass
class CheckerCase:
    """One gradient check. labels: "soft" (targets uniform in [0, 1]), "binary" (targets 0/1) or
    "indices" (class ids 0..C); labels_shape defaults to the logits' shape for targets and to
    (N, *spatial) for indices. A fraction ignore_fraction of the label entries is set to
    settings["ignore_label"]."""

    name: str
    settings: dict
    logits_shape: Tuple[int, ...]
    labels: str
    labels_shape: Optional[Tuple[int, ...]] = None
    ignore_fraction: float = 0.0
    seed: int = 1701
    module: str = "focal_loss_layer"
    layer: str = "FocalLossLayer"

    def line(self) -> str:
        """The case as a line of the program's cases file (ten tab-separated fields)."""
        shape = self.labels_shape
        if shape is None:
            shape = (self.logits_shape if self.labels != "indices"
                     else self.logits_shape[:1] + self.logits_shape[2:])
        ignore_label = self.settings.get("ignore_label")
        fields = [self.name, self.module, self.layer, json.dumps(self.settings),
                  "x".join(map(str, self.logits_shape)), "x".join(map(str, shape)), self.labels,
                  "none" if ignore_label is None else str(ignore_label),
                  repr(self.ignore_fraction), str(self.seed)]
        assert not any("\t" in f or "\n" in f for f in fields), fields
        return "\t".join(fields) + "\n"


def caffe_root() -> str:
    """The Caffe build folder that set-up wired into .venv (scripts/wire_venv.sh)."""
    with open(os.path.join(REPO, ".venv", ".caffe-root")) as f:
        return f.read().strip()


def _build_config(root):
    """The build's Makefile.config (scripts/caffe/Makefile.config.in as scripts/build_caffe.sh
    filled it in) as {name: value}, $(NAME) references expanded: the program is compiled with
    the include folders and libraries (Python's, BLAS's, HDF5's) that Caffe was built with."""
    config = {}
    with open(os.path.join(root, "Makefile.config")) as f:
        for line in f:
            name, assign, value = line.partition(":=")
            if assign and not name.lstrip().startswith("#"):
                config[name.strip()] = re.sub(r"\$\((\w+)\)", lambda m: config.get(m.group(1), ""),
                                              value.strip())
    return config


def _compile_flags(root, config):
    include_dirs = [os.path.join(root, "include"), os.path.join(root, "build", "src"),  # caffe.pb.h
                    os.path.join(root, "src"),  # gtest/gtest.h
                    *config["INCLUDE_DIRS"].split(), config["BLAS_INCLUDE"]]
    return ["-O2", "-pthread", "-fPIC", *DEFINES] + [f"-I{d}" for d in include_dirs]


def _link_flags(root, config):
    libcaffe_dir = os.path.join(root, "build", "lib")
    libraries = ["caffe", *config["PYTHON_LIBRARIES"].split(), "boost_system", "glog", "gflags",
                 "protobuf"]
    return ([f"-L{d}" for d in [libcaffe_dir, *config["LIBRARY_DIRS"].split()]]
            + [f"-Wl,-rpath,{d}" for d in (libcaffe_dir, config["PYTHON_LIB"])]
            + [f"-l{name}" for name in libraries] + ["-pthread"])


def _cache_dir():
    root = os.environ.get("FOCAL_LOSS_CAFFE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "focal_loss_layer")
    return os.path.join(root, "gradient-check")


def _cached(name, key_parts, command):
    """Run the compiler `command` (output path appended after -o) unless a file made from the
    same key_parts is cached; return its path. Written under a temporary name and renamed into
    place, so an interrupted compile never counts."""
    key = hashlib.sha256("\0".join(key_parts).encode()).hexdigest()[:16]
    path = os.path.join(_cache_dir(), f"{name}-{key}")
    if not os.path.exists(path):
        os.makedirs(_cache_dir(), exist_ok=True)
        partial = f"{path}.{os.getpid()}.partial"
        done = subprocess.run(command + ["-o", partial], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"compiling {name} failed:\n{' '.join(command)}\n{done.stderr}")
        os.replace(partial, path)
    return path


def _digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def checker_program() -> str:
    """Path of the compiled program, compiling it (and gtest) first if not cached."""
    root = caffe_root()
    config = _build_config(root)
    cflags = _compile_flags(root, config)
    gtest_source = os.path.join(root, "src", "gtest", "gtest-all.cpp")
    gtest = _cached("gtest-all.o", [_digest(gtest_source), *cflags],
                    ["g++", "-c", gtest_source, *cflags])
    ldflags = _link_flags(root, config)
    libcaffe = os.stat(os.path.join(root, "build", "lib", "libcaffe.so"))
    return _cached("python_loss_gradient_check",
                   [_digest(SOURCE), gtest, str(libcaffe.st_mtime_ns), *cflags, *ldflags],
                   ["g++", SOURCE, gtest, *cflags, *ldflags])


def run_checker(cases: Sequence[CheckerCase], pythonpath: Sequence[str] = (),
                timeout: float = 600) -> Tuple[int, str]:
    """Run the program on `cases` in one process; return (exit code, stdout + stderr).
    pythonpath: extra folders for the embedded Python (modules of test-only layers)."""
    program = checker_program()
    root = caffe_root()
    # The embedded interpreter knows nothing of .venv: name the project, pycaffe and the venv's
    # packages, as .venv/bin/caffe does (scripts/wire_venv.sh).
    path = [*pythonpath, REPO, os.path.join(root, "python"), sysconfig.get_paths()["purelib"]]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path))
    with tempfile.NamedTemporaryFile("w", suffix=".tsv", delete=False) as f:
        f.write("".join(case.line() for case in cases))
    try:
        done = subprocess.run([program, f.name], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=timeout)
    finally:
        os.unlink(f.name)
    return done.returncode, done.stdout
