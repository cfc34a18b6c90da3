"""The detector alone, with another solver or schedule than `make example`'s:

    python -m examples.detector [--quick] [--solver Adam|SGD] [--iterations N] --out DIR

writes DIR/results.json ({"command", "detector": ...}), DIR/detector_*.png, DIR/data/detector/
and DIR/runs/detector/, and prints the table. `make example` runs the default (Adam, the FULL
schedule) as part of examples.run_all, into results/.
"""
import argparse
import os
import sys
import time

# Before pycaffe is imported: keep glog's INFO flood out of the terminal.
os.environ.setdefault("GLOG_minloglevel", "2")

from ..progress import note, shown, stage  # noqa: E402
from ..report import write_results  # noqa: E402
from . import experiment, figures  # noqa: E402
from .report import table  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.detector", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the tests' short schedule")
    parser.add_argument("--solver", choices=experiment.SOLVERS, default=experiment.SOLVERS[0],
                        help="solver type (default %(default)s; SGD with momentum is the paper's)")
    parser.add_argument("--iterations", type=int,
                        help="iterations per run (default: the mode's schedule)")
    parser.add_argument("--out", required=True, help="output folder")
    args = parser.parse_args(argv)
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    started = time.monotonic()
    results = {"command": "python -m examples.detector " + " ".join(sys.argv[1:] if argv is None
                                                                    else argv),
               "quick": args.quick, "examples": {}}
    results[experiment.NAME] = experiment.run(out, args.quick, args.solver, args.iterations)
    stage("results")
    results["wall_time_seconds"] = time.monotonic() - started
    for path in (figures.write_figures(results[experiment.NAME], out)
                 + [write_results(results, os.path.join(out, "results.json"))]):
        note(f"wrote {shown(path)}")
    print("\n" + table(results[experiment.NAME]) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
