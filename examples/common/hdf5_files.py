"""Writing the HDF5 files Caffe's HDF5Data layer reads: one .h5 file of float32 datasets, named
after the layer's tops, and a source .txt that lists it."""
import os
from typing import Dict

import h5py
import numpy as np


def write_hdf5_source(folder: str, split: str, datasets: Dict[str, np.ndarray]) -> str:
    """Write folder/{split}.h5 and folder/{split}.txt; return the .txt path (HDF5Data's source).

    datasets: top name -> array with the sample axis first, all of the same length. Stored as
    float32, the one type (with float64) HDF5Data reads. The .txt holds the absolute path of the
    .h5 file, because Caffe opens it relative to its own working directory, whatever that is.
    """
    lengths = {name: len(array) for name, array in datasets.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"datasets of one HDF5 file need the same number of samples; got {lengths}")
    os.makedirs(folder, exist_ok=True)
    h5_path = os.path.abspath(os.path.join(folder, f"{split}.h5"))
    with h5py.File(h5_path, "w") as f:
        for name, array in datasets.items():
            f.create_dataset(name, data=np.ascontiguousarray(array, dtype=np.float32))
    source_path = os.path.join(folder, f"{split}.txt")
    with open(source_path, "w") as f:
        f.write(h5_path + "\n")
    return source_path


def read_hdf5(source_path: str) -> Dict[str, np.ndarray]:
    """All datasets of the (single) .h5 file a source .txt lists."""
    with open(source_path) as f:
        h5_path = f.readline().strip()
    with h5py.File(h5_path, "r") as f:
        return {name: f[name][...] for name in f}
