"""Every prototxt in the repository, loaded by Caffe as a user would load it: nets with
caffe.Net (TRAIN and TEST), solvers with caffe.get_solver, from a folder laid out like the
repository root after `make example` (prototxt/ and results/data/). Also: the nets compared in
an example differ only in their loss, and the baseline's ignore band is exact."""
import os

import numpy as np
import pytest
from caffe_nets import REPO, run_caffe_tool
from google.protobuf import text_format

from examples.common.hdf5_files import read_hdf5
from examples.common.losses import LABELS, LOSSES, SOFTMAX_LOSSES, deploy_name, losses_of
from examples.detector.data import write_data as write_detector_data
from examples.detector.prototxt import LOSSES as DETECTOR_ARMS
from examples.digit_grid import run as example_grid
from examples.digits import run as example_digits
from examples.ssd.prototxt import ARMS as SSD_ARMS
from focal_loss_layer.core import sigmoid_focal_loss_and_gradient

EXAMPLES = (example_digits, example_grid)
SKIPPED_FOLDERS = {".git", ".venv", "results", "build", "__pycache__", ".pytest_cache",
                   # the C++ forks' nets, the converter's inputs: fields this Caffe lacks make
                   # it abort; tests/test_convert.py loads what the converter writes from them
                   "convert_fixtures"}


def repository_prototxts():
    found = []
    for folder, subfolders, files in os.walk(REPO):
        subfolders[:] = [s for s in subfolders if s not in SKIPPED_FOLDERS]
        found += [os.path.relpath(os.path.join(folder, f), REPO)
                  for f in files if f.endswith(".prototxt")]
    return sorted(found)


PROTOTXTS = repository_prototxts()


def parsed(path, message):
    with open(os.path.join(REPO, path)) as f:
        text_format.Merge(f.read(), message)
    return message


def is_solver(path):
    from caffe.proto import caffe_pb2
    try:
        solver = parsed(path, caffe_pb2.SolverParameter())
    except text_format.ParseError:
        return False
    return solver.HasField("net") or solver.HasField("train_net")


@pytest.fixture(scope="module")
def repo_like_folder(tmp_path_factory):
    """A folder like the repository root after `make example`: links to the repository's
    entries (prototxt/ and the rest), and its own results/ with data/<example>/ written by the
    examples' data code and the snapshot folders the committed solvers name."""
    root = tmp_path_factory.mktemp("repo_root")
    for entry in os.listdir(REPO):
        if entry != "results":
            os.symlink(os.path.join(REPO, entry), root / entry)
    write_detector_data(str(root / "results" / "data" / "detector"), {"train": 8, "val": 8, "test": 8})
    for example in EXAMPLES:
        example.write_data(str(root / "results" / "data" / example.NAME))
        for key in LABELS:
            (root / "results" / "runs" / example.NAME / key).mkdir(parents=True)
    # The detectors' committed solvers snapshot into results/runs/<net>/<arm>/, which Caffe
    # checks is writable when it makes the solver (their comments say to create it).
    for net, arms in (("detector", DETECTOR_ARMS), ("ssd", SSD_ARMS)):
        for key in arms:
            (root / "results" / "runs" / net / key).mkdir(parents=True, exist_ok=True)
    return root


@pytest.fixture
def in_repo_like_folder(repo_like_folder, monkeypatch):
    monkeypatch.chdir(repo_like_folder)
    return repo_like_folder


def test_the_examples_prototxts_are_all_found():
    expected = {f"prototxt/{e.NAME}/{kind}_{key}.prototxt"
                for e in EXAMPLES for kind in ("train", "solver") for key in losses_of(e)}
    expected.add("prototxt/digit_grid/deploy_softmax.prototxt")
    expected |= {f"prototxt/{e.NAME}/deploy.prototxt" for e in EXAMPLES}
    assert expected <= set(PROTOTXTS)


@pytest.mark.parametrize("path", PROTOTXTS)
def test_every_prototxt_loads_in_caffe(path, in_repo_like_folder):
    import caffe
    caffe.set_mode_cpu()
    if is_solver(path):
        solver = caffe.get_solver(path)
        assert solver.net.blobs and solver.test_nets[0].blobs
        assert solver.iter == 0
    else:
        for phase in (caffe.TRAIN, caffe.TEST):
            net = caffe.Net(path, phase)
            assert net.blobs


def trunk(path, last="score"):
    """The layers of the net at path from the first after the data layers up to `last`."""
    from caffe.proto import caffe_pb2
    net = parsed(path, caffe_pb2.NetParameter())
    layers = [layer for layer in net.layer if layer.type not in ("HDF5Data", "Input")]
    names = [layer.name for layer in layers]
    return layers[:names.index(last) + 1]


# The nets compared in one table, each group with one head: every example's sigmoid nets, and
# digit_grid's softmax pair (an 11-class head and its own deploy net).
NET_GROUPS = ([pytest.param(e, list(LOSSES), id=e.NAME) for e in EXAMPLES]
              + [pytest.param(example_grid, list(SOFTMAX_LOSSES), id="digit_grid-softmax")])


