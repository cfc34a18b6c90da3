"""The check's command line: options, the header (the package, where pycaffe came from, the
build's mode, the caffe tool and the PYTHONPATH it needs), the rows, and the exit code: 0 only
when every row passed; 1 when a row failed; 2 when the check could not start (no pycaffe, no
Python layer in this Caffe, no such layer module)."""
import argparse
import importlib
import importlib.metadata
import os
import platform
import sys
import time

from .. import __version__
from ..pycaffe import PycaffeMissing, import_caffe
from . import agreement, gpu, gradients, multibox, tool, topologies
from .cases import LAYERS
from .report import FAIL, SKIP, Row, Table, run_row

REINSTALL = "reinstall focal_loss_layer and report this output"


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m focal_loss_layer.check",
        description="Certify FocalLossLayer and SoftmaxFocalLossLayer in the Caffe this Python "
                    "imports: forward/backward against the numpy core, central differences, the "
                    "diff contract against Caffe's own losses, the caffe tool, GPU mode; and "
                    "MultiBoxFocalLossLayer against MultiBoxLoss where this Caffe has it. "
                    "Exit 0 only when every row passes.")
    parser.add_argument("--caffe", metavar="PATH",
                        help="Caffe's command-line tool (default: `caffe` on PATH, else "
                             "build/tools/caffe beside pycaffe's python/ folder)")
    parser.add_argument("--module", default="focal_loss_layer",
                        help="the python_param module the nets name (default focal_loss_layer); "
                             "give your own module of FocalLossLayer and SoftmaxFocalLossLayer "
                             "to certify it against focal_loss_layer's numpy core")
    parser.add_argument("--print-pythonpath", action="store_true",
                        help="print only the PYTHONPATH the caffe tool needs for the layer "
                             "(for `export PYTHONPATH=$(focal-loss-check --print-pythonpath)`) "
                             "and exit, running no rows")
    return parser.parse_args(argv)


def start(args, out):
    """Imports and the header (to out); (caffe, layer module) or an error message (exit 2)."""
    import focal_loss_layer
    print(f"focal_loss_layer {__version__} from {os.path.dirname(focal_loss_layer.__file__)}",
          file=out)
    try:
        caffe = import_caffe("focal-loss-check and the layers")
    except PycaffeMissing as error:
        return None, str(error)
    print(f"pycaffe        {caffe.__file__} (Caffe {getattr(caffe, '__version__', '?')})",
          file=out)
    if "Python" not in caffe.layer_type_list():
        return None, ("this Caffe has no Python layer (caffe.layer_type_list() lacks 'Python'): "
                      "rebuild it with WITH_PYTHON_LAYER := 1 in Makefile.config (CMake: "
                      "-DBUILD_python_layer=ON), then make all pycaffe")
    try:
        module = importlib.import_module(args.module)
        for layer in LAYERS:
            getattr(module, layer.name)
    except (ImportError, AttributeError) as error:
        return None, f"--module {args.module}: {type(error).__name__}: {error}"
    print(f"layer module   {args.module} from {module.__file__}", file=out)
    print(f"python         {sys.executable} ({platform.python_version()}); "
          + ", ".join(f"{name} {_version(name)}" for name in ("numpy", "numba", "protobuf")),
          file=out)
    return (caffe, module), None


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def net_rows(table: Table, module: str, tag: str = "") -> None:
    """The rows that run caffe.Net, in Caffe's current mode (tag names the mode in the group)."""
    for layer in LAYERS:
        group = layer.name + tag
        for case in layer.cases:
            table.add(run_row(group, agreement.name(case),
                              lambda c=case, g=group, lay=layer: agreement.row(g, lay, c, module),
                              agreement.ADVICE))
        if not tag:   # numpy only: once
            table.add(run_row(group, gradients.CORE_NAME,
                              lambda g=group, lay=layer: gradients.core_row(g, lay), REINSTALL))
        table.add(run_row(group, gradients.NET_NAME,
                          lambda g=group, lay=layer: gradients.net_row(g, lay, module), REINSTALL))
        for role in topologies.ROLES:
            table.add(run_row(group, topologies.row_name(layer, role),
                              lambda r=role, g=group, lay=layer: topologies.row(g, lay, r, module),
                              REINSTALL))


def tool_rows(table: Table, args, pythonpath, gpu_mode: bool, tag: str = "") -> None:
    found_tool, found = tool.find_tool(args.caffe)
    group = "caffe tool" + tag
    for row in tool.rows(group, found_tool, found, args.module, pythonpath, gpu=gpu_mode):
        table.add(row)


def main(argv=None) -> int:
    args = parse_args(argv)
    out = open(os.devnull, "w") if args.print_pythonpath else sys.stdout
    os.environ.setdefault("GLOG_minloglevel", "2")   # before pycaffe starts glog: no INFO lines
    began = time.monotonic()
    started, error = start(args, out)
    if error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.print_pythonpath:
        print(os.pathsep.join(tool.tool_pythonpath()))
        return 0
    caffe, module = started
    pycaffe_folder = os.path.dirname(os.path.dirname(os.path.abspath(caffe.__file__)))
    mode = gpu.probe(pycaffe_folder)
    print(f"build mode     {mode.build} ({mode.why})", file=out)
    found_tool, found = tool.find_tool(args.caffe)
    print(f"caffe tool     {found_tool or 'none'} ({found})", file=out)
    pythonpath = tool.tool_pythonpath()
    print("PYTHONPATH the check gives the caffe tool (use it for `caffe train` too):\n"
          f"  export PYTHONPATH={os.pathsep.join(pythonpath)}\n", file=out)

    table = Table(out)
    caffe.set_mode_cpu()
    net_rows(table, args.module)
    for row in multibox.rows(caffe.layer_type_list(), module):
        table.add(row)
    tool_rows(table, args, pythonpath, gpu_mode=False)
    if mode.usable:
        caffe.set_mode_gpu()
        caffe.set_device(0)
        net_rows(table, args.module, tag=" [GPU]")
        tool_rows(table, args, pythonpath, gpu_mode=True, tag=" [GPU]")
        caffe.set_mode_cpu()
    else:
        status = f"{SKIP}: CPU-only build" if mode.build == "CPU-only" else f"{SKIP}: no usable GPU"
        table.add(Row("GPU mode", "the rows above in GPU mode", "-", status, mode.why))
    table.close(time.monotonic() - began)
    return 1 if any(row.status == FAIL for row in table.rows) else 0
