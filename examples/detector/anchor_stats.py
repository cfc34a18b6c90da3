"""How hard the background is, counted over the anchors: negatives per positive anchor, and the
share of negative anchors that are nearly blank.

    python -m examples.detector.anchor_stats [--scenes N]

prints both numbers for the earlier plain scenes (scenes.PLAIN: black background, 1-5 digits,
2-6 pieces of clutter) and for the textured scenes the study trains on (scenes.TEXTURED), the
same training sources, canvas and anchors. make example records the textured numbers of every
split in results.json (detector.data.<split>.anchors).

A negative anchor (label 0) is
    without ink     when no pixel inside it exceeds scenes.INK (0.25), the ink threshold of the
                    boxes: noise on black, nothing a digit could be mistaken for;
    nearly blank    when its pixels' standard deviation is below BLANK_STD (0.05; the noise alone
                    gives at most NOISE_STD = 0.03): flat, whatever its brightness.
Both are computed over the anchor's pixels inside the canvas, from integral images (vectorised).
"""
import argparse
from typing import Dict, Sequence

import numpy as np

from .anchors import LEVELS, Level, pyramid_anchors

BLANK_STD = 0.05


def anchor_boxes(canvas: int, levels: Sequence[Level] = LEVELS) -> np.ndarray:
    """Every anchor of an image in the labels' order (level, a, y, x): (K, 4) integer pixel
    bounds (x1, y1, x2, y2), clipped to the canvas, at least one pixel wide."""
    boxes = np.concatenate([anchors.transpose(2, 0, 1, 3).reshape(-1, 4)
                            for anchors in pyramid_anchors(canvas, levels)])
    low = np.clip(np.floor(boxes[:, :2]), 0, canvas - 1)
    high = np.clip(np.ceil(boxes[:, 2:]), low + 1, canvas)
    return np.concatenate([low, high], axis=1).astype(np.int64)


def _box_sums(integral: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """integral (N, S+1, S+1) of some per-pixel value; boxes (K, 4) -> (N, K) sums over boxes."""
    x1, y1, x2, y2 = boxes.T
    return (integral[:, y2, x2] - integral[:, y1, x2] - integral[:, y2, x1]
            + integral[:, y1, x1])


def _integral(values: np.ndarray) -> np.ndarray:
    out = np.zeros((values.shape[0], values.shape[1] + 1, values.shape[2] + 1))
    out[:, 1:, 1:] = values.cumsum(axis=1).cumsum(axis=2)
    return out


def anchor_statistics(images: np.ndarray, labels: np.ndarray, ink: float) -> Dict[str, float]:
    """images (N, 1, S, S); labels (N, K) of every anchor in anchor_boxes' order (0 background,
    > 0 positive, < 0 ignored); ink: the ink threshold. Returns negatives per positive and the
    shares of negative anchors without ink and nearly blank (see the module docstring)."""
    pixels = images[:, 0].astype(np.float64)
    boxes = anchor_boxes(pixels.shape[-1])
    area = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))[None, :]
    mean = _box_sums(_integral(pixels), boxes) / area
    variance = np.maximum(_box_sums(_integral(pixels ** 2), boxes) / area - mean ** 2, 0)
    inked = _box_sums(_integral((pixels > ink).astype(np.float64)), boxes) > 0.5
    negative = labels == 0
    negatives = int(negative.sum())
    return {"negatives_per_positive": negatives / max(int((labels > 0).sum()), 1),
            "negative_share_without_ink": float((negative & ~inked).sum() / max(negatives, 1)),
            "negative_share_nearly_blank": float(
                (negative & (np.sqrt(variance) < BLANK_STD)).sum() / max(negatives, 1))}


def flat_labels(datasets: Dict[str, np.ndarray], levels: Sequence[Level] = LEVELS) -> np.ndarray:
    """The HDF5 datasets' labels_<l> (N, A, H, W) per level -> (N, K) in anchor_boxes' order."""
    count = len(datasets["data"])
    return np.concatenate([datasets[f"labels_{l.name}"].reshape(count, -1) for l in levels],
                          axis=1)


def main(argv=None) -> None:
    from .data import split_datasets
    from .scenes import CANVAS, INK, PLAIN, TEXTURED, make_scenes, split_sources
    parser = argparse.ArgumentParser(prog="python -m examples.detector.anchor_stats",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=int, default=400, help="training scenes per style")
    args = parser.parse_args(argv)
    sources = split_sources()["train"]
    print(f"{args.scenes} training scenes per row; anchors per image: "
          f"{anchor_boxes(128).shape[0]:,} at 128x128, {anchor_boxes(CANVAS).shape[0]:,} at "
          f"{CANVAS}x{CANVAS}")
    # The earlier study's scenes were plain and 128 x 128; the canvas alone changes the shares.
    for name, style, canvas in (("before: plain, 128x128", PLAIN, 128),
                                (f"plain, {CANVAS}x{CANVAS}", PLAIN, CANVAS),
                                (f"after: textured, {CANVAS}x{CANVAS}", TEXTURED, CANVAS)):
        scenes = make_scenes(sources, args.scenes, seed=11, canvas=canvas, style=style)
        datasets = split_datasets(scenes)
        stats = anchor_statistics(scenes.images, flat_labels(datasets), INK)
        print(f"  {name:27s} digits {style.digits[0]}-{style.digits[1]}, clutter "
              f"{style.clutter[0]}-{style.clutter[1]}: negatives per positive anchor "
              f"{stats['negatives_per_positive']:.0f}; negative anchors without ink "
              f"{100 * stats['negative_share_without_ink']:.1f}%, nearly blank (pixel sd < "
              f"{BLANK_STD}) {100 * stats['negative_share_nearly_blank']:.1f}%")


if __name__ == "__main__":
    main()
