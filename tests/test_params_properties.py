"""Property tests of the param_str parser (focal_loss_layer.params), both layers: on any text, and
on any JSON-, Python- or YAML-style rendering of random dicts (duplicate keys, huge integers,
non-ASCII digits, NaN, nesting), it returns valid settings or raises ParamError, never another
error; what it accepts is valid; valid settings parse to exactly what they say, in both syntaxes.

Deterministic: derandomize=True (examples from a fixed seed, the same in CI), no example database.
"""
import json
import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from focal_loss_layer.errors import ParamError
from focal_loss_layer.params import (
    INT32_MAX,
    INT32_MIN,
    NORMALIZATIONS,
    PARAM_KEYS,
    SOFTMAX_NORMALIZATIONS,
    SOFTMAX_PARAM_KEYS,
    FocalLossParams,
    SoftmaxFocalLossParams,
    parse_param_str,
    parse_softmax_param_str,
)

PARSERS = {"sigmoid": (parse_param_str, FocalLossParams, NORMALIZATIONS),
           "softmax": (parse_softmax_param_str, SoftmaxFocalLossParams, SOFTMAX_NORMALIZATIONS)}
FAST = settings(derandomize=True, database=None, deadline=None, max_examples=300,
                suppress_health_check=[HealthCheck.too_slow])


def outcome(parse, text):
    """parse(text), or the string 'ParamError' if it raised one; any other error propagates and
    fails the test. A ParamError's message must stay readable: short, whatever the input."""
    try:
        return parse(text)
    except ParamError as error:
        assert 0 < len(str(error)) < 1000, str(error)
        return "ParamError"


def assert_valid(params, layer):
    """Whatever the parser accepts is a setting the layer can run with."""
    _, params_type, normalizations = PARSERS[layer]
    assert type(params) is params_type
    assert math.isfinite(params.focusing_parameter) and params.focusing_parameter >= 0
    assert params.alpha is None or 0 <= params.alpha <= 1
    assert params.normalization in normalizations
    assert params.ignore_label is None or (
        type(params.ignore_label) is int and INT32_MIN <= params.ignore_label <= INT32_MAX)
    if layer == "sigmoid":
        assert 0 <= params.label_smoothing < 1
        assert type(params.num_anchors) is int and 1 <= params.num_anchors <= INT32_MAX
    if params.class_balances is not None:
        weights = ([w for _, w in params.class_balances] if params.class_balances_by_id
                   else list(params.class_balances))
        # A list needs one weight per class; an empty dict changes no class (every weight 1).
        assert weights or params.class_balances_by_id
        assert all(type(w) is float and math.isfinite(w) and w >= 0 for w in weights)
        if params.class_balances_by_id:
            ids = [class_id for class_id, _ in params.class_balances]
            assert len(set(ids)) == len(ids)
            assert all(type(i) is int and params.CLASS_ID_BASE <= i <= INT32_MAX for i in ids)


# ---------------------------------------------------------------- any text

# Characters the parser cares about, so that random text often gets past the first brace.
SYNTAX = st.sampled_from(list("{}[]():,'\" -+.eE0123456789²٣\n\\") + list(PARAM_KEYS)
                         + ["NaN", "Infinity", "None", "null", "True", "0x", "1" * 30])


@FAST
@given(text=st.one_of(st.text(), st.lists(SYNTAX, max_size=25).map("".join)))
def test_any_text_parses_or_is_a_param_error(text):
    for layer, (parse, _, _) in PARSERS.items():
        result = outcome(parse, text)
        if result != "ParamError":
            assert_valid(result, layer)


# ---------------------------------------------------------------- random dicts, three syntaxes

HUGE = st.integers(min_value=-10 ** 450, max_value=10 ** 450)
INTEGERS = st.one_of(st.integers(-3, 12), HUGE,
                     st.sampled_from([INT32_MAX, INT32_MAX + 1, INT32_MIN, INT32_MIN - 1]))
SCALARS = st.one_of(st.none(), st.booleans(), INTEGERS, st.floats(), st.text(max_size=6),
                    st.sampled_from(NORMALIZATIONS).map(str.upper))
# Class-id-like keys: ints, digit strings with spaces, signs, leading zeros or non-ASCII digits.
CLASS_KEYS = st.one_of(INTEGERS, st.from_regex(r"\s?[+-]?0?[0-9²٣]{1,3}\s?", fullmatch=True),
                       st.text(max_size=4))
VALUES = st.recursive(SCALARS, lambda children: st.one_of(
    st.lists(children, max_size=4),
    st.lists(st.tuples(CLASS_KEYS, children), max_size=4).map(lambda pairs: ("dict", pairs))),
    max_leaves=8)
TOP_KEYS = st.one_of(st.sampled_from(sorted(set(PARAM_KEYS) | set(SOFTMAX_PARAM_KEYS))),
                     st.sampled_from(["gamma", "ignore_index", "anchors", "normalize"]),
                     st.text(max_size=8))
