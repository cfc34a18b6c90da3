"""The detector example (examples/detector/): its pieces on hand-made inputs, its Caffe nets
against numpy, its committed prototxts (four arms, each a warm-up and a main solver under the
study's protocol), the study's adapter (examples.detector.experiment), and `run_all --quick
--only detector` (the study's demonstration) end to end with the real `caffe train`."""
import ast
import json
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from caffe_nets import REPO

from examples.common.caffe_log import read_log
from examples.common.protocol import QUICK, STUDY
from examples.detector import experiment
from examples.detector import prototxt as detector_prototxt
from examples.detector.anchor_stats import (
    BLANK_STD,
    anchor_boxes,
    anchor_statistics,
    flat_labels,
)
from examples.detector.anchors import (
    ASPECT_RATIOS,
    IGNORE_LABEL,
    LEVELS,
    MAX_LOG_SIZE_DELTA,
    NUM_ANCHORS,
    OCTAVE_SCALES,
    Level,
    assign,
    box_iou,
    cell_anchors,
    decode,
    encode,
    level_anchors,
    pyramid_anchors,
)
from examples.detector.backgrounds import (
    BRIGHTNESS,
    CONTRAST,
    SPLIT_BANDS,
    background_sources,
    pictures,
    textured_background,
)
from examples.detector.coco_eval import coco_ground_truth, evaluate
from examples.detector.data import split_datasets
from examples.detector.inference import detect, level_candidates
from examples.detector.initial_gradient import initial_gradients
from examples.detector.log_outputs import read_test_losses
from examples.detector.nms import batched_nms, nms
from examples.detector.scenes import (
    CANVAS,
    INK,
    NOISE_STD,
    NUM_CLASSES,
    PLAIN,
    TEXTURED,
    make_scenes,
    split_sources,
)
from examples.detector.share import anchor_logits
from examples.detector.targets import anchors_per_image, image_targets
from examples.study.study import SEEDS

# Anchors.

def test_cell_anchors_have_the_sizes_and_ratios_in_detectron_order():
    anchors = cell_anchors(16.0)
    assert anchors.shape == (NUM_ANCHORS, 4) == (9, 4)
    w = anchors[:, 2] - anchors[:, 0]
    h = anchors[:, 3] - anchors[:, 1]
    for a in range(NUM_ANCHORS):
        octave, ratio = divmod(a, len(ASPECT_RATIOS))   # a = octave * R + ratio
        assert math.sqrt(w[a] * h[a]) == pytest.approx(16.0 * OCTAVE_SCALES[octave])
        assert h[a] / w[a] == pytest.approx(ASPECT_RATIOS[ratio])
    np.testing.assert_allclose(anchors[:, :2], -anchors[:, 2:])   # centred on (0, 0)


def test_level_anchors_are_centred_on_their_cells():
    level = Level("p3", 8, 16.0)
    anchors = level_anchors(level, 3, 5)
    assert anchors.shape == (3, 5, NUM_ANCHORS, 4)
    centres = (anchors[..., :2] + anchors[..., 2:]) / 2
    np.testing.assert_allclose(centres[2, 4, 0], [(4 + 0.5) * 8, (2 + 0.5) * 8])
    np.testing.assert_allclose(centres[:, :, 3], centres[:, :, 8])   # every anchor of a cell


def test_an_image_has_thousands_of_anchors():
    assert anchors_per_image(CANVAS) == NUM_ANCHORS * sum((CANVAS // l.stride) ** 2
                                                          for l in LEVELS) > 6_000
    assert len(LEVELS) in (2, 3)


def test_iou_of_known_boxes():
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [20, 20, 30, 30], [5, 5, 5, 9]], float)
    b = np.array([[5, 0, 15, 10]], float)
    np.testing.assert_allclose(box_iou(a, b)[:, 0], [50 / 150, 50 / 150, 0, 0])


def _shifted(box, dx):
    return np.array([box[0] + dx, box[1], box[2] + dx, box[3]], float)


def test_assignment_thresholds_and_ignore_band_on_hand_made_boxes():
    """Anchors as large as a 21x21 object, shifted right by d, overlap it with IoU
    (21 - d) / (21 + d), exact in floating point: d = 7 gives 0.5, d = 9 gives 0.4."""
    gt = np.array([[0, 0, 21, 21]], float)
    shifts = [0, 3, 7, 8, 9, 10, 40]
    anchors = np.stack([_shifted(gt[0], d) for d in shifts])
    iou = box_iou(anchors, gt)[:, 0]
    assert iou[2] == 0.5 and iou[4] == 0.4
    labels, matched = assign(anchors, gt, np.array([7]), match_best=False)
    # IoU >= 0.5 positive (0.5 included), [0.4, 0.5) ignored (0.4 included), < 0.4 background.
    assert labels.tolist() == [7, 7, 7, IGNORE_LABEL, IGNORE_LABEL, 0, 0]
    assert np.all(matched[labels > 0] == 0)


def test_assignment_picks_each_anchors_best_object():
    gts = np.array([[0, 0, 10, 10], [100, 100, 120, 120]], float)
    anchors = np.array([[1, 0, 11, 10], [101, 100, 121, 120], [50, 50, 60, 60]], float)
    labels, matched = assign(anchors, gts, np.array([3, 9]))
    assert labels.tolist() == [3, 9, 0]
    assert matched[:2].tolist() == [0, 1]


def test_an_object_below_every_threshold_still_gets_its_best_anchors_with_match_best():
    """A thin object (like a digit 1) whose best anchor has IoU 0.3: positive only through
    Detectron's best-anchor rule; ties are all positive."""
    gt = np.array([[0, 0, 3, 10]], float)
    anchors = np.array([[0, 0, 10, 10], [-7, 0, 3, 10], [40, 40, 50, 50]], float)
    without, _ = assign(anchors, gt, np.array([2]), match_best=False)
    with_best, _ = assign(anchors, gt, np.array([2]), match_best=True)
    assert without.tolist() == [0, 0, 0]
    assert with_best.tolist() == [2, 2, 0]


def test_an_image_without_objects_is_all_background():
    labels, _ = assign(np.array([[0, 0, 4, 4]], float), np.zeros((0, 4)), np.zeros(0, int))
    assert labels.tolist() == [0]


def test_box_encoding_round_trips_and_is_zero_for_the_anchor_itself():
    rng = np.random.default_rng(0)
    anchors = pyramid_anchors(CANVAS)[1].reshape(-1, 4)[:500]
    centres = rng.uniform(0, CANVAS, (500, 2))
    sizes = rng.uniform(4, 60, (500, 2))
    boxes = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1)
    np.testing.assert_allclose(decode(anchors, encode(anchors, boxes)), boxes, rtol=0, atol=1e-9)
    np.testing.assert_allclose(encode(anchors, anchors), 0, atol=1e-12)
    # Unit weights (Detectron's RetinaNet): a centre offset of 1.6 px is 1.6 / the anchor width.
    np.testing.assert_allclose(encode(anchors[:1], anchors[:1] + [1.6, 0, 1.6, 0])[0, 0],
                               1.6 / (anchors[0, 2] - anchors[0, 0]))


