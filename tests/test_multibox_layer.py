"""MultiBoxFocalLossLayer in real Caffe nets, as the package's other layers: the diff contract
(forward writes no diff; backward writes a bottom's diff only where propagate_down asks),
loss_weight honoured, a TEST net run backward, and every bad input an error naming it, under
pycaffe and under the `caffe` tool. (Its values against C++ MultiBoxLoss:
tests/test_multibox_twin.py.)"""
import caffe
import numpy as np
import pytest
from caffe_nets import run_caffe_tool

from focal_loss_layer.check.multibox_nets import (
    multibox_inputs,
    multibox_loss,
    multibox_net,
    random_inputs,
)
from focal_loss_layer.check.nets import dummy_data, input_layer, load_net, prototxt_string
from focal_loss_layer.errors import InputError

PRIORS, CLASSES, NUM = 60, 4, 3
SETTINGS = {"num_classes": CLASSES, "conf_loss_type": "LOGISTIC", "mining_type": "NONE",
            "focusing_parameter": 2, "alpha": 0.25}
SENTINEL = 7.0


def loaded(text, inputs, phase=None):
    """The net with its inputs set, forward run once: a Parameter layer's first forward resets
    its top's diff, which would hide what the loss does to it."""
    net = load_net(text, phase, cpu=True)
    loc, conf, priors, labels = inputs
    net.params["mbox_loc"][0].data[...] = loc
    net.params["mbox_conf"][0].data[...] = conf
    net.blobs["mbox_priorbox"].data[...] = priors
    net.blobs["label"].data[...] = labels
    net._forward(0, 1)          # the two Parameter layers only
    return net


@pytest.fixture
def inputs():
    return random_inputs(np.random.default_rng(3), NUM, PRIORS, CLASSES, boxes_per_image=(1, 3))


def net_text(inputs, settings=SETTINGS, **keywords):
    return multibox_net(NUM, PRIORS, CLASSES, inputs[3].shape[2], settings, python=True,
                        **keywords)


def gradients(net):
    net.forward()
    net.backward()
    return net.blobs["mbox_loc"].diff.copy(), net.blobs["mbox_conf"].diff.copy()


def test_forward_writes_no_diff(inputs):
    net = loaded(net_text(inputs), inputs)
    for name in ("mbox_loc", "mbox_conf", "mbox_priorbox", "label"):
        net.blobs[name].diff[...] = SENTINEL
    net.forward()
    for name in ("mbox_loc", "mbox_conf", "mbox_priorbox", "label"):
        assert np.all(net.blobs[name].diff == SENTINEL), name


def test_propagate_down_false_leaves_that_bottom_alone(inputs):
    text = net_text(inputs).replace("propagate_down: true propagate_down: true",
                                    "propagate_down: false propagate_down: true")
    net = loaded(text, inputs)
    net.blobs["mbox_loc"].diff[...] = SENTINEL
    net.forward()
    net.backward()
    assert np.all(net.blobs["mbox_loc"].diff == SENTINEL)
    assert np.abs(net.blobs["mbox_conf"].diff).max() > 0


def test_loss_weight_scales_both_gradients(inputs):
    loc, conf = gradients(loaded(net_text(inputs), inputs))
    loc2, conf2 = gradients(loaded(net_text(inputs, loss_weight=2.0), inputs))
    assert np.abs(loc).max() > 0 and np.abs(conf).max() > 0
    np.testing.assert_allclose(loc2, 2 * loc, rtol=1e-6)
    np.testing.assert_allclose(conf2, 2 * conf, rtol=1e-6)


def test_a_test_net_run_backward_gets_the_same_gradients_and_zeros_for_priors_and_labels(inputs):
    """force_backward asks for every bottom's gradient (C++ MultiBoxLoss aborts then): the
    priors and labels get zeros, the predictions the TRAIN net's gradients."""
    train = gradients(loaded(net_text(inputs), inputs))
    net = loaded("force_backward: true\n" + net_text(inputs), inputs, caffe.TEST)
    net.blobs["label"].diff[...] = SENTINEL
    test = gradients(net)
    np.testing.assert_allclose(test[0], train[0], rtol=1e-6)
    np.testing.assert_allclose(test[1], train[1], rtol=1e-6)
    assert np.all(net.blobs["label"].diff == 0)


@pytest.mark.parametrize("change, message", [
    (lambda x: x[3].__setitem__((0, 0, 0, 0), 9), r"bottom\[3\] \(labels\) row 0 .*image id 9"),
    (lambda x: x[1].__setitem__((0, 5), np.nan), r"bottom\[1\] \(mbox_conf\) holds 1 non-finite"),
    (lambda x: x[0].__setitem__((1, 2), np.inf), r"bottom\[0\] \(mbox_loc\) holds 1 non-finite"),
    (lambda x: x[2].__setitem__((0, 1, 7), 0), r"prior 1 has variances .* must be > 0"),
])
def test_bad_inputs_are_errors_that_name_them(inputs, change, message):
    inputs = tuple(np.array(x) for x in inputs)
    change(inputs)
    net = loaded(net_text(inputs), inputs)
    with pytest.raises(InputError, match=message):
        net.forward()


