"""Caffe's own C++ GradientChecker on both layers (cases.LAYERS), created by Caffe's PythonLayer
factory as `caffe train` creates them, with the settings of the Caffe tests of their twins
(SigmoidCrossEntropyLoss, SoftmaxWithLoss): GradientChecker<float>(1e-2, 1e-2), exhaustive,
bottom 0 only (labels take no gradient).

Each case runs tests/caffe_gradient_check/python_loss_gradient_check.cpp in a process of its own
(about 0.7 s: Python start-up and the layer's compiled kernels load; the check itself is a few
hundred forwards of a small blob). The program is compiled on first use, see caffe_gradient_checker.
"""
import pytest
from caffe_gradient_checker import HERE, CheckerCase, run_checker
from cases import SOFTMAX

# FocalLossLayer: per-class targets or class indices.
SHAPE = (2, 3, 3, 4)   # (N, C, H, W): 72 logits
# Caffe's checker tolerates an error of 1e-2 * max(|gradient|, 1), an absolute 1e-2 below 1, and
# the program requires some |gradient| >= 0.5 so that an error of a few percent fails. Dividing
# by ~15-72 (full, valid, positives) leaves gradients of ~0.03: uniform class balances (the loss is
# linear in them) scale those back up.
NORMALIZATION_GAIN = {"batch_size": 1, "full": 40, "valid": 30, "positives": 20, "none": 1}

SIGMOID_CASES = [
    # Caffe's SigmoidCrossEntropyLoss test's blobs, (10, 5) logits and soft targets, at γ = 0
    # (sigmoid cross-entropy); not divided by N = 10 as that test's layer does (its gradients,
    # <= 0.2, make it a loose test, see above).
    CheckerCase("gamma0-soft-10x5-as-caffe-sce-test",
                {"focusing_parameter": 0, "normalization": "none"}, (10, 5), "soft"),
    # Every γ kind: 0 < γ < 1 (where (1-p)^(γ-1) would blow up), integers, a non-integer above 2.
    *[CheckerCase(f"gamma{g}-{labels}", {"focusing_parameter": g}, SHAPE, labels, seed=i)
      for i, g in enumerate((0, 0.5, 1, 2, 2.5)) for labels in ("soft", "indices")],
    # Every normalization, in both label forms, with ignored labels and α.
    *[CheckerCase(f"{norm}-{labels}-ignore-alpha0.25",
                  {"focusing_parameter": 2, "alpha": 0.25, "ignore_label": -1,
                   "normalization": norm, "class_balances": [gain] * SHAPE[1]},
                  SHAPE, labels, ignore_fraction=0.2, seed=10 + i)
      for i, (norm, gain) in enumerate(NORMALIZATION_GAIN.items())
      for labels in ("binary", "indices")],
    CheckerCase("class-balances-list-indices-N1HW",
                {"focusing_parameter": 2.5, "class_balances": [0.5, 2.0, 1.0]},
                SHAPE, "indices", labels_shape=(2, 1, 3, 4)),
    CheckerCase("class-balances-dict-alpha-soft",
                {"focusing_parameter": 2, "alpha": 0.25, "class_balances": {"2": 3.0}},
                SHAPE, "soft"),
    CheckerCase("label-smoothing-positives-indices-NC",
                {"focusing_parameter": 0.5, "label_smoothing": 0.1, "normalization": "positives",
                 "ignore_label": -1},
                (3, 4), "indices", ignore_fraction=0.2),
    CheckerCase("every-key-indices-NCL",
                {"focusing_parameter": 2.5, "alpha": 0.25, "class_balances": {"1": 0.5, "3": 2},
                 "ignore_label": 255, "label_smoothing": 0.05, "normalization": "batch_size"},
                (3, 3, 5), "indices", ignore_fraction=0.3),
]


# SoftmaxFocalLossLayer: one class 0..C−1 per position. The program fills labels in three ways;
# for this layer "binary" gives classes 0 and 1, and "indices" gives 0..C, where C is no class:
# those cases set ignore_label = C, so that one position in C + 1 is skipped, as the checker's
# SoftmaxWithLoss test does with its own ignore_label.
SOFTMAX_SHAPE = (2, 4, 3, 4)          # (N, C, H, W): 24 positions, 96 logits
SOFTMAX_C = SOFTMAX_SHAPE[1]
# The program asks |gradient| >= 0.5 at loss weight 2; dividing by the ~24 positions (valid,
# full) leaves gradients of ~0.05, which uniform class balances scale back, as above.
SOFTMAX_NORMALIZATION_GAIN = {"valid": 40, "full": 40, "batch_size": 3, "none": 1}


