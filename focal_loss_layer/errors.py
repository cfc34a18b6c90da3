"""Error types. Both are ValueErrors, so callers that only care about "bad input" catch one."""


class FocalLossError(ValueError):
    """Base class of every error this package raises about its inputs."""


class ParamError(FocalLossError):
    """A param_str key or value is not allowed (raised at net set-up)."""


class InputError(FocalLossError):
    """Bottom blobs do not fit: shapes, labels or non-finite logits (raised at reshape/forward)."""