# A dict as a list of (key, value) pairs, so that a key may come twice, as it can in text.
SETTINGS = st.lists(st.tuples(TOP_KEYS, VALUES), max_size=6)


def as_json(value):
    """JSON text; dict keys become strings, as JSON has them (duplicates kept)."""
    if isinstance(value, tuple) and value[:1] == ("dict",):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {as_json(v)}" for k, v in value[1]) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(as_json(v) for v in value) + "]"
    return json.dumps(value)


def as_python(value):
    """Python literal text (a dict literal may repeat a key; nan and inf are not literals)."""
    if isinstance(value, tuple) and value[:1] == ("dict",):
        return "{" + ", ".join(f"{k!r}: {as_python(v)}" for k, v in value[1]) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(as_python(v) for v in value) + "]"
    return repr(value)


def as_yaml(pairs):
    """YAML-style 'key: value' lines, which the parser does not read."""
    return "\n".join(f"{k}: {as_json(v)}" for k, v in pairs)


@FAST
@given(pairs=SETTINGS)
def test_random_dicts_in_json_python_and_yaml_syntax_parse_or_are_a_param_error(pairs):
    top = ("dict", pairs)
    for layer, (parse, _, _) in PARSERS.items():
        results = [outcome(parse, text) for text in (as_json(top), as_python(top), as_yaml(pairs))]
        for result in results:
            if result != "ParamError":
                assert_valid(result, layer)


@FAST
@given(pairs=st.lists(st.tuples(st.sampled_from(["class_balances"]), VALUES), min_size=1,
                      max_size=2))
def test_random_class_balances_parse_or_are_a_param_error(pairs):
    """The same, aimed at class_balances, the key with the most structure."""
    for layer, (parse, _, _) in PARSERS.items():
        for text in (as_json(("dict", pairs)), as_python(("dict", pairs))):
            result = outcome(parse, text)
            if result != "ParamError":
                assert_valid(result, layer)


# ---------------------------------------------------------------- valid settings parse exactly

def class_id_spelling(class_id):
    """Ways to write a class id as a dict key: the int, or a digit string with spaces, a plus
    sign or leading zeros."""
    return st.sampled_from([class_id, str(class_id), f" {class_id}", f"+{class_id}",
                            f"00{class_id}"])


@st.composite
def valid_settings(draw, layer):
    """(settings as a {key: value} dict to render, what each key must parse to)."""
    base = PARSERS[layer][1].CLASS_ID_BASE
    settings_, expected = {}, {}

    def maybe(key, strategy, expect=lambda v: v):
        if draw(st.booleans()):
            value = draw(strategy)
            settings_[key], expected[key] = value, expect(value)

    maybe("focusing_parameter", st.floats(0, 1e6) | st.integers(0, 10 ** 6), float)
    maybe("alpha", st.none() | st.floats(0, 1))
    maybe("normalization", st.tuples(st.sampled_from(PARSERS[layer][2]),
                                     st.sampled_from([str.lower, str.upper, str.title])
                                     ).map(lambda pair: pair[1](pair[0])), str.lower)
    maybe("ignore_label", st.none() | st.integers(INT32_MIN, INT32_MAX)
          | st.integers(-2 ** 24, 2 ** 24).map(float), lambda v: None if v is None else int(v))
    if layer == "sigmoid":
        maybe("label_smoothing", st.floats(0, 1, exclude_max=True))
        maybe("num_anchors", st.integers(1, INT32_MAX) | st.integers(1, 64).map(float), int)
    if draw(st.booleans()):
        weights = draw(st.lists(st.floats(0, 1e30) | st.integers(0, 10 ** 6), min_size=1,
                                max_size=6))
        settings_["class_balances"] = weights
        expected["class_weights"] = (len(weights), [float(w) for w in weights])
    else:
        ids = draw(st.lists(st.integers(base, base + 7), unique=True, max_size=5))
        if ids:
            weights = {draw(class_id_spelling(i)): draw(st.floats(0, 1e30)) for i in ids}
            settings_["class_balances"] = weights
            by_id = dict(zip(ids, weights.values()))
            count = max(ids) - base + 1
            expected["class_weights"] = (count, [by_id.get(c + base, 1.0) for c in range(count)])
    return settings_, expected


def check_parsed(params, expected):
    for key, value in expected.items():
        if key == "class_weights":
            count, weights = value
            np.testing.assert_array_equal(params.class_weights(count), weights)
        else:
            assert getattr(params, key) == value, key
    if "normalization" in expected:
        assert params.normalization_given


@FAST
@given(data=st.data())
def test_valid_settings_parse_to_what_they_say_in_json_and_python_syntax(data):
    for layer, (parse, _, _) in PARSERS.items():
        settings_, expected = data.draw(valid_settings(layer), label=layer)
        for text in (json.dumps(settings_), repr(settings_)):
            params = parse(text)
            assert_valid(params, layer)
            check_parsed(params, expected)
