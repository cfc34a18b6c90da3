"""The prototxt converter (focal_loss_layer.convert) and its tolerant reader (prototxt_text): the
text written for each layer type, every other byte unchanged, the forks' gamma and alpha carried
over with their semantics (the converted SoftmaxFocalLossLayer nets run in Caffe against the
forks' own formulas), the output parsed by caffe_pb2, and errors naming line and column.
The MultiBoxLoss twin (C++ against the converted net in caffe.Net) is tests/test_convert_twin.py."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from caffe.proto import caffe_pb2
from caffe_nets import load_net
from google.protobuf import text_format

from focal_loss_layer import convert as conv
from focal_loss_layer.prototxt_text import (
    MAX_DEPTH,
    PrototxtSyntaxError,
    decode_string,
    parse,
    quote_string,
    top_level_layers,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "convert_fixtures")

# fixture, converted layer's name, old type, new layer, param_str, loss_weight
FIXTURE_CASES = [
    ("ssd_multibox.prototxt", "mbox_loss", "MultiBoxLoss", "MultiBoxFocalLossLayer",
     {"focusing_parameter": 0, "normalization": "VALID", "loc_loss_type": "SMOOTH_L1",
      "conf_loss_type": "SOFTMAX", "loc_weight": 1.0, "num_classes": 21, "share_location": True,
      "match_type": "PER_PREDICTION", "overlap_threshold": 0.5, "use_prior_for_matching": True,
      "background_label_id": 0, "use_difficult_gt": True, "neg_pos_ratio": 3.0, "neg_overlap": 0.5,
      "code_type": "CENTER_SIZE", "ignore_cross_boundary_bbox": False, "mining_type": "MAX_NEGATIVE"}, 1.0),
    # chuanqi305's alpha multiplies the conf loss alone: loss_weight × α, loc_weight ÷ α
    ("chuanqi_multibox_focal.prototxt", "mbox_loss", "MultiBoxFocalLoss", "MultiBoxFocalLossLayer",
     {"focusing_parameter": 2.0, "normalization": "VALID", "loc_loss_type": "SMOOTH_L1",
      "conf_loss_type": "SOFTMAX", "loc_weight": 4.0, "num_classes": 21, "share_location": True,
      "match_type": "PER_PREDICTION", "overlap_threshold": 0.5, "use_prior_for_matching": True,
      "background_label_id": 0, "use_difficult_gt": True, "neg_pos_ratio": 3.0, "neg_overlap": 0.5,
      "code_type": "CENTER_SIZE", "ignore_cross_boundary_bbox": False, "mining_type": "NONE"}, 0.25),
    ("chuanqi_focal.prototxt", "loss", "FocalLoss", "SoftmaxFocalLossLayer",
     {"focusing_parameter": 2, "normalization": "valid", "ignore_label": 255}, 0.25),
    ("zimenglan_focal.prototxt", "loss_cls", "FocalLoss", "SoftmaxFocalLossLayer",
     {"focusing_parameter": 2, "normalization": "valid", "ignore_label": -1}, 0.25),
    # the first version (gama) never used alpha
    ("zimenglan_first_focal.prototxt", "loss", "FocalLoss", "SoftmaxFocalLossLayer",
     {"focusing_parameter": 2, "normalization": "valid", "ignore_label": -1}, 1.0),
]


def fixture_text(name):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as f:
        return f.read()


def net_parameter(text):
    net = caffe_pb2.NetParameter()
    text_format.Merge(text, net)
    return net


def layer_named(net, name):
    (layer,) = [layer for layer in net.layer if layer.name == name]
    return layer


def outside(text, names):
    """The text between (and around) the { ... } of the named top-level layers."""
    pieces, at = [], 0
    for entry in top_level_layers(parse(text)):
        name = entry.value.first("name")
        if name is not None and name.value.value() in names:
            pieces.append(text[at:entry.value.start])
            at = entry.value.end
    return pieces + [text[at:]]


# ---- the reader -----------------------------------------------------------------------------

def test_reader_finds_the_layers_text_format_finds():
    text = fixture_text("ssd_multibox.prototxt")
    mine = [(e.value.first("name").value.value(), e.value.first("type").value.value())
            for e in top_level_layers(parse(text))]
    assert mine == [(layer.name, layer.type) for layer in net_parameter(text).layer]


def test_strings_decode_as_protobuf_decodes_them():
    literal = r'''"a\"b\\c\n\t\x41\101\303\251" 'it\'s' "é"'''
    net = net_parameter(f"name: {literal}")
    (entry,) = parse(f"name: {literal}").entries
    assert entry.value.value() == net.name == 'a"b\\c\n\tAAéit\'sé'
    assert decode_string(r'"\x4"') == "\x04"
    # \u as protobuf's C++ parser (Caffe's) reads it: the code point in UTF-8 (Python's
    # text_format reads it as Latin-1 and then fails on the bytes)
    assert decode_string(r'"\u00e9\U0001F600\?"') == "é\U0001F600?"


@pytest.mark.parametrize("value", ["plain", "it's", 'say "hi"', "back\\slash", "two\nlines",
                                   "tab\tand\x01", "é ünïcödé", '{"k": "v\\"w"}'])
def test_quoted_strings_read_back_as_written(value):
    text = f"name: {quote_string(value)}"
    assert net_parameter(text).name == value
    assert parse(text).entries[0].value.value() == value


def test_syntax_the_reader_accepts():
    text = """# comment with { braces } and "quotes"