def test_priors_that_do_not_fit_the_predictions_are_an_error_at_set_up(inputs):
    rows = inputs[3].shape[2]
    text = multibox_inputs(NUM, PRIORS, CLASSES, rows).replace(
        input_layer("mbox_priorbox", (1, 2, PRIORS * 4)),
        input_layer("mbox_priorbox", (1, 2, (PRIORS + 1) * 4)))
    with pytest.raises(InputError, match=r"bottom\[0\] \(mbox_loc\) has shape \(3, 240\); with "
                                         r"61 priors it must be \(N, 244\)"):
        load_net(text + multibox_loss("loss", SETTINGS, python=True), cpu=True)


def test_the_caffe_tool_stops_on_a_bad_label_row_with_its_message(tmp_path):
    """DummyData fills the label rows with 5: image id 5 in a batch of 2."""
    priors = 8
    fillers = [("mbox_loc", (2, priors * 4), 'type: "gaussian" std: 1'),
               ("mbox_conf", (2, priors * CLASSES), 'type: "gaussian" std: 1'),
               ("mbox_priorbox", (1, 2, priors * 4), 'type: "uniform" min: 0.1 max: 0.2'),
               ("label", (1, 1, 2, 8), 'type: "constant" value: 5')]
    text = dummy_data("data", fillers) + (
        'layer { name: "loss" type: "Python" bottom: "mbox_loc" bottom: "mbox_conf" '
        'bottom: "mbox_priorbox" bottom: "label" top: "loss" python_param { '
        'module: "focal_loss_layer" layer: "MultiBoxFocalLossLayer" '
        f"param_str: {prototxt_string(str(dict(num_classes=CLASSES)))} }} loss_weight: 1 }}\n")
    (tmp_path / "net.prototxt").write_text(text)
    code, log = run_caffe_tool(["time", "--model=net.prototxt", "--iterations=1"], cwd=tmp_path)
    assert code != 0
    assert "row 0 [5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0]: its image id 5.0 is not an image" in log


def test_a_priors_blob_of_several_images_is_an_error_at_set_up(inputs):
    rows = inputs[3].shape[2]
    text = multibox_inputs(NUM, PRIORS, CLASSES, rows).replace(
        input_layer("mbox_priorbox", (1, 2, PRIORS * 4)),
        input_layer("mbox_priorbox", (2, 2, PRIORS * 4)))
    with pytest.raises(InputError, match=r"mbox_priorbox\) has shape \(2, 2, 240\); it must be "
                                         r"\(1, 2, P\*4\)"):
        load_net(text + multibox_loss("loss", SETTINGS, python=True), cpu=True)


@pytest.mark.parametrize("settings", [
    dict(SETTINGS, loc_weight=3e38), dict(SETTINGS, loc_weight=3e38, loc_loss_type="L2")])
def test_a_loc_weight_that_overflows_float32_names_the_cause(inputs, settings):
    net = loaded(net_text(inputs, settings), inputs)
    with pytest.raises(InputError, match="overflows float32: loc_weight 3e\\+38 times a box loss"):
        net.forward()


def test_a_monitor_with_loss_weight_0_leaves_the_bottoms_diffs_alone(inputs):
    """Caffe skips a loss_weight 0 layer's backward; the layer must not have written the diffs
    in forward (a Split would sum them into the weights): as C++ MultiBoxLoss, nothing moves."""
    for python in (True, False):
        net = loaded(multibox_net(NUM, PRIORS, CLASSES, inputs[3].shape[2],
                                  {k: v for k, v in SETTINGS.items()
                                   if python or k not in ("focusing_parameter", "alpha")},
                                  python=python, loss_weight=0), inputs)
        for name in ("mbox_loc", "mbox_conf"):
            net.blobs[name].diff[...] = SENTINEL
        net.forward()
        net.backward()
        for name in ("mbox_loc", "mbox_conf"):
            assert np.all(net.blobs[name].diff == SENTINEL), (python, name)


@pytest.mark.parametrize("conf_loss_type", ["SOFTMAX", "LOGISTIC"])
def test_the_gradients_match_central_differences_of_the_loss_in_caffe(inputs, conf_loss_type):
    """γ = 2, α = 0.25, loss_weight 1.7, without mining (whose choice of negatives moves with
    the predictions): the backward of the net against central differences of its forward, in
    float32 with Caffe's GradientChecker's step and threshold (1e-2, scaled by the larger
    gradient)."""
    settings = dict(SETTINGS, conf_loss_type=conf_loss_type, mining_type="NONE",
                    normalization="NONE")      # gradients of order 1: a 10 % error shows
    net = loaded(net_text(inputs, settings, loss_weight=1.7), inputs)
    loc, conf = gradients(net)
    rng = np.random.default_rng(0)
    for name, analytic in (("mbox_loc", loc), ("mbox_conf", conf)):
        param = net.params[name][0].data
        # loc: priors that matched (nonzero gradient) and some that did not
        picks = list(zip(*np.nonzero(analytic)))[:8] + [
            tuple(int(rng.integers(d)) for d in param.shape) for _ in range(8)]
        for index in picks:
            original = float(param[index])
            values = []
            for step in (1e-2, -1e-2):
                param[index] = original + step
                values.append(1.7 * net.forward()["mbox_loss"].item())
            param[index] = original
            numeric = (values[0] - values[1]) / 2e-2
            scale = max(abs(numeric), abs(float(analytic[index])), 1.0)
            assert abs(numeric - analytic[index]) <= 1e-2 * scale, (name, index, numeric,
                                                                      analytic[index])
