"""Synthetic detection scenes from scikit-learn's 8x8 digits: a few digits per canvas at
several scales on a textured background (examples.detector.backgrounds), plus clutter that makes
hard negatives (strokes, fragments of digits).

Each split (train / validation / test) draws its digits, and the digits its fragments are cut
from, from its own disjoint set of source images (split_sources), so no source image is seen in
two splits. A scene is a CANVAS x CANVAS float32 image in [0, 1] with its objects' boxes (tight
around the digit's ink, (x1, y1, x2, y2) as in examples.detector.anchors) and classes 1..10
(digit + 1; 0 is background). Backgrounds are cropped from each split's own band of the
background pictures. SceneStyle PLAIN is the earlier scene (black background, more digits, less
clutter), kept to measure what the textured scenes change (examples.detector.anchor_stats).
"""
from dataclasses import dataclass
from typing import List

import numpy as np
from skimage.draw import line_aa
from skimage.transform import resize
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from ..digits.data import NUM_CLASSES  # noqa: F401  (classes 1..NUM_CLASSES: digit + 1)
from .backgrounds import background_sources, textured_background

# 96 x 96 (the earlier 128 x 128 cost 1.8x the compute per iteration): with 1-3 digits a scene,
# the objects per pixel stay about what they were.
CANVAS = 96
# Digit heights in pixels, drawn log-uniformly (objects of 10 to 40 pixels: 3 octaves of anchors
# cover them); widths vary by an independent stretch.
DIGIT_HEIGHTS = (10.0, 40.0)
WIDTH_STRETCH = (0.8, 1.25)


@dataclass(frozen=True)
class SceneStyle:
    """textured: a textured background (else black); digits, clutter: (min, max) per scene."""

    textured: bool
    digits: "tuple[int, int]"
    clutter: "tuple[int, int]"


PLAIN = SceneStyle(textured=False, digits=(1, 5), clutter=(2, 6))      # the earlier scenes
TEXTURED = SceneStyle(textured=True, digits=(1, 3), clutter=(4, 10))   # the study's scenes
MAX_DIGITS = max(PLAIN.digits[1], TEXTURED.digits[1])
# A pixel is ink above this value: the box is tight around ink pixels.
INK = 0.25
# Fragments keep this fraction range of a digit's rows or columns: clearly less than a digit.
FRAGMENT_KEEP = (0.35, 0.6)
NOISE_STD = 0.03
SPLIT_FRACTIONS = {"train": 0.6, "val": 0.2, "test": 0.2}
SPLIT_SEED = 0
PLACEMENT_TRIES = 50


@dataclass
class Sources:
    """The sources of one split: digit images (M, 8, 8) float32 in [0, 1], digits (M,) 0..9, and
    the split's band of every background picture."""

    images: np.ndarray
    digits: np.ndarray
    backgrounds: List[np.ndarray]


@dataclass
class Scenes:
    """images (N, 1, CANVAS, CANVAS) float32; per scene, boxes (G_i, 4) float32 and
    classes (G_i,) int64 in 1..10 (digit + 1)."""

    images: np.ndarray
    boxes: List[np.ndarray]
    classes: List[np.ndarray]


def split_sources(fractions=SPLIT_FRACTIONS, seed: int = SPLIT_SEED) -> "dict[str, Sources]":
    """All 1797 digits split, stratified by class, into disjoint {train, val, test} sets."""
    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32)   # pixel values run 0..16
    index = np.arange(len(images))
    rest, test = train_test_split(index, test_size=fractions["test"], stratify=bunch.target,
                                  random_state=seed)
    train, val = train_test_split(rest, test_size=fractions["val"] / (1 - fractions["test"]),
                                  stratify=bunch.target[rest], random_state=seed)
    return {name: Sources(images[chosen], bunch.target[chosen], background_sources(name))
            for name, chosen in (("train", train), ("val", val), ("test", test))}


def make_scenes(sources: Sources, count: int, seed: int, canvas: int = CANVAS,
                style: SceneStyle = TEXTURED) -> Scenes:
    """count scenes drawn from sources; the same (sources, count, seed, style) give the same
    scenes. Digits and clutter are pasted by pixel-wise max over the background."""
    rng = np.random.default_rng(seed)
    images = np.zeros((count, 1, canvas, canvas), np.float32)
    all_boxes, all_classes = [], []
    for image in images[:, 0]:
        if style.textured:
            image[...] = textured_background(sources.backgrounds, canvas, rng)
        boxes, classes = [], []
        for _ in range(rng.integers(style.digits[0], style.digits[1] + 1)):
            which = rng.integers(len(sources.digits))
            patch = _scaled(sources.images[which], rng)
            placed = _place(image, patch, rng, avoid=boxes)   # digits never overlap
            if placed is not None:
                boxes.append(placed)
                classes.append(sources.digits[which] + 1)
        for _ in range(rng.integers(style.clutter[0], style.clutter[1] + 1)):
            patch = _fragment(sources, rng) if rng.random() < 0.5 else _stroke(rng)
            # Clutter may cross clutter, never a digit: the ground truth stays exact.
            _place(image, patch, rng, avoid=boxes)
        image += rng.normal(0, NOISE_STD, image.shape).astype(np.float32)
        np.clip(image, 0, 1, out=image)
        all_boxes.append(np.array(boxes, np.float32).reshape(-1, 4))
        all_classes.append(np.array(classes, np.int64))
    return Scenes(images, all_boxes, all_classes)


