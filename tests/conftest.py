import os
import sys

# The tests import their helpers (naive_reference, gradcheck, caffe_nets) as top-level modules.
sys.path.insert(0, os.path.dirname(__file__))
