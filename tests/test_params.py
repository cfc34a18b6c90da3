"""param_str parsing, for both layers through their one parser: defaults, both syntaxes, class-id
bases, and an error naming the key for each bad value (the sigmoid-only keys named as such)."""
import os

import numpy as np
import pytest

from focal_loss_layer.errors import ParamError
from focal_loss_layer.params import (
    SOFTMAX_PARAM_KEYS,
    FocalLossParams,
    SoftmaxFocalLossParams,
    parse_param_str,
    parse_softmax_param_str,
)


@pytest.mark.parametrize("text", ["", "   ", "{}"])
@pytest.mark.parametrize("parse, defaults, normalization", [
    (parse_param_str, FocalLossParams(), "batch_size"),
    (parse_softmax_param_str, SoftmaxFocalLossParams(), "valid"),   # as SoftmaxWithLoss
], ids=["sigmoid", "softmax"])
def test_empty_means_all_defaults(text, parse, defaults, normalization):
    params = parse(text)
    assert params == defaults
    assert (params.focusing_parameter, params.alpha, params.normalization) == (2.0, None, normalization)
    assert params.ignore_label is None and getattr(params, "label_smoothing", 0.0) == 0.0
    np.testing.assert_array_equal(params.class_weights(3), [1, 1, 1])


def test_json_and_python_dict_literal_read_alike():
    json_text = ('{"focusing_parameter": 1.5, "alpha": 0.25, "normalization": "positives", '
                 '"ignore_label": -1, "label_smoothing": 0.1, "class_balances": [1, 2, 0.5]}')
    python_text = ("{'focusing_parameter': 1.5, 'alpha': 0.25, 'normalization': 'positives', "
                   "'ignore_label': -1, 'label_smoothing': 0.1, 'class_balances': (1, 2, 0.5)}")
    assert parse_param_str(json_text) == parse_param_str(python_text)


def test_focusing_parameter_is_never_truncated():
    assert parse_param_str("{'focusing_parameter': 0.5}").focusing_parameter == 0.5
    assert parse_param_str("{'focusing_parameter': 2.7}").focusing_parameter == 2.7


def test_class_balances_dict_accepts_int_and_string_ids_missing_classes_weigh_one():
    params = parse_param_str("{'class_balances': {1: 0.25, '3': 4}}")
    np.testing.assert_array_equal(params.class_weights(4), [0.25, 1, 4, 1])


def test_normalization_is_case_insensitive():
    assert parse_param_str("{'normalization': 'VALID'}").normalization == "valid"


