"""The benchmark's code runs (tiny sizes, `--quick`): tables, memory, `caffe time` parsing. It
times nothing that a test checks."""
import re

import numpy as np

from benchmarks import naive, run


def test_quick_benchmark_prints_every_table(capsys):
    run.main(["--quick"])
    out = capsys.readouterr().out
    for text in ("SigmoidCrossEntropyLoss (Caffe C++)", "FocalLossLayer γ=1.5 ignore_label",
                 "naive per-element loop", "numpy core", "peak extra memory",
                 "head_focal.prototxt  loss layer forward", "head_sce.prototxt"):
        assert text in out, text
    assert len(re.findall(r"target (large|small) gamma=[\d.]+: ours/SCE", out)) == 3
    for text in ("SoftmaxWithLoss (Caffe C++)", "SoftmaxFocalLossLayer γ=1.5 ignore_label",
                 "softmax numpy core", "/ SWL |"):
        assert text in out, text
    assert len(re.findall(r"target softmax (large|small) gamma=[\d.]+: ours/SWL", out)) == 3
    assert out.count("peak extra memory") == 2
    assert re.search(r"target multibox batch 2: ours/MBL [\d.]+ ≤ 1.5", out)
    assert "MultiBoxFocalLossLayer LOGISTIC, no mining" in out
    kept = re.findall(r"kept    : tracemalloc ([\d.]+)× \(the gradient buffer", out)
    assert len(kept) == 2 and all(float(ratio) >= 1.0 for ratio in kept), kept


def test_naive_loop_agrees_with_the_core_for_hard_targets():
    """The context row times a correct loop, not a wrong one."""
    from focal_loss_layer.core import sigmoid_focal_loss_and_gradient
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3.0, size=(2, 50))
    targets = (rng.random((2, 50)) < 0.3).astype(float)
    loss, grad = naive.naive_forward_backward(logits, targets, gamma=2.0, alpha=0.25)
    ref_loss, ref_grad = sigmoid_focal_loss_and_gradient(logits, targets, focusing_parameter=2.0, alpha=0.25)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-9)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-7, atol=1e-12)
