"""Whether two single-threaded `caffe train` processes at a time beat one process with every
thread, the choice examples.study.runs.WORKERS makes. Run on an otherwise idle machine:

    python -m examples.study.throughput [--iterations 300] [--data DIR]

It trains RetinaNet-lite's FL arm (the study's protocol cut at `iterations`) three ways, from
the data `make example` or `make study` wrote (default results/data/detector): one process
with every thread, one single-threaded process, two single-threaded processes side by side; and
prints each one's wall time and the iterations per second of the last against the first.
"""
import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

os.environ.setdefault("GLOG_minloglevel", "2")

from ..common.protocol import STUDY  # noqa: E402
from ..common.training import REPO, train  # noqa: E402
from ..detector import experiment as detector  # noqa: E402


def timed(runs, single_threaded: bool) -> float:
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(runs)) as pool:
        list(pool.map(lambda run: train(run, "throughput", single_threaded=single_threaded,
                                        progress=False), runs))
    return time.monotonic() - started


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.study.throughput",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--data", default=os.path.join(REPO, "results", "data", "detector"))
    parser.add_argument("--out", default=os.path.join(REPO, "results", "runs", "throughput"))
    args = parser.parse_args(argv)
    if not os.path.exists(os.path.join(args.data, "train.txt")):
        sys.exit(f"{args.data}/train.txt is missing: run `make example` first")

    def run(name):
        return detector.prepare("focal", detector.RATES["focal"], 1, STUDY, args.data,
                                os.path.join(args.out, name), stop=args.iterations)

    every = timed([run("every_thread")], single_threaded=False)
    single = timed([run("single")], single_threaded=True)
    pair = timed([run("pair_a"), run("pair_b")], single_threaded=True)
    print(f"{args.iterations} iterations of RetinaNet-lite FL, batch 8, on {os.cpu_count()} CPUs")
    print(f"  one process, every thread:            {every:6.1f} s")
    print(f"  one process, one thread:              {single:6.1f} s")
    print(f"  two single-threaded processes at once: {pair:6.1f} s for both")
    print(f"  iterations per second, two at once / one with every thread: {2 * every / pair:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
