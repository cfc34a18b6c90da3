"""The training protocol of every detector run (RetinaNet-lite and SSD-lite), the focal-loss
paper's (Lin et al. 2017, Section 4.1 "Optimization", and Detectron's RetinaNet configs):

    SGD, momentum 0.9, weight decay 1e-4;
    a linear warm-up over warmup_iter iterations from warmup_from x base_lr to base_lr
        (Detectron: 500 iterations from 1/3; here 200 of a far shorter budget);
    base_lr x 0.1 at 2/3 and again at 8/9 of max_iter (the paper: 60k and 80k of 90k).

Caffe has no warm-up policy, so a run is two `caffe train` stages: the warm-up solver with
lr_policy "inv" and power -1, whose rate base_lr' (1 + gamma iter) is a straight line, then the
main solver (multistep) resumed from the warm-up's .solverstate, so momentum and the iteration
count carry over (examples.common.training runs the stages).
"""
from dataclasses import asdict, dataclass
from typing import Dict, Optional, Tuple

MOMENTUM = 0.9
WEIGHT_DECAY = 1e-4
DROP = 0.1


@dataclass(frozen=True)
class Protocol:
    """max_iter: the budget; snapshot: iterations between the weights kept for validation AP;
    check_stop: where the divergence checks (no prior bias; rates above the sweep's) end, the
    warm-up and 400 iterations at the full rate in the study."""

    max_iter: int
    snapshot: int
    warmup_iter: int = 200
    warmup_from: float = 1 / 3
    check_stop: int = 600   # the divergence checks' runs: this schedule, cut at this iteration
    display: int = 20       # the training loss logged (averaged) every

    @property
    def stepvalues(self) -> Tuple[int, int]:
        return round(self.max_iter * 2 / 3), round(self.max_iter * 8 / 9)

    def rate_at(self, rate: float, iteration: int) -> float:
        """base_lr at an iteration, as the two solvers give it (for the docs and the tests)."""
        if iteration < self.warmup_iter:
            return rate * self.warmup_from * (1 + self.warmup_gamma * iteration)
        return rate * DROP ** sum(iteration >= step for step in self.stepvalues)

    @property
    def warmup_gamma(self) -> float:
        """inv's gamma for a line from warmup_from x rate at 0 to rate at warmup_iter."""
        return (1 / self.warmup_from - 1) / self.warmup_iter

    def stages(self, rate: float, seed: int, stop: Optional[int] = None) -> Dict[str, Dict]:
        """Solver fields of the two stages {"warmup": ..., "main": ...} at base_lr `rate`;
        stop: end at this iteration instead of max_iter (the same schedule, cut short), with
        the loss logged at every iteration, so that a divergence is placed exactly."""
        common = {"type": "SGD", "momentum": MOMENTUM, "weight_decay": WEIGHT_DECAY,
                  "random_seed": seed, "display": 1 if stop else self.display,
                  "average_loss": 1 if stop else self.display}
        return {
            "warmup": dict(common, base_lr=rate * self.warmup_from, lr_policy="inv",
                           gamma=self.warmup_gamma, power=-1.0, max_iter=self.warmup_iter),
            "main": dict(common, base_lr=rate, lr_policy="multistep", gamma=DROP,
                         stepvalue=list(self.stepvalues), max_iter=stop or self.max_iter,
                         snapshot=self.snapshot)}

    def describe(self) -> str:
        first, second = self.stepvalues
        return (f"SGD (momentum {MOMENTUM:g}, weight decay {WEIGHT_DECAY:g}), linear warm-up "
                f"from {self.warmup_from:.2g}x over {self.warmup_iter} iterations, rate x{DROP:g} "
                f"at {first} and {second}, {self.max_iter:,} iterations")


def committed_solver(net: str, title: str, label: str, key: str, fields: Dict, warmup: bool,
                     protocol: "Protocol") -> str:
    """The text of prototxt/<net>/solver_<key>_warmup.prototxt (warmup) or solver_<key>.prototxt:
    how to run both stages by hand, then fields (a stage of Protocol.stages, with the net's test
    fields) and the train net and snapshot folder, relative to the repository root."""
    runs = f"results/runs/{net}/{key}"
    resume = (f".venv/bin/caffe train --solver=prototxt/{net}/solver_{key}.prototxt "
              f"--snapshot={runs}/warmup_iter_{protocol.warmup_iter}.solverstate")
    if warmup:
        how = ["# Stage 1 of 2: the linear warm-up (lr_policy inv, power -1: base_lr (1 + gamma "
               "iter)). By hand, from the",
               f"# repository root after `make example` has written results/data/{net}/:",
               f"#   mkdir -p {runs}   # the snapshots' folder",
               f"#   .venv/bin/caffe train --solver=prototxt/{net}/solver_{key}_warmup.prototxt",
               f"#   {resume}"]
    else:
        how = [f"# Stage 2 of 2, resumed from stage 1's .solverstate (solver_{key}_warmup), "
               "from the repository root:", f"#   {resume}"]
    lines = [f"{name}: {_solver_value(v)}" for name, value in fields.items()
               for v in (value if isinstance(value, list) else [value])]
    return "\n".join(
        [f"# {title}, solver for the {label} net. Written by examples/{net}/prototxt.py.",
         f"# The study's protocol (examples/common/protocol.py): {protocol.describe()}.", *how,
         f'net: "prototxt/{net}/train_{key}.prototxt"', *lines,
         f'snapshot_prefix: "{runs}/{"warmup" if warmup else "snapshot"}"', "solver_mode: CPU",
         ""])


def _solver_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return f"{value:.7g}" if isinstance(value, float) else str(value)


def describe(protocol: Protocol) -> Dict:
    """The protocol's fields for results files."""
    return dict(asdict(protocol), stepvalues=list(protocol.stepvalues),
                momentum=MOMENTUM, weight_decay=WEIGHT_DECAY, text=protocol.describe())


# The study's budget (make study, make sweep): validation AP levels off by its end; the study
# counts the runs whose last two snapshots agree within FLAT_TOLERANCE (docs/examples.md shows
# the curves and the count).
STUDY = Protocol(max_iter=2400, snapshot=400)
FLAT_TOLERANCE = 0.01
# make example's demonstration: the same protocol at half the budget, one seed per arm.
DEMO = Protocol(max_iter=1200, snapshot=400)
# The tests' (--quick).
QUICK = Protocol(max_iter=16, snapshot=8, warmup_iter=4, check_stop=8, display=2)
