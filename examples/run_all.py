"""`make example`: write the data, train every net with `caffe train`, score the trained nets,
print a table, write results.json and the figures.

    python -m examples.run_all [--quick] [--out DIR] [--only digits|digit_grid|detector|ssd ...]

--quick runs each solver for a few iterations (the tests use it); --out picks the output folder
(default results/ in the repository, results/quick/ with --quick, so that a quick run leaves the
committed results alone); --only limits the run to some examples.

Output folder layout:
    results.json, loss_curves.png, ap_per_class.png, loss_share.png, detector_*.png
    data/<example>/{train,test}.{h5,txt}          HDF5Data files and their source lists
    runs/<example>/<loss>/{solver,train}.prototxt  the copies `caffe train` ran
    runs/<example>/<loss>/caffe.log                 the full Caffe log
    runs/<example>/<loss>/snapshot_iter_*.caffemodel
    data/detector/{train,val,test}.{h5,txt}, data/ssd/{train,val,test}.npz
    runs/<net>/demo/<arm>/lr<rate>_seed<seed>/      the detectors, every arm once under the
                                                    study's protocol at half its budget
                                                    (examples.study.study.demo)

Each example is a package: examples/digits/, examples/digit_grid/, examples/detector/,
examples/ssd/; what they share (running caffe train, logs, HDF5, AP, loss share, statistics,
figures) is in examples/common/; the detector study (make study) is examples/study/.
"""
import argparse
import os
import sys
import time

# Before pycaffe is imported: keep glog's INFO flood out of the terminal (the `caffe train`
# subprocesses get their own settings, and their logs go to files).
os.environ.setdefault("GLOG_minloglevel", "2")

from .common.losses import LABELS, LOSSES, deploy_name, losses_of  # noqa: E402
from .common.plots import write_figures  # noqa: E402
from .common.progress import note, shown, stage  # noqa: E402
from .common.protocol import DEMO, QUICK  # noqa: E402
from .common.report import code_version, table, write_results  # noqa: E402
from .common.training import CAFFE_TOOL, REPO, prepare_run, train  # noqa: E402
from .detector import experiment as detector  # noqa: E402
from .detector import figures as detector_figures  # noqa: E402
from .detector.share import anchor_loss_share  # noqa: E402
from .digit_grid import run as example_grid  # noqa: E402
from .digits import run as example_digits  # noqa: E402
from .ssd import experiment as ssd  # noqa: E402
from .study import study  # noqa: E402
from .study.report import demo_table  # noqa: E402
from .study.runs import WORKERS  # noqa: E402

