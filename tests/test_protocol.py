"""The study's training protocol (examples.common.protocol): its schedule as numbers, the two
solver stages it writes, and those stages run by the real `caffe train` through
examples.common.training (a warm-up, then the main schedule resumed from its .solverstate)."""
import dataclasses
import os
import re

import pytest

from examples.common.protocol import (
    DEMO,
    DROP,
    MOMENTUM,
    QUICK,
    STUDY,
    WEIGHT_DECAY,
    Protocol,
    describe,
)
from examples.common.training import chained, prepare_run, prepare_stages, set_fields, train
from focal_loss_layer.check.nets import dummy_data, inner_product, python_loss

PROTOCOLS = {"STUDY": STUDY, "DEMO": DEMO, "QUICK": QUICK}
# The two-stage run below: QUICK's schedule, the loss and rate logged at every iteration.
TINY = dataclasses.replace(QUICK, display=1)


def caffe_inv(base_lr, gamma, power, iteration):
    """Caffe's lr_policy "inv" (sgd_solver.cpp): base_lr * (1 + gamma * iter)^(-power)."""
    return base_lr * (1 + gamma * iteration) ** (-power)


def caffe_multistep(base_lr, gamma, stepvalues, iteration):
    """Caffe's "multistep": base_lr * gamma^(steps passed)."""
    return base_lr * gamma ** sum(iteration >= step for step in stepvalues)


# The schedule.

@pytest.mark.parametrize("name", PROTOCOLS)
def test_the_drops_are_at_two_thirds_and_eight_ninths_of_the_budget(name):
    protocol = PROTOCOLS[name]
    first, second = protocol.stepvalues
    assert first == round(protocol.max_iter * 2 / 3)
    assert second == round(protocol.max_iter * 8 / 9)
    assert protocol.warmup_iter < first < second < protocol.max_iter


def test_the_study_schedule_is_the_papers_at_a_smaller_budget():
    # The paper: drops at 60k and 80k of 90k iterations, i.e. at 2/3 and 8/9.
    assert STUDY.stepvalues == (1600, 2133) and STUDY.max_iter == 2400
    assert DEMO.stepvalues == (800, 1067) and DEMO.max_iter == STUDY.max_iter // 2
    assert QUICK.stepvalues == (11, 14)
    assert (MOMENTUM, WEIGHT_DECAY, DROP) == (0.9, 1e-4, 0.1)
    assert STUDY.warmup_from == pytest.approx(1 / 3)


@pytest.mark.parametrize("name", PROTOCOLS)
def test_rate_at_rises_linearly_over_the_warm_up_then_drops_tenfold_at_each_step(name):
    protocol, rate = PROTOCOLS[name], 0.02
    warm = protocol.warmup_iter
    assert protocol.rate_at(rate, 0) == pytest.approx(protocol.warmup_from * rate)
    # A straight line: equal steps, reaching the rate at warmup_iter.
    steps = [protocol.rate_at(rate, i + 1) - protocol.rate_at(rate, i) for i in range(warm - 1)]
    assert steps == pytest.approx([(1 - protocol.warmup_from) * rate / warm] * (warm - 1))
    assert protocol.rate_at(rate, warm - 1) < rate
    assert protocol.rate_at(rate, warm) == pytest.approx(rate)
    first, second = protocol.stepvalues
    for iteration, expected in ((warm, rate), (first - 1, rate), (first, 0.1 * rate),
                                (second - 1, 0.1 * rate), (second, 0.01 * rate),
                                (protocol.max_iter - 1, 0.01 * rate)):
        assert protocol.rate_at(rate, iteration) == pytest.approx(expected), iteration


@pytest.mark.parametrize("name", PROTOCOLS)
def test_the_stages_solver_fields_give_caffe_the_rates_of_rate_at(name):
    """Caffe's own formulas on the fields of each stage: inv with power -1 and warmup_gamma
    over the warm-up, multistep after it; the warm-up's line ends at the main stage's rate."""
    protocol, rate = PROTOCOLS[name], 0.01
    stages = protocol.stages(rate, seed=5)
    warmup, main = stages["warmup"], stages["main"]
    assert list(stages) == ["warmup", "main"]
    assert warmup["lr_policy"] == "inv" and warmup["power"] == -1
    assert warmup["gamma"] == pytest.approx(protocol.warmup_gamma)
    assert warmup["base_lr"] == pytest.approx(rate * protocol.warmup_from)
    assert warmup["max_iter"] == protocol.warmup_iter
    for iteration in range(protocol.warmup_iter):
        caffe_rate = caffe_inv(warmup["base_lr"], warmup["gamma"], warmup["power"], iteration)
        assert caffe_rate == pytest.approx(protocol.rate_at(rate, iteration)), iteration
    # The line, extended to warmup_iter, reaches the main stage's base_lr.
    assert caffe_inv(warmup["base_lr"], warmup["gamma"], warmup["power"],
                     protocol.warmup_iter) == pytest.approx(main["base_lr"])
    assert main["base_lr"] == rate and main["lr_policy"] == "multistep"
    assert main["gamma"] == DROP and main["stepvalue"] == list(protocol.stepvalues)
    assert main["max_iter"] == protocol.max_iter and main["snapshot"] == protocol.snapshot
    for iteration in range(protocol.warmup_iter, protocol.max_iter):
        caffe_rate = caffe_multistep(main["base_lr"], main["gamma"], main["stepvalue"], iteration)
        assert caffe_rate == pytest.approx(protocol.rate_at(rate, iteration)), iteration
    for stage in stages.values():
        assert stage["type"] == "SGD" and stage["random_seed"] == 5
        assert stage["momentum"] == MOMENTUM and stage["weight_decay"] == WEIGHT_DECAY


