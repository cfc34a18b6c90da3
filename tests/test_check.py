"""python -m focal_loss_layer.check against the project's Caffe: every row passes; a deliberately
wrong layer (selected with --module from a temp folder) fails the rows it should, by name, and
the check exits non-zero; a missing layer module or caffe tool is said plainly."""
import os
import sys
import textwrap

import pytest
from installs import clean_env, run

from focal_loss_layer.check import cases, tool


def check(tmp_path, *args, pythonpath=None):
    """Run the check from tmp_path (outside the checkout) with this venv's Python."""
    env = clean_env(**({"PYTHONPATH": pythonpath} if pythonpath else {}))
    return run([sys.executable, "-m", "focal_loss_layer.check", *args], check=False,
               cwd=str(tmp_path), env=env)


def row_lines(output):
    """{'group: row name': its table line}: the lines after the table's header line, up to the
    first blank line; group headings are not indented, rows are."""
    rows, group = {}, None
    for line in output.split("\n  check ", 1)[1].split("\n\n", 1)[0].splitlines()[1:]:
        if line.startswith("  "):
            rows[f"{group}: {line.strip().split('  ')[0]}"] = line
        else:
            group = line
    return rows


def test_every_row_passes_in_the_projects_caffe(tmp_path):
    done = check(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    import caffe
    assert f"pycaffe        {caffe.__file__}" in out
    assert "build mode     CPU-only" in out
    assert "export PYTHONPATH=" in out
    lines = row_lines(out)
    for layer in cases.LAYERS:
        for case in layer.cases:
            assert f"{layer.name}: net vs core {case.title}" in lines
        for role in ("main loss", "monitor loss (loss_weight 0)", "propagate_down: false", "TEST net"):
            assert f"{layer.name}: {role} vs {layer.twin}" in lines
        assert f"caffe tool: {layer.name} forward+backward in `caffe time`" in lines
    statuses = [line.split()[-1] for line in lines.values()]
    assert statuses.count("ok") == len(lines) - 1 >= 20, out
    for name in ("SOFTMAX, MAX_NEGATIVE (SSD's default)", "LOGISTIC, NONE (one image)"):
        assert f"MultiBoxFocalLossLayer: vs MultiBoxLoss: {name}" in lines
    assert lines["GPU mode: the rows above in GPU mode"].rstrip().endswith("skipped: CPU-only build")
    assert out.rstrip().splitlines()[-1].startswith(f"all {len(lines) - 1} rows passed, 1 skipped")


WRONG_LAYERS = {
    # backward 10 % off: every row that compares the gradient fails
    "backward_off": ("""
        class FocalLossLayer(focal_loss_layer.FocalLossLayer):
            def backward(self, top, propagate_down, bottom):
                super().backward(top, propagate_down, bottom)
                if propagate_down[0]:
                    bottom[0].diff[...] *= 1.1
        """, ["FocalLossLayer: net vs core (8,5), indices (8,), γ 2, α 0.25",
              "FocalLossLayer: net vs core (2,3,4,5), soft targets, γ 0.5, weights, full",
              "FocalLossLayer: net vs core (2,4,3,3), indices (2,1,3,3), ignore -1, positives",
              "FocalLossLayer: central differences, caffe.Net (float32, step 0.01)",
              "FocalLossLayer: main loss vs SigmoidCrossEntropyLoss"]),
    # writes its gradient in forward: Caffe's Split sums it into the weights even where the
    # layer's backward is skipped (monitor, propagate_down: false), and a TEST net's diffs change
    "diff_in_forward": ("""
        class SoftmaxFocalLossLayer(focal_loss_layer.SoftmaxFocalLossLayer):
            def forward(self, bottom, top):
                super().forward(bottom, top)
                self.kernel.backward(1.0, bottom[0].diff)
        """, ["SoftmaxFocalLossLayer: monitor loss (loss_weight 0) vs SoftmaxWithLoss",
              "SoftmaxFocalLossLayer: propagate_down: false vs SoftmaxWithLoss",
              "SoftmaxFocalLossLayer: TEST net vs SoftmaxWithLoss"]),
    # writes the logits' gradient even where propagate_down says no: Caffe's Split sums it in
    "ignores_propagate_down": ("""
        class FocalLossLayer(focal_loss_layer.FocalLossLayer):
            def backward(self, top, propagate_down, bottom):
                super().backward(top, [True] + [False] * (len(bottom) - 1), bottom)
        """, ["FocalLossLayer: propagate_down: false vs SigmoidCrossEntropyLoss"]),
}


@pytest.mark.parametrize("wrong", sorted(WRONG_LAYERS))
def test_a_wrong_layer_fails_the_check_naming_the_rows(tmp_path, wrong):
    body, failing = WRONG_LAYERS[wrong]
    folder = tmp_path / "layers"
    folder.mkdir()
    # The module Caffe imports: the package's layers, one of them replaced by a wrong one.
    (folder / f"wrong_{wrong}.py").write_text(
        "import focal_loss_layer\n\nFocalLossLayer = focal_loss_layer.FocalLossLayer\n"
        "SoftmaxFocalLossLayer = focal_loss_layer.SoftmaxFocalLossLayer\n\n"
        + textwrap.dedent(body))
    done = check(tmp_path, "--module", f"wrong_{wrong}", pythonpath=str(folder))
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    assert f"layer module   wrong_{wrong} from {folder}" in out
    failed = [title for title, line in row_lines(out).items() if line.rstrip().endswith("FAIL")]
    assert failed == failing, out
    summary = out.rstrip().splitlines()[-1]
    assert summary.startswith(f"FAILED: {len(failing)} of"), summary
    for title in failing:
        assert title in summary
        assert f"FAIL: {title}: " in out          # the note: what failed and what to do
    assert "fix" in out.split("FAIL: ", 1)[1]
    # The caffe tool ran the wrong module too, with the PYTHONPATH the check worked out.
    assert str(folder) in out.split("export PYTHONPATH=", 1)[1].splitlines()[0]
    assert row_lines(out)["caffe tool: SoftmaxFocalLossLayer forward+backward in `caffe time`"].rstrip().endswith("ok")


def test_a_module_without_the_layers_stops_the_check_with_exit_2(tmp_path):
    done = check(tmp_path, "--module", "json")
    assert done.returncode == 2
    assert "--module json: AttributeError" in done.stderr and "FocalLossLayer" in done.stderr


def test_no_caffe_binary_is_one_skipped_row():
    rows = tool.rows("caffe tool", None, "not on PATH, not beside pycaffe", "focal_loss_layer", [])
    assert [(r.name, r.status) for r in rows] == [("caffe time", "skipped: no caffe binary")]
    assert "--caffe" in rows[0].detail


def test_a_tool_that_cannot_start_fails_each_layers_row_and_says_what_to_do(tmp_path):
    not_executable = tmp_path / "caffe"
    not_executable.write_text("#!/bin/sh\n")
    rows = tool.rows("caffe tool", str(not_executable), "--caffe", "focal_loss_layer", [])
    assert [r.status for r in rows] == ["FAIL"] * len(cases.LAYERS)
    assert all(f"chmod +x {not_executable}" in r.detail and "--caffe" in r.detail for r in rows)


def test_tool_pythonpath_names_the_folders_of_the_loaded_modules():
    import caffe
    import numba
    import numpy
    path = tool.tool_pythonpath()
    for module in (caffe, numpy, numba):
        assert any(os.path.realpath(module.__file__).startswith(p + os.sep) for p in path), module
    stdlib = os.path.dirname(os.path.realpath(os.__file__))
    assert stdlib not in path


def pycaffe_folder():
    import caffe
    return os.path.dirname(os.path.dirname(os.path.abspath(caffe.__file__)))


def caffe_binary():
    """Caffe's own tool beside pycaffe (not .venv/bin/caffe, which sets PYTHONPATH itself)."""
    return os.path.join(os.path.dirname(pycaffe_folder()), "build", "tools", "caffe")


def test_a_relative_caffe_path_is_the_tool_in_the_current_folder(tmp_path, monkeypatch):
    # `--caffe ./caffe` names a file in the user's folder; the tool runs in a temp folder.
    (tmp_path / "caffe").symlink_to(caffe_binary())
    monkeypatch.chdir(tmp_path)
    found, where = tool.find_tool("./caffe")
    assert (found, where) == (str(tmp_path / "caffe"), "--caffe")
    rows = tool.rows("caffe tool", found, where, "focal_loss_layer", tool.tool_pythonpath())
    assert [r.status for r in rows] == ["ok", "ok"], [r.detail for r in rows]


def test_the_tool_row_runs_on_the_printed_pythonpath_alone(monkeypatch):
    # The embedded Python finds a venv through `python3` on PATH (an activated venv): the row
    # must not pass on that, only on the PYTHONPATH it prints (a job script sees no venv).
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    monkeypatch.setenv("VIRTUAL_ENV", sys.prefix)
    code, log, _ = tool.run_caffe_time(caffe_binary(), "focal_loss_layer", [pycaffe_folder()],
                                       gpu=False)
    assert code != 0 and "No module named" in log, log[-2000:]
    code, log, times = tool.run_caffe_time(caffe_binary(), "focal_loss_layer",
                                           tool.tool_pythonpath(), gpu=False)
    assert code == 0 and {layer.name for layer in cases.LAYERS} <= times.keys(), log[-2000:]


def test_a_caffe_without_multibox_loss_gets_one_skipped_ssd_row():
    """BVLC master has no MultiBoxLoss: the SSD rows are one skipped row saying so (the layer
    types are this Caffe's, less MultiBoxLoss)."""
    import caffe

    from focal_loss_layer.check import multibox
    types = [t for t in caffe.layer_type_list() if t != "MultiBoxLoss"]
    import focal_loss_layer
    rows = multibox.rows(types, focal_loss_layer)
    assert [(r.name, r.status) for r in rows] == [
        ("vs MultiBoxLoss", "skipped: this Caffe has no MultiBoxLoss")]