def test_decoding_clips_wild_size_deltas():
    anchors = np.array([[0, 0, 16, 16]], float)
    boxes = decode(anchors, np.array([[0, 0, 1e4, 1e4]]))
    assert np.all(np.isfinite(boxes))
    assert boxes[0, 2] - boxes[0, 0] == pytest.approx(16 * math.exp(MAX_LOG_SIZE_DELTA))


# Targets in Detectron's layout.

def test_targets_put_an_objects_anchor_at_channel_a_in_labels_and_a4_to_a4_plus_4_in_deltas():
    anchors = pyramid_anchors(CANVAS)
    level, y, x, a = 1, 5, 9, 7
    box = anchors[level][y, x, a].copy()          # the object is exactly this anchor
    labels, deltas = image_targets(anchors, box[None], np.array([4]))
    assert [l.shape for l in labels] == [(NUM_ANCHORS,) + a_.shape[:2] for a_ in anchors]
    assert labels[level][a, y, x] == 4
    np.testing.assert_allclose(deltas[level][a * 4:(a + 1) * 4, y, x], 0, atol=1e-6)
    # Every positive's deltas decode back to the object.
    for l, (level_labels, level_deltas) in enumerate(zip(labels, deltas)):
        for a_, y_, x_ in np.argwhere(level_labels > 0):
            deltas_ = level_deltas[a_ * 4:(a_ + 1) * 4, y_, x_]
            decoded = decode(anchors[l][y_, x_, a_][None], deltas_[None])
            np.testing.assert_allclose(decoded[0], box, atol=1e-3)
    positives = sum(int((l > 0).sum()) for l in labels)
    off = sum(int(np.count_nonzero(d)) for d in deltas)
    assert positives >= 1 and off <= 4 * positives   # deltas only at positives


def test_split_datasets_count_positives_per_image():
    sources = split_sources()
    scenes = make_scenes(sources["val"], 6, seed=3)
    data = split_datasets(scenes)
    counted = sum((data[f"labels_{l.name}"] > 0).sum(axis=(1, 2, 3)) for l in LEVELS)
    np.testing.assert_array_equal(data["num_positives"][:, 0], counted)
    assert np.all(counted >= np.array([len(b) for b in scenes.boxes]))   # every object learnt
    assert data["gt_boxes"].shape[0] == data["gt_classes"].shape[0] == 6
    assert all(v.dtype == np.float32 for v in data.values())


# Scenes.

def test_splits_share_no_source_image():
    sources = split_sources()
    flat = {name: {s.tobytes() for s in src.images} for name, src in sources.items()}
    assert sum(len(v) for v in flat.values()) == 1797
    assert not (flat["train"] & flat["val"]) and not (flat["train"] & flat["test"])
    assert not (flat["val"] & flat["test"])


def test_plain_scenes_hold_non_overlapping_digits_with_tight_boxes_and_clutter_outside_them():
    # On the plain (black) background, where "ink" is unambiguous.
    scenes = make_scenes(split_sources()["test"], 20, seed=5, style=PLAIN)
    assert scenes.images.shape == (20, 1, CANVAS, CANVAS)
    clutter_pixels = 0
    for image, boxes, classes in zip(scenes.images[:, 0], scenes.boxes, scenes.classes):
        assert 1 <= len(boxes) <= PLAIN.digits[1] and np.all((classes >= 1) & (classes <= 10))
        assert np.all(boxes >= 0) and np.all(boxes <= CANVAS)
        iou = box_iou(boxes, boxes)
        assert np.all(iou[~np.eye(len(boxes), dtype=bool)] == 0)
        inside = np.zeros_like(image, bool)
        for x1, y1, x2, y2 in boxes.astype(int):
            inside[y1:y2, x1:x2] = True
            # Tight: ink on every edge row and column of the box (above INK before the noise, so
            # above INK - 5 sigma after it), none on the lines just outside (clutter and other
            # digits keep a pixel away; noise alone stays far below INK).
            patch = image[y1:y2, x1:x2] > INK - 5 * NOISE_STD
            assert patch[0].any() and patch[-1].any() and patch[:, 0].any() and patch[:, -1].any()
            padded = np.pad(image, 1)[y1:y2 + 2, x1:x2 + 2]
            for line in (padded[0], padded[-1], padded[:, 0], padded[:, -1]):
                assert line.max() < INK
        clutter_pixels += np.count_nonzero((image > INK) & ~inside)
    assert clutter_pixels > 20 * 20   # strokes and fragments: ink outside every object


def test_textured_scenes_keep_their_digits_brighter_than_the_background_under_them():
    scenes = make_scenes(split_sources()["test"], 20, seed=5, style=TEXTURED)
    high = BRIGHTNESS[1] + CONTRAST[1]
    for image, boxes in zip(scenes.images[:, 0], scenes.boxes):
        assert TEXTURED.digits[0] <= len(boxes) <= TEXTURED.digits[1]
        iou = box_iou(boxes, boxes)
        assert np.all(iou[~np.eye(len(boxes), dtype=bool)] == 0)
        for x1, y1, x2, y2 in boxes.astype(int):
            # Pasted by max over a background below `high`: the digit's brightest ink is on top.
            assert image[y1:y2, x1:x2].max() > high
        outside = np.ones_like(image, bool)
        for x1, y1, x2, y2 in boxes.astype(int):
            outside[y1:y2, x1:x2] = False
        assert image[outside].std() > NOISE_STD   # texture, not noise on black


def test_textured_backgrounds_are_cropped_from_disjoint_bands_with_the_stated_range():
    bands = {split: background_sources(split) for split in SPLIT_BANDS}
    # The three bands, side by side, are each picture exactly: no column is in two splits.
    for number, picture in enumerate(pictures()):
        joined = np.concatenate([bands[split][number] for split in ("train", "val", "test")],
                                axis=1)
        np.testing.assert_array_equal(joined, picture)
        assert bands["train"][number].shape[1] == pytest.approx(0.6 * picture.shape[1], abs=1)
    rng = np.random.default_rng(0)
    backgrounds = np.array([textured_background(bands["train"], 64, rng) for _ in range(50)])
    assert backgrounds.shape == (50, 64, 64) and backgrounds.dtype == np.float32
    lows, spans = backgrounds.min(axis=(1, 2)), np.ptp(backgrounds, axis=(1, 2))
    assert np.all((lows >= BRIGHTNESS[0] - 1e-6) & (lows <= BRIGHTNESS[1] + 1e-6))
    assert np.all((spans >= CONTRAST[0] - 1e-5) & (spans <= CONTRAST[1] + 1e-5))
    assert len({b.tobytes() for b in backgrounds}) == 50


