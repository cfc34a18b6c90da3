"""Old names of the public API, kept working for one release with a DeprecationWarning that says
what to use instead (CHANGELOG.md lists every rename).

    sigmoid_focal_loss = deprecated_alias(sigmoid_focal_loss_and_gradient, "focal_loss_layer.core",
                                          "sigmoid_focal_loss", keywords={"class_weights": "class_balances"})
"""
import functools
import warnings
from typing import Callable, Dict, Mapping, Optional

REMOVED_IN = "0.3.0"


def renamed_keywords(keywords: Dict, renames: Mapping[str, str], where: str,
                     stacklevel: int = 3) -> Dict:
    """keywords with each old name in renames replaced by its new name, warning once per old name
    used (stacklevel: the caller's frame, as warnings.warn counts from this function);
    TypeError when a call gives both the old and the new name."""
    for old, new in renames.items():
        if old not in keywords:
            continue
        if new in keywords:
            raise TypeError(f"{where}() got both {old}= (the old name) and {new}=; pass {new}= only")
        warnings.warn(f"{where}(): the keyword {old}= is deprecated and will be removed in "
                      f"{REMOVED_IN}; use {new}= (the param_str key's name)",
                      DeprecationWarning, stacklevel=stacklevel)
        keywords[new] = keywords.pop(old)
    return keywords


def keyword_renamed(value, deprecated: Dict, old: str, new: str, where: str):
    """value (the new keyword's), or what the caller passed as old= instead, with a warning:
    for a function that takes **deprecated after its keywords. TypeError for any other unexpected
    keyword, or for both old= and new=."""
    unknown = sorted(set(deprecated) - {old})
    if unknown:
        raise TypeError(f"{where}() got unexpected keyword argument(s) {unknown}")
    if old not in deprecated:
        return value
    keywords = {old: deprecated[old], **({} if value is None else {new: value})}
    return renamed_keywords(keywords, {old: new}, where, stacklevel=4)[new]


def deprecated_alias(function: Callable, module: str, old_name: str,
                     keywords: Optional[Mapping[str, str]] = None) -> Callable:
    """function under its old name: same arguments (old keyword names mapped by keywords), same
    result, and a DeprecationWarning naming the new name."""
    new_name = f"{function.__module__}.{function.__name__}"

    @functools.wraps(function)
    def alias(*args, **kwargs):
        warnings.warn(f"{module}.{old_name} is deprecated and will be removed in {REMOVED_IN}; "
                      f"use {new_name} (same arguments, same result)", DeprecationWarning,
                      stacklevel=2)
        if keywords:
            kwargs = renamed_keywords(kwargs, keywords, f"{module}.{old_name}")
        return function(*args, **kwargs)

    alias.__name__ = alias.__qualname__ = old_name
    alias.__doc__ = f"Deprecated: use {new_name} (removed in {REMOVED_IN})."
    del alias.__wrapped__   # the API docs show the alias's own signature and docstring
    return alias
