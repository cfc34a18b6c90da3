"""Timing single layers inside a caffe.Net with pycaffe's net._forward(k, k) / net._backward(k, k)."""
import time

import numpy as np


def layer_index(net, name):
    return list(net._layer_names).index(name)


def time_layers(net, names, repeats, warmup=1):
    """{name: (median forward s, median backward s, median forward+backward s)} over repeats.

    The layers take turns within each repeat, so that a change in the machine's load falls on all
    of them alike.
    """
    indices = {name: layer_index(net, name) for name in names}
    samples = {name: [] for name in names}
    for repeat in range(warmup + repeats):
        for name, k in indices.items():
            start = time.perf_counter()
            net._forward(k, k)
            middle = time.perf_counter()
            net._backward(k, k)
            end = time.perf_counter()
            if repeat >= warmup:
                samples[name].append((middle - start, end - middle, end - start))
    return {name: tuple(np.median(np.array(values), axis=0)) for name, values in samples.items()}


def median_seconds(calls, repeats, warmup=1):
    """{name: median seconds of calls[name]()} over repeats, the calls taking turns within each
    repeat (as time_layers), in reversed order every other repeat: a call that runs right after
    another finds the caches as that one left them, and no call should always be first."""
    samples = {name: [] for name in calls}
    for repeat in range(warmup + repeats):
        order = list(calls.items())
        for name, call in order[::-1] if repeat % 2 else order:
            start = time.perf_counter()
            call()
            if repeat >= warmup:
                samples[name].append(time.perf_counter() - start)
    return {name: float(np.median(values)) for name, values in samples.items()}