SIGMOID_ERRORS = [
    ("{'gamma': 2}", "unknown param_str key 'gamma' (did you mean 'focusing_parameter'?)"),
    ("{'focusing_paramter': 2}", "did you mean 'focusing_parameter'"),
    ("{'focusing_parameter': -1}", "focusing_parameter = -1 is not allowed: focusing_parameter must be a finite number >= 0"),
    ("{'focusing_parameter': '2'}", "focusing_parameter = '2' is not allowed"),
    ("{'focusing_parameter': True}", "focusing_parameter = True is not allowed"),
    ('{"focusing_parameter": NaN}', "focusing_parameter = nan is not allowed"),
    ("{'alpha': 1.5}", "alpha = 1.5 is not allowed: alpha must be null/None (off) or a number in [0, 1]"),
    ("{'alpha': -0.1}", "alpha = -0.1 is not allowed"),
    ("{'normalization': 'mean'}", "normalization = 'mean' is not allowed: normalization must be one of 'batch_size', 'full', 'valid', 'positives', 'none'"),
    ("{'ignore_label': 2.5}", "ignore_label = 2.5 is not allowed: ignore_label must be an integer"),
    ("{'ignore_label': 'x'}", "ignore_label = 'x' is not allowed"),
    ("{'label_smoothing': 1}", "label_smoothing = 1 is not allowed: label_smoothing must be a number in [0, 1)"),
    ("{'label_smoothing': -0.2}", "label_smoothing = -0.2 is not allowed"),
    ("{'class_balances': [1, -2]}", "class_balances weight -2 for class 2 is not allowed: weights must be finite numbers >= 0"),
    ("{'class_balances': []}", "class_balances = [] is not allowed"),
    ("{'class_balances': 'x'}", "class_balances = 'x' is not allowed: class_balances must be a list"),
    ("{'class_balances': {0: 1}}", "class_balances key 0 is not allowed: keys are class ids 1..C"),
    ("{'class_balances': {'cat': 1}}", "class_balances key 'cat' is not allowed"),
    ("[2]", "param_str must be a dict of settings, got list"),
    ("focusing_parameter: 2", "is not a JSON object or Python dict literal"),
    ("{'focusing_parameter': 2", "is not a JSON object or Python dict literal"),
]
SOFTMAX_ERRORS = [
    ("{'gamma': 2}", "unknown param_str key 'gamma' (did you mean 'focusing_parameter'?); allowed "
                     "keys: focusing_parameter, class_balances, alpha, normalization, ignore_label"),
    ("{'ignore_index': 255}", "did you mean 'ignore_label'"),
    ("{'num_anchors': 9}", "param_str key 'num_anchors' is sigmoid-only (FocalLossLayer's "
                           "RetinaNet layout"),
    ("{'label_smoothing': 0.1}", "param_str key 'label_smoothing' is sigmoid-only"),
    ("{'normalization': 'positives'}", "normalization = 'positives' is not allowed for "
     "SoftmaxFocalLossLayer: 'positives' is sigmoid-only (FocalLossLayer divides by its count of "
     "positive targets; a softmax loss has one term per position, and 'valid' counts those, as "
     "SoftmaxWithLoss does): normalization must be one of 'valid', 'full', 'batch_size', 'none'"),
    ("{'normalization': 'mean'}", "normalization = 'mean' is not allowed: normalization must be "
                                  "one of 'valid', 'full', 'batch_size', 'none'"),
    ("{'focusing_parameter': -1}", "focusing_parameter = -1 is not allowed"),
    ("{'alpha': 1.5}", "alpha = 1.5 is not allowed: alpha must be null/None (off) or a number in "
                       "[0, 1]"),
    ("{'ignore_label': 2.5}", "ignore_label = 2.5 is not allowed: ignore_label must be an integer"),
    ("{'class_balances': [1, -2]}", "class_balances weight -2 for class 1 is not allowed"),
    ("{'class_balances': {-1: 1}}", "class_balances key -1 is not allowed: keys are class ids "
                                    "0..C-1 (ints or ASCII digit strings such as '3')"),
    ("{'class_balances': 'x'}", "class_balances must be a list of C weights or a dict "
                                "{class id 0..C-1: weight}"),
    ("focusing_parameter: 2", "is not a JSON object or Python dict literal"),
]


@pytest.mark.parametrize("parse, text, message",
                         [(parse_param_str, *case) for case in SIGMOID_ERRORS]
                         + [(parse_softmax_param_str, *case) for case in SOFTMAX_ERRORS])
def test_bad_param_str_names_the_key_and_what_is_allowed(parse, text, message):
    with pytest.raises(ParamError) as raised:
        parse(text)
    assert message in str(raised.value)


BIG = "1" + "0" * 400      # past float range: float() of it raises OverflowError
BOTH = pytest.mark.parametrize("parse", [parse_param_str, parse_softmax_param_str],
                               ids=["sigmoid", "softmax"])