def test_anchor_statistics_match_a_per_anchor_loop():
    rng = np.random.default_rng(1)
    canvas = 32
    images = rng.uniform(0, 0.2, (2, 1, canvas, canvas)).astype(np.float32)
    images[0, 0, :16, :16] = 0.0                      # a flat corner
    images[1, 0, 20:, 20:] = 0.9                      # a bright block
    boxes = anchor_boxes(canvas)
    labels = rng.choice([0, 0, 0, 1, -1], size=(2, len(boxes))).astype(np.float32)
    stats = anchor_statistics(images, labels, ink=0.25)
    blank = no_ink = 0
    for image, image_labels in zip(images[:, 0], labels):
        for (x1, y1, x2, y2), label in zip(boxes, image_labels):
            if label != 0:
                continue
            pixels = image[y1:y2, x1:x2].astype(np.float64)
            blank += pixels.std() < BLANK_STD
            no_ink += pixels.max() <= 0.25
    negatives = (labels == 0).sum()
    assert stats["negatives_per_positive"] == pytest.approx(negatives / (labels > 0).sum())
    assert stats["negative_share_nearly_blank"] == pytest.approx(blank / negatives)
    assert stats["negative_share_without_ink"] == pytest.approx(no_ink / negatives)
    assert 0 < blank < negatives and 0 < no_ink < negatives


def test_textured_scenes_have_far_fewer_blank_negative_anchors_than_plain_ones():
    sources = split_sources()["train"]
    shares = {}
    for name, style in (("plain", PLAIN), ("textured", TEXTURED)):
        scenes = make_scenes(sources, 12, seed=2, style=style)
        shares[name] = anchor_statistics(scenes.images, flat_labels(split_datasets(scenes)),
                                         INK)["negative_share_without_ink"]
    assert shares["textured"] < shares["plain"] / 3


def test_scenes_are_reproducible():
    sources = split_sources()["val"]
    a, b = make_scenes(sources, 3, seed=9), make_scenes(sources, 3, seed=9)
    np.testing.assert_array_equal(a.images, b.images)
    assert all(np.array_equal(x, y) for x, y in zip(a.boxes, b.boxes))


# NMS.

def test_nms_keeps_the_best_of_overlapping_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [0, 0, 10, 5]], float)
    scores = np.array([0.9, 0.95, 0.5, 0.8])
    # IoU(1, 0) = 90/110 = 0.82 suppressed; box 3 against box 1: 45/105 = 0.43 kept at 0.5.
    assert nms(boxes, scores, 0.5).tolist() == [1, 3, 2]
    assert nms(boxes, scores, 0.4).tolist() == [1, 2]
    assert nms(boxes, scores, 0.5, max_keep=2).tolist() == [1, 3]
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []


def test_batched_nms_never_suppresses_across_classes():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [1, 0, 11, 10]], float)
    scores = np.array([0.9, 0.8, 0.7])
    classes = np.array([1, 2, 1])
    assert batched_nms(boxes, scores, classes, 0.5).tolist() == [0, 1]


# Inference: the channel layout read back.

def test_inference_reads_anchor_a_class_c_from_channel_a_times_c_plus_c():
    anchors = pyramid_anchors(CANVAS)
    num_classes = 10
    outputs = {}
    for level, level_anchors_ in zip(LEVELS, anchors):
        h, w, a, _ = level_anchors_.shape
        outputs[f"cls_score_{level.name}"] = np.full((1, a * num_classes, h, w), -10, np.float32)
        outputs[f"box_pred_{level.name}"] = np.zeros((1, a * 4, h, w), np.float32)
    level, y, x, a, c = 2, 3, 4, 5, 8
    outputs[f"cls_score_{LEVELS[level].name}"][0, a * num_classes + c, y, x] = 3.0
    outputs[f"box_pred_{LEVELS[level].name}"][0, a * 4:(a + 1) * 4, y, x] = [1, 0, 0, 0]
    (found,) = detect(outputs, CANVAS, num_classes)
    assert found["classes"].tolist() == [c + 1]
    assert found["scores"][0] == pytest.approx(1 / (1 + math.exp(-3)))
    anchor = anchors[level][y, x, a]
    expected = anchor + (anchor[2] - anchor[0]) * np.array([1, 0, 1, 0])   # one width right
    np.testing.assert_allclose(found["boxes"][0], np.clip(expected, 0, CANVAS), atol=1e-4)


def test_level_candidates_keep_at_most_the_top_per_level():
    anchors = pyramid_anchors(CANVAS)[0]
    h, w, a, _ = anchors.shape
    logits = np.zeros((a * 10, h, w), np.float32)   # every pair scores 0.5
    deltas = np.zeros((a * 4, h, w), np.float32)
    boxes, scores, classes = level_candidates(logits, deltas, anchors, 10)
    assert len(scores) == 1000 and np.all(scores == 0.5)


# COCO AP.

def _ground_truth():
    boxes = [np.array([[10, 10, 30, 40], [50, 50, 70, 60]], np.float32),
             np.array([[0, 0, 20, 20]], np.float32)]
    classes = [np.array([1, 3]), np.array([3])]
    return boxes, classes


def test_pycocotools_scores_perfect_detections_ap_1():
    boxes, classes = _ground_truth()
    gt = coco_ground_truth(boxes, classes, CANVAS, 10)
    detections = [{"boxes": b, "scores": np.linspace(0.9, 0.8, len(b)), "classes": c}
                  for b, c in zip(boxes, classes)]
    metrics = evaluate(gt, detections)
    assert metrics["AP"] == pytest.approx(1) and metrics["AP50"] == pytest.approx(1)
    assert metrics["AP75"] == pytest.approx(1)
    ap = np.array(metrics["ap_per_class"], float)
    assert ap[0] == pytest.approx(1) and ap[2] == pytest.approx(1)
    assert np.isnan(ap[1]) and np.isnan(ap[9])   # no objects of these classes