EXAMPLES = {example.NAME: example for example in (example_digits, example_grid)}
DEFAULT_OUT = os.path.join(REPO, "results")


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m examples.run_all", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="a few iterations per run (for tests), instead of the full schedule")
    parser.add_argument("--out", help="output folder (default: results/ in the repository; "
                                       "results/quick/ with --quick)")
    parser.add_argument("--only", action="append",
                        choices=sorted(EXAMPLES) + [detector.NAME, ssd.NAME],
                        help="run only this example (repeatable); default: all")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    chosen = [EXAMPLES[name] for name in (args.only or EXAMPLES) if name in EXAMPLES]
    with_detector = not args.only or detector.NAME in args.only
    with_ssd = not args.only or ssd.NAME in args.only
    out = os.path.abspath(args.out or os.path.join(DEFAULT_OUT, "quick" if args.quick else ""))
    mode = "quick" if args.quick else "full"

    extra = sum(len(losses_of(example)) - len(LOSSES) for example in chosen)
    parts = ([f"{len(chosen)} example(s) x {len(LOSSES)} losses"
              f"{f' (+{extra} softmax runs)' if extra else ''}"] if chosen else []) + (
        ["the detector"] if with_detector else []) + (["SSD-lite"] if with_ssd else [])
    stage(f"set-up: {mode} mode, {' and '.join(parts)}, output {out}")
    if not os.access(CAFFE_TOOL, os.X_OK):
        sys.exit(f"{CAFFE_TOOL} is missing: run `make setup` (or `make example`) first")
    note(f"Caffe tool: {shown(CAFFE_TOOL)}")
    os.makedirs(out, exist_ok=True)

    results = {"command": _command(args), "quick": args.quick, "code": code_version(),
               "examples": {}}
    if chosen:
        stage("data")
    for example in chosen:
        data = example.write_data(os.path.join(out, "data", example.NAME))
        results["examples"][example.NAME] = {"title": example.TITLE, "data": data, "runs": {}}
        note(f"{example.NAME}: {example.describe(data)}")

    runs = [(example, key) for example in chosen for key in losses_of(example)]
    trained = {}
    for number, (example, key) in enumerate(runs, 1):
        if number == 1:
            stage("training")
        run = prepare_run(os.path.join(REPO, "prototxt", example.NAME, f"solver_{key}.prototxt"),
                          os.path.join(out, "data", example.NAME),
                          os.path.join(out, "runs", example.NAME, key),
                          example.QUICK_SOLVER if args.quick else None)
        run_started = time.monotonic()
        curves = train(run, f"{number}/{len(runs)} {example.NAME} · {LABELS[key]}".ljust(40))
        trained[example.NAME, key] = run
        results["examples"][example.NAME]["runs"][key] = {
            "label": LABELS[key], "train_seconds": time.monotonic() - run_started,
            "iterations": run.max_iter, "curves": curves.as_dict()}

    if runs:
        stage("evaluation: the deploy nets with the trained weights, from pycaffe")
    for example, key in runs:
        deploy = os.path.join(REPO, "prototxt", example.NAME, deploy_name(key))
        metrics = example.evaluate(os.path.join(out, "data", example.NAME), deploy,
                                   trained[example.NAME, key].weights)
        results["examples"][example.NAME]["runs"][key]["metrics"] = metrics
        note(f"{example.NAME} · {LABELS[key]}: mAP {metrics['mAP']:.3f}")

    nets = [net for net, chosen in ((detector, with_detector), (ssd, with_ssd)) if chosen]
    if nets:
        results.update(_detectors(nets, out, args.quick))

    stage("results")
    results["wall_time_seconds"] = time.monotonic() - started
    figures = write_figures(results, out) if chosen else []
    if with_detector:
        figures += detector_figures.write_figures(results[detector.NAME], out)
    for path in figures + [write_results(results, os.path.join(out, "results.json"))]:
        note(f"wrote {shown(path)}")
    tables = ([table(results)] if chosen else []) + [demo_table(results[net.NAME])
                                                     for net in nets]
    print("\n" + "\n\n".join(tables) + "\n")
    print(f"   {mode} run took {results['wall_time_seconds']:.0f}s; logs under "
          f"{shown(os.path.join(out, 'runs'))}/")
    return 0


def _detectors(nets, out: str, quick: bool) -> dict:
    """RetinaNet-lite and SSD-lite: every arm once under the study's protocol at half its budget
    (examples.study.study.demo), then the paper's Figure 4 on the FL and CE detectors."""
    started = time.monotonic()
    data_dirs, stats = study.write_datasets(nets, out, quick)
    results = study.demo(nets, QUICK if quick else DEMO, out, data_dirs, WORKERS)
    for name, net_results in results.items():
        net_results["data"] = stats[name]
    if detector.NAME in results:
        stage("loss share of the FL and CE detectors' test anchors (the paper's Figure 4)")
        demo = results[detector.NAME]
        for key in detector_figures.SHOWN:
            arm = demo["arms"][key]
            arm["loss_share"] = None if arm["diverged"] else anchor_loss_share(
                detector.DEPLOY, demo["weights"][key], data_dirs[detector.NAME],
                detector.SHARE_IMAGES_QUICK if quick else detector.SHARE_IMAGES)
    for net_results in results.values():
        net_results.pop("weights")
    note(f"the detectors took {(time.monotonic() - started) / 60:.1f} min")
    return results


def _command(args) -> str:
    if not args.only and not args.out:
        return "make example-quick" if args.quick else "make example"
    return "python -m examples.run_all " + " ".join(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