layer < name: 'a#b' ; type: "X", >
layer: { bottom: ["x", "y"] top: "z" }   # optional ':' before '{'; a list
layer { name: "n" include { min_level: 0x10 } param { lr_mult: -1.5e-3 } param { lr_mult: .5f } }
"""
    net = net_parameter(text)
    layers = top_level_layers(parse(text))
    assert [e.value.first("name").value.value() for e in (layers[0], layers[2])] == ["a#b", "n"]
    assert [net.layer[0].name, list(net.layer[1].bottom), net.layer[2].include[0].min_level,
            net.layer[2].param[0].lr_mult] == ["a#b", ["x", "y"], 16, pytest.approx(-1.5e-3)]
    params = layers[2].value.all("param")
    assert [layers[2].value.first("include").value.first("min_level").value.value(),
            params[0].value.first("lr_mult").value.value(),
            params[1].value.first("lr_mult").value.value()] == [16, -1.5e-3, 0.5]


@pytest.mark.parametrize("text, line, column, says", [
    ('layer {\n  name: "x"\n', 3, 1, "expected a field name or '}', found the end of the text"),
    ('layer {\n  name: "x\n}\n', 2, 9, "string literal not closed on its line"),
    ("layer {\n  name: 1.2.3\n}", 2, 9, "malformed number '1.2.3'"),
    ("layer {\n  @\n}", 2, 3, "unexpected character '@'"),
    ("}", 1, 1, "expected a field name, found '}'"),
    ('name: "a\\q"', 1, 9, "invalid escape sequence \\q"),
    ("layer { name: }", 1, 15, "expected a value (a string, number or name), found '}'"),
    ("layer { name \"x\" }", 1, 14, "expected ':' or '{' after field name 'name'"),
    ("a: [1, 2", 1, 9, "expected ',' or ']' in a list, found the end of the text"),
    ('a: "\\U00110000"', 1, 5, "beyond Unicode's last code point"),
    ("a: 1\nnamé: 2", 2, 4, "unexpected character 'é'"),
    ("a: \u0663", 1, 4, "unexpected character"),     # a non-ASCII digit
])
def test_syntax_errors_name_line_and_column(text, line, column, says):
    with pytest.raises(PrototxtSyntaxError) as raised:
        parse(text)
    assert (raised.value.line, raised.value.column) == (line, column)
    assert says in str(raised.value)
    assert str(raised.value).startswith(f"line {line}, column {column}: ")


def test_deep_nesting_is_an_error_not_a_crash():
    depth = MAX_DEPTH + 5
    with pytest.raises(PrototxtSyntaxError, match=f"nested deeper than {MAX_DEPTH}"):
        parse("a " + "{ a " * depth + "}" * depth)


# ---- what the converter writes --------------------------------------------------------------

SMALL_SSD = """layer { name: "data" type: "Input" top: "data" }  # before
layer {
  name: "mbox_loss"
  type: "MultiBoxLoss"   # SSD's loss
  bottom: "mbox_loc"
  bottom: "mbox_conf"
  bottom: "mbox_priorbox"
  bottom: "label"
  top: "mbox_loss"
  include { phase: TRAIN }
  propagate_down: true
  propagate_down: true
  propagate_down: false
  propagate_down: false
  loss_param {
    normalization: VALID
  }
  multibox_loss_param {
    num_classes: 21
    mining_type: MAX_NEGATIVE
  }
}
# after
"""

SMALL_SSD_CONVERTED = """layer { name: "data" type: "Input" top: "data" }  # before
layer {
  name: "mbox_loss"
  type: "Python"   # SSD's loss
  bottom: "mbox_loc"
  bottom: "mbox_conf"
  bottom: "mbox_priorbox"
  bottom: "label"
  top: "mbox_loss"
  include { phase: TRAIN }
  propagate_down: true
  propagate_down: true
  propagate_down: false
  propagate_down: false
  python_param {
    module: "focal_loss_layer"
    layer: "MultiBoxFocalLossLayer"
    param_str: '{"focusing_parameter": 0, "normalization": "VALID", "num_classes": 21, '
               '"mining_type": "MAX_NEGATIVE"}'
  }
  loss_weight: 1
}
# after
"""


def test_multibox_loss_text():
    assert conv.convert_text(SMALL_SSD).text == SMALL_SSD_CONVERTED


def test_one_line_layer_text():
    text = ('layer { name: "l" type: "MultiBoxLoss" bottom: "a" bottom: "b" bottom: "c" bottom: "d" '
            'top: "l" multibox_loss_param { num_classes: 2 } loss_param { normalize: false } }\n')
    assert conv.convert_text(text).text == (
        'layer { name: "l" type: "Python" bottom: "a" bottom: "b" bottom: "c" bottom: "d" top: "l" '
        'python_param { module: "focal_loss_layer" layer: "MultiBoxFocalLossLayer" param_str: '
        '\'{"focusing_parameter": 0, "normalization": "BATCH_SIZE", "num_classes": 2}\' } '
        'loss_weight: 1 }\n')


TABS = 'layer {\n\tname: "l"\n\ttype: "MultiBoxLoss"\n\t# settings\n\tloss_param { normalize: true }  # old\n' \
    '\tmultibox_loss_param {\n\t\tnum_classes: 2\n\t}\n}\n'
TABS_CONVERTED = ('layer {\n\tname: "l"\n\ttype: "Python"\n\t# settings\n\tpython_param {\n'
                  '\t\tmodule: "focal_loss_layer"\n\t\tlayer: "MultiBoxFocalLossLayer"\n'
                  '\t\tparam_str: \'{"focusing_parameter": 0, "normalization": "VALID", "num_classes": 2}\'\n'
                  '\t}\n\tloss_weight: 1\n}\n')


def test_tab_indented_layer_is_written_with_tabs():
    assert conv.convert_text(TABS).text == TABS_CONVERTED


CHUANQI_FOCAL_CONVERTED = """layer {
  name: "loss"
  type: "Python"
  bottom: "score"
  bottom: "label"
  top: "loss"
  python_param {
    module: "focal_loss_layer"
    layer: "SoftmaxFocalLossLayer"
    param_str: '{"focusing_parameter": 2, "normalization": "valid", "ignore_label": 255}'
  }
  loss_weight: 0.25
}"""

CHUANQI_MULTIBOX_CONVERTED = """layer {
  name: "mbox_loss"
  type: "Python" #change the type
  bottom: "mbox_loc"
  bottom: "mbox_conf"
  bottom: "mbox_priorbox"
  bottom: "label"
  top: "mbox_loss"
  include {
    phase: TRAIN
  }
  propagate_down: true
  propagate_down: true
  propagate_down: false
  propagate_down: false
  python_param {
    module: "focal_loss_layer"
    layer: "MultiBoxFocalLossLayer"
    param_str: '{"focusing_parameter": 2.0, "normalization": "VALID", '
               '"loc_loss_type": "SMOOTH_L1", "conf_loss_type": "SOFTMAX", "loc_weight": 4.0, '
               '"num_classes": 21, "share_location": true, "match_type": "PER_PREDICTION", '
               '"overlap_threshold": 0.5, "use_prior_for_matching": true, '
               '"background_label_id": 0, "use_difficult_gt": true, "neg_pos_ratio": 3.0, '
               '"neg_overlap": 0.5, "code_type": "CENTER_SIZE", '
               '"ignore_cross_boundary_bbox": false, "mining_type": "NONE"}'
  }
  loss_weight: 0.25
}"""

ZIMENGLAN_CONVERTED = """layer {
  name: "loss_cls"
  type: "Python"
  bottom: "cls_score"
  bottom: "labels"
  propagate_down: 1
  propagate_down: 0
  top: "loss_cls"
  include { phase: TRAIN }
  loss_weight: 0.25
  python_param {
    module: "focal_loss_layer"
    layer: "SoftmaxFocalLossLayer"
    param_str: '{"focusing_parameter": 2, "normalization": "valid", "ignore_label": -1}'
  }
}"""


@pytest.mark.parametrize("fixture, name, expected", [
    ("chuanqi_focal.prototxt", "loss", CHUANQI_FOCAL_CONVERTED),
    ("chuanqi_multibox_focal.prototxt", "mbox_loss", CHUANQI_MULTIBOX_CONVERTED),
    ("zimenglan_focal.prototxt", "loss_cls", ZIMENGLAN_CONVERTED),
])
def test_fork_layer_text(fixture, name, expected):
    converted = conv.convert_text(fixture_text(fixture)).text
    (entry,) = [e for e in top_level_layers(parse(converted))
                if e.value.first("name").value.value() == name]
    assert converted[entry.start:entry.end] == expected


@pytest.mark.parametrize("fixture, name, old_type, layer, params, loss_weight", FIXTURE_CASES)
def test_fixture_converted_settings_and_every_other_byte(fixture, name, old_type, layer, params, loss_weight):
    text = fixture_text(fixture)
    conversion = conv.convert_text(text)
    assert outside(conversion.text, {name}) == outside(text, {name})
    assert len(conversion.text) != len(text)
    (rewrite,) = conversion.rewrites
    assert (rewrite.name, rewrite.old_type, rewrite.layer) == (name, old_type, layer)
    # the output is a net the local caffe.proto reads: the fork fields moved into param_str
    converted = layer_named(net_parameter(conversion.text), name)
    assert converted.type == "Python"
    assert (converted.python_param.module, converted.python_param.layer) == ("focal_loss_layer", layer)
    assert json.loads(converted.python_param.param_str) == params
    assert list(converted.loss_weight) == [pytest.approx(loss_weight)]
    assert not converted.HasField("loss_param")


@pytest.mark.parametrize("fixture", ["chuanqi_multibox_focal.prototxt", "chuanqi_focal.prototxt",
                                     "zimenglan_focal.prototxt", "zimenglan_first_focal.prototxt"])
def test_fork_inputs_do_not_parse_locally_their_outputs_do(fixture):
    text = fixture_text(fixture)
    with pytest.raises(text_format.ParseError, match="focal_loss_param"):
        net_parameter(text)
    net_parameter(conv.convert_text(text).text)


def test_kept_fields_of_the_layer():
    text = fixture_text("ssd_multibox.prototxt")
    original = layer_named(net_parameter(text), "mbox_loss")
    converted = layer_named(net_parameter(conv.convert_text(text).text), "mbox_loss")
    for kept in ("name", "bottom", "top", "include", "exclude", "propagate_down"):
        assert getattr(converted, kept) == getattr(original, kept), kept
    assert list(converted.propagate_down) == [True, True, False, False]


MULTIBOX_EVERY_FIELD = """layer {
  name: "loss" type: "MultiBoxLoss" top: "loss"
  loss_weight: 2
  loss_param { normalization: 2 ignore_label: 7 }
  multibox_loss_param {
    loc_loss_type: 0
    conf_loss_type: LOGISTIC
    loc_weight: 1
    num_classes: 3
    share_location: 1
    match_type: 0
    overlap_threshold: .5
    use_prior_for_matching: True
    background_label_id: 0
    use_difficult_gt: f
    do_neg_mining: false
    neg_pos_ratio: 3
    neg_overlap: 0.5f
    code_type: 2
    encode_variance_in_target: false
    map_object_to_agnostic: false
    ignore_cross_boundary_bbox: t
    bp_inside: false
    mining_type: NONE
    nms_param { nms_threshold: 0.45 top_k: 400 }
    sample_size: 64
    use_prior_for_nms: false
    some_future_field: SOMETHING
  }
}
"""


def test_every_multibox_field_carried_under_its_name():
    conversion = conv.convert_text(MULTIBOX_EVERY_FIELD)
    layer = layer_named(net_parameter(conversion.text.replace("    some_future_field: SOMETHING\n", "")),
                        "loss")
    params = json.loads(layer.python_param.param_str)
    assert params == {
        "focusing_parameter": 0, "normalization": "BATCH_SIZE",
        "loc_loss_type": "L2", "conf_loss_type": "LOGISTIC", "loc_weight": 1, "num_classes": 3,
        "share_location": True, "match_type": "BIPARTITE", "overlap_threshold": 0.5,
        "use_prior_for_matching": True, "background_label_id": 0, "use_difficult_gt": False,
        "do_neg_mining": False, "neg_pos_ratio": 3, "neg_overlap": 0.5, "code_type": "CENTER_SIZE",
        "encode_variance_in_target": False, "map_object_to_agnostic": False,
        "ignore_cross_boundary_bbox": True, "bp_inside": False, "mining_type": "NONE",
        "nms_param": {"nms_threshold": 0.45, "top_k": 400}, "sample_size": 64,
        "use_prior_for_nms": False, "some_future_field": "SOMETHING"}
    # its own loss_weight kept, not a second one added; ignore_label is not MultiBoxLoss's
    assert list(layer.loss_weight) == [2]
    (rewrite,) = conversion.rewrites
    assert any("loss_param ignore_label: not read by MultiBoxLoss; dropped" in n for n in rewrite.notes)
    assert rewrite.warnings and "EncodeConfPrediction" in rewrite.warnings[0]


def test_enum_and_bool_tables_match_caffe_proto():
    fields = caffe_pb2.MultiBoxLossParameter.DESCRIPTOR.fields_by_name
    for name, table in conv.MULTIBOX_ENUMS.items():
        assert {v.number: v.name for v in fields[name].enum_type.values} == table, name
    bools = {f.name for f in caffe_pb2.MultiBoxLossParameter.DESCRIPTOR.fields if f.type == f.TYPE_BOOL}
    assert bools == set(conv.MULTIBOX_BOOLS)
    normalization = caffe_pb2.LossParameter.DESCRIPTOR.fields_by_name["normalization"]
    assert {v.number: v.name for v in normalization.enum_type.values} == conv.NORMALIZATIONS


@pytest.mark.parametrize("loss_param, expected", [
    ("", "VALID"),                                          # LossParameter's default
    ("loss_param { normalization: FULL }", "FULL"),
    ("loss_param { normalization: NONE }", "NONE"),
    ("loss_param { normalize: true }", "VALID"),             # the deprecated field, as C++ reads it
    ("loss_param { normalize: false }", "BATCH_SIZE"),
    ("loss_param { normalize: 0 }", "BATCH_SIZE"),
    ("loss_param { normalize: true normalization: FULL }", "FULL"),   # normalization wins
    ("loss_param { normalization: 3 }", "NONE"),
    ("loss_param { normalization: valid }", "valid"),        # carried as written: the layer judges
])
def test_normalization_as_multibox_loss_reads_it(loss_param, expected):
    text = f'layer {{ name: "l" type: "MultiBoxLoss" {loss_param} multibox_loss_param {{ num_classes: 2 }} }}'
    (rewrite,) = conv.convert_text(text).rewrites
    assert rewrite.params["normalization"] == expected


@pytest.mark.parametrize("conf, mining, warned", [
    ("LOGISTIC", "NONE", True), ("LOGISTIC", "MAX_NEGATIVE", False), ("SOFTMAX", "NONE", False),
    ("LOGISTIC", None, False),     # mining_type's default is MAX_NEGATIVE
])
def test_logistic_without_mining_warns(conf, mining, warned):
    mining_text = f"mining_type: {mining}" if mining else ""
    text = (f'layer {{ name: "l" type: "MultiBoxLoss" multibox_loss_param {{ num_classes: 2 '
            f'conf_loss_type: {conf} {mining_text} }} }}')
    (rewrite,) = conv.convert_text(text).rewrites
    assert bool(rewrite.warnings) == warned
    lines = conv.report_lines(conv.convert_text(text), "in", "out")
    assert any("WARNING" in line and "scrambled targets" in line for line in lines) == warned


@pytest.mark.parametrize("propagate_down, warned", [
    ("propagate_down: true propagate_down: true propagate_down: false propagate_down: false", None),
    ("", None),
    ("propagate_down: 1 propagate_down: f propagate_down: 0 propagate_down: 0", "for mbox_conf: C++ left that term"),
    ("propagate_down: false propagate_down: False", "for mbox_loc and mbox_conf: C++ left those terms"),
])
def test_propagate_down_false_on_a_prediction_warns(propagate_down, warned):
    """C++ MultiBoxLoss leaves a term out of its loss value where propagate_down is false; the
    Python layer cannot see propagate_down (docs/ssd.md)."""
    text = f'layer {{ name: "l" type: "MultiBoxLoss" {propagate_down} multibox_loss_param {{ num_classes: 2 }} }}'
    (rewrite,) = conv.convert_text(text).rewrites
    if warned is None:
        assert rewrite.warnings == []
    else:
        (warning,) = rewrite.warnings
        assert warned in warning and "the gradients are the same" in warning


# ---- the forks ------------------------------------------------------------------------------

def chuanqi_multibox(extra, focal="alpha: 0.5 gamma: 3", loss_weight=""):
    return (f'layer {{ name: "l" type: "MultiBoxFocalLoss" {loss_weight} '
            f'focal_loss_param {{ {focal} }} multibox_loss_param {{ num_classes: 4 {extra} }} }}')


def test_chuanqi_multibox_alpha_goes_to_the_weights():
    (rewrite,) = conv.convert_text(chuanqi_multibox("loc_weight: 2", loss_weight="loss_weight: 3")).rewrites
    assert rewrite.params["focusing_parameter"] == 3
    assert rewrite.params["loc_weight"] == 4.0            # 2 / 0.5
    assert rewrite.loss_weight == 1.5                     # 3 × 0.5
    assert "alpha" not in rewrite.params
    assert rewrite.notes[0].startswith("chose: focusing_parameter 3; alpha 0.5 as loss_weight x 0.5")
    assert rewrite.notes[1].startswith("why: chuanqi305's MultiBoxFocalLoss multiplies every prior's conf")


def test_chuanqi_multibox_defaults_are_its_proto_defaults():
    (rewrite,) = conv.convert_text(chuanqi_multibox("", focal="")).rewrites
    assert (rewrite.params["focusing_parameter"], rewrite.params["loc_weight"], rewrite.loss_weight) == \
        (2.0, 4.0, 0.25)


def test_chuanqi_multibox_logistic_never_used_gamma_or_alpha():
    (rewrite,) = conv.convert_text(chuanqi_multibox("conf_loss_type: LOGISTIC")).rewrites
    assert (rewrite.params["focusing_parameter"], rewrite.loss_weight) == (0, 1.0)
    assert "loc_weight" not in rewrite.params
    assert "plain SigmoidCrossEntropyLoss" in rewrite.notes[1]


def focal_layer(focal, loss="", extra=""):
    return (f'layer {{ name: "l" type: "FocalLoss" bottom: "s" bottom: "y" top: "l" {extra} '
            f'{loss} focal_loss_param {{ {focal} }} }}')


@pytest.mark.parametrize("focal, fork, gamma, loss_weight", [
    ("alpha: 0.3 gamma: 1.5 axis: 1", "chuanqi305/FocalLoss", 1.5, 0.3),
    ("alpha: 0.3 gamma: 1.5 engine: CAFFE", "chuanqi305/FocalLoss", 1.5, 0.3),
    ("alpha: 0.3 gamma: 1.5 type: ORIGIN beta: 2", "zimenglan-sysu-512/Focal-Loss", 1.5, 0.3),
    ("alpha: 0.3 gamma: 1.5", "chuanqi305/FocalLoss or zimenglan-sysu-512/Focal-Loss", 1.5, 0.3),
    ("", "chuanqi305/FocalLoss or zimenglan-sysu-512/Focal-Loss", 2.0, 0.25),   # both protos' defaults
    ("gama: 0.5 alpha: 0.3 type: LINEAR", "zimenglan-sysu-512/Focal-Loss's first version", 0.5, 1.0),
])
def test_focal_loss_forks(focal, fork, gamma, loss_weight):
    (rewrite,) = conv.convert_text(focal_layer(focal)).rewrites
    assert rewrite.layer == "SoftmaxFocalLossLayer"
    assert rewrite.params == {"focusing_parameter": gamma, "normalization": "valid"}
    assert rewrite.loss_weight == pytest.approx(loss_weight)
    assert f"(read as {fork})" in rewrite.notes[0]
    assert rewrite.notes[1].startswith("why: ")


@pytest.mark.parametrize("focal, cautioned", [("alpha: 0.3 gamma: 1.5", True), ("", True),
                                               ("gamma: 2 axis: 1", False), ("gamma: 2 beta: 1", False)])
def test_focal_loss_fields_shared_with_sigmoid_forks_get_a_caution(focal, cautioned):
    (rewrite,) = conv.convert_text(focal_layer(focal)).rewrites
    assert any(n.startswith("caution: sigmoid FocalLoss forks") for n in rewrite.notes) == cautioned


def test_focal_loss_notes_on_unused_fields():
    (rewrite,) = conv.convert_text(focal_layer("type: 1 beta: 3")).rewrites
    assert any(n.startswith("type LINEAR: zimenglan-sysu-512's layer never implemented it") for n in rewrite.notes)
    assert "dropped beta: not used by the fork's loss" in rewrite.notes


@pytest.mark.parametrize("text, says", [
    (focal_layer("alpha_balance: true gamma: 2"), "focal_loss_param field 'alpha_balance' is neither"),
    (focal_layer("gama: 2 gamma: 2"), "both gama and gamma"),
    (focal_layer("axis: 2"), "focal_loss_param axis = 2: SoftmaxFocalLossLayer's softmax runs over axis 1"),
    (focal_layer("", extra="softmax_param { axis: -1 }"), "softmax_param axis = -1"),
    (focal_layer("", extra='top: "prob"'), "second top"),
    (focal_layer("gamma: TWO"), "focal_loss_param gamma = 'TWO' is not a number"),
    (chuanqi_multibox("", focal="alpha: 0"), "alpha = 0 switches chuanqi305's conf loss off"),
    (chuanqi_multibox("", focal="alpha: 0.25 weights: 1"), "field 'weights' is not one of chuanqi305"),
    ('layers { name: "l" type: "MultiBoxLoss" }', "old-style `layers` block"),
    ('layer { name: "l" type: "MultiBoxLoss" python_param { module: "m" } }', "already has a python_param"),
    ('layer { name: "l" type: "MultiBoxLoss" loss_weight: 1 loss_weight: 1 }', "more than one loss_weight"),
    ('layer { name: "l" type: "MultiBoxLoss" loss_param { normalize: maybe } }', "normalize = 'maybe'"),
])
def test_layers_that_cannot_be_converted(text, says):
    with pytest.raises(conv.ConversionError) as raised:
        conv.convert_text("# first line\n" + text)
    assert says in str(raised.value)
    assert str(raised.value).startswith("line 2, column 1: layer 'l' ")


# ---- the converted SoftmaxFocalLossLayer computes what the fork computed ---------------------

FLT_MIN = np.finfo(np.float32).tiny


def fork_focal_loss(x, labels, alpha, gamma, ignore_label, normalization):
    """chuanqi305/FocalLoss's FocalLoss (focal_loss_layer.cpp, commit 1bd61f3 and later;
    zimenglan-sysu-512's b9e01e6 and later computes the same), transcribed: loss and gradient
    (before loss_weight) of a softmax over axis 1, alpha multiplying every position."""
    x = x.astype(np.float64)
    p = np.exp(x - x.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    n, c = x.shape[:2]
    p = np.moveaxis(p, 1, -1).reshape(-1, c)
    y = labels.reshape(-1).astype(int)
    loss, count, grad = 0.0, 0, np.zeros_like(p)
    for i in range(len(y)):
        if ignore_label is not None and y[i] == ignore_label:
            continue
        pt = p[i, y[i]]
        log_pt = np.log(max(pt, FLT_MIN))
        loss -= alpha * (1 - pt) ** gamma * log_pt
        for k in range(c):
            if k == y[i]:
                grad[i, k] = alpha * (1 - pt) ** gamma * (gamma * pt * log_pt + pt - 1)
            else:
                grad[i, k] = alpha * ((1 - pt) ** (gamma - 1) * (-gamma * log_pt * pt * p[i, k])
                                      + (1 - pt) ** gamma * p[i, k])
        count += 1
    normalizer = max(1.0, {"VALID": count, "BATCH_SIZE": n, "FULL": len(y), "NONE": 1}[normalization])
    grad = np.moveaxis(grad.reshape((n,) + x.shape[2:] + (c,)), -1, 1)
    return loss / normalizer, grad / normalizer


FORK_NET = """layer {{ name: "score" type: "Parameter" top: "score"
  parameter_param {{ shape {{ dim: 4 dim: 5 dim: 3 dim: 2 }} }} }}