def test_pycocotools_scores_wrong_classes_and_loose_boxes_as_such():
    boxes, classes = _ground_truth()
    gt = coco_ground_truth(boxes, classes, CANVAS, 10)
    wrong_class = [{"boxes": b, "scores": np.full(len(b), 0.9), "classes": c % 10 + 1}
                   for b, c in zip(boxes, classes)]
    assert evaluate(gt, wrong_class)["AP"] == 0
    # Every box shifted right by s = 0.2658 of its width: IoU (1 - s) / (1 + s) = 0.580, matched
    # at the IoU thresholds 0.50 and 0.55 and at none of the eight above.
    loose = [{"boxes": b + 0.2658 * (b[:, 2:3] - b[:, 0:1]) * np.array([1, 0, 1, 0], np.float32),
              "scores": np.full(len(b), 0.9), "classes": c} for b, c in zip(boxes, classes)]
    metrics = evaluate(gt, loose)
    assert metrics["AP50"] == pytest.approx(1) and metrics["AP75"] == 0
    assert metrics["AP"] == pytest.approx(0.2)


def test_no_detections_score_zero():
    boxes, classes = _ground_truth()
    gt = coco_ground_truth(boxes, classes, CANVAS, 10)
    empty = [{"boxes": np.zeros((0, 4)), "scores": np.zeros(0), "classes": np.zeros(0, int)}] * 2
    assert evaluate(gt, empty)["AP"] == 0


# Loss share on anchors, the initial gradients, and the log reader.

def test_anchor_logits_follow_the_label_layout_and_drop_ignored_anchors():
    logits, labels = {}, {}
    for level, (h, w) in zip(LEVELS, ((4, 4), (2, 2), (1, 1))):
        count = 2 * NUM_ANCHORS * 10 * h * w
        logits[f"cls_score_{level.name}"] = np.arange(count, dtype=np.float32) \
            .reshape(2, NUM_ANCHORS * 10, h, w)
        labels[f"labels_{level.name}"] = np.zeros((2, NUM_ANCHORS, h, w), np.float32)
    labels["labels_p2"][1, 4, 2, 3] = 7
    labels["labels_p2"][0, 0, 0, 0] = IGNORE_LABEL
    scores, positives = anchor_logits(logits, labels)
    total = 2 * NUM_ANCHORS * (16 + 4 + 1)
    assert scores.shape == positives.shape == (total - 1, 10)
    assert positives.sum() == 1
    row = np.argwhere(positives)[0]
    assert row[1] == 6
    np.testing.assert_array_equal(scores[row[0]], logits["cls_score_p2"][1, 40:50, 2, 3])


def test_at_the_prior_cross_entropys_gradient_is_mostly_negatives_and_focal_losss_is_not():
    """One positive anchor (class 3) among 2*9*(16+4+1) anchors and one ignored: hand-checked
    per-logit gradients at p = 0.01 are 0.25 p = 0.0025 for a CE negative and
    0.75 p² (p + 2 (1 - p) log(1/(1 - p))) for an FL negative."""
    labels = {f"labels_{l.name}": np.zeros((2, NUM_ANCHORS, h, w), np.float32)
              for l, (h, w) in zip(LEVELS, ((4, 4), (2, 2), (1, 1)))}
    labels["labels_p3"][0, 2, 1, 1] = 3
    labels["labels_p2"][1, 0, 0, 0] = IGNORE_LABEL
    result = initial_gradients(labels)
    negatives = (2 * NUM_ANCHORS * 21 - 2) * 10 + 9
    p = 0.01
    ce_negative = 0.25 * p
    fl_negative = 0.75 * p ** 2 * (p + 2 * (1 - p) * -math.log(1 - p))
    ce_positive = 0.75 * (1 - p)
    fl_positive = 0.25 * (1 - p) ** 2 * (1 - p - 2 * p * math.log(p))
    assert result["ce"]["gradient_sum"] == pytest.approx(negatives * ce_negative + ce_positive)
    assert result["focal"]["gradient_sum"] == pytest.approx(negatives * fl_negative + fl_positive)
    assert result["ce"]["negative_share"] > 0.5 > result["focal"]["negative_share"]


def test_the_log_reader_sums_the_weighted_test_outputs(tmp_path):
    log = tmp_path / "caffe.log"
    log.write_text(
        "I1 solver.cpp:346] Iteration 0, Testing net (#0)\n"
        "I1 solver.cpp:413]     Test net output #0: box_loss = 2 (* 1 = 2 loss)\n"
        "I1 solver.cpp:413]     Test net output #1: cls_loss_p2 = 0.5 (* 1 = 0.5 loss)\n"
        "I1 solver.cpp:231] Iteration 0, loss = 3\n"
        "I1 solver.cpp:346] Iteration 50, Testing net (#0)\n"
        "I1 solver.cpp:413]     Test net output #0: box_loss = 1 (* 1 = 1 loss)\n"
        "I1 solver.cpp:413]     Test net output #1: cls_loss_p2 = 0.25 (* 2 = 0.5 loss)\n")
    curves = read_test_losses(str(log))
    assert curves["total"] == [(0, 2.5), (50, 1.5)]
    assert curves["cls_loss_p2"] == [(0, 0.5), (50, 0.25)]


# The prototxts and the Caffe nets.

DETECTOR_FOLDER = os.path.join(REPO, "prototxt", "detector")
ARMS = list(detector_prototxt.LOSSES)
RATES = detector_prototxt.RATES


def _net(text):
    from caffe.proto import caffe_pb2
    from google.protobuf import text_format
    net = caffe_pb2.NetParameter()
    text_format.Merge(text, net)
    return net


def _solver(path):
    from caffe.proto import caffe_pb2
    from google.protobuf import text_format
    solver = caffe_pb2.SolverParameter()
    with open(path) as f:
        text_format.Merge(f.read(), solver)
    return solver


def _class_bias(net):
    return [layer.convolution_param.bias_filler.value for layer in net.layer
            if layer.name.startswith("cls_score_")]


def test_the_arms_are_the_studys_four_losses_each_with_its_rate():
    assert ARMS == ["focal", "ce", "ohem", "focal_g1"]
    assert set(RATES) == set(ARMS) and all(rate > 0 for rate in RATES.values())
    assert experiment.ARMS is detector_prototxt.LOSSES and experiment.RATES is RATES
    assert experiment.NAME == "detector" and experiment.COUNTS == detector_prototxt.SCENES


def test_the_committed_prototxts_are_the_generators_output():
    generated = detector_prototxt.files()
    assert sorted(generated) == sorted(
        ["deploy.prototxt"] + [name for key in ARMS for name in (
            f"train_{key}.prototxt", f"solver_{key}_warmup.prototxt", f"solver_{key}.prototxt")])
    committed = {f for f in os.listdir(DETECTOR_FOLDER) if f.endswith(".prototxt")}
    assert committed == set(generated), (
        f"prototxt/detector/ has files the generator does not write: "
        f"{sorted(committed - set(generated))}; lacks: {sorted(set(generated) - committed)}")
    for name, text in generated.items():
        with open(os.path.join(DETECTOR_FOLDER, name)) as f:
            assert f.read() == text, \
                f"prototxt/detector/{name} is stale: run python -m examples.detector.prototxt"


