"""FocalLossLayer under Caffe's command-line tool: a clean run, and each kind of bad input making
the tool exit non-zero with the layer's message in its output."""
import pytest
from caffe_nets import focal_layer, run_caffe_tool

from focal_loss_layer.check.nets import dummy_data
from focal_loss_layer.fast import PARALLEL_MIN_SIZE


def dummy_net(param_str, logits_value="0.5", labels_value="1", labels_shape=(2, 3),
              normalizer_value=None, logits_shape=(2, 3)):
    """DummyData fills the bottoms with constants, so `caffe time` can run the layer on them;
    with normalizer_value, a third top of one value feeds the layer's bottom[2]."""
    tops = [("score", logits_shape, logits_value), ("label", labels_shape, labels_value)]
    if normalizer_value is not None:
        tops.append(("fg_num", (1,), normalizer_value))
    return (dummy_data("data", [(top, shape, f'type: "constant" value: {value}')
                                for top, shape, value in tops])
            + focal_layer(param_str, bottoms=[top for top, _, _ in tops]))


def caffe_time(tmp_path, net_text):
    (tmp_path / "net.prototxt").write_text(net_text)
    return run_caffe_tool(["time", "--model=net.prototxt", "--iterations=1"], cwd=tmp_path)


@pytest.mark.parametrize("normalizer_value", [None, "4"])
def test_the_tool_runs_the_layer_forward_and_backward(tmp_path, normalizer_value):
    code, log = caffe_time(tmp_path, dummy_net("{'focusing_parameter': 1.5, 'alpha': 0.25}",
                                               normalizer_value=normalizer_value))
    assert code == 0, log[-3000:]
    assert "loss\tforward:" in log and "loss\tbackward:" in log


@pytest.mark.parametrize("net_args, message", [
    (dict(param_str="{'gamma': 2}"), "unknown param_str key 'gamma'"),
    (dict(param_str="{'normalization': 'mean'}"), "normalization = 'mean' is not allowed"),
    (dict(param_str="{'class_balances': [1, 2]}"), "class_balances has 2 weights but the logits have C=3"),
    (dict(param_str="__import__('os').getcwd()"), "is not a JSON object or Python dict literal"),
    (dict(param_str="", labels_shape=(2, 2)), "fits neither label form"),
    (dict(param_str="", labels_value="2"), "the first is 2.0 at index (0, 0): per-class targets must lie in [0, 1]"),
    (dict(param_str="", labels_value="7", labels_shape=(2,)), "class-index labels must be integers 0..3"),
    (dict(param_str="", logits_value="nan"), "holds 6 non-finite value(s) (NaN or ±inf); the first is nan at index (0, 0)"),
    (dict(param_str="", normalizer_value="-3"), "bottom[2] (normalizer) is -3.0; it must be a finite number >= 0"),
    (dict(param_str="{'normalization': 'valid'}", normalizer_value="2"), "normalization = 'valid' is not allowed with a third bottom"),
    (dict(param_str="{'num_anchors': 2}"), "which num_anchors = 2 does not divide"),
    (dict(param_str="{'ignore_label': 0}"), "ignore_label = 0 is not allowed with per-class targets"),
    # Edge inputs: a ParamError naming the key, not an OverflowError or a bare ValueError.
    (dict(param_str="{'focusing_parameter': 1" + "0" * 400 + "}"),
     "ParamError: focusing_parameter = <an integer of about 401 digits> is not allowed"),
    (dict(param_str="{'num_anchors': 1" + "0" * 400 + "}"),
     "ParamError: num_anchors = <an integer of about 401 digits> is not allowed"),
    (dict(param_str="{'class_balances': {'\u00b2': 1}}"),
     "ParamError: class_balances key '\u00b2' is not allowed: keys are class ids 1..C"),
    (dict(param_str="{'class_balances': {'1': 2, 1: 3}}"),
     "ParamError: class_balances gives class 1 two weights (keys '1' and 1)"),
])
def test_bad_input_makes_the_tool_exit_non_zero_with_the_message(tmp_path, net_args, message):
    code, log = caffe_time(tmp_path, dummy_net(**net_args))
    assert code != 0
    assert message in log, log[-3000:]


def test_a_bad_thread_count_in_the_environment_stops_the_tool_with_its_message(tmp_path,
                                                                              monkeypatch):
    """FOCAL_LOSS_NUM_THREADS is read on the first pass large enough to be split."""
    monkeypatch.setenv("FOCAL_LOSS_NUM_THREADS", "\u00b2")
    columns = PARALLEL_MIN_SIZE // 2
    code, log = caffe_time(tmp_path, dummy_net(
        "", logits_shape=(2, columns), labels_shape=(2, columns)))
    assert code != 0
    assert ("ParamError: FOCAL_LOSS_NUM_THREADS='\u00b2' is not allowed: it must be a whole "
            "number >= 1 in ASCII digits") in log, log[-3000:]
