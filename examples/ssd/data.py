"""The SSD-lite example's data: the detector example's textured digit scenes
(examples.detector.scenes, with the detector's sources and per-split seeds, so that a split's
first scenes are the detector's), written as the npz files the Python data layer reads
(format: examples.ssd.batches).
"""
import os
from typing import Dict

import numpy as np

from ..detector.data import SEEDS
from ..detector.scenes import make_scenes, split_sources
from .batches import path_of

SPLITS = ("train", "val", "test")


def write_data(data_dir: str, counts: Dict[str, int]) -> Dict:
    """Write data_dir/{split}.npz for counts {split: scenes}; return per split the scene and
    object counts and the scenes' seed."""
    sources = split_sources()
    os.makedirs(data_dir, exist_ok=True)
    stats: Dict = {"source_digits": {split: int(len(sources[split].digits)) for split in SPLITS}}
    for split in SPLITS:
        scenes = make_scenes(sources[split], counts[split], SEEDS[split])
        image = np.concatenate([np.full(len(b), i, np.int32) for i, b in enumerate(scenes.boxes)])
        np.savez(path_of(data_dir, split), images=scenes.images, image=image,
                 classes=np.concatenate(scenes.classes).astype(np.int32),
                 boxes=np.concatenate(scenes.boxes).astype(np.float32).reshape(-1, 4))
        stats[split] = {"scenes": int(counts[split]), "objects": int(len(image)),
                        "seed": int(SEEDS[split])}
    return stats
