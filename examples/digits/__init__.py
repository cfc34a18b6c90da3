"""Example 1, `digits`: long-tailed one-vs-all classification of scikit-learn's 8x8 digits,
a demonstration of FocalLossLayer in `caffe train` (data.py: the split; run.py: nets and scoring)."""
