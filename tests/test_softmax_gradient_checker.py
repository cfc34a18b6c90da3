"""Caffe's own C++ GradientChecker on SoftmaxFocalLossLayer, created by Caffe's PythonLayer
factory as `caffe train` creates it, with the settings of Caffe's SoftmaxWithLoss test:
GradientChecker<float>(1e-2, 1e-2), exhaustive, bottom 0 only. The program and its driver are
tests/caffe_gradient_check/ and tests/caffe_gradient_checker.py (see test_caffe_gradient_checker.py).

The program fills labels in three ways; for a softmax layer (one class 0..C−1 per position):
"binary" gives classes 0 and 1, and "indices" gives 0..C, where C is no class: those cases set
ignore_label = C, so that one position in C + 1 is skipped, as the checker's SoftmaxWithLoss test
does with its own ignore_label."""
import pytest
from caffe_gradient_checker import CheckerCase, run_checker

SHAPE = (2, 4, 3, 4)          # (N, C, H, W): 24 positions, 96 logits
LABELS = (2, 3, 4)            # one class per position
C = SHAPE[1]
# The program requires some |gradient| >= 0.5 at loss weight 2, so that an error of a few
# percent fails (see python_loss_gradient_check.cpp). Dividing by the ~24 positions (valid, full)
# leaves gradients of ~0.05: uniform class balances (the loss is linear in them) scale them back.
NORMALIZATION_GAIN = {"valid": 40, "full": 40, "batch_size": 3, "none": 1}


def case(name, settings, labels="indices", shape=SHAPE, labels_shape=None, **kw):
    if labels == "indices":
        settings = dict(settings, ignore_label=settings.get("ignore_label", shape[1]))
    return CheckerCase(name, settings, shape, labels,
                       labels_shape or (shape[:1] + shape[2:]), module="focal_loss_layer",
                       layer="SoftmaxFocalLossLayer", **kw)


CASES = [
    # Caffe's SoftmaxWithLoss test's blobs, (10, 5, 2, 3) logits and (10, 1, 2, 3) labels, at
    # γ = 0 (softmax cross-entropy), not divided (normalization none) so that gradients are ~1.
    case("gamma0-10x5x2x3-as-caffe-softmax-with-loss-test",
         {"focusing_parameter": 0, "normalization": "none"}, shape=(10, 5, 2, 3),
         labels_shape=(10, 1, 2, 3)),
    # Every γ kind: 0 < γ < 1, integers, a non-integer above 2; both label fillings.
    *[case(f"gamma{g}-{labels}", {"focusing_parameter": g, "normalization": "none"},
           labels=labels, seed=i)
      for i, g in enumerate((0, 0.5, 1, 2, 2.5)) for labels in ("indices", "binary")],
    # Every normalization, with ignored positions and α.
    *[case(f"{norm}-ignore-alpha0.25",
           {"focusing_parameter": 2, "alpha": 0.25, "normalization": norm,
            "class_balances": [gain] * C}, ignore_fraction=0.2, seed=10 + i)
      for i, (norm, gain) in enumerate(NORMALIZATION_GAIN.items())],
    case("class-balances-dict-N1HW-labels",
         {"focusing_parameter": 1.5, "class_balances": {"0": 0.5, "2": 3.0},
          "normalization": "none"}, labels_shape=(2, 1, 3, 4)),
    case("every-key-NC", {"focusing_parameter": 2.5, "alpha": 0.75, "class_balances": [2, 4, 1, 3],
                          "ignore_label": 255, "normalization": "valid"},
         labels="binary", shape=(6, 4), ignore_fraction=0.3),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_caffe_gradient_checker_passes_softmax_focal_loss_layer(case):
    code, output = run_checker([case])
    assert code == 0 and "[  PASSED  ] 1 test." in output, output
