"""Reading the `caffe train` log (glog lines on stderr): train and test losses by iteration.

Lines this reads, as solver.cpp writes them:
    ... solver.cpp:231] Iteration 40, loss = 0.4137                     (train, every `display`)
    ... solver.cpp:346] Iteration 200, Testing net (#0)
    ... solver.cpp:413]     Test net output #0: loss = 0.2285 (* 1 = 0.2285 loss)
"""
import re
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

_TRAIN = re.compile(r"Iteration (\d+)(?: \([^)]*\))?, loss = (\S+)")
_TESTING = re.compile(r"Iteration (\d+), Testing net \(#0\)")
_TEST_LOSS = re.compile(r"Test net output #\d+: loss = (\S+)")


@dataclass
class LossCurves:
    """train, test: lists of (iteration, loss) in log order; the train loss is Caffe's smoothed
    loss (mean of the last `average_loss` iterations)."""

    train: List[Tuple[int, float]] = field(default_factory=list)
    test: List[Tuple[int, float]] = field(default_factory=list)
    _testing_iteration: Optional[int] = None

    def read_line(self, line: str) -> Optional[int]:
        """Take in one log line; return the train iteration it reports, if it reports one."""
        testing = _TESTING.search(line)
        if testing:
            self._testing_iteration = int(testing.group(1))
            return None
        test_loss = _TEST_LOSS.search(line)
        if test_loss and self._testing_iteration is not None:
            self.test.append((self._testing_iteration, float(test_loss.group(1))))
            self._testing_iteration = None
            return None
        train = _TRAIN.search(line)
        if train:
            iteration = int(train.group(1))
            # The solver reports the last iteration twice (in the loop and after it).
            if not self.train or self.train[-1][0] != iteration:
                self.train.append((iteration, float(train.group(2))))
            return iteration
        return None

    def as_dict(self) -> dict:
        return {"train": [list(point) for point in self.train],
                "test": [list(point) for point in self.test]}


def read_log(path: str) -> LossCurves:
    curves = LossCurves()
    with open(path) as f:
        for line in f:
            curves.read_line(line)
    return curves