def test_the_warmup_gamma_is_the_lines_slope_over_its_start():
    protocol = Protocol(max_iter=900, snapshot=300, warmup_iter=50, warmup_from=0.25)
    assert protocol.warmup_gamma == pytest.approx(3 / 50)
    assert protocol.rate_at(1.0, 0) == pytest.approx(0.25)
    assert protocol.rate_at(1.0, 25) == pytest.approx(0.625)
    assert protocol.stepvalues == (600, 800)


LOGGING = {"display", "average_loss"}   # a cut run logs every iteration, nothing more changes


def test_a_stop_cuts_the_main_stages_max_iter_and_leaves_the_schedule_alone():
    full = STUDY.stages(0.02, 3)
    cut = STUDY.stages(0.02, 3, stop=STUDY.check_stop)
    assert cut["main"]["max_iter"] == STUDY.check_stop == 600
    assert full["main"]["max_iter"] == STUDY.max_iter
    for name in ("warmup", "main"):
        assert set(full[name]) == set(cut[name])
        assert all(cut[name][k] == 1 for k in LOGGING)
        assert all(full[name][k] == STUDY.display for k in LOGGING)
        changed = {k for k in full[name] if cut[name][k] != full[name][k]} - LOGGING
        assert changed == ({"max_iter"} if name == "main" else set()), name
    # The schedule is the same one, cut short: the drops stay where the full budget has them.
    assert cut["main"]["stepvalue"] == list(STUDY.stepvalues)
    assert STUDY.stages(0.02, 3, stop=None) == full


def test_describe_gives_the_fields_and_the_text_for_results_files():
    fields = describe(QUICK)
    assert fields["max_iter"] == 16 and fields["snapshot"] == 8 and fields["warmup_iter"] == 4
    assert fields["check_stop"] == 8 and fields["stepvalues"] == [11, 14]
    assert fields["momentum"] == 0.9 and fields["weight_decay"] == 1e-4
    text = fields["text"]
    assert text == QUICK.describe()
    assert "SGD" in text and "warm-up" in text and "at 11 and 14" in text and "16 iterations" in text
    assert "2,400 iterations" in STUDY.describe()


# The runs' files.

def test_set_fields_replaces_repeated_fields():
    from caffe.proto import caffe_pb2
    solver = caffe_pb2.SolverParameter()
    solver.stepvalue.extend([1, 2, 3])
    solver.test_iter.append(9)
    set_fields(solver, {"stepvalue": [10, 20], "test_iter": (4,), "base_lr": 0.5,
                        "lr_policy": "inv"})
    assert list(solver.stepvalue) == [10, 20] and list(solver.test_iter) == [4]
    assert solver.base_lr == 0.5 and solver.lr_policy == "inv"


def test_chained_stages_resume_from_the_previous_stages_last_solverstate(tmp_path):
    run = chained(str(tmp_path), [("a.prototxt", 4, str(tmp_path / "warmup")),
                                  ("b.prototxt", 16, str(tmp_path / "snapshot"))])
    assert run.stages[0].resume is None
    assert run.stages[1].resume == f"{tmp_path}/warmup_iter_4.solverstate"
    assert run.max_iter == 16 and run.snapshot_prefix == f"{tmp_path}/snapshot"
    assert run.weights == f"{tmp_path}/snapshot_iter_16.caffemodel"
    assert run.snapshot(8) == f"{tmp_path}/snapshot_iter_8.caffemodel"
    assert run.log == f"{tmp_path}/caffe.log"


# A real two-stage `caffe train`.

