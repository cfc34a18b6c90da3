"""Both layers in the net topologies where Caffe does NOT simply call forward then backward on
them: a twin net replaces the layer by its C++ twin in the same role (cases.LAYERS:
FocalLossLayer by SigmoidCrossEntropyLoss (SCE), SoftmaxFocalLossLayer by SoftmaxWithLoss), and
what reaches the weights must agree.

At focusing_parameter 0 with the default normalization (batch_size, SCE's default BATCH_SIZE;
valid, SoftmaxWithLoss's default VALID) each layer computes its twin's loss, so every difference
between the twins is a difference in how the layer plays along with Caffe's net machinery, not
in the math. A layer at γ = 2 in a role that contributes no gradient (a monitor) must leave the
weight gradient equal to that of the net without it.

Why these topologies: Caffe's Split layer (inserted wherever a blob feeds several layers) sums the
diffs of all its tops in backward, whether or not the consumer of each top ran its backward. Caffe
skips a layer's backward when it contributes no loss (loss_weight 0, or a Python layer without a
loss_weight line: Python layers are not LossLayers and default to 0), and passes
propagate_down = False for bottoms under `propagate_down: false` or that need no gradient. A layer
that writes a bottom diff anywhere but in backward, where propagate_down asks, leaks that diff into
the weights (or into an Input blob's diff, or a TEST net's blobs).

Every net here is real Caffe (caffe.Net / caffe.SGDSolver from prototxt text), no force_backward
unless a case says so; the learnable layers' parameters are set from numpy so that twins start
identical. Agreement: |layer - twin| <= TOL * max(1, |twin|) per element (gradients are O(0.1-1)).
"""
from functools import partial

import caffe
import numpy as np
import pytest
from caffe_nets import load_net
from cases import LAYERS, SIGMOID, SOFTMAX, layer_id

from focal_loss_layer.check.nets import caffe_loss, inner_product, input_layer, python_loss

TOL = 1e-5
N, D, C = 4, 5, 3                     # fc head: x (N, D) -> score (N, C)
CONV_X, CONV_SCORE = (2, 2, 4, 4), (2, 3, 4, 4)  # sigmoid conv head: x -> score (N, C, H, W)
H, W = 3, 4                           # softmax dense head: x (N, 2, H, W) -> score (N, C, H, W)
SENTINEL_BASE = 1000.0


# ----------------------------------------------------------------------------------------------
# prototxt pieces

def focal(layer, name, bottoms=("score", "label"), loss_weight=1, gamma=0, propagate_down=None,
          ignore_label=None):
    """The layer under test with top `name`; loss_weight None: no loss_weight line at all."""
    settings = {"focusing_parameter": gamma}
    if ignore_label is not None:
        settings["ignore_label"] = ignore_label
    return python_loss(name, "focal_loss_layer", layer.name, settings, bottoms, loss_weight,
                       propagate_down)


def twin(layer, name, bottoms=("score", "label"), loss_weight=1, propagate_down=None,
         ignore_label=None):
    """The layer's twin (the layer at γ = 0 only) with top `name`."""
    loss_param = None if ignore_label is None else {"ignore_label": ignore_label}
    return caffe_loss(name, layer.twin, bottoms, loss_weight, propagate_down, loss_param)


def labels_shape(layer):
    """The fc head's labels: per-class targets where the twin takes only those (SCE)."""
    return (N, C) if layer.targets else (N,)


def fc_head(layer):
    return (input_layer("x", (N, D)) + input_layer("label", labels_shape(layer))
            + inner_product("fc", "x", "score", C))


GAUSS = 'weight_filler { type: "gaussian" std: 0.1 } bias_filler { type: "gaussian" std: 0.1 }'


def conv_head(x_shape, labels):
    """Input x and the label blobs ({name: shape}), and a 3x3 Convolution x -> score (C maps)."""
    return (input_layer("x", x_shape) + "".join(input_layer(n, s) for n, s in labels.items())
            + f'layer {{ name: "conv" type: "Convolution" bottom: "x" top: "score" convolution_param '
              f'{{ num_output: {C} kernel_size: 3 pad: 1 {GAUSS} }} }}\n')


FLATTEN = 'layer { name: "flat" type: "Flatten" bottom: "score" top: "score_flat" }\n'
RESHAPE = ('layer { name: "view" type: "Reshape" bottom: "score" top: "score_view" '
           'reshape_param { shape { dim: 0 dim: 0 dim: -1 } } }\n')
