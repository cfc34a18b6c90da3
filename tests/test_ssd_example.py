"""The SSD-lite example (examples/ssd/): `run_all --quick --only ssd` (the study's
demonstration) end to end with the real `caffe train` (both arms train through a warm-up stage
and a resumed main stage, DetectionOutput and pycocotools give numbers in [0, 1]), the study's
adapter (examples.ssd.experiment), the data layer's label blob against
focal_loss_layer.multibox.read_ground_truth, the batch order, and every prototxt in
prototxt/ssd/ loaded by Caffe, equal to its generator's output, its solvers the study's
protocol."""
import ast
import json
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from caffe_nets import REPO
from google.protobuf import text_format

from examples.common.caffe_log import read_log
from examples.common.protocol import QUICK, STUDY
from examples.ssd import experiment
from examples.ssd import prototxt as ssd_prototxt
from examples.ssd.batches import NO_BOX, batch_scenes, label_rows, path_of, read_split
from examples.ssd.scoring import detection_output, detections
from examples.ssd.training import read_detection_eval
from examples.study.study import SEEDS
from focal_loss_layer import multibox
from focal_loss_layer.multibox_params import parse_multibox_param_str

ARMS = list(ssd_prototxt.ARMS)
SSD_FOLDER = os.path.join(REPO, "prototxt", "ssd")
SSD_PROTOTXTS = sorted(f for f in os.listdir(SSD_FOLDER) if f.endswith(".prototxt"))


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """(output folder, stdout, results["ssd"]) of `run_all --quick --only ssd`. No time limit:
    how long it takes is the example's own report, not a test's to assert on a busy machine."""
    out = tmp_path_factory.mktemp("quick_ssd")
    done = subprocess.run([sys.executable, "-m", "examples.run_all", "--quick", "--only", "ssd",
                           "--out", str(out)], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with open(out / "results.json") as f:
        results = json.load(f)
    assert list(results["examples"]) == [] and "detector" not in results
    return out, done.stdout, results["ssd"]


def run_dir(out, key, ssd):
    """Where examples.study.runs puts the demo's run of an arm."""
    return out / "runs" / "ssd" / "demo" / key / f"lr{ssd_prototxt.RATES[key]:g}_seed{ssd['seed']}"


def final_weights(out, key, ssd):
    return run_dir(out, key, ssd) / f"snapshot_iter_{QUICK.max_iter}.caffemodel"


# The quick run, end to end.

def test_the_quick_run_shows_its_stages_and_the_table_not_caffes_log(quick_run):
    _, stdout, _ = quick_run
    for stage in ("== set-up: quick mode, SSD-lite", "== data: the textured digit scenes",
                  "== detectors: 2 runs", "== results"):
        assert stage in stdout
    assert "== loss share" not in stdout   # the detector's analysis only
    assert stdout.count("done, final train loss") == 2
    assert "solver.cpp" not in stdout and "] Iteration" not in stdout
    table = stdout[stdout.index(f"| {experiment.TITLE} ("):]
    assert "a demonstration" in table.splitlines()[0]
    for arm in ssd_prototxt.ARMS.values():
        assert f"| {arm['label']} | " in table


def test_the_results_have_the_demo_layout(quick_run):
    _, _, ssd = quick_run
    assert set(ssd) == {"title", "demonstration", "protocol", "seed", "arms", "data"}
    assert ssd["data"]["matching"]["priors"] == ssd_prototxt.NUM_PRIORS
    assert ssd["title"] == experiment.TITLE and "not a comparison" in ssd["demonstration"]
    assert ssd["protocol"]["text"] == QUICK.describe() and ssd["seed"] == SEEDS[0]
    assert list(ssd["arms"]) == ARMS
    snapshots = list(range(QUICK.snapshot, QUICK.max_iter + 1, QUICK.snapshot))
    for key, arm in ssd["arms"].items():
        assert arm["label"] == ssd_prototxt.ARMS[key]["label"]
        assert arm["base_lr"] == ssd_prototxt.RATES[key]
        (seed,) = arm["seeds"]
        assert (seed["key"], seed["seed"], seed["iterations"]) == (key, ssd["seed"],
                                                                  QUICK.max_iter)
        assert seed["diverged"] is False and arm["diverged"] == 0
        assert [it for it, _ in seed["val_curve"]] == snapshots
        assert all(0 <= ap <= 1 for _, ap in seed["val_curve"])
        for metric in ("AP", "AP50", "AP75"):
            assert 0 <= seed[metric] <= 1, (key, metric)
            assert arm[metric]["values"] == pytest.approx([seed[metric]])
            assert arm[metric]["low"] is None   # one seed: no interval
        # Detections are drawn for the RetinaNet-lite arms only; no loss share here.
        assert "detections" not in arm and "loss_share" not in arm


def test_both_arms_trained_with_their_loss_layer_through_both_stages(quick_run):
    out, _, ssd = quick_run
    for key, arm in ssd["arms"].items():
        folder = run_dir(out, key, ssd)
        log = (folder / "caffe.log").read_text()
        state = folder / f"warmup_iter_{QUICK.warmup_iter}.solverstate"
        # Two `caffe train` processes, the second resumed from the warm-up's solver state.
        assert len(re.findall(r"caffe\.cpp:\d+\] Optimization Done", log)) == 2
        assert f"--snapshot={state}" in log and f"Resuming from {state}" in log
        assert final_weights(out, key, ssd).exists()
        train = read_log(folder / "caffe.log").train
        assert train[0][0] == 0
        assert all(math.isfinite(loss) and loss > 0 for _, loss in train)
        assert arm["seeds"][0]["train_curve"] == [pytest.approx(list(p), rel=1e-5)
                                                  for p in train]
        # The test phase (DetectionOutput + DetectionEvaluate) ran at every snapshot of the
        # main stage (none in the warm-up).
        val = read_detection_eval(folder / "caffe.log")
        assert [it for it, _ in val] == list(range(QUICK.snapshot, QUICK.max_iter + 1,
                                                   QUICK.snapshot))
        assert all(0 <= m <= 1 for _, m in val)


def test_the_layer_and_settings_each_arm_trained_with(quick_run):
    out, _, ssd = quick_run
    from caffe.proto import caffe_pb2
    for key in ARMS:
        net = caffe_pb2.NetParameter()
        text_format.Merge((run_dir(out, key, ssd) / "train_main.prototxt").read_text(), net)
        (loss,) = [layer for layer in net.layer if layer.name == "mbox_loss"]
        if key == "multibox":
            assert loss.type == "MultiBoxLoss"
            p = loss.multibox_loss_param
            assert (p.conf_loss_type, p.mining_type, p.code_type, p.match_type) == (
                p.SOFTMAX, p.MAX_NEGATIVE, caffe_pb2.PriorBoxParameter.CENTER_SIZE,
                p.PER_PREDICTION)
            assert p.neg_pos_ratio == 3 and loss.loss_param.normalization == \
                caffe_pb2.LossParameter.VALID
        else:
            assert loss.type == "Python"
            assert loss.python_param.layer == "MultiBoxFocalLossLayer"
            p = parse_multibox_param_str(loss.python_param.param_str)
            assert (p.conf_loss_type, p.mining_type, p.focusing_parameter, p.alpha,
                    p.normalization, p.code_type) == ("LOGISTIC", "NONE", 2, 0.25, "VALID",
                                                      "CENTER_SIZE")
            assert loss.loss_weight == [1]
        assert list(loss.propagate_down) == [True, True, False, False]
        biases = [layer.convolution_param.bias_filler.value for layer in net.layer
                  if layer.name.endswith("_mbox_conf")]
        expected = -math.log((1 - 0.01) / 0.01) if key == "focal" else 0.0
        assert len(biases) == 2 and biases == pytest.approx([expected] * 2, abs=1e-5)


def test_the_reported_test_ap_is_the_final_weights_score(quick_run):
    out, _, ssd = quick_run
    data_dir = str(out / "data" / "ssd")
    test = read_split(path_of(data_dir, "test"))
    assert len(test["images"]) == experiment.QUICK_COUNTS["test"] == \
        len(experiment.ground_truth(data_dir, "test").getImgIds())
    for key, arm in ssd["arms"].items():
        metrics = experiment.score(data_dir, "test", str(final_weights(out, key, ssd)), key)
        for name in ("AP", "AP50", "AP75"):
            assert metrics[name] == pytest.approx(arm[name]["mean"], abs=1e-5), (key, name)
        assert len(metrics["detections"]) == len(test["images"])
        d = metrics["detection_output"]
        assert d["rows"] > 0 and 0 < d["score_min"] <= d["score_max"] <= 1
        assert set(d["classes"]) <= set(range(1, ssd_prototxt.NUM_CLASSES))


def test_detection_output_gives_rows_in_range(quick_run):
    out, _, ssd = quick_run
    test = read_split(path_of(out / "data" / "ssd", "test"))
    for key in ARMS:
        # DetectionOutput itself, on two test scenes, with the arm's trained weights.
        deploy = os.path.join(SSD_FOLDER, ssd_prototxt.deploy_name(ssd_prototxt.ARMS[key]["conf"]))
        rows = detection_output(deploy, str(final_weights(out, key, ssd)), test["images"][:2])
        assert rows.shape[1] == 7 and set(rows[:, 0]) <= {0, 1}
        assert np.all((rows[:, 2] >= ssd_prototxt.DETECTION["confidence_threshold"])
                      & (rows[:, 2] <= 1))
        for image in (0, 1):
            assert np.count_nonzero(rows[:, 0] == image) <= ssd_prototxt.DETECTION["keep_top_k"]


def test_the_quick_data_and_the_priors_matches(quick_run):
    out, _, _ = quick_run
    train = read_split(path_of(out / "data" / "ssd", "train"))
    assert len(train["images"]) == experiment.QUICK_COUNTS["train"]
    matching = experiment.prior_matching(train)
    assert matching["priors"] == ssd_prototxt.NUM_PRIORS == experiment.net_summary()["priors"] \
        == 720
    assert matching["matched_priors_per_image"] >= matching["objects_per_image"] >= 1
    assert 0 < matching["objects_with_a_prior_over_threshold"] <= 1


# The study's adapter: a run prepared under a protocol.

def test_prepare_writes_both_stages_with_the_batches_continuing(quick_run, tmp_path):
    from caffe.proto import caffe_pb2
    out, _, _ = quick_run
    data_dir = out / "data" / "ssd"
    run = experiment.prepare("focal", 0.03, 9, QUICK, str(data_dir), str(tmp_path / "run"))
    assert [os.path.basename(s.solver) for s in run.stages] == ["solver_warmup.prototxt",
                                                               "solver_main.prototxt"]
    assert run.stages[1].resume == str(tmp_path / "run" /
                                       f"warmup_iter_{QUICK.warmup_iter}.solverstate")
    assert run.max_iter == QUICK.max_iter
    solvers = [read_message(stage.solver, caffe_pb2.SolverParameter()) for stage in run.stages]
    warmup, main = solvers
    assert warmup.lr_policy == "inv" and warmup.base_lr == pytest.approx(0.01)
    assert main.lr_policy == "multistep" and main.base_lr == pytest.approx(0.03)
    assert list(main.stepvalue) == list(QUICK.stepvalues)
    assert (warmup.max_iter, main.max_iter) == (QUICK.warmup_iter, QUICK.max_iter)
    assert warmup.random_seed == main.random_seed == 9
    assert list(warmup.test_iter) == list(main.test_iter) == [
        -(-experiment.QUICK_COUNTS["val"] // ssd_prototxt.TEST_BATCH)]
    assert warmup.test_interval > QUICK.max_iter and not warmup.test_initialization
    assert main.test_interval == QUICK.snapshot
    first_batches = []
    for solver in solvers:
        net = read_message(solver.net, caffe_pb2.NetParameter())
        for layer in net.layer:
            if layer.python_param.module == "examples.ssd.data_layer":
                param = ast.literal_eval(layer.python_param.param_str)
                assert os.path.dirname(param["source"]) == str(data_dir)
                if layer.include[0].phase == caffe_pb2.TRAIN:
                    first_batches.append(param["first_batch"])
    # The main stage's batches start where the warm-up's ended.
    assert first_batches == [0, QUICK.warmup_iter]
    cut = experiment.prepare("multibox", 0.03, 9, QUICK, str(data_dir), str(tmp_path / "cut"),
                             stop=QUICK.check_stop)
    assert cut.max_iter == QUICK.check_stop


def test_prepare_refuses_a_run_without_the_prior(tmp_path):
    with pytest.raises(ValueError, match="no variant without the prior bias"):
        experiment.prepare("focal", 0.02, 1, QUICK, str(tmp_path), str(tmp_path / "run"),
                           prior=False)


# The data layer and SSD's label blob.

def data_net(source, batch_size, shuffle=True, seed=1, first_batch=0):
    param = {"source": str(source), "batch_size": batch_size, "image_size": 96,
             "shuffle": shuffle, "seed": seed, "first_batch": first_batch}
    return ('layer { name: "data" type: "Python" top: "data" top: "label" python_param { '
            f'module: "examples.ssd.data_layer" layer: "SceneDataLayer" param_str: "{param!r}" }} }}')


def load(text, tmp_path, name="net.prototxt"):
    import caffe
    caffe.set_mode_cpu()
    path = tmp_path / name
    path.write_text(text)
    return caffe.Net(str(path), caffe.TRAIN)


def test_the_label_blob_parses_under_read_ground_truth(quick_run, tmp_path):
    out, _, _ = quick_run
    source = path_of(out / "data" / "ssd", "train")
    split = read_split(source)
    net = load(data_net(source, 5), tmp_path)
    for batch in range(4):
        net.forward()
        label = net.blobs["label"].data
        assert label.shape[:2] == (1, 1) and label.shape[3] == 8
        truth = multibox.read_ground_truth(label, 5, ssd_prototxt.NUM_CLASSES, 0, True)
        scenes = batch_scenes(len(split["images"]), 5, batch, True, 1)
        np.testing.assert_array_equal(net.blobs["data"].data, split["images"][scenes])
        for (classes, boxes), scene in zip(truth, scenes):
            mine = split["image"] == scene
            np.testing.assert_array_equal(classes, split["classes"][mine])
            np.testing.assert_allclose(boxes * 96, split["boxes"][mine], atol=1e-4)
            assert np.all((boxes >= 0) & (boxes <= 1))


def test_a_batch_without_boxes_is_one_row_of_minus_ones(tmp_path):
    source = tmp_path / "empty.npz"
    images = np.random.default_rng(0).random((3, 1, 96, 96), dtype=np.float32)
    np.savez(source, images=images, image=np.array([2], np.int32),
             classes=np.array([4], np.int32), boxes=np.array([[10, 20, 30, 50]], np.float32))
    net = load(data_net(source, 2, shuffle=False), tmp_path)
    net.forward()                                    # scenes 0 and 1: no box
    np.testing.assert_array_equal(net.blobs["label"].data.reshape(-1, 8), NO_BOX)
    assert [len(c) for c, _ in multibox.read_ground_truth(net.blobs["label"].data, 2, 11, 0,
                                                          True)] == [0, 0]
    net.forward()                                    # scenes 2 and 0 (the file wraps around)
    np.testing.assert_allclose(net.blobs["label"].data.reshape(-1, 8),
                               [[0, 4, 0, 10 / 96, 20 / 96, 30 / 96, 50 / 96, 0]])


def test_the_batches_are_a_pure_function_of_seed_and_batch_number():
    first = [batch_scenes(10, 4, b, True, 7) for b in range(5)]
    again = [batch_scenes(10, 4, b, True, 7) for b in range(5)]
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    stream = np.concatenate(first)                   # 20 = two epochs of 10
    assert sorted(stream[:10]) == list(range(10)) and sorted(stream[10:]) == list(range(10))
    assert not np.array_equal(stream[:10], stream[10:])           # a new order per epoch
    assert not np.array_equal(stream[:10], np.concatenate(
        [batch_scenes(10, 4, b, True, 8) for b in range(3)])[:10])  # another seed, another order
    assert batch_scenes(10, 4, 2, False, 7).tolist() == [8, 9, 0, 1]


def test_first_batch_continues_the_stream(quick_run, tmp_path):
    out, _, _ = quick_run
    source = path_of(out / "data" / "ssd", "train")
    whole = load(data_net(source, 4), tmp_path, "whole.prototxt")
    for _ in range(3):
        whole.forward()
    resumed = load(data_net(source, 4, first_batch=2), tmp_path, "resumed.prototxt")
    resumed.forward()
    np.testing.assert_array_equal(resumed.blobs["data"].data, whole.blobs["data"].data)
    np.testing.assert_array_equal(resumed.blobs["label"].data, whole.blobs["label"].data)


def test_label_rows_normalise_by_width_and_height():
    split = {"images": np.zeros((2, 1, 50, 100), np.float32), "image": np.array([1, 1]),
             "classes": np.array([3, 10]), "boxes": np.array([[0, 0, 100, 50], [10, 5, 20, 25]],
                                                             np.float32)}
    rows = label_rows(split, np.array([0, 1]))
    np.testing.assert_allclose(rows, [[1, 3, 0, 0, 0, 1, 1, 0], [1, 10, 1, 0.1, 0.1, 0.2, 0.5, 0]])


def test_detections_are_scaled_to_pixels_and_clipped():
    rows = np.array([[0, 3, 0.9, -0.1, 0.25, 0.5, 1.2], [1, 2, 0.5, 0, 0, 0.1, 0.1]], np.float32)
    found = detections(rows, 3, 96, 96)
    np.testing.assert_allclose(found[0]["boxes"], [[0, 24, 48, 96]])
    assert found[0]["classes"].tolist() == [3] and found[1]["scores"].tolist() == [0.5]
    assert len(found[2]["scores"]) == 0


# The prototxts.

def read_message(path, message):
    with open(path) as f:
        return text_format.Merge(f.read(), message)


def test_the_committed_prototxts_are_the_generators_output():
    generated = ssd_prototxt.files()
    assert sorted(generated) == SSD_PROTOTXTS
    for name, text in generated.items():
        with open(os.path.join(SSD_FOLDER, name)) as f:
            assert f.read() == text, f"run `python -m examples.ssd.prototxt` ({name})"


@pytest.fixture
def in_repo_like_folder(tmp_path, monkeypatch):
    """A folder like a fresh clone's root: prototxt/ only, no results/data/ssd/ (the data layer
    reads its file at the first forward, so the nets load without it). The committed main
    solvers snapshot (`snapshot: N`), and Caffe aborts at start-up unless the snapshot_prefix's
    folder exists: it is made here, as a by-hand run needs it (results/runs/ssd/<arm>/)."""
    os.symlink(os.path.join(REPO, "prototxt"), tmp_path / "prototxt")
    for key in ARMS:
        os.makedirs(tmp_path / "results" / "runs" / "ssd" / key)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("name", SSD_PROTOTXTS)
def test_every_ssd_prototxt_loads_in_caffe(name, in_repo_like_folder):
    import caffe
    from caffe.proto import caffe_pb2
    caffe.set_mode_cpu()
    path = os.path.join("prototxt", "ssd", name)
    if name.startswith("solver_"):
        solver = caffe.get_solver(path)
        assert solver.net.blobs and solver.test_nets[0].blobs and solver.iter == 0
        assert "detection_eval" in solver.test_nets[0].outputs
        assert "mbox_loss" in solver.net.outputs
    else:
        for phase in (caffe.TRAIN, caffe.TEST):
            net = caffe.Net(path, phase)
            assert net.blobs["mbox_priorbox"].data.shape == (1, 2, ssd_prototxt.NUM_PRIORS * 4)
            assert net.blobs["mbox_conf"].data.shape[1] == \
                ssd_prototxt.NUM_PRIORS * ssd_prototxt.NUM_CLASSES
    if name.startswith("solver_"):
        parsed = read_message(path, caffe_pb2.SolverParameter())
        key = name[len("solver_"):-len(".prototxt")].replace("_warmup", "")
        assert parsed.net == f"prototxt/ssd/train_{key}.prototxt"
        assert parsed.snapshot_prefix.startswith(f"results/runs/ssd/{key}/")
        assert parsed.random_seed >= 0 and parsed.eval_type == "detection"


def test_the_train_nets_differ_in_loss_conf_bias_and_test_scores_only():
    from caffe.proto import caffe_pb2
    nets = {}
    for key in ARMS:
        nets[key] = read_message(os.path.join(SSD_FOLDER, f"train_{key}.prototxt"),
                                 caffe_pb2.NetParameter())
    trunks = {}
    for key, net in nets.items():
        layers = []
        for layer in net.layer:
            if layer.name == "mbox_loss" or layer.name.startswith("mbox_conf_"):
                continue
            layer = caffe_pb2.LayerParameter.FromString(layer.SerializeToString())
            if layer.name.endswith("_mbox_conf"):
                layer.convolution_param.ClearField("bias_filler")
            layers.append(layer)
        trunks[key] = layers
    assert trunks["multibox"] == trunks["focal"]
    # The deploy nets are the train nets' trunk (without fillers) with the same test-phase layers.
    for key, net in nets.items():
        conf = ssd_prototxt.ARMS[key]["conf"]
        deploy = read_message(os.path.join(SSD_FOLDER, ssd_prototxt.deploy_name(conf)),
                              caffe_pb2.NetParameter())
        names = [layer.name for layer in deploy.layer if layer.type != "Input"]
        assert names == [layer.name for layer in net.layer
                         if layer.type not in ("Python", "MultiBoxLoss", "DetectionEvaluate")]


@pytest.mark.parametrize("key", ARMS)
def test_the_solvers_are_the_studys_protocol_at_the_arms_rate(key):
    from caffe.proto import caffe_pb2
    warmup = read_message(os.path.join(SSD_FOLDER, f"solver_{key}_warmup.prototxt"),
                          caffe_pb2.SolverParameter())
    main = read_message(os.path.join(SSD_FOLDER, f"solver_{key}.prototxt"),
                        caffe_pb2.SolverParameter())
    rate = ssd_prototxt.RATES[key]
    # Stage 1: Caffe's inv, base_lr (1 + gamma iter)^(-power) with power -1, a straight line
    # from warmup_from x the rate to the rate at warmup_iter.
    assert warmup.lr_policy == "inv" and warmup.power == -1
    assert warmup.max_iter == STUDY.warmup_iter
    line = [warmup.base_lr * (1 + warmup.gamma * i) ** (-warmup.power)
            for i in range(STUDY.warmup_iter + 1)]
    assert line[0] == pytest.approx(STUDY.warmup_from * rate, rel=1e-5)
    assert line[-1] == pytest.approx(main.base_lr, rel=1e-5)
    assert line[:-1] == pytest.approx([STUDY.rate_at(rate, i) for i in range(STUDY.warmup_iter)],
                                      rel=1e-5)
    # Stage 2: multistep, x0.1 at 2/3 and 8/9 of the budget.
    assert main.lr_policy == "multistep" and list(main.stepvalue) == list(STUDY.stepvalues)
    assert main.gamma == pytest.approx(0.1) and main.max_iter == STUDY.max_iter
    assert main.base_lr == pytest.approx(rate, rel=1e-6)
    assert main.snapshot == STUDY.snapshot and main.test_interval == STUDY.snapshot
    assert warmup.test_interval > STUDY.max_iter   # the warm-up tests at iteration 0 only
    assert warmup.test_initialization and not main.test_initialization
    for solver in (warmup, main):
        assert solver.type == "SGD" and solver.momentum == pytest.approx(0.9)
        assert solver.weight_decay == pytest.approx(1e-4)   # the study's, not SSD's 5e-4
        assert solver.random_seed == ssd_prototxt.SEED
        assert list(solver.test_iter) == [-(-ssd_prototxt.VAL_SCENES // ssd_prototxt.TEST_BATCH)]
    assert warmup.snapshot_prefix == f"results/runs/ssd/{key}/warmup"
    assert main.snapshot_prefix == f"results/runs/ssd/{key}/snapshot"
    resume = (f"--snapshot={warmup.snapshot_prefix}_iter_{warmup.max_iter}.solverstate")
    for name in (f"solver_{key}_warmup.prototxt", f"solver_{key}.prototxt"):
        with open(os.path.join(SSD_FOLDER, name)) as f:
            assert resume in f.read(), name


def test_the_data_layer_refuses_unknown_keys(tmp_path):
    text = data_net(tmp_path / "x.npz", 2).replace("'first_batch'", "'first_batches'")
    with pytest.raises(ValueError, match=r"unknown keys \['first_batches'\]"):
        load(text, tmp_path)
    param = ast.literal_eval(re.search(r'param_str: "(.*)"', data_net("x", 2)).group(1))
    assert set(param) == {"source", "batch_size", "image_size", "shuffle", "seed", "first_batch"}
