"""Example 2, `digit_grid`: dense per-cell prediction on canvases of digits, a demonstration of
FocalLossLayer and SoftmaxFocalLossLayer in `caffe train` (data.py: canvases; run.py: scoring)."""