LEAKY_RELU_IN_PLACE = ('layer { name: "relu" type: "ReLU" bottom: "score" top: "score" '
                       'relu_param { negative_slope: 0.2 } }\n')
SCALE_IN_PLACE = ('layer { name: "scale" type: "Scale" bottom: "score" top: "score" '
                  'scale_param { bias_term: true } }\n')
UNDER_TEST = "UNDER_TEST\n"           # where the role's layer(s) go


# ----------------------------------------------------------------------------------------------
# running nets

def set_params(net, seed=0):
    """Every learnable blob from numpy (twins start identical whatever Caffe's RNG did)."""
    rng = np.random.default_rng(seed)
    for name, blobs in net.params.items():
        for blob in blobs:
            blob.data[...] = rng.normal(scale=0.5, size=blob.data.shape)
            if name == "scale" and blob is blobs[0]:
                blob.data[...] += 1.0


def set_inputs(net, seed=1):
    rng = np.random.default_rng(seed)
    for name in net.inputs:
        blob = net.blobs[name]
        if name.startswith("label"):
            blob.data[...] = rng.uniform(size=blob.data.shape) < 0.4
        else:
            blob.data[...] = rng.normal(size=blob.data.shape)


def forward_backward(text):
    net = load_net(text)
    set_params(net)
    set_inputs(net)
    for blobs in net.params.values():
        for blob in blobs:
            blob.diff[...] = 0
    outputs = {k: v.copy() for k, v in net.forward().items()}
    net.backward()
    grads = {f"{name}[{i}]": blob.diff.copy() for name, blobs in net.params.items()
             for i, blob in enumerate(blobs)}
    return outputs, grads