def _without_class_loss(net):
    return [layer for layer in net.layer if not layer.name.startswith("cls_loss")]


def test_the_train_nets_differ_in_the_classification_loss_layers_only():
    nets = {key: _net(detector_prototxt.train_net(key)) for key in ARMS}
    reference = _without_class_loss(nets["focal"])
    assert len(reference) > 50
    for key, net in nets.items():
        assert net.name == f"detector_{key}"
        assert _without_class_loss(net) == reference, key


@pytest.mark.parametrize("key", ARMS)
def test_each_arms_class_loss_layers_carry_its_settings(key):
    arm = detector_prototxt.LOSSES[key]
    losses = [layer for layer in _net(detector_prototxt.train_net(key)).layer
              if layer.name.startswith("cls_loss")]
    if arm["layer"] == "HardNegativeLossLayer":
        # One layer over all levels: its mining ranks an image's negatives across them.
        (layer,) = losses
        assert layer.python_param.module == "examples.detector.ohem_layer"
        assert list(layer.bottom) == ([f"cls_score_{l.name}" for l in LEVELS]
                                      + [f"labels_{l.name}" for l in LEVELS] + ["positives"])
    else:
        assert [layer.name for layer in losses] == [f"cls_loss_{l.name}" for l in LEVELS]
        for layer, level in zip(losses, LEVELS):
            assert layer.python_param.module == "focal_loss_layer"
            assert list(layer.bottom) == [f"cls_score_{level.name}", f"labels_{level.name}",
                                          "positives"]
    for layer in losses:
        assert layer.type == "Python" and layer.python_param.layer == arm["layer"]
        assert list(layer.loss_weight) == [1]
        assert ast.literal_eval(layer.python_param.param_str) == dict(
            arm["param"], ignore_label=IGNORE_LABEL, num_anchors=NUM_ANCHORS)


@pytest.mark.parametrize("key", ARMS)
def test_the_no_prior_net_differs_in_the_class_bias_only(key):
    """train_net(key, prior=False), the no-prior check's net (not committed), against the
    committed one: the class logits' bias filler is 0 instead of the prior's."""
    with_prior = _net(detector_prototxt.train_net(key))
    without = _net(detector_prototxt.train_net(key, prior=False))
    assert len(with_prior.layer) == len(without.layer)
    changed = [(a, b) for a, b in zip(with_prior.layer, without.layer) if a != b]
    assert [a.name for a, _ in changed] == [f"cls_score_{l.name}" for l in LEVELS]
    for a, b in changed:
        assert a.convolution_param.bias_filler.value == pytest.approx(-math.log(99), rel=1e-6)
        assert b.convolution_param.bias_filler.value == 0
        b.convolution_param.bias_filler.value = a.convolution_param.bias_filler.value
        assert a == b
    assert "class bias 0" in detector_prototxt.train_net(key, prior=False)
    committed = _net(open(os.path.join(DETECTOR_FOLDER, f"train_{key}.prototxt")).read())
    assert _class_bias(committed) == pytest.approx(
        [detector_prototxt.PRIOR_BIAS] * len(LEVELS), rel=1e-6)