@BOTH
@pytest.mark.parametrize("text, message", [
    pytest.param(f"{{'focusing_parameter': {BIG}}}", "focusing_parameter = <an integer of about "
                 "401 digits> is not allowed: focusing_parameter must be a finite number >= 0",
                 id="400-digit-focusing_parameter"),
    pytest.param(f"{{'ignore_label': {BIG}}}", "ignore_label = <an integer of about 401 digits> "
                 "is not allowed: ignore_label must be an integer (e.g. -1 or 255) in "
                 "-2147483648..2147483647", id="400-digit-ignore_label"),
    pytest.param(f'{{"ignore_label": -{BIG}}}', "ignore_label = <an integer of about 401 digits>",
                 id="400-digit-negative-ignore_label-json"),
    pytest.param("{'ignore_label': 2147483648}", "ignore_label = 2147483648 is not allowed",
                 id="ignore_label-past-int32"),
    pytest.param("{'ignore_label': 1e300}", "ignore_label = 1e+300 is not allowed",
                 id="ignore_label-float-past-int32"),
    pytest.param(f"{{'alpha': {BIG}}}", "alpha = <an integer of about 401 digits> is not "
                 "allowed: alpha must be null/None (off) or a number in [0, 1]",
                 id="400-digit-alpha"),
    pytest.param(f"{{'class_balances': [1, {BIG}]}}", "class_balances weight <an integer of "
                 "about 401 digits> for class", id="400-digit-weight-in-list"),
    pytest.param(f"{{'class_balances': {{'1': {BIG}}}}}", "class_balances weight <an integer of "
                 "about 401 digits> for class '1' is not allowed: weights must be finite numbers "
                 ">= 0", id="400-digit-weight-in-dict"),
    pytest.param("{'alpha': 0x" + "f" * 5000 + "}", "alpha = <an integer of about 6021 digits> "
                 "is not allowed", id="6021-digit-hex-alpha"),
    pytest.param("{'class_balances': {'\u00b2': 1}}", "class_balances key '\u00b2' is not allowed: keys "
                 "are class ids", id="superscript-two-key"),
    pytest.param('{"class_balances": {"\\u0663": 1}}', "class_balances key '\u0663' is not "
                 "allowed: keys are class ids", id="arabic-indic-three-key"),
    pytest.param(f"{{'class_balances': {{'{BIG}': 1}}}}", "class_balances key '1000000000",
                 id="400-digit-key"),
    pytest.param("{'class_balances': {'1': 2, 1: 3}}", "class_balances gives class 1 two weights "
                 "(keys '1' and 1): name each class id once", id="duplicate-id-str-and-int"),
    pytest.param("{'class_balances': {' 2': 2, '+02': 3}}", "class_balances gives class 2 two "
                 "weights (keys ' 2' and '+02')", id="duplicate-id-two-spellings"),
    pytest.param('{"class_balances": {"1": 2, "1": 3}}', "param_str gives the key '1' twice in "
                 "one dict", id="duplicate-key-json"),
    pytest.param("{'class_balances': {1: 2, 1: 3}}", "param_str gives the key 1 twice in one dict",
                 id="duplicate-key-python"),
    pytest.param("{'class_balances': {1: 2, True: 3}}", "param_str gives the key 1 twice in one "
                 "dict (the second time as True)", id="duplicate-key-1-and-True"),
    pytest.param('{"alpha": 0.25, "alpha": 0.75}', "param_str gives the key 'alpha' twice in one "
                 "dict: give each key once (otherwise the last would silently win)",
                 id="duplicate-setting-json"),
    pytest.param("{'alpha': 0.25, 'alpha': 0.75}", "param_str gives the key 'alpha' twice",
                 id="duplicate-setting-python"),
    pytest.param("[" * 100000, "is not a JSON object or Python dict literal",
                 id="deeply-nested"),
    pytest.param("{0x" + "f" * 5000 + ": 1}", "unknown param_str key <an integer of about 6021 "
                 "digits>; allowed keys:", id="6021-digit-key"),
    pytest.param("{'normalization': [0x" + "f" * 5000 + "]}", "normalization = <a list too "
                 "large to show> is not allowed", id="list-holding-a-6021-digit-int"),
    pytest.param("{'class_balances': {(0x" + "f" * 5000 + ",): 1}}", "class_balances key <a "
                 "tuple too large to show> is not allowed", id="tuple-key-holding-a-6021-digit-int"),
])
def test_edge_inputs_get_a_param_error_naming_the_key(parse, text, message):
    """No OverflowError, bare ValueError or RecursionError, and no silent choice between two
    values given for one key."""
    with pytest.raises(ParamError) as raised:
        parse(text)
    assert message in str(raised.value)