def compare(role, what, got, want):
    """Assert got == want within TOL; the message names the role and the size of the gap."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, f"[{role}] {what}: shape {got.shape} vs {want.shape}"
    gap = np.abs(got - want)
    allowed = TOL * np.maximum(1.0, np.abs(want))
    if np.all(gap <= allowed):
        return
    worst = np.unravel_index(np.argmax(gap - allowed), gap.shape)
    raise AssertionError(
        f"[{role}] {what}: max |focal net - twin| = {gap.max():.4g} (tolerance {TOL} x max(1, |twin|));"
        f" worst at {worst}: focal net {got[worst]:.6g}, twin {want[worst]:.6g};"
        f" twin's max |value| {np.abs(want).max():.4g}")


def assert_untouched(role, what, got, sentinel_values):
    """The diff still holds the sentinel, bit for bit: the contract is that the layer writes
    nothing there, so no tolerance (1000 ± 0.01 would pass one)."""
    got = np.asarray(got)
    changed = got != sentinel_values
    if changed.any():
        first = tuple(int(i) for i in np.argwhere(changed)[0])
        raise AssertionError(
            f"[{role}] {what}: {np.count_nonzero(changed)} value(s) changed; first at {first}: "
            f"{got[first]!r} instead of {sentinel_values[first]!r}")


def compare_runs(role, focal_run, twin_run):
    (focal_out, focal_grads), (twin_out, twin_grads) = focal_run, twin_run
    assert focal_grads.keys() == twin_grads.keys()
    # Not vacuous: the twin's weights do receive a gradient.
    assert max(np.abs(g).max() for g in twin_grads.values()) > 1e-2, f"[{role}] twin has no gradient"
    for key in focal_grads:
        compare(role, f"param diff {key}", focal_grads[key], twin_grads[key])
    for key in focal_out.keys() & twin_out.keys():
        # SCE's loss top is a 0-axis blob, shape (); the Python layer's is (1,): compare values.
        compare(role, f"output {key!r}", focal_out[key].ravel(), twin_out[key].ravel())


# ----------------------------------------------------------------------------------------------
# Forward + backward in one net: twin with the C++ loss (or without the layer), compare param
# diffs. (body with UNDER_TEST, the layer(s) under test, the twin's layer(s)); ids name the
# layer, the role and the variant.

def fc_roles(layer):
    """The roles on the fc head, the same for both layers."""
    fl, tw = partial(focal, layer), partial(twin, layer)
    fc, main = fc_head(layer), tw("main")     # main: the net's real loss, the same in both twins
    return [
        # baseline: the layer as the net's only loss (Caffe calls forward and backward)
        ("main-loss-alone", fc + UNDER_TEST, fl("main"), tw("main")),
        # 1. monitor: a second loss on the same score, loss_weight 0 / no loss_weight line
        ("monitor-lw0", fc + main + UNDER_TEST, fl("mon", loss_weight=0), tw("mon", loss_weight=0)),
        ("monitor-lw0-declared-before-main", fc + UNDER_TEST + main,
         fl("mon", loss_weight=0), tw("mon", loss_weight=0)),
        ("monitor-no-loss_weight-line", fc + main + UNDER_TEST,
         fl("mon", loss_weight=None), tw("mon", loss_weight=0)),
        ("monitor-lw0-gamma2-vs-no-monitor", fc + main + UNDER_TEST, fl("mon", loss_weight=0, gamma=2), ""),
        ("monitor-no-loss_weight-line-gamma2-vs-no-monitor", fc + main + UNDER_TEST,
         fl("mon", loss_weight=None, gamma=2), ""),
        # 2. propagate_down
        ("propagate_down-false-logits-and-labels", fc + main + UNDER_TEST,
         fl("pd", propagate_down=(False, False)), tw("pd", propagate_down=(False, False))),
        ("propagate_down-false-gamma2-vs-no-layer", fc + main + UNDER_TEST,
         fl("pd", gamma=2, propagate_down=(False, False)), ""),
        ("propagate_down-true-logits-false-labels", fc + UNDER_TEST,
         fl("pd", propagate_down=(True, False)), tw("pd", propagate_down=(True, False))),
        # force_backward overrides propagate_down: false wherever AllowForceBackward (logits of both)
        ("force_backward-overrides-propagate_down-false", "force_backward: true\n" + fc + main + UNDER_TEST,
         fl("pd", propagate_down=(False, False)), tw("pd", propagate_down=(False, False))),
        ("force_backward-monitor-lw0", "force_backward: true\n" + fc + main + UNDER_TEST,
         fl("mon", loss_weight=0), tw("mon", loss_weight=0)),
        # 5. two losses on one blob
        ("two-losses-lw1-and-lw0.5", fc + UNDER_TEST,
         fl("a") + fl("b", loss_weight=0.5), tw("a") + tw("b", loss_weight=0.5)),
        ("two-losses-gamma0-and-gamma2-vs-twin-and-gamma2", fc + UNDER_TEST,
         fl("a") + fl("b", gamma=2), tw("a") + fl("b", gamma=2)),
        ("two-losses-main-plus-gamma2-monitor-vs-twin-alone", fc + UNDER_TEST,
         fl("a") + fl("b", gamma=2, loss_weight=0), tw("a")),
        # 7. an in-place layer below the loss
        ("inplace-relu-main", fc + LEAKY_RELU_IN_PLACE + UNDER_TEST, fl("main"), tw("main")),
        ("inplace-relu-monitor-lw0", fc + LEAKY_RELU_IN_PLACE + main + UNDER_TEST,
         fl("mon", loss_weight=0), tw("mon", loss_weight=0)),
        ("inplace-relu-monitor-gamma2-vs-no-monitor", fc + LEAKY_RELU_IN_PLACE + main + UNDER_TEST,
         fl("mon", gamma=2, loss_weight=0), ""),
        ("inplace-scale-main", fc + SCALE_IN_PLACE + UNDER_TEST, fl("main"), tw("main")),
        ("inplace-scale-monitor-lw0", fc + SCALE_IN_PLACE + main + UNDER_TEST,
         fl("mon", loss_weight=0), tw("mon", loss_weight=0)),
    ]


def twin_cases(layer, roles):
    return [pytest.param(body, focal_part, twin_part, id=f"{layer.name}-{id}")
            for id, body, focal_part, twin_part in fc_roles(layer) + roles]


# 6. (FocalLossLayer) a Flatten / Reshape view of the logits (shares the diff) plus a loss on the
# original blob, on a conv head with per-class targets.
fl, sce = partial(focal, SIGMOID), partial(twin, SIGMOID)
MAIN = sce("main")
CONV = conv_head(CONV_X, {"label": CONV_SCORE,
                          "label_flat": (CONV_SCORE[0], int(np.prod(CONV_SCORE[1:]))),
                          "label_view": CONV_SCORE[:2] + (int(np.prod(CONV_SCORE[2:])),)})
FLAT, VIEW = ("score_flat", "label_flat"), ("score_view", "label_view")
SIGMOID_TWIN_CASES = twin_cases(SIGMOID, [
    ("flatten-view-main", CONV + FLATTEN + MAIN + UNDER_TEST, fl("v", bottoms=FLAT), sce("v", bottoms=FLAT)),
    # (Flatten shares its bottom's diff only in its own Backward, which Caffe skips for a view
    # feeding a monitor: this one guards without being reachable by a forward-written diff.
    # Reshape shares the diff from Reshape on, so the next case is.)
    ("flatten-view-monitor-lw0", CONV + FLATTEN + MAIN + UNDER_TEST,
     fl("v", bottoms=FLAT, loss_weight=0), sce("v", bottoms=FLAT, loss_weight=0)),
    ("flatten-view-main-original-monitor-lw0", CONV + FLATTEN + sce("main", bottoms=FLAT) + UNDER_TEST,
     fl("mon", loss_weight=0), sce("mon", loss_weight=0)),
    ("reshape-view-monitor-lw0", CONV + RESHAPE + MAIN + UNDER_TEST,
     fl("v", bottoms=VIEW, loss_weight=0), sce("v", bottoms=VIEW, loss_weight=0)),
    ("flatten-view-monitor-gamma2-vs-no-monitor", CONV + FLATTEN + MAIN + UNDER_TEST,
     fl("v", bottoms=FLAT, gamma=2, loss_weight=0), ""),
])

# (SoftmaxFocalLossLayer) dense: labels (N, H, W) of 0/1 classes (set_inputs), conv logits
# (N, C, H, W).
sfl, swl = partial(focal, SOFTMAX), partial(twin, SOFTMAX)
SOFTMAX_CONV = conv_head((N, 2, H, W), {"label": (N, H, W)})
SOFTMAX_TWIN_CASES = twin_cases(SOFTMAX, [
    ("dense-main-loss-ignore_label", SOFTMAX_CONV + UNDER_TEST,
     sfl("main", ignore_label=0), swl("main", ignore_label=0)),
    ("dense-monitor-lw0-gamma2-vs-no-monitor", SOFTMAX_CONV + swl("main") + UNDER_TEST,
     sfl("mon", loss_weight=0, gamma=2), ""),
])


@pytest.mark.parametrize("body, focal_part, twin_part", SIGMOID_TWIN_CASES + SOFTMAX_TWIN_CASES)
def test_weight_gradient_equals_the_twin(request, body, focal_part, twin_part):
    role = request.node.callspec.id
    focal_run = forward_backward(body.replace(UNDER_TEST, focal_part))
    twin_run = forward_backward(body.replace(UNDER_TEST, twin_part))
    compare_runs(role, focal_run, twin_run)


# ----------------------------------------------------------------------------------------------
# 3. and 4. Blobs whose diff nobody may write: logits straight from an Input (no force_backward),
# and a TEST-phase net's blobs (forward only). A sentinel pattern must survive, as with the twin.

def sentinel(shape):
    return SENTINEL_BASE + np.arange(np.prod(shape), dtype=np.float32).reshape(shape)


# The twin and the layer under test in each role, as top "loss": main at γ 0 and 2, and the roles
# whose backward Caffe skips. {id: focal()'s keywords, None for the twin}
LOSS_VARIANTS = {"twin": None, "focal-gamma0": {}, "focal-gamma2": {"gamma": 2},
                 "focal-lw0": {"loss_weight": 0}, "focal-no-loss_weight-line": {"loss_weight": None}}


def variant(layer, name):
    keywords = LOSS_VARIANTS[name]
    return twin(layer, "loss") if keywords is None else focal(layer, "loss", **keywords)


def input_head(layer):
    return input_layer("score", (N, C)) + input_layer("label", labels_shape(layer))


@pytest.mark.parametrize("name", LOSS_VARIANTS)
@pytest.mark.parametrize("layer", LAYERS, ids=layer_id)
def test_input_logits_diff_untouched_without_force_backward(request, layer, name):
    role = f"input-logits-no-force_backward/{request.node.callspec.id}"
    net = load_net(input_head(layer) + variant(layer, name))
    set_inputs(net)
    net.blobs["score"].data[...] = np.random.default_rng(2).normal(size=(N, C))
    net.blobs["score"].diff[...] = sentinel((N, C))
    net.blobs["label"].diff[...] = sentinel(labels_shape(layer))
    net.forward()
    net.backward()
    assert_untouched(role, "Input 'score' diff", net.blobs["score"].diff, sentinel((N, C)))
    assert_untouched(role, "Input 'label' diff", net.blobs["label"].diff, sentinel(labels_shape(layer)))


@pytest.mark.parametrize("name", LOSS_VARIANTS)
@pytest.mark.parametrize("head", [fc_head, input_head], ids=["fc-score", "input-score"])
@pytest.mark.parametrize("layer", LAYERS, ids=layer_id)
def test_test_phase_forward_writes_no_diff_and_gives_the_twins_loss(request, layer, head, name):
    """The net and its twin, each forward only in a TEST net: no diff changes; the loss is the
    twin's at γ 0 and below it at γ 2."""
    role = f"TEST-phase/{request.node.callspec.id}"
    outputs = {}
    for which, text in (("net", variant(layer, name)), ("twin", twin(layer, "loss"))):
        net = load_net(head(layer) + text, phase=caffe.TEST)
        set_params(net)
        set_inputs(net)
        net.blobs["score"].data[...] = np.random.default_rng(2).normal(size=(N, C))
        net.blobs["score"].diff[...] = sentinel((N, C))
        net.blobs["label"].diff[...] = sentinel(labels_shape(layer))
        out = net.forward()
        assert np.isfinite(out["loss"]).all() and out["loss"].item() > 0
        outputs[which] = out["loss"].item()
        assert_untouched(role, f"{which}: 'score' diff", net.blobs["score"].diff, sentinel((N, C)))
        assert_untouched(role, f"{which}: 'label' diff", net.blobs["label"].diff,
                         sentinel(labels_shape(layer)))
    if (LOSS_VARIANTS[name] or {}).get("gamma", 0) == 0:
        compare(role, "TEST-phase loss", outputs["net"], outputs["twin"])
    else:
        assert 0 < outputs["net"] < outputs["twin"]