@pytest.mark.parametrize("key", ARMS)
def test_each_arm_has_a_warm_up_solver_and_a_main_solver_under_the_studys_protocol(key):
    warmup = _solver(os.path.join(DETECTOR_FOLDER, f"solver_{key}_warmup.prototxt"))
    main = _solver(os.path.join(DETECTOR_FOLDER, f"solver_{key}.prototxt"))
    rate = RATES[key]
    # Stage 1: Caffe's inv, base_lr (1 + gamma iter)^(-power) with power -1, a line from
    # rate / 3 at iteration 0 to the rate at warmup_iter.
    assert warmup.lr_policy == "inv" and warmup.power == -1
    assert warmup.max_iter == STUDY.warmup_iter
    line = [warmup.base_lr * (1 + warmup.gamma * i) ** (-warmup.power)
            for i in range(STUDY.warmup_iter + 1)]
    assert line[0] == pytest.approx(rate / 3, rel=1e-5)
    assert line[-1] == pytest.approx(rate, rel=1e-5)
    assert line[:-1] == pytest.approx([STUDY.rate_at(rate, i) for i in range(STUDY.warmup_iter)],
                                      rel=1e-5)
    # Stage 2: multistep, x0.1 at 2/3 and 8/9 of the budget.
    assert main.lr_policy == "multistep" and list(main.stepvalue) == list(STUDY.stepvalues)
    assert main.base_lr == pytest.approx(rate, rel=1e-6) and main.gamma == pytest.approx(0.1)
    assert main.max_iter == STUDY.max_iter and main.snapshot == STUDY.snapshot
    for solver in (warmup, main):
        assert solver.type == "SGD" and solver.momentum == pytest.approx(0.9)
        assert solver.weight_decay == pytest.approx(1e-4)
        assert solver.random_seed == detector_prototxt.SEED
        assert solver.net == f"prototxt/detector/train_{key}.prototxt"
        assert list(solver.test_iter) == [-(-detector_prototxt.VAL_SCENES
                                            // detector_prototxt.TEST_BATCH)]
        assert not solver.test_initialization
    assert warmup.test_interval > STUDY.max_iter   # no validation pass in the warm-up
    assert main.test_interval == STUDY.snapshot    # one at every snapshot
    assert warmup.snapshot_prefix == f"results/runs/detector/{key}/warmup"
    assert main.snapshot_prefix == f"results/runs/detector/{key}/snapshot"
    # Both say how to run stage 2: resumed from the warm-up's final state.
    resume = (f"--solver=prototxt/detector/solver_{key}.prototxt --snapshot="
              f"{warmup.snapshot_prefix}_iter_{warmup.max_iter}.solverstate")
    for name in (f"solver_{key}_warmup.prototxt", f"solver_{key}.prototxt"):
        with open(os.path.join(DETECTOR_FOLDER, name)) as f:
            assert resume in f.read(), name


def test_every_convolution_follows_detectrons_bias_rule_no_decay_and_twice_the_rate():
    net = _net(detector_prototxt.train_net("focal"))
    convolutions = [layer for layer in net.layer if layer.type == "Convolution"]
    assert len(convolutions) >= 10
    for layer in convolutions:
        weight, bias = layer.param
        assert (weight.lr_mult, weight.decay_mult) == (1, 1), layer.name
        assert (bias.lr_mult, bias.decay_mult) == (2, 0), layer.name


def test_the_box_loss_uses_no_fork_only_layer():
    # BVLC master has these; SmoothL1Loss (the SSD fork's) must not appear.
    bvlc = {"HDF5Data", "Convolution", "ReLU", "Pooling", "Deconvolution", "Eltwise", "Python",
            "Reduction", "Threshold", "Reshape", "Tile", "AbsVal", "Power", "Sigmoid", "Input"}
    for key in ARMS:
        types = set(re.findall(r'name: "\w+"  type: "(\w+)"', detector_prototxt.train_net(key)))
        assert types <= bvlc, types - bvlc
    assert "SmoothL1Loss" not in detector_prototxt.train_net("focal")


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from examples.detector.data import write_data
    folder = tmp_path_factory.mktemp("detector_data")
    write_data(str(folder), {"train": 16, "val": 8, "test": 8})
    return folder


@pytest.fixture(scope="module")
def train_net(tiny_data):
    """The FL train net (TRAIN phase) reading the tiny data, after one forward and backward."""
    import caffe

    from examples.common.training import prepare_run
    caffe.set_mode_cpu()
    run = prepare_run(os.path.join(DETECTOR_FOLDER, "solver_focal.prototxt"),
                      str(tiny_data), str(tiny_data / "run"))
    net = caffe.Net(os.path.join(run.run_dir, "train.prototxt"), caffe.TRAIN)
    net.forward()
    net.backward()
    return net


@pytest.mark.parametrize("prior", [True, False])
def test_prepare_writes_the_arms_two_stage_run_under_a_protocol(tiny_data, tmp_path, prior):
    run = experiment.prepare("ce", 0.03, 7, QUICK, str(tiny_data), str(tmp_path / "run"),
                             prior=prior)
    run_dir = str(tmp_path / "run")
    assert run.run_dir == run_dir and run.max_iter == QUICK.max_iter
    assert [os.path.basename(s.solver) for s in run.stages] == ["solver_warmup.prototxt",
                                                               "solver_main.prototxt"]
    assert run.stages[1].resume == f"{run_dir}/warmup_iter_{QUICK.warmup_iter}.solverstate"
    assert run.weights == f"{run_dir}/snapshot_iter_{QUICK.max_iter}.caffemodel"
    net = _net(open(os.path.join(run_dir, "train.prototxt")).read())
    assert net.name == "detector_ce"
    assert _class_bias(net) == pytest.approx(
        [detector_prototxt.PRIOR_BIAS if prior else 0.0] * len(LEVELS), rel=1e-6)
    sources = [layer.hdf5_data_param.source for layer in net.layer if layer.type == "HDF5Data"]
    assert sources == [str(tiny_data / "train.txt"), str(tiny_data / "val.txt")]
    warmup, main = (_solver(stage.solver) for stage in run.stages)
    assert warmup.base_lr == pytest.approx(0.01) and main.base_lr == pytest.approx(0.03)
    assert warmup.max_iter == QUICK.warmup_iter and main.max_iter == QUICK.max_iter
    assert list(main.stepvalue) == list(QUICK.stepvalues) and main.snapshot == QUICK.snapshot
    assert warmup.random_seed == main.random_seed == 7
    assert list(warmup.test_iter) == list(main.test_iter) == [1]   # 8 val scenes, batches of 8
    assert warmup.test_interval > QUICK.max_iter and main.test_interval == QUICK.snapshot
    assert warmup.net == main.net == os.path.join(run_dir, "train.prototxt")


def test_prepare_with_a_stop_cuts_the_main_stage(tiny_data, tmp_path):
    run = experiment.prepare("focal", 0.02, 1, QUICK, str(tiny_data), str(tmp_path / "run"),
                             prior=False, stop=QUICK.check_stop)
    assert run.max_iter == QUICK.check_stop
    assert run.weights.endswith(f"snapshot_iter_{QUICK.check_stop}.caffemodel")
    assert _solver(run.stages[1].solver).max_iter == QUICK.check_stop
    assert _solver(run.stages[0].solver).max_iter == QUICK.warmup_iter


def test_the_class_losses_are_focal_loss_over_all_levels_divided_by_the_batchs_positives(train_net):
    from focal_loss_layer.core import sigmoid_focal_loss_and_gradient
    net = train_net
    positives = net.blobs["num_positives"].data.sum()
    assert net.blobs["positives"].data.item() == positives > 0
    for level in LEVELS:
        logits = net.blobs[f"cls_score_{level.name}"].data.astype(np.float64)
        labels = net.blobs[f"labels_{level.name}"].data
        n, _, h, w = logits.shape
        per_class = logits.reshape(n, NUM_ANCHORS, 10, h, w)
        targets = (labels[:, :, None] == np.arange(1, 11)[None, None, :, None, None])
        valid = np.broadcast_to((labels >= 0)[:, :, None], per_class.shape)
        expected, _ = sigmoid_focal_loss_and_gradient(per_class, targets.astype(np.float64),
                                         focusing_parameter=2.0, alpha=0.25, valid=valid,
                                         normalization="none")
        assert net.blobs[f"cls_loss_{level.name}"].data.item() == pytest.approx(
            expected / positives, rel=1e-4)


def _smooth_l1(d, beta):
    """Reference smooth L1 and its derivative (float64)."""
    a = np.abs(d)
    return (np.where(a < beta, 0.5 * d * d / beta, a - 0.5 * beta),
            np.where(a < beta, d / beta, np.sign(d)))


def test_the_box_loss_is_smooth_l1_over_positive_anchors_divided_by_the_batchs_positives(train_net):
    net = train_net
    beta = detector_prototxt.BBOX_REG_BETA
    assert beta == 0.11
    total, zones = 0.0, set()
    positives = net.blobs["num_positives"].data.sum()
    for level in LEVELS:
        pred = net.blobs[f"box_pred_{level.name}"].data.astype(np.float64)
        target = net.blobs[f"box_targets_{level.name}"].data.astype(np.float64)
        labels = net.blobs[f"labels_{level.name}"].data
        positive = np.repeat((labels > 0)[:, :, None], 4, axis=2).reshape(pred.shape)
        value, slope = _smooth_l1(np.where(positive, pred - target, 0.0), beta)
        total += value.sum()
        zones |= set(np.abs(pred - target)[positive] < beta)
        # The gradient is smooth L1's derivative / max(positives, 1) on positives, 0 elsewhere.
        diff = net.blobs[f"box_pred_{level.name}"].diff
        assert np.all(diff[~positive] == 0)
        np.testing.assert_allclose(diff, np.where(positive, slope, 0) / max(positives, 1),
                                   rtol=1e-4, atol=1e-7)
    assert zones == {True, False}   # both the quadratic and the linear zone are exercised
    assert net.blobs["box_loss"].data.item() == pytest.approx(total / max(positives, 1), rel=1e-4)


def test_the_box_loss_layers_alone_match_smooth_l1_in_both_zones_and_at_zero(tmp_path):
    """The layers of box_loss_layers in a net of Input layers, on hand-set deltas: exactly at
    0, inside the quadratic zone, at and beyond beta, on a positive and on background."""
    import caffe
    caffe.set_mode_cpu()
    beta = 0.11
    shape = (1, NUM_ANCHORS * 4, 1, 2)
    inputs = "".join(
        f'layer {{ name: "{name}" type: "Input" top: "{name}" input_param {{ shape {{ '
        + " ".join(f"dim: {d}" for d in dims) + " } } }\n"
        for name, dims in (("box_input", shape), ("box_targets_p2", shape),
                           ("labels_p2", (1, NUM_ANCHORS, 1, 2))))
    # A learnable Bias (0) before the deltas makes Caffe run the box layers' backward without
    # force_backward (which would also ask Threshold, on the labels, for a gradient).
    inputs += ('layer { name: "box_pred_p2" type: "Bias" bottom: "box_input" top: "box_pred_p2" '
               'bias_param { axis: 0 num_axes: 0 filler { type: "constant" value: 0 } } }\n')
    text = (inputs
            + "\n".join(detector_prototxt.box_loss_layers("p2", beta))
            + '\nlayer { name: "loss" type: "Power" bottom: "box_sl1_sum_p2" top: "loss" '
              "loss_weight: 1 }\n")
    path = tmp_path / "box_loss.prototxt"
    path.write_text(text)
    net = caffe.Net(str(path), caffe.TEST)
    labels = np.zeros((1, NUM_ANCHORS, 1, 2), np.float32)
    labels[0, 0, 0, 0] = 3          # anchor 0 at x = 0: positive
    labels[0, 1, 0, 1] = -1         # ignored: no box loss
    pred = np.zeros(shape, np.float32)
    target = np.zeros(shape, np.float32)
    pred[0, 0:4, 0, 0] = [0.05, -0.3, 0.2, 0.11]
    target[0, 0:4, 0, 0] = [0.05, 0.0, 0.15, 0.0]   # d = 0, -0.3, 0.05, 0.11 (= beta)
    pred[0, 4:8, 0, 1] = 0.7        # ignored anchor: must get nothing
    net.blobs["box_input"].data[...] = pred
    net.blobs["box_targets_p2"].data[...] = target
    net.blobs["labels_p2"].data[...] = labels
    net.forward()
    net.backward()
    d = np.array([0.0, -0.3, 0.05, 0.11])
    value, slope = _smooth_l1(d, beta)
    assert net.blobs["loss"].data.item() == pytest.approx(value.sum(), rel=1e-5)
    expected = np.zeros(shape)
    expected[0, 0:4, 0, 0] = slope
    np.testing.assert_allclose(net.blobs["box_pred_p2"].diff, expected, rtol=1e-5, atol=1e-6)
    # And the central-difference gradient of the net's own loss agrees (float32 steps of 1e-3).
    step = 1e-3
    for k in (1, 2):
        for sign in (+1, -1):
            net.blobs["box_input"].data[...] = pred
            net.blobs["box_input"].data[0, k, 0, 0] += sign * step
            net.forward()
            if sign > 0:
                upper = net.blobs["loss"].data.item()
            else:
                lower = net.blobs["loss"].data.item()
        assert (upper - lower) / (2 * step) == pytest.approx(slope[k], rel=1e-2)


def test_the_heads_share_their_weights_across_levels(train_net):
    net = train_net
    for head in ("cls_conv", "cls_score", "box_conv", "box_pred"):
        first = net.params[f"{head}_{LEVELS[0].name}"][0]
        for level in LEVELS[1:]:
            other = net.params[f"{head}_{level.name}"][0]
            np.testing.assert_array_equal(other.data, first.data)
            # Shared blobs: the diff holds every level's gradient, the same memory.
            np.testing.assert_array_equal(other.diff, first.diff)
    bias = net.params[f"cls_score_{LEVELS[0].name}"][1].data
    assert bias.shape == (NUM_ANCHORS * 10,)


def test_the_class_bias_starts_at_the_prior_and_the_deploy_net_has_no_fillers():
    import caffe
    caffe.set_mode_cpu()
    net = caffe.Net(os.path.join(DETECTOR_FOLDER, "deploy.prototxt"), caffe.TEST)
    assert not net.params["cls_score_p2"][1].data.any()   # deploy: no fillers, weights come later
    assert f"value: {-math.log(99):.7g}" in detector_prototxt.train_net("focal")
    assert f"value: {-math.log(99):.7g}" not in detector_prototxt.train_net("focal", prior=False)


def test_the_upsampling_is_nearest_neighbour_and_passes_gradients(train_net):
    net = train_net
    for coarse, up in (("p4", "up_p4"), ("p3", "up_p3")):
        expected = net.blobs[coarse].data.repeat(2, axis=2).repeat(2, axis=3)
        np.testing.assert_allclose(net.blobs[up].data, expected, rtol=1e-6)
    # The coarse level receives gradient through the top-down path.
    assert np.abs(net.blobs["p4"].diff).sum() > 0

# `make example`'s detector in quick mode, end to end.

@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("quick_detector")
    # No time limit: how long it takes is the example's own report (run_all prints it), not a
    # test's to assert on a machine that may be busy.
    done = subprocess.run([sys.executable, "-m", "examples.run_all", "--quick", "--only", "detector",
                           "--out", str(out)], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with open(out / "results.json") as f:
        results = json.load(f)
    return out, done.stdout, results


def _run_dir(out, key, seed):
    """Where examples.study.runs puts the demo's run of an arm."""
    return out / "runs" / "detector" / "demo" / key / f"lr{RATES[key]:g}_seed{seed}"


def test_the_quick_run_shows_its_stages_and_no_caffe_log(quick_run):
    _, stdout, _ = quick_run
    for stage in ("== set-up: quick mode, the detector", "== data: the textured digit scenes",
                  "== detectors: 4 runs", "== loss share of the FL and CE detectors",
                  "== results"):
        assert stage in stdout
    assert stdout.count("done, final train loss") == len(ARMS)
    assert "solver.cpp" not in stdout and "] Iteration" not in stdout


def test_the_quick_run_reports_every_arm_once_in_the_demo_layout(quick_run):
    _, stdout, results = quick_run
    assert list(results["examples"]) == [] and "ssd" not in results
    detector = results["detector"]
    assert set(detector) == {"title", "demonstration", "protocol", "seed", "arms", "data"}
    assert detector["title"] == experiment.TITLE
    assert "not a comparison" in detector["demonstration"]
    assert detector["protocol"]["text"] == QUICK.describe()
    assert detector["protocol"]["stepvalues"] == list(QUICK.stepvalues)
    assert detector["seed"] == SEEDS[0]
    assert list(detector["arms"]) == ARMS
    table = stdout[stdout.index(f"| {experiment.TITLE} ("):]
    assert "a demonstration" in table.splitlines()[0]
    snapshots = list(range(QUICK.snapshot, QUICK.max_iter + 1, QUICK.snapshot))
    for key, arm in detector["arms"].items():
        assert arm["label"] == detector_prototxt.LOSSES[key]["label"]
        assert arm["base_lr"] == RATES[key]
        (seed,) = arm["seeds"]
        assert (seed["key"], seed["seed"], seed["base_lr"]) == (key, detector["seed"], RATES[key])
        assert seed["prior"] is True and seed["iterations"] == QUICK.max_iter
        assert seed["diverged"] is False and seed["diverged_at"] is None
        assert arm["diverged"] == 0 and arm["failed"] == int(seed["failed"])
        assert arm["flat"] == int(seed["flat"] and not seed["failed"])
        assert [it for it, _ in seed["val_curve"]] == snapshots
        assert all(0 <= ap <= 1 for _, ap in seed["val_curve"])
        assert len(seed["ap_per_class"]) == NUM_CLASSES
        assert all(math.isfinite(loss) for _, loss in seed["train_curve"])
        for metric in ("AP", "AP50", "AP75"):
            stats = arm[metric]
            assert 0 <= seed[metric] <= 1
            assert stats["n"] == 1 and stats["values"] == pytest.approx([seed[metric]])
            assert stats["mean"] == pytest.approx(seed[metric])
            assert stats["low"] is None and stats["high"] is None   # one seed: no interval
        assert len(arm["detections"]) == experiment.FIGURE_IMAGES
        for found in arm["detections"]:
            assert set(found) == {"boxes", "scores", "classes"}
            assert len(found["boxes"]) == len(found["scores"]) == len(found["classes"])
            assert all(score >= experiment.DRAW_SCORE for score in found["scores"])
        assert ("loss_share" in arm) == (key in ("focal", "ce"))
        assert f"| {arm['label']} | {arm['base_lr']:g} |" in table


def test_every_run_is_a_warm_up_and_a_main_stage_resumed_from_it(quick_run):
    out, _, results = quick_run
    for key in ARMS:
        run_dir = _run_dir(out, key, results["detector"]["seed"])
        log = (run_dir / "caffe.log").read_text()
        state = run_dir / f"warmup_iter_{QUICK.warmup_iter}.solverstate"
        commands = re.findall(r"^# (.*)$", log, re.MULTILINE)
        assert len(commands) == 2
        assert commands[0].endswith(f"train --solver={run_dir}/solver_warmup.prototxt")
        assert commands[1].endswith(f"train --solver={run_dir}/solver_main.prototxt "
                                    f"--snapshot={state}")
        assert state.exists() and f"Resuming from {state}" in log
        assert len(re.findall(r"caffe\.cpp:\d+\] Optimization Done", log)) == 2
        for iteration in range(QUICK.snapshot, QUICK.max_iter + 1, QUICK.snapshot):
            assert (run_dir / f"snapshot_iter_{iteration}.caffemodel").exists()
        # Validation passes in the main stage only, at every snapshot, with finite losses.
        test = read_test_losses(str(run_dir / "caffe.log"))["total"]
        assert [it for it, _ in test] == list(range(QUICK.snapshot, QUICK.max_iter + 1,
                                                    QUICK.snapshot))
        assert all(math.isfinite(loss) for _, loss in test)
        train = read_log(str(run_dir / "caffe.log")).train
        assert train[0][0] == 0 and all(math.isfinite(loss) for _, loss in train)
        # The arm's loss layer and the prior bias, at the rates of the quick protocol.
        net = _net((run_dir / "train.prototxt").read_text())
        assert {layer.python_param.layer for layer in net.layer
                if layer.name.startswith("cls_loss")} == {detector_prototxt.LOSSES[key]["layer"]}
        assert _class_bias(net) == pytest.approx([detector_prototxt.PRIOR_BIAS] * len(LEVELS),
                                                 rel=1e-6)
        warmup, main = (_solver(run_dir / f"solver_{stage}.prototxt")
                        for stage in ("warmup", "main"))
        assert warmup.lr_policy == "inv" and main.lr_policy == "multistep"
        assert warmup.base_lr == pytest.approx(RATES[key] * QUICK.warmup_from, rel=1e-6)
        assert main.base_lr == pytest.approx(RATES[key], rel=1e-6)
        assert (warmup.max_iter, main.max_iter) == (QUICK.warmup_iter, QUICK.max_iter)


def test_the_reported_test_ap_is_the_final_weights_score(quick_run):
    out, _, results = quick_run
    data_dir = str(out / "data" / "detector")
    arm = results["detector"]["arms"]["focal"]
    weights = _run_dir(out, "focal", results["detector"]["seed"]) / \
        f"snapshot_iter_{QUICK.max_iter}.caffemodel"
    metrics = experiment.score(data_dir, "test", str(weights), "focal")
    for metric in ("AP", "AP50", "AP75"):
        assert metrics[metric] == pytest.approx(arm[metric]["mean"], abs=1e-5)
    assert len(metrics["detections"]) == experiment.QUICK_COUNTS["test"] == \
        len(experiment.ground_truth(data_dir, "test").getImgIds())
    drawn = experiment.drawn(metrics["detections"])
    assert [len(d["scores"]) for d in drawn] == [len(d["scores"]) for d in arm["detections"]]


def test_the_quick_run_writes_the_figures(quick_run):
    import matplotlib.image
    out, _, results = quick_run
    for name in ("detector_detections.png", "detector_loss_share.png"):
        image = matplotlib.image.imread(out / name)
        assert image.shape[0] > 300 and image.shape[1] > 300
        assert image.std() > 0.01, f"{name} is blank"
    for key in ("focal", "ce"):
        share = results["detector"]["arms"][key]["loss_share"]
        assert share["images"] == experiment.SHARE_IMAGES_QUICK
        for kind in ("positives", "negatives"):
            for curve in share[kind]["curves"].values():
                assert curve[0] == 0 and curve[-1] == pytest.approx(1)


def test_initial_gradient_reads_the_first_training_batch(quick_run, capsys):
    from examples.detector.initial_gradient import main
    out, _, _ = quick_run
    assert main([str(out / "data" / "detector")]) == 0
    printed = capsys.readouterr().out
    for key in ("focal", "ce", "focal_g1"):   # the FocalLossLayer arms
        assert detector_prototxt.LOSSES[key]["label"] in printed
    assert detector_prototxt.LOSSES["ohem"]["label"] not in printed
    assert "cross-entropy's gradient is" in printed


def test_initial_gradient_without_data_says_to_run_make_example(tmp_path, capsys):
    from examples.detector.initial_gradient import main
    assert main([str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert str(tmp_path / "train.txt") in error and "make example" in error