def _scaled(digit: np.ndarray, rng) -> np.ndarray:
    """An 8x8 digit resized to a random height and width (bilinear), trimmed to its ink."""
    height = np.exp(rng.uniform(*np.log(DIGIT_HEIGHTS)))
    width = height * rng.uniform(*WIDTH_STRETCH)
    patch = resize(digit, (max(int(round(height)), 2), max(int(round(width)), 2)), order=1,
                   anti_aliasing=False, mode="edge").astype(np.float32)
    return _trim(patch)


def _fragment(sources: Sources, rng) -> np.ndarray:
    """Part of a digit: a band of its rows or of its columns, scaled like a digit."""
    digit = sources.images[rng.integers(len(sources.digits))]
    keep = max(2, int(round(8 * rng.uniform(*FRAGMENT_KEEP))))
    start = rng.integers(0, 8 - keep + 1)
    part = digit[start:start + keep] if rng.random() < 0.5 else digit[:, start:start + keep]
    return _scaled_part(part, rng)


def _scaled_part(part: np.ndarray, rng) -> np.ndarray:
    """A fragment resized by the factor a whole digit of a random height would get."""
    factor = np.exp(rng.uniform(*np.log(DIGIT_HEIGHTS))) / 8
    shape = (max(int(round(part.shape[0] * factor)), 2), max(int(round(part.shape[1] * factor)), 2))
    return _trim(resize(part, shape, order=1, anti_aliasing=False, mode="edge").astype(np.float32))


def _stroke(rng) -> np.ndarray:
    """One or two joined pen strokes (anti-aliased lines, 1-2 pixels wide) in a small patch."""
    size = int(rng.integers(8, 30))
    patch = np.zeros((size, size), np.float32)
    points = rng.integers(0, size, size=(int(rng.integers(2, 4)), 2))
    intensity = rng.uniform(0.5, 1.0)
    for (r0, c0), (r1, c1) in zip(points[:-1], points[1:]):
        for shift in range(int(rng.integers(1, 3))):   # a second pass one pixel over: thicker
            rows, cols, value = line_aa(r0, min(c0 + shift, size - 1),
                                        r1, min(c1 + shift, size - 1))
            np.maximum.at(patch, (rows, cols), (value * intensity).astype(np.float32))
    return _trim(patch)


def _trim(patch: np.ndarray) -> np.ndarray:
    """The patch cut to the bounding box of its ink (pixels > INK); unchanged if it has none."""
    rows = np.flatnonzero((patch > INK).any(axis=1))
    cols = np.flatnonzero((patch > INK).any(axis=0))
    if len(rows) == 0:
        return patch
    return patch[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def _place(image, patch, rng, avoid):
    """Paste patch (pixel-wise max) at a random spot whose box keeps 1 pixel away from every box
    in `avoid`; return its box (x1, y1, x2, y2), or None if no spot was found."""
    height, width = patch.shape
    canvas = image.shape[0]
    if height > canvas or width > canvas:
        return None
    for _ in range(PLACEMENT_TRIES):
        top = int(rng.integers(0, canvas - height + 1))
        left = int(rng.integers(0, canvas - width + 1))
        box = np.array([left, top, left + width, top + height], np.float32)
        if all(_apart(box, other) for other in avoid):
            region = image[top:top + height, left:left + width]
            np.maximum(region, patch, out=region)
            return box
    return None


def _apart(a, b, margin: float = 1.0) -> bool:
    return (a[2] + margin <= b[0] or b[2] + margin <= a[0]
            or a[3] + margin <= b[1] or b[3] + margin <= a[1])


def padded_ground_truth(scenes: Scenes, max_objects: int) -> "tuple[np.ndarray, np.ndarray]":
    """Boxes (N, max_objects, 4) and classes (N, max_objects), class 0 marking padding: the
    fixed-shape form stored next to the images in the HDF5 file (no net reads it)."""
    count = len(scenes.boxes)
    boxes = np.zeros((count, max_objects, 4), np.float32)
    classes = np.zeros((count, max_objects), np.float32)
    for i, (b, c) in enumerate(zip(scenes.boxes, scenes.classes)):
        boxes[i, :len(b)] = b
        classes[i, :len(c)] = c
    return boxes, classes


def unpadded_ground_truth(boxes: np.ndarray, classes: np.ndarray) -> "tuple[list, list]":
    """Inverse of padded_ground_truth: per scene, (G_i, 4) boxes and (G_i,) int classes."""
    kept = classes > 0
    return ([b[k] for b, k in zip(boxes, kept)],
            [c[k].astype(np.int64) for c, k in zip(classes, kept)])