@pytest.mark.parametrize("propagate_down", [None, False], ids=["inputs-need-no-gradient", "propagate_down-false"])
@pytest.mark.parametrize("layer, normalizer", [
    pytest.param(SIGMOID, ("fg_num",), id="FocalLossLayer-labels-normalizer"),
    pytest.param(SOFTMAX, (), id="SoftmaxFocalLossLayer-labels"),
])
def test_backward_leaves_label_and_normalizer_diffs_alone_where_propagate_down_is_false(
        request, layer, normalizer, propagate_down):
    """The layer's backward runs (the logits feed learnable weights), but Caffe asks no gradient
    for the labels or the normalizer (FocalLossLayer's third bottom): their diffs keep the
    sentinel exactly."""
    role = f"propagate_down-labels-normalizer/{request.node.callspec.id}"
    bottoms = ("score", "label") + normalizer
    flags = None if propagate_down is None else (True,) + (False,) * (len(bottoms) - 1)
    net = load_net(fc_head(layer) + "".join(input_layer(b, (1,)) for b in normalizer)
                   + focal(layer, "loss", bottoms=bottoms, gamma=2, propagate_down=flags))
    set_params(net)
    set_inputs(net)
    sentinels = {"label": sentinel(labels_shape(layer)), **{b: sentinel((1,)) for b in normalizer}}
    for name, values in sentinels.items():
        if name != "label":
            net.blobs[name].data[...] = 3.0
        net.blobs[name].diff[...] = values
    net.forward()
    net.backward()
    assert np.abs(net.params["fc"][0].diff).max() > 1e-3, f"[{role}] backward did not run"
    for name, values in sentinels.items():
        assert_untouched(role, f"{name!r} diff", net.blobs[name].diff, values)


