"""The SSD-lite example's data layer: a Caffe Python layer with SSD's two data tops, for the
scenes the example writes (examples.ssd.data; the format: examples.ssd.batches). In a prototxt:

    layer {
      name: "data"  type: "Python"  top: "data"  top: "label"
      python_param { module: "examples.ssd.data_layer"  layer: "SceneDataLayer"
        param_str: "{'source': 'results/data/ssd/train.npz', 'batch_size': 8,
                     'image_size': 96, 'shuffle': True, 'seed': 1}" }
    }

top[0] data (batch_size, 1, image_size, image_size) float32; top[1] label (1, 1, G, 8), SSD's
label blob (examples.ssd.batches.label_rows), reshaped at every forward to the batch's G boxes.
Batches: examples.ssd.batches.batch_scenes (shuffle: a new order per epoch from `seed`; else the
file's order, wrapping around), from batch `first_batch` (default 0). A Python layer does not
see the solver's iteration, so a `caffe train` resumed from a snapshot starts again at
first_batch: the example's second solver stage (after the warm-up) sets it to the warm-up's
iterations, so that the two stages see the batches one uninterrupted run would.

`caffe train` finds this module through PYTHONPATH (.venv/bin/caffe puts the repository on
it). The file is read at the first forward, not in setup: the net loads (caffe.Net,
caffe.get_solver) before `make example` has written its data, and a missing file is an error
at the first forward that names it.
"""
import ast
import os

import caffe

from .batches import batch_scenes, label_rows, read_split

KEYS = {"source": str, "batch_size": int, "image_size": int, "shuffle": bool, "seed": int,
        "first_batch": int}
REQUIRED = ("source", "batch_size", "image_size")


class SceneDataLayer(caffe.Layer):
    """Tops data and label from an npz file of scenes; see the module docstring."""

    def setup(self, bottom, top):
        if bottom or len(top) != 2:
            raise ValueError("SceneDataLayer takes no bottom and two tops (data, label); got "
                             f"{len(bottom)} bottom(s) and {len(top)} top(s)")
        params = ast.literal_eval(self.param_str or "{}")
        if not isinstance(params, dict):
            raise ValueError(f"SceneDataLayer: param_str must be a dict, got {self.param_str!r}")
        unknown = sorted(set(params) - set(KEYS))
        missing = [key for key in REQUIRED if key not in params]
        if unknown or missing:
            raise ValueError(f"SceneDataLayer param_str: unknown keys {unknown}, missing keys "
                             f"{missing}; keys: {', '.join(KEYS)}")
        for key, value in params.items():
            if not isinstance(value, KEYS[key]) or (KEYS[key] is int and isinstance(value, bool)):
                raise ValueError(f"SceneDataLayer param_str: {key} = {value!r} is not a "
                                 f"{KEYS[key].__name__}")
        self.source = params["source"]
        self.batch_size, self.size = params["batch_size"], params["image_size"]
        self.batch_number = params.get("first_batch", 0)
        if self.batch_size < 1 or self.size < 1 or self.batch_number < 0:
            raise ValueError("SceneDataLayer param_str: batch_size and image_size must be >= 1, "
                             "first_batch >= 0")
        self.shuffle, self.seed = params.get("shuffle", False), params.get("seed", 0)
        self.split = None
        top[0].reshape(self.batch_size, 1, self.size, self.size)
        top[1].reshape(1, 1, 1, 8)

    def reshape(self, bottom, top):
        pass    # data keeps its shape; label is reshaped in forward, to each batch's boxes

    def forward(self, bottom, top):
        if self.split is None:
            self.split = self._read()
        scenes = batch_scenes(len(self.split["images"]), self.batch_size, self.batch_number,
                              self.shuffle, self.seed)
        self.batch_number += 1
        top[0].data[...] = self.split["images"][scenes]
        rows = label_rows(self.split, scenes)
        top[1].reshape(1, 1, len(rows), 8)
        top[1].data[...] = rows.reshape(1, 1, -1, 8)

    def backward(self, top, propagate_down, bottom):
        pass    # no bottoms

    def _read(self):
        if not os.path.exists(self.source):
            raise FileNotFoundError(
                f"SceneDataLayer: no file {self.source} (from {os.getcwd()}); `make example` or "
                "`python -m examples.run_all --only ssd` writes it")
        split = read_split(self.source)
        if split["images"].shape[2:] != (self.size, self.size):
            raise ValueError(f"SceneDataLayer: {self.source} holds images of "
                             f"{split['images'].shape[2:]}, not image_size {self.size}")
        return split
