"""The Python API reference (docs/reference.md, "Python API"), written from the docstrings.

One section per public module, in API_MODULES order: the module docstring, then each public
function and class (its signature, its docstring; a class's public methods and properties).
Old names (focal_loss_layer.deprecation) are listed last, with what replaces them.
Public means: in the module's __all__ if it has one, else defined in the module with a name not
starting with '_'. Docstrings are shown as written (in text blocks), so their formulas and shape
tables keep their alignment.
"""
import importlib
import inspect
from typing import List

# The modules a user imports; the compiled passes (fast, kernels, softmax_fast)
# and threads are the layers' internals, described in docs/performance.md and CONTRIBUTING.md.
API_MODULES = (
    "focal_loss_layer.layer",
    "focal_loss_layer.softmax_layer",
    "focal_loss_layer.multibox_layer",
    "focal_loss_layer.multibox_params",
    "focal_loss_layer.multibox",
    "focal_loss_layer.netspec",
    "focal_loss_layer.core",
    "focal_loss_layer.softmax_core",
    "focal_loss_layer.labels",
    "focal_loss_layer.params",
    "focal_loss_layer.balances",
    "focal_loss_layer.errors",
    "focal_loss_layer.pycaffe",
)


def api_reference() -> str:
    parts: List[str] = []
    for name in API_MODULES:
        module = importlib.import_module(name)
        parts += [f"### `{name}`", "", _text(module.__doc__), ""]
        members = _public_members(module)
        for member_name, member in members:
            if not _deprecated(member):
                parts += _member(member_name, member, level="####")
        old = [f"- `{n}`: {_one_line(m.__doc__)}" for n, m in members if _deprecated(m)]
        if old:
            parts += ["Deprecated names (they warn when used):", "", *old, ""]
    return "\n".join(parts)


def _deprecated(member) -> bool:
    """An old name kept by focal_loss_layer.deprecation (its docstring says so)."""
    return (member.__doc__ or "").startswith("Deprecated:")


def _public_members(module):
    names = getattr(module, "__all__", None)
    if names is None:
        names = sorted(n for n, v in vars(module).items()
                       if not n.startswith("_") and (inspect.isfunction(v) or inspect.isclass(v))
                       and v.__module__ == module.__name__)
    order = {n: _source_line(getattr(module, n)) for n in names}
    return [(n, getattr(module, n)) for n in sorted(names, key=lambda n: (order[n], n))]


def _source_line(obj) -> int:
    try:
        return inspect.getsourcelines(obj)[1]
    except (OSError, TypeError):
        return 0


def _member(name, member, level) -> List[str]:
    lines = [f"{level} `{name}`", ""]
    if inspect.isclass(member):
        bases = ", ".join(b.__qualname__ for b in member.__bases__ if b is not object)
        lines += ["```python", f"class {name}({bases})" if bases else f"class {name}", "```", ""]
    else:
        lines += ["```python", f"def {name}{_signature(member)}", "```", ""]
    lines += [_text(member.__doc__), ""]
    if inspect.isclass(member):
        for method_name, method in vars(member).items():
            # Undocumented public methods are Caffe's protocol (setup, reshape, forward, backward),
            # which the class docstring describes.
            if (method_name.startswith("_") or not method.__doc__
                    or not (inspect.isfunction(method) or isinstance(method, property))):
                continue
            if isinstance(method, property):
                lines += [f"- `{name}.{method_name}` (property): {_one_line(method.__doc__)}"]
            else:
                lines += [f"- `{name}.{method_name}{_signature(method)}`: {_one_line(method.__doc__)}"]
        if lines[-1].startswith("- "):
            lines.append("")
    return lines


def _signature(function) -> str:
    try:
        return str(inspect.signature(function))
    except (TypeError, ValueError):
        return "(...)"


def _text(doc) -> str:
    """A docstring as a text block (its own indentation removed); a note when there is none."""
    if not doc:
        return "(no docstring)"
    return "```text\n" + inspect.cleandoc(doc) + "\n```"


def _one_line(doc) -> str:
    return " ".join(inspect.cleandoc(doc).split()) if doc else "(no docstring)"