# ----------------------------------------------------------------------------------------------
# 8. and 9. Solvers (FocalLossLayer): HDF5Data TRAIN/TEST, iter_size 2, a TEST net; snapshot -> restore -> continue.
# The data file holds exactly 2 batches: every iteration (iter_size 2) and every test pass
# (test_iter 2) reads the whole file, so a restored solver sees the same data as an uninterrupted one.

BATCH = 4
SOLVER_CASES = [
    pytest.param(UNDER_TEST, fl("main"), sce("main"), id="main-loss"),
    pytest.param(MAIN + UNDER_TEST, fl("mon", loss_weight=0), sce("mon", loss_weight=0), id="monitor-lw0"),
    pytest.param(MAIN + UNDER_TEST, fl("mon", loss_weight=None), sce("mon", loss_weight=0),
                 id="monitor-no-loss_weight-line"),
    pytest.param(MAIN + UNDER_TEST, fl("mon", gamma=2, loss_weight=0), "", id="monitor-gamma2-vs-no-monitor"),
]


@pytest.fixture(scope="module")
def hdf5_source(tmp_path_factory):
    import h5py
    folder = tmp_path_factory.mktemp("hdf5")
    rng = np.random.default_rng(3)
    path = folder / "data.h5"
    with h5py.File(path, "w") as f:
        f["x"] = rng.normal(size=(2 * BATCH, D)).astype(np.float32)
        f["label"] = (rng.uniform(size=(2 * BATCH, C)) < 0.4).astype(np.float32)
    source = folder / "data.txt"
    source.write_text(f"{path}\n")
    return source


