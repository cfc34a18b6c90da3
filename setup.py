"""focal_loss_layer: sigmoid focal loss (Lin et al. 2017) as a Caffe Python layer.

pycaffe is not on PyPI: it comes from a Caffe build (`WITH_PYTHON_LAYER := 1`, its python/ folder
on PYTHONPATH; docs/install.md), or from `make setup` in this repository. The layer's fast path
is compiled by numba. The numpy core (focal_loss_layer.core, .params, .labels) works without Caffe.
`pip install .` and `pip wheel .` need only this file, README.md and focal_loss_layer/.
"""
import os
import re

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def read(name):
    with open(os.path.join(HERE, name), encoding="utf-8") as f:
        return f.read()


def version():
    """__version__ from focal_loss_layer/__init__.py, read as text (importing the package would
    need numpy at build time)."""
    found = re.search(r'^__version__ = "([^"]+)"', read("focal_loss_layer/__init__.py"), re.M)
    if not found:
        raise RuntimeError("focal_loss_layer/__init__.py has no __version__ = \"...\" line")
    return found.group(1)


setup(
    name="focal_loss_layer",
    version=version(),
    description="Focal loss (sigmoid and softmax forms) as Caffe Python loss layers: exact, stable, fast",
    long_description=read("README.md"),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["focal_loss_layer", "focal_loss_layer.*"]),
    python_requires=">=3.9",
    install_requires=["numpy>=1.22", "protobuf>=3.20", "numba>=0.60"],
    extras_require={"balances": ["h5py"]},   # focal-loss-balances reads HDF5 label files
    entry_points={"console_scripts": [
        "focal-loss-check = focal_loss_layer.check.cli:main",
        "focal-loss-balances = focal_loss_layer.balances:main",
        "focal-loss-convert = focal_loss_layer.convert:main",
    ]},
    license="BSD-2-Clause",
)
