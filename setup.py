"""focal_loss_layer: sigmoid focal loss (Lin et al. 2017) as a Caffe Python layer.

pycaffe is not on PyPI: `make setup` (run by `make test` and `make example`) builds Caffe and
puts pycaffe on the venv's path. The layer's fast path is compiled by numba. The numpy core
(focal_loss_layer.core, .params, .labels) works without Caffe.
"""
from setuptools import find_packages, setup

setup(
    name="focal_loss_layer",
    version="0.1.0",
    description="Focal loss (sigmoid and softmax forms) as Caffe Python loss layers: exact, stable, fast",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["focal_loss_layer", "focal_loss_layer.*"]),
    python_requires=">=3.9",
    install_requires=["numpy>=1.22", "protobuf>=3.20", "numba>=0.60"],
    license="BSD-2-Clause",
)