def solver_net(source, losses):
    data = "".join(f'layer {{ name: "data_{phase.lower()}" type: "HDF5Data" top: "x" top: "label" '
                   f'include {{ phase: {phase} }} '
                   f'hdf5_data_param {{ source: "{source}" batch_size: {BATCH} }} }}\n'
                   for phase in ("TRAIN", "TEST"))
    return data + inner_product("fc", "x", "score", C) + losses


def make_solver(folder, name, net_text):
    net_path, solver_path = folder / f"{name}_net.prototxt", folder / f"{name}_solver.prototxt"
    net_path.write_text(net_text)
    solver_path.write_text(
        f'net: "{net_path}"\ntest_iter: 2\ntest_interval: 2\nbase_lr: 0.5\nlr_policy: "fixed"\n'
        f'momentum: 0.9\nweight_decay: 0.001\niter_size: 2\nmax_iter: 1000\ndisplay: 0\n'
        f'snapshot_prefix: "{folder / name}"\nrandom_seed: 7\nsolver_mode: CPU\n')
    caffe.set_mode_cpu()
    solver = caffe.SGDSolver(str(solver_path))
    set_params(solver.net)
    return solver


def weights(solver):
    return {f"{name}[{i}]": blob.data.copy() for name, blobs in solver.net.params.items()
            for i, blob in enumerate(blobs)}


def losses_of_test_net(solver):
    return {k: v.data.copy() for k, v in solver.test_nets[0].blobs.items()
            if k in ("main", "mon")}


def compare_solvers(role, focal_solver, twin_solver, start=None):
    got, want = weights(focal_solver), weights(twin_solver)
    assert got.keys() == want.keys()
    if start is not None:   # not vacuous: training moved the weights
        assert max(np.abs(want[k] - start[k]).max() for k in want) > 1e-2, f"[{role}] weights did not move"
    for key in got:
        compare(role, f"weights {key} after {twin_solver.iter} iterations", got[key], want[key])
    test_got, test_want = losses_of_test_net(focal_solver), losses_of_test_net(twin_solver)
    for key in test_got.keys() & test_want.keys():
        compare(role, f"TEST net output {key!r}", test_got[key].ravel(), test_want[key].ravel())


@pytest.mark.parametrize("body, focal_part, twin_part", SOLVER_CASES)
def test_solver_iter_size_2_with_test_net_matches_the_sce_twin(request, tmp_path, hdf5_source,
                                                                body, focal_part, twin_part):
    role = f"solver-iter_size-2/{request.node.callspec.id}"
    solvers = [make_solver(tmp_path, name, solver_net(hdf5_source, body.replace(UNDER_TEST, part)))
               for name, part in (("focal", focal_part), ("twin", twin_part))]
    start = weights(solvers[1])
    for solver in solvers:
        solver.step(4)
        assert solver.iter == 4
    compare_solvers(role, *solvers, start=start)


@pytest.mark.parametrize("body, focal_part, twin_part", [p for p in SOLVER_CASES if p.id != "monitor-no-loss_weight-line"])
def test_snapshot_restore_continue_matches_twin_and_uninterrupted_run(request, tmp_path, hdf5_source,
                                                                       body, focal_part, twin_part):
    role = f"snapshot-restore/{request.node.callspec.id}"
    resumed = {}
    for name, part in (("focal", focal_part), ("twin", twin_part)):
        text = solver_net(hdf5_source, body.replace(UNDER_TEST, part))
        first = make_solver(tmp_path, name, text)
        first.step(2)
        first.snapshot()
        state = tmp_path / f"{name}_iter_2.solverstate"
        assert state.exists(), f"[{role}] no snapshot at {state}"
        second = make_solver(tmp_path, name, text)    # fresh weights, overwritten by restore
        second.restore(str(state))
        assert second.iter == 2
        second.step(2)
        resumed[name] = second
        if name == "focal":
            uninterrupted = make_solver(tmp_path, name + "_straight", text)
            uninterrupted.step(4)
            compare_solvers(role + " (resumed focal net vs its uninterrupted run)", second, uninterrupted)
    compare_solvers(role + " (resumed focal net vs resumed twin)", resumed["focal"], resumed["twin"])
