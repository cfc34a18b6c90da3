"""The detector alone, or its sweeps (neither sweep is part of `make example`):

    python -m examples.detector [--quick] [--solver Adam|SGD] --out DIR
        the study make example runs: DIR/results.json ({"command", "detector": ...}),
        DIR/detector_*.png, DIR/data/detector/, DIR/runs/detector/; prints the table
    python -m examples.detector --lr-sweep [--quick] --out DIR
        the learning-rate sweep behind prototxt.RATES: DIR/detector_lr_sweep.json
    python -m examples.detector --gamma-sweep [--quick] --out DIR
        the γ sweep (the paper's Table 1b): DIR/detector_gamma_sweep.json
"""
import argparse
import os
import sys
import time

# Before pycaffe is imported: keep glog's INFO flood out of the terminal.
os.environ.setdefault("GLOG_minloglevel", "2")

from ..common.progress import note, shown, stage  # noqa: E402
from ..common.report import write_results  # noqa: E402
from . import experiment, figures  # noqa: E402
from .report import gamma_table, lr_sweep_table, table  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.detector", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the tests' short schedule")
    parser.add_argument("--solver", choices=experiment.SOLVERS, default=experiment.SOLVERS[0],
                        help="solver type (default %(default)s; SGD with momentum is the paper's)")
    sweeps = parser.add_mutually_exclusive_group()
    sweeps.add_argument("--lr-sweep", action="store_true",
                        help="the learning-rate sweep (validation AP over 2 seeds per rate)")
    sweeps.add_argument("--gamma-sweep", action="store_true",
                        help="the γ sweep {0, 0.5, 1, 2, 5} (test AP over 2 seeds per γ)")
    parser.add_argument("--out", required=True, help="output folder")
    args = parser.parse_args(argv)
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    started = time.monotonic()
    command = "python -m examples.detector " + " ".join(sys.argv[1:] if argv is None else argv)
    if args.lr_sweep or args.gamma_sweep:
        name = "lr_sweep" if args.lr_sweep else "gamma_sweep"
        study = experiment.lr_sweep if args.lr_sweep else experiment.gamma_sweep
        results = {"command": command, "quick": args.quick,
                   name: study(out, args.quick, args.solver)}
        results["wall_time_seconds"] = time.monotonic() - started
        path = write_results(results, os.path.join(out, f"detector_{name}.json"))
        note(f"wrote {shown(path)}")
        print("\n" + (lr_sweep_table if args.lr_sweep else gamma_table)(results[name]) + "\n")
        return 0
    results = {"command": command, "quick": args.quick, "examples": {}}
    results[experiment.NAME] = experiment.run(out, args.quick, args.solver)
    stage("results")
    results["wall_time_seconds"] = time.monotonic() - started
    for path in (figures.write_figures(results[experiment.NAME], out)
                 + [write_results(results, os.path.join(out, "results.json"))]):
        note(f"wrote {shown(path)}")
    print("\n" + table(results[experiment.NAME]) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
