"""The detector's test losses from a `caffe train` log.

examples.common.caffe_log reads the train loss and a test output named `loss`; the detector's net has
several loss outputs (cls_loss_<level>, box_loss), which Caffe logs one line each per test pass:

    ... solver.cpp:346] Iteration 500, Testing net (#0)
    ... solver.cpp:413]     Test net output #0: box_loss = 0.2424 (* 1 = 0.2424 loss)
    ... solver.cpp:413]     Test net output #1: cls_loss_p2 = 0.1892 (* 1 = 0.1892 loss)
"""
import re
from typing import Dict, List, Tuple

_TESTING = re.compile(r"Iteration (\d+), Testing net \(#0\)")
_OUTPUT = re.compile(r"Test net output #\d+: (\S+) = (\S+) \(\* (\S+) = (\S+) loss\)")


def read_test_losses(log_path: str) -> Dict[str, List[Tuple[int, float]]]:
    """{"total": [(iteration, Σ weighted outputs)], "<output>": [(iteration, value)], ...} for
    each test pass in the log, in log order."""
    passes: List[Tuple[int, Dict[str, Tuple[float, float]]]] = []
    with open(log_path) as f:
        for line in f:
            testing = _TESTING.search(line)
            if testing:
                passes.append((int(testing.group(1)), {}))
                continue
            output = _OUTPUT.search(line)
            if output and passes:
                passes[-1][1][output.group(1)] = (float(output.group(2)), float(output.group(4)))
    curves: Dict[str, List[Tuple[int, float]]] = {"total": []}
    for iteration, outputs in passes:
        if not outputs:
            continue
        curves["total"].append((iteration, sum(weighted for _, weighted in outputs.values())))
        for name, (value, _) in outputs.items():
            curves.setdefault(name, []).append((iteration, value))
    return curves
