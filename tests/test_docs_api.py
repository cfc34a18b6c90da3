"""The API reference (tools/docs/api.py) covers every public name a user imports."""
import importlib

from tools.docs.api import API_MODULES, api_reference


def test_every_public_name_of_the_package_is_documented():
    text = api_reference()
    package = importlib.import_module("focal_loss_layer")
    callables = [n for n in package.__all__ if callable(getattr(package, n))]
    assert "FocalLossLayer" in callables and "sigmoid_focal_loss_and_gradient" in callables
    for name in callables:
        assert f"`{name}`" in text, name
    for module in API_MODULES:
        assert f"### `{module}`" in text


def test_signatures_and_docstrings_are_shown():
    text = api_reference()
    assert "#### `read_labels`" in text
    assert "def read_labels(labels: numpy.ndarray" in text
    # A docstring's formula block keeps its alignment (shown as text, not reflowed).
    assert "    ℓ⁺(x) = −(1−p)^γ · log p          dℓ⁺/dx" in text
