"""The SSD-lite example alone, or the rate sweep behind prototxt.RATES.

    python -m examples.ssd [--quick] [--out DIR]    # what `make example` runs for "ssd"
    python -m examples.ssd --lr-sweep --out DIR     # DIR/ssd_lr_sweep.json (not in make example)
"""
import argparse
import os
import sys

os.environ.setdefault("GLOG_minloglevel", "2")

from ..common.progress import note  # noqa: E402
from ..common.report import write_results  # noqa: E402
from ..common.training import REPO  # noqa: E402
from . import experiment  # noqa: E402
from .report import table  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.ssd", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few iterations (for tests)")
    parser.add_argument("--out", help="output folder (default: results/ssd/ in the repository)")
    parser.add_argument("--lr-sweep", action="store_true",
                        help="the rate sweep (validation AP per rate) instead of the example")
    args = parser.parse_args(argv)
    out = os.path.abspath(args.out or os.path.join(REPO, "results", "ssd"))
    os.makedirs(out, exist_ok=True)
    if args.lr_sweep:
        results = experiment.lr_sweep(out, args.quick)
        results["command"] = "python -m examples.ssd " + " ".join(sys.argv[1:])
        note(f"wrote {write_results(results, os.path.join(out, 'ssd_lr_sweep.json'))}")
        return 0
    results = experiment.run(out, args.quick)
    note(f"wrote {write_results({'ssd': results}, os.path.join(out, 'results.json'))}")
    print("\n" + table(results) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
