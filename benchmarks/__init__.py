"""Speed benchmark of FocalLossLayer against Caffe's C++ SigmoidCrossEntropyLoss: `make bench`
(python -m benchmarks.run). A benchmark, not a test: it prints numbers and asserts nothing."""