@pytest.mark.parametrize("example, keys", NET_GROUPS)
def test_the_nets_of_an_example_are_the_same_up_to_the_score(example, keys):
    """The compared runs differ in the loss only: the layers up to "score" are identical
    (fillers included), and they are the deploy net's layers with the fillers left out."""
    from caffe.proto import caffe_pb2

    trunks = {key: trunk(f"prototxt/{example.NAME}/train_{key}.prototxt") for key in keys}
    first = trunks[keys[0]]
    assert len(first) >= 3
    for key, layers in trunks.items():
        assert layers == first, key
    deploy = trunk(f"prototxt/{example.NAME}/{deploy_name(keys[0])}")
    without_fillers = []
    for layer in first:
        layer = caffe_pb2.LayerParameter.FromString(layer.SerializeToString())
        for field in ("convolution_param", "inner_product_param"):
            if layer.HasField(field):
                getattr(layer, field).ClearField("weight_filler")
                getattr(layer, field).ClearField("bias_filler")
        without_fillers.append(layer)
    assert deploy == without_fillers


def test_the_softmax_and_sigmoid_grid_nets_share_the_layers_below_the_head():
    """Up to conv3 (its ReLU) the five digit_grid nets are one net: only the head and loss
    differ."""
    sigmoid = trunk("prototxt/digit_grid/train_focal.prototxt", last="relu3")
    for key in SOFTMAX_LOSSES:
        assert trunk(f"prototxt/digit_grid/train_{key}.prototxt", last="relu3") == sigmoid, key


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.NAME)
def test_the_solvers_of_an_example_differ_only_in_net_and_snapshot_prefix(example):
    from caffe.proto import caffe_pb2
    solvers = {key: parsed(f"prototxt/{example.NAME}/solver_{key}.prototxt",
                           caffe_pb2.SolverParameter()) for key in losses_of(example)}
    for key, solver in solvers.items():
        assert solver.net == f"prototxt/{example.NAME}/train_{key}.prototxt"
        assert solver.snapshot_prefix == f"results/runs/{example.NAME}/{key}/snapshot"
        assert solver.random_seed >= 0, "a fixed seed makes the runs start from the same weights"
        solver.ClearField("net")
        solver.ClearField("snapshot_prefix")
    assert all(solver == solvers["focal"] for solver in solvers.values())


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.NAME)
def test_one_test_pass_scores_every_test_sample_once(example, repo_like_folder):
    from caffe.proto import caffe_pb2
    solver = parsed(f"prototxt/{example.NAME}/solver_focal.prototxt", caffe_pb2.SolverParameter())
    net = parsed(solver.net, caffe_pb2.NetParameter())
    (test_data,) = [layer for layer in net.layer if layer.type == "HDF5Data"
                    and layer.include[0].phase == caffe_pb2.TEST]
    samples = len(read_hdf5(str(repo_like_folder / test_data.hdf5_data_param.source))["data"])
    assert solver.test_iter[0] * test_data.hdf5_data_param.batch_size == samples


def test_the_baseline_ignores_the_band_exactly(in_repo_like_folder):
    """The SigmoidCrossEntropyLoss grid net's mask layers: its loss is cross-entropy over the
    non-ignored logits only (the numpy core at γ = 0), and ignored logits get zero gradient."""
    import caffe
    caffe.set_mode_cpu()
    net = caffe.Net("prototxt/digit_grid/train_sigmoid_ce.prototxt", caffe.TRAIN)
    net.forward()
    net.backward()
    score, target = net.blobs["score"].data, net.blobs["target"].data
    kept = net.blobs["mask"].data > 0
    assert 0 < np.count_nonzero(~kept) < kept.size
    expected, _ = sigmoid_focal_loss_and_gradient(score.astype(np.float64), target, focusing_parameter=0.0,
                                     valid=kept, normalization="batch_size")
    # Caffe sums the 40960 terms one by one in float32: agreement to 1e-3. Counting the ignored
    # logits too would add about 5% here.
    assert net.blobs["loss"].data.item() == pytest.approx(expected, rel=1e-3)
    gradient = net.blobs["score"].diff
    assert np.all(gradient[~kept] == 0)
    assert np.count_nonzero(gradient[kept]) == np.count_nonzero(kept)


def test_a_committed_solver_trains_with_the_caffe_tool_from_the_repository_root(in_repo_like_folder):
    """What docs/install.md shows: `.venv/bin/caffe train --solver=prototxt/digits/solver_focal.prototxt`
    from the repository root, once `make example` has written the data."""
    code, log = run_caffe_tool(["train", "--solver=prototxt/digits/solver_focal.prototxt"],
                               cwd=in_repo_like_folder)
    assert code == 0, log[-3000:]
    assert "Optimization Done" in log
    assert (in_repo_like_folder / "results/runs/digits/focal/snapshot_iter_2000.caffemodel").exists()
