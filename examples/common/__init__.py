"""Code the examples share: running `caffe train`, reading its log, progress lines, HDF5
files, average precision, loss share, statistics over seeds, figures and the results file."""