@pytest.mark.parametrize("text, message", [
    (f"{{'num_anchors': {BIG}}}", "num_anchors = <an integer of about 401 digits> is not "
     "allowed: num_anchors must be a whole number >= 1 and <= 2147483647"),
    (f"{{'label_smoothing': {BIG}}}", "label_smoothing = <an integer of about 401 digits> is not "
     "allowed: label_smoothing must be a number in [0, 1)"),
], ids=["400-digit-num_anchors", "400-digit-label_smoothing"])
def test_edge_inputs_of_sigmoid_only_keys_get_a_param_error(text, message):
    with pytest.raises(ParamError) as raised:
        parse_param_str(text)
    assert message in str(raised.value)


@BOTH
def test_class_ids_may_be_spelled_with_spaces_plus_or_leading_zeros(parse):
    params = parse("{'class_balances': {' 2': 0.5, '+3': 2, '0004': 3}}")
    weights = params.class_weights(5)
    base = params.CLASS_ID_BASE
    np.testing.assert_array_equal(weights[[2 - base, 3 - base, 4 - base]], [0.5, 2, 3])
    assert np.count_nonzero(weights == 1) == 2


@BOTH
def test_largest_int32_ignore_label_and_anchor_count_are_allowed(parse):
    assert parse("{'ignore_label': 2147483647}").ignore_label == 2147483647
    assert parse("{'ignore_label': -2147483648.0}").ignore_label == -2147483648
    assert parse_param_str("{'num_anchors': 2147483647}").num_anchors == 2147483647


@pytest.mark.parametrize("parse, balances, classes, message", [
    (parse_param_str, "[1, 2]", 3, "class_balances has 2 weights but the logits have C=3 classes "
     "(bottom[0] axis 1): give one weight per class, or a dict {class id 1..3: weight}"),
    (parse_param_str, "{4: 2}", 3, "class_balances names class id 4, but class ids run 1..3 "
     "(C=3 classes in bottom[0] axis 1; 0 is background)"),
    (parse_softmax_param_str, "[1, 2]", 3, "class_balances has 2 weights but the logits have C=3 "
     "classes (bottom[0] axis 1): give one weight per class, or a dict {class id 0..2: weight}"),
    (parse_softmax_param_str, "{3: 2}", 3, "class_balances names class id 3, but class ids run "
     "0..2 (C=3 classes in bottom[0] axis 1)"),
])
def test_class_balances_checked_against_the_class_count(parse, balances, classes, message):
    params = parse("{'class_balances': %s}" % balances)
    with pytest.raises(ParamError) as raised:
        params.class_weights(classes)
    assert str(raised.value) == message


def test_softmax_keys_are_the_ones_that_apply_to_one_label_per_position():
    assert set(SOFTMAX_PARAM_KEYS) == {"focusing_parameter", "alpha", "class_balances",
                                       "normalization", "ignore_label"}


def test_class_ids_run_from_one_for_the_sigmoid_layer_and_from_zero_for_the_softmax_layer():
    text = "{'class_balances': {1: 5, '2': 3}}"
    np.testing.assert_array_equal(parse_param_str(text).class_weights(3), [5, 3, 1])
    np.testing.assert_array_equal(parse_softmax_param_str(text).class_weights(3), [1, 5, 3])
    np.testing.assert_array_equal(
        parse_softmax_param_str("{'class_balances': {0: 0.25}}").class_weights(2), [0.25, 1])


def test_code_in_param_str_is_rejected_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    for text in (f"__import__('os').system('touch {marker}')",
                 f"{{'alpha': __import__('os').system('touch {marker}')}}",
                 f"{{'alpha': (lambda: open('{marker}', 'w'))()}}"):
        with pytest.raises(ParamError, match="not a JSON object or Python dict literal"):
            parse_param_str(text)
    assert not os.path.exists(marker)