layer {{ name: "label" type: "Input" top: "label" input_param {{ shape {{ dim: 4 dim: 1 dim: 3 dim: 2 }} }} }}
layer {{
  name: "loss"
  type: "FocalLoss"
  bottom: "score"
  bottom: "label"
  top: "loss"
  propagate_down: true
  propagate_down: false
  {loss_weight}
  loss_param {{ {loss_param} }}
  focal_loss_param {{ {focal} }}
}}
"""


@pytest.mark.parametrize("focal, loss_param, loss_weight, alpha, gamma, ignore_label, normalization", [
    # chuanqi305's README settings with its ignore_label
    ("axis: 1 alpha: 0.25 gamma: 2", "ignore_label: 255 normalization: VALID", None, 0.25, 2.0, 255, "VALID"),
    # zimenglan-sysu-512's fields, normalize: false = BATCH_SIZE, its own loss_weight
    ("alpha: 0.5 gamma: 1.5 type: ORIGIN beta: 1", "normalize: false", 2.0, 0.5, 1.5, None, "BATCH_SIZE"),
    # the defaults of both (alpha 0.25), FULL
    ("gamma: 0.5", "ignore_label: 255 normalization: FULL", None, 0.25, 0.5, 255, "FULL"),
])
def test_converted_fork_layer_trains_as_the_fork(focal, loss_param, loss_weight, alpha, gamma,
                                                ignore_label, normalization):
    text = FORK_NET.format(focal=focal, loss_param=loss_param,
                           loss_weight=f"loss_weight: {loss_weight}" if loss_weight else "")
    converted = conv.convert_text(text).text
    (weight,) = layer_named(net_parameter(converted), "loss").loss_weight
    rng = np.random.default_rng(7)
    x = rng.normal(0, 2, (4, 5, 3, 2)).astype(np.float32)
    labels = rng.integers(0, 5, (4, 1, 3, 2)).astype(np.float32)
    labels[0, 0, 1, 1] = labels[3, 0, 2, 0] = 255 if ignore_label is not None else 4
    net = load_net(converted)
    net.params["score"][0].data[...] = x
    net.blobs["label"].data[...] = labels
    net.forward()
    net.backward()
    expected_loss, expected_grad = fork_focal_loss(x, labels, alpha, gamma, ignore_label, normalization)
    original_weight = loss_weight or 1.0         # a C++ LossLayer's default
    # Caffe trains on loss_weight × top and backpropagates loss_weight × ∂top
    assert weight * net.blobs["loss"].data[0] == pytest.approx(original_weight * expected_loss, rel=1e-5)
    np.testing.assert_allclose(net.blobs["score"].diff, original_weight * expected_grad,
                               rtol=1e-4, atol=1e-7)


def test_caffe_reads_a_wrapped_param_str_as_one_string():
    """A long param_str is written as adjacent literals; Caffe's C++ parser joins them."""
    text = ('layer { name: "score" type: "Input" top: "score" input_param { shape { dim: 2 dim: 3 } } }\n'
            'layer { name: "label" type: "Input" top: "label" input_param { shape { dim: 2 } } }\n'
            'layer { name: "loss" type: "Python" bottom: "score" bottom: "label" top: "loss" loss_weight: 1\n'
            '  python_param { module: "focal_loss_layer" layer: "SoftmaxFocalLossLayer"\n'
            '    param_str: \'{"focusing_parameter": 0, \'\n'
            '               \'"normalization": "none"}\' } }\n')
    net = load_net(text)
    net.blobs["score"].data[...] = [[0, 0, 0], [0, 0, 0]]
    net.blobs["label"].data[...] = [0, 2]
    # 'none' (a sum over the 2 positions, as the second literal says), not the default mean
    assert net.forward()["loss"][0] == pytest.approx(2 * np.log(3), rel=1e-6)