TINY_NET = (dummy_data("data", [("data", (4, 6), 'type: "gaussian" std: 1'),
                                ("label", (4, 3), 'type: "constant" value: 1')])
            + inner_product("score", "data", "score", 3)
            + python_loss("loss", "focal_loss_layer", "FocalLossLayer",
                          {"focusing_parameter": 2, "alpha": 0.25}))
RATE = 0.3


def _solver_template(tmp_path):
    """A committed-solver stand-in (its net given by an absolute path, which the runs' copies
    read as they read a committed net relative to the repository)."""
    net = tmp_path / "template_net.prototxt"
    net.write_text(TINY_NET)
    path = tmp_path / "template_solver.prototxt"
    path.write_text(f'net: "{net}"\ndisplay: 1\nsolver_mode: CPU\n')
    return str(path)


@pytest.fixture(scope="module")
def two_stage_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("two_stage")
    stages = TINY.stages(RATE, seed=11)
    run = prepare_stages(_solver_template(folder), str(folder / "data"), str(folder / "run"),
                         stages, net_text=TINY_NET)
    curves = train(run, "two-stage tiny net", single_threaded=True, progress=False)
    with open(run.log) as f:
        log = f.read()
    return run, curves, log


def test_prepare_stages_writes_a_solver_per_stage_around_one_net_copy(two_stage_run):
    from caffe.proto import caffe_pb2
    from google.protobuf import text_format
    run, _, _ = two_stage_run
    assert [os.path.basename(s.solver) for s in run.stages] == ["solver_warmup.prototxt",
                                                               "solver_main.prototxt"]
    expected = TINY.stages(RATE, seed=11)
    for stage, name in zip(run.stages, ("warmup", "main")):
        solver = caffe_pb2.SolverParameter()
        with open(stage.solver) as f:
            text_format.Merge(f.read(), solver)
        assert solver.net == os.path.join(run.run_dir, "train.prototxt")
        assert solver.display == 1   # the protocol's logging
        assert solver.lr_policy == expected[name]["lr_policy"]
        assert solver.base_lr == pytest.approx(expected[name]["base_lr"])
        assert solver.max_iter == stage.max_iter == expected[name]["max_iter"]
        assert stage.snapshot_prefix == os.path.join(run.run_dir,
                                                     "warmup" if name == "warmup" else "snapshot")
    assert run.stages[0].resume is None
    assert run.stages[1].resume == os.path.join(
        run.run_dir, f"warmup_iter_{TINY.warmup_iter}.solverstate")


def test_the_second_stage_resumes_at_the_end_of_the_warm_up(two_stage_run):
    run, _, log = two_stage_run
    commands = re.findall(r"^# (.*)$", log, re.MULTILINE)
    assert len(commands) == 2
    assert "--snapshot" not in commands[0]
    assert commands[1].endswith(f"--snapshot={run.stages[1].resume}")
    assert len(re.findall(r"caffe\.cpp:\d+\] Optimization Done", log)) == 2   # one per process
    second = log[log.index(commands[1]):]
    assert "Resuming from " + run.stages[1].resume in second
    # The resumed stage's first iteration is the warm-up's last + 1 (warmup_iter).
    first = re.search(r"Iteration (\d+), lr = ", second)
    assert int(first.group(1)) == TINY.warmup_iter
    assert os.path.exists(run.stages[1].resume)


def test_caffe_used_the_protocols_rate_at_every_iteration(two_stage_run):
    _, _, log = two_stage_run
    rates = {int(it): float(lr) for it, lr in re.findall(r"Iteration (\d+), lr = (\S+)", log)}
    assert sorted(rates) == list(range(TINY.max_iter))
    for iteration, lr in rates.items():
        assert lr == pytest.approx(TINY.rate_at(RATE, iteration), rel=1e-5), iteration


def test_the_run_ends_with_the_final_weights_and_the_main_stages_snapshots(two_stage_run):
    run, curves, _ = two_stage_run
    assert run.weights == os.path.join(run.run_dir, f"snapshot_iter_{TINY.max_iter}.caffemodel")
    assert os.path.exists(run.weights)
    for iteration in range(TINY.snapshot, TINY.max_iter + 1, TINY.snapshot):
        assert os.path.exists(run.snapshot(iteration))
    iterations = [it for it, _ in curves.train]
    assert iterations == list(range(TINY.max_iter + 1))   # both stages, one curve
    assert curves.train[-1][1] < curves.train[0][1]


def test_a_single_stage_run_keeps_the_old_file_names(tmp_path):
    run = prepare_run(_solver_template(tmp_path), str(tmp_path), str(tmp_path / "run"),
                      {"max_iter": 3, "base_lr": 0.1})
    (stage,) = run.stages
    assert os.path.basename(stage.solver) == "solver.prototxt" and stage.resume is None
    assert run.weights == os.path.join(run.run_dir, "snapshot_iter_3.caffemodel")
