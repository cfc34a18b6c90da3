"""Textured backgrounds for the detector's scenes: crops of the grey pictures that scikit-image
and scikit-learn ship (brick, grass, gravel, text, page, camera, coins, moon; scikit-learn's two
sample photographs), cropped, scaled, flipped and rotated at random, with random contrast and
brightness, so that most negative anchors hold structure rather than blank noise.

Each split crops from its own band of every picture (train the left 60 % of the columns,
validation the next 20 %, test the last 20 %), so no background pixel is seen in two splits.

    background_sources(split) -> list of float32 (H, W) pictures in [0, 1]
    textured_background(sources, size, rng) -> (size, size) float32 in [0, BRIGHTNESS[1]]
"""
from functools import lru_cache
from typing import List

import numpy as np
from skimage import data as skimage_data
from skimage.color import rgb2gray
from skimage.transform import resize

PICTURES = ("brick", "grass", "gravel", "text", "page", "camera", "coins", "moon")
# Each split's band of every picture's columns (fractions of the width).
SPLIT_BANDS = {"train": (0.0, 0.6), "val": (0.6, 0.8), "test": (0.8, 1.0)}
# The crop's side, as a fraction of the band's shorter side: small crops are magnified (coarse
# texture), large ones shrunk (fine texture).
CROP_FRACTION = (0.4, 1.0)
# The background's darkest and brightest values after scaling: its contrast (max - min) is drawn
# from CONTRAST, its darkest value from BRIGHTNESS, always leaving room for brighter ink.
CONTRAST = (0.2, 0.5)
BRIGHTNESS = (0.0, 0.2)


@lru_cache(maxsize=None)
def pictures() -> "tuple[np.ndarray, ...]":
    from sklearn.datasets import load_sample_images
    grey = [getattr(skimage_data, name)().astype(np.float32) / 255.0 for name in PICTURES]
    grey += [rgb2gray(image).astype(np.float32) for image in load_sample_images().images]
    return tuple(grey)


def background_sources(split: str) -> List[np.ndarray]:
    """The split's band (SPLIT_BANDS) of every picture, float32 (H, W) in [0, 1]."""
    start, stop = SPLIT_BANDS[split]
    return [picture[:, int(start * picture.shape[1]):int(stop * picture.shape[1])]
            for picture in pictures()]


def textured_background(sources: List[np.ndarray], size: int, rng) -> np.ndarray:
    """A (size, size) float32 background: a random square crop of a random source picture,
    resized to size (bilinear), flipped / rotated by a multiple of 90 degrees, then its values
    mapped linearly onto [low, low + contrast] with contrast ~ U(CONTRAST), low ~ U(BRIGHTNESS)."""
    picture = sources[int(rng.integers(len(sources)))]
    side = max(8, int(min(picture.shape) * rng.uniform(*CROP_FRACTION)))
    top = int(rng.integers(0, picture.shape[0] - side + 1))
    left = int(rng.integers(0, picture.shape[1] - side + 1))
    crop = resize(picture[top:top + side, left:left + side], (size, size), order=1,
                  anti_aliasing=side > size, mode="edge")
    crop = np.rot90(crop, int(rng.integers(4)))
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    spread = crop.max() - crop.min()
    unit = (crop - crop.min()) / spread if spread > 0 else np.zeros_like(crop)
    contrast, low = rng.uniform(*CONTRAST), rng.uniform(*BRIGHTNESS)
    return (low + contrast * unit).astype(np.float32)