def softmax_case(name, settings, labels="indices", shape=SOFTMAX_SHAPE, labels_shape=None, **kw):
    if labels == "indices":
        settings = dict(settings, ignore_label=settings.get("ignore_label", shape[1]))
    return CheckerCase(name, settings, shape, labels, labels_shape or (shape[:1] + shape[2:]),
                       layer=SOFTMAX.name, **kw)


SOFTMAX_CASES = [
    # Caffe's SoftmaxWithLoss test's blobs, (10, 5, 2, 3) logits and (10, 1, 2, 3) labels, at
    # γ = 0 (softmax cross-entropy), not divided (normalization none) so that gradients are ~1.
    softmax_case("gamma0-10x5x2x3-as-caffe-softmax-with-loss-test",
                 {"focusing_parameter": 0, "normalization": "none"}, shape=(10, 5, 2, 3),
                 labels_shape=(10, 1, 2, 3)),
    # Every γ kind: 0 < γ < 1, integers, a non-integer above 2; both label fillings.
    *[softmax_case(f"gamma{g}-{labels}", {"focusing_parameter": g, "normalization": "none"},
                   labels=labels, seed=i)
      for i, g in enumerate((0, 0.5, 1, 2, 2.5)) for labels in ("indices", "binary")],
    # Every normalization, with ignored positions and α.
    *[softmax_case(f"{norm}-ignore-alpha0.25",
                   {"focusing_parameter": 2, "alpha": 0.25, "normalization": norm,
                    "class_balances": [gain] * SOFTMAX_C}, ignore_fraction=0.2, seed=10 + i)
      for i, (norm, gain) in enumerate(SOFTMAX_NORMALIZATION_GAIN.items())],
    softmax_case("class-balances-dict-N1HW-labels",
                 {"focusing_parameter": 1.5, "class_balances": {"0": 0.5, "2": 3.0},
                  "normalization": "none"}, labels_shape=(2, 1, 3, 4)),
    softmax_case("every-key-NC", {"focusing_parameter": 2.5, "alpha": 0.75,
                                  "class_balances": [2, 4, 1, 3], "ignore_label": 255,
                                  "normalization": "valid"},
                 labels="binary", shape=(6, 4), ignore_fraction=0.3),
]
CASES = SIGMOID_CASES + SOFTMAX_CASES


@pytest.mark.parametrize("case", CASES, ids=[f"{case.layer}-{case.name}" for case in CASES])
def test_caffe_gradient_checker_passes_the_layer(case):
    code, output = run_checker([case])
    assert code == 0 and "[  PASSED  ] 1 test." in output, output


@pytest.mark.parametrize("wrong_layer", ["IgnoresLossWeight", "GradientTenPercentHigh"])
def test_caffe_gradient_checker_fails_a_wrong_gradient(wrong_layer):
    """The same blobs and settings, first with the real layer (passes), then with a layer whose
    backward is wrong (tests/caffe_gradient_check/wrong_focal_layers.py): the check must fail,
    on the gradient comparison, not on an error."""
    settings = {"focusing_parameter": 2, "normalization": "none"}
    real = CheckerCase("real", settings, SHAPE, "binary")
    wrong = CheckerCase(wrong_layer, settings, SHAPE, "binary",
                        module="wrong_focal_layers", layer=wrong_layer)
    code, output = run_checker([real, wrong], pythonpath=[HERE])
    assert code == 1, output
    assert "[       OK ] Cases/PythonLossGradientCheck.Exhaustive/0 " in output, output
    assert "[  FAILED  ] Cases/PythonLossGradientCheck.Exhaustive/1, " in output, output
    assert "[  FAILED  ] 1 test, listed below:" in output, output
    # GradientChecker's EXPECT_NEAR message, with the element and objective values it reports.
    assert "which exceeds threshold_ * scale" in output, output
    assert "debug: (top_id, top_data_id, blob_id, feat_id)=0,0,0," in output, output
    assert "Traceback" not in output, output
