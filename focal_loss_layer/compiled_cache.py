"""numba's on-disk cache of the compiled passes, invalidated when any source a pass is built from
changes.

numba stamps a cached function with a hash of the one file that defines it. A pass also inlines
helpers from other modules (softmax_kernels.softmax_pass those of kernels.py), so after a change
to kernels.py alone (a `git pull` into an editable install) numba would go on loading the old
machine code of softmax_pass. Here the stamp is a hash of the defining module's source and of
every module of this package it imports, transitively (read from its import statements): any
change to them recompiles the pass once.

Where the cache lives is numba's choice, unchanged: NUMBA_CACHE_DIR, else `__pycache__` beside
the source, else the user's cache folder. Where none is writable (a read-only install run by a
user without a home), the passes are compiled in memory for the process, with one warning.
(numba's own `cache=True` would fail the import instead.)
"""
import ast
import hashlib
import importlib.util
import sys
import warnings
from typing import List

from numba.core.caching import CompileResultCacheImpl, FunctionCache

PACKAGE = __name__.rpartition(".")[0]

_warning = {"given": False}     # one warning per process, however many passes fall back


def source_modules(module_name: str) -> List[str]:
    """module_name and the modules of this package it imports, directly or through each other,
    sorted by name."""
    found, todo = set(), [module_name]
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found.add(name)
        todo += _package_imports(name)
    return sorted(found)


def _package_imports(module_name: str) -> List[str]:
    """The modules of this package that module_name's source imports (absolute or relative)."""
    tree = ast.parse(_source(module_name))
    package = module_name.rpartition(".")[0]
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = importlib.util.resolve_name("." * node.level + (node.module or ""), package)
            # `from . import kernels` names modules; `from .kernels import x` names attributes.
            names += [base] + [f"{base}.{alias.name}" for alias in node.names]
    return [name for name in names if name.startswith(PACKAGE + ".") and _is_module(name)]


def _is_module(name: str) -> bool:
    if name in sys.modules:
        return True
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):     # an attribute of a module, not a module
        return False


def _source(module_name: str) -> str:
    """A module's source text through its loader (also from a zip or a read-only install)."""
    module = sys.modules.get(module_name)
    spec = module.__spec__ if module is not None else importlib.util.find_spec(module_name)
    return spec.loader.get_source(module_name)


def sources_stamp(module_name: str) -> str:
    """sha256 of the sources of source_modules(module_name), names included."""
    digest = hashlib.sha256()
    for name in source_modules(module_name):
        digest.update(name.encode() + b"\0" + _source(name).encode() + b"\0")
    return digest.hexdigest()


class _StampedLocator:
    """numba's chosen cache locator, with the sources' stamp in place of its one file's."""

    def __init__(self, locator, stamp: str):
        self._locator, self._stamp = locator, stamp

    def get_source_stamp(self):
        return self._stamp

    def __getattr__(self, name):
        return getattr(self._locator, name)


class _CacheImpl(CompileResultCacheImpl):
    def __init__(self, py_func):
        super().__init__(py_func)        # RuntimeError when no locator is available
        self._locator = _StampedLocator(self._locator, sources_stamp(py_func.__module__))


class _FunctionCache(FunctionCache):
    _impl_class = _CacheImpl


def cache_compiled_code(dispatcher) -> None:
    """Keep dispatcher's machine code on disk (see the module docstring), stamped with all its
    sources, so that later processes load it in < 1 s; or compile in memory with one warning
    where no cache folder is writable."""
    try:
        # What numba's dispatcher.enable_caching() does, with this module's cache class.
        dispatcher._cache = _FunctionCache(dispatcher.py_func)
    except RuntimeError as error:      # numba: "cannot cache function ...: no locator available"
        if not _warning["given"]:
            _warning["given"] = True
            warnings.warn(
                f"focal_loss_layer: no writable folder for numba's cache ({error}); the kernels "
                "are compiled in memory for this process (about 10 s per γ path). Set "
                "NUMBA_CACHE_DIR to a writable folder to compile them once.", RuntimeWarning,
                stacklevel=2)
