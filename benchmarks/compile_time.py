"""JIT compile time of the kernels: a fresh process with an empty numba cache compiles them (first
use on a machine), a second process with that cache loads them (every later use). Run as
`python -m benchmarks.compile_time CACHE_DIR`, which prints JSON."""
import json
import time


def first_pass_seconds():
    """Seconds of importing the fast path and running it (forward and backward) once for γ = 2
    and once for γ = 1.5."""
    start = time.perf_counter()
    import numpy as np

    from focal_loss_layer.fast import FocalLossKernel
    from focal_loss_layer.params import parse_param_str
    times = {"import": time.perf_counter() - start}
    for gamma in (2.0, 1.5):
        start = time.perf_counter()
        params = parse_param_str(f"{{'focusing_parameter': {gamma}}}")
        kernel = FocalLossKernel(params, (2, 3), (2, 3))
        logits, labels = np.zeros((2, 3), np.float32), np.zeros((2, 3), np.float32)
        kernel.forward(logits, labels)
        kernel.backward(1.0, np.empty_like(logits))
        times[f"gamma {gamma:g}"] = time.perf_counter() - start
    return times


if __name__ == "__main__":
    print(json.dumps(first_pass_seconds()))