# ---- the command line -----------------------------------------------------------------------

def run_cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "focal_loss_layer.convert", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_cli_converts_and_reports(tmp_path):
    out = tmp_path / "out.prototxt"
    done = run_cli(os.path.join(FIXTURES, "ssd_multibox.prototxt"), "-o", str(out))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == ("mbox_loss (line 47): MultiBoxLoss -> Python MultiBoxFocalLossLayer: num_classes 21, "
                        "conf_loss_type SOFTMAX, mining_type MAX_NEGATIVE, normalization VALID, "
                        "focusing_parameter 0, loss_weight 1")
    assert lines[1] == f"converted 1 layer (1 MultiBoxLoss); wrote {out}"
    assert lines[2].startswith("To train with focal loss") and "'focusing_parameter': 2" in lines[2]
    assert lines[2].endswith("docs/ssd.md#turning-focal-loss-on.")
    assert out.read_text() == conv.convert_text(fixture_text("ssd_multibox.prototxt")).text


def test_cli_prints_the_forks_choices(tmp_path):
    done = run_cli(os.path.join(FIXTURES, "chuanqi_focal.prototxt"), "-o", str(tmp_path / "o"))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("loss (line 18): FocalLoss -> Python SoftmaxFocalLossLayer: focusing_parameter 2")
    assert lines[1].startswith("    chose: ") and lines[2].startswith("    why: chuanqi305/FocalLoss multiplies")
    assert "1bd61f3" in lines[2]


