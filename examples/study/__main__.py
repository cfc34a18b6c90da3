"""The detector study (docs/examples.md, "The detector study"):

    python -m examples.study --sweep [--quick] [--jobs N] [--out DIR]    (make sweep)
        the learning-rate sweeps: DIR/study_sweep.json
    python -m examples.study [--quick] [--jobs N] [--out DIR]            (make study)
        every arm at each seed at its swept rate, the no-prior checks, the statistics:
        DIR/study.json and DIR/study_*.png

DIR defaults to results/ in the repository (results/quick/ with --quick); the data go to
DIR/data/<net>/, the runs to DIR/runs/<net>/<group>/<arm>/lr<rate>_seed<seed>/.
"""
import argparse
import os
import sys
import time

# Before numpy and pycaffe load: glog's INFO flood stays out of the terminal, and this process
# (which scores while the `caffe train` processes run) keeps to one BLAS thread.
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from ..common.progress import note, shown  # noqa: E402
from ..common.protocol import QUICK, STUDY  # noqa: E402
from ..common.report import code_version, write_results  # noqa: E402
from ..common.training import CAFFE_TOOL, REPO  # noqa: E402
from ..detector import experiment as detector  # noqa: E402
from ..ssd import experiment as ssd  # noqa: E402
from .runs import WORKERS  # noqa: E402
from .study import write_datasets  # noqa: E402

NETS = (detector, ssd)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.study", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sweep", action="store_true", help="the learning-rate sweeps")
    parser.add_argument("--quick", action="store_true", help="the tests' tiny schedule")
    parser.add_argument("--jobs", type=int, default=WORKERS,
                        help="caffe train processes at a time (default %(default)s)")
    parser.add_argument("--out", help="output folder")
    args = parser.parse_args(argv)
    if not os.access(CAFFE_TOOL, os.X_OK):
        sys.exit(f"{CAFFE_TOOL} is missing: run `make setup` first")
    out = os.path.abspath(args.out or os.path.join(REPO, "results", "quick" if args.quick else ""))
    os.makedirs(out, exist_ok=True)
    started = time.monotonic()
    command = ("make sweep" if args.sweep else "make study") if argv is None and len(
        sys.argv) == 1 + args.sweep else "python -m examples.study " + " ".join(
        sys.argv[1:] if argv is None else argv)
    protocol = QUICK if args.quick else STUDY
    data_dirs, data = write_datasets(NETS, out, args.quick)
    if args.sweep:
        from .sweep import GRIDS, PROBES, sweep
        grids = ({net: {key: rates[:2] for key, rates in arms.items()}
                  for net, arms in GRIDS.items()} if args.quick else GRIDS)
        results = sweep(NETS, protocol, out, data_dirs, args.jobs, grids,
                        probes=1 if args.quick else PROBES)
        name = "study_sweep.json"
    else:
        from .study import run_study
        results = run_study(NETS, protocol, out, data_dirs, args.jobs, args.quick)
        name = "study.json"
    results.update(command=command, quick=args.quick, jobs=args.jobs, data=data,
                   code=code_version(), wall_time_seconds=time.monotonic() - started)
    paths = [] if args.sweep else _figures(results, out)
    for path in paths + [write_results(results, os.path.join(out, name))]:
        note(f"wrote {shown(path)}")
    from .report import study_tables, sweep_tables
    print("\n" + (sweep_tables if args.sweep else study_tables)(results) + "\n")
    note(f"took {results['wall_time_seconds'] / 60:.1f} min")
    return 0


def _figures(results, out):
    from .figures import write_figures
    return write_figures(results, out)


if __name__ == "__main__":
    sys.exit(main())