def test_cli_nothing_to_convert_writes_the_same_bytes(tmp_path):
    source = tmp_path / "in.prototxt"
    source.write_bytes(b'name: "n"  # \xff not UTF-8\r\nlayer { name: "a" type: "ReLU" }')
    out = tmp_path / "out.prototxt"
    done = run_cli(str(source), "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == source.read_bytes()
    assert done.stdout == (f"nothing to convert in {source} (no MultiBoxLoss, MultiBoxFocalLoss or "
                           f"FocalLoss layer); {out} written unchanged\n")


def test_cli_keeps_crlf_and_undecodable_bytes(tmp_path):
    source = tmp_path / "in.prototxt"
    text = SMALL_SSD.replace("# after", "# after \xff").encode("utf-8").replace(b"\xc3\xbf", b"\xff")
    source.write_bytes(text.replace(b"\n", b"\r\n"))
    out = tmp_path / "out.prototxt"
    assert run_cli(str(source), "-o", str(out)).returncode == 0
    expected = SMALL_SSD_CONVERTED.replace("# after", "# after \xff").encode("utf-8")
    assert out.read_bytes() == expected.replace(b"\xc3\xbf", b"\xff").replace(b"\n", b"\r\n")


def test_cli_syntax_error_exits_2_naming_line_and_column(tmp_path):
    source = tmp_path / "bad.prototxt"
    source.write_text('layer {\n  name: "x\n}\n')
    out = tmp_path / "out.prototxt"
    done = run_cli(str(source), "-o", str(out))
    assert done.returncode == 2
    assert done.stderr == (f"focal-loss-convert: error: {source}: line 2, column 9: string literal not "
                           "closed on its line\n")
    assert not out.exists()


def test_cli_unconvertible_layer_exits_2(tmp_path):
    source = tmp_path / "fork.prototxt"
    source.write_text(focal_layer("alpha_balance: true"))
    done = run_cli(str(source), "-o", str(tmp_path / "out"))
    assert done.returncode == 2
    assert "line 1, column 1: layer 'l' (type FocalLoss): focal_loss_param field 'alpha_balance'" in done.stderr


def test_main_and_console_script():
    with open(os.path.join(ROOT, "setup.py"), encoding="utf-8") as f:
        assert '"focal-loss-convert = focal_loss_layer.convert:main"' in f.read()
    with pytest.raises(SystemExit) as raised:
        conv.main(["only_input.prototxt"])     # -o is required: argparse's usage error
    assert raised.value.code == 2
