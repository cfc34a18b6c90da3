"""examples/common/bootstrap.py against pycocotools (examples/detector/coco_eval.py): the weighted
accumulate is COCOeval's AP on the original images and on literally duplicated images, and the
paired bootstrap's interval behaves (zero against itself, on the right side of a known gap)."""
import numpy as np
import pytest

from examples.common.bootstrap import (
    METRICS,
    image_matches,
    paired_bootstrap,
    resample_counts,
    weighted_ap,
)
from examples.detector.coco_eval import coco_ground_truth, evaluate

CANVAS, CLASSES = 100, 3
SCORES = np.array([0.9, 0.8, 0.8, 0.6, 0.6, 0.4])   # few values: ties across and within images


def scene(rng, images=8):
    """Ground truth: 0-4 boxes an image, classes 1..3; image 2 has none; class 3 is never
    detected. Boxes are 10-40 wide, so shifts of a few pixels give IoUs across 0.5-0.95."""
    boxes, classes = [], []
    for i in range(images):
        count = 0 if i == 2 else int(rng.integers(1, 5))
        xy = rng.uniform(0, 55, (count, 2))
        wh = rng.uniform(10, 40, (count, 2))
        boxes.append(np.column_stack([xy, xy + wh]))
        classes.append(rng.integers(1, CLASSES + 1, count))
    classes[0][0] = 3   # a class with ground truth and no detections
    return boxes, classes


def detect(rng, boxes, classes, shift=0.12, duplicates=0.4, false_positives=2, score_boost=0.0):
    """Jittered copies of the ground truth (shift × size, so IoU varies from about 0.4 to 1),
    sometimes a second detection of the same object (a tie or near tie in the same image),
    random false positives, scores drawn from a few values (ties)."""
    out = []
    for image_boxes, image_classes in zip(boxes, classes):
        dets, labels = [], []
        for box, label in zip(image_boxes, image_classes):
            if label == 3:
                continue
            size = box[2:] - box[:2]
            for _ in range(1 + int(rng.random() < duplicates)):
                offset = rng.uniform(-shift, shift, 2) * size
                dets.append(np.concatenate([box[:2] + offset, box[2:] + offset]))
                labels.append(label)
        for _ in range(int(rng.integers(0, false_positives + 1))):
            xy = rng.uniform(0, 60, 2)
            dets.append(np.concatenate([xy, xy + rng.uniform(8, 35, 2)]))
            labels.append(int(rng.integers(1, 3)))
        scores = np.clip(rng.choice(SCORES, len(dets)) + score_boost, 0, 1)
        out.append({"boxes": np.array(dets).reshape(-1, 4), "scores": scores,
                    "classes": np.array(labels, np.int64)})
    return out


def duplicated(boxes, classes, detections, counts, num_classes=CLASSES):
    """The resample laid out literally: image i repeated counts[i] times, copies with consecutive
    new image ids, in the original order."""
    drawn = np.repeat(np.arange(len(counts)), counts)
    gt = coco_ground_truth([boxes[i] for i in drawn], [classes[i] for i in drawn], CANVAS,
                           num_classes)
    return gt, [detections[i] for i in drawn]


@pytest.mark.parametrize("seed", range(6))
def test_all_counts_one_is_coco_evals_ap(seed):
    rng = np.random.default_rng(seed)
    boxes, classes = scene(rng)
    gt = coco_ground_truth(boxes, classes, CANVAS, CLASSES)
    detections = detect(rng, boxes, classes)
    expected = evaluate(gt, detections)
    got = weighted_ap(image_matches(gt, detections), np.ones(len(boxes), np.int64))
    for metric in METRICS:
        assert got[metric].shape == (1,)
        assert got[metric][0] == pytest.approx(expected[metric], abs=1e-12), metric
    assert 0 < expected["AP75"] < expected["AP50"] < 1   # several thresholds matter


def test_no_detections_score_zero_and_a_class_without_detections_counts_zero():
    rng = np.random.default_rng(11)
    boxes, classes = scene(rng)
    gt = coco_ground_truth(boxes, classes, CANVAS, CLASSES)
    empty = [{"boxes": np.zeros((0, 4)), "scores": np.zeros(0), "classes": np.zeros(0, np.int64)}
             for _ in boxes]
    got = weighted_ap(image_matches(gt, empty), np.ones((3, len(boxes)), np.int64))
    for metric in METRICS:
        assert got[metric].tolist() == [0.0, 0.0, 0.0] == [evaluate(gt, empty)[metric]] * 3
    # Perfect detections of classes 1 and 2 only: class 3 has gt, precision 0, so AP = 2/3.
    perfect = [{"boxes": b[c != 3], "scores": np.full(int(np.sum(c != 3)), 0.5),
                "classes": c[c != 3]} for b, c in zip(boxes, classes)]
    got = weighted_ap(image_matches(gt, perfect), np.ones(len(boxes), np.int64))
    assert got["AP"][0] == pytest.approx(evaluate(gt, perfect)["AP"], abs=1e-12)
    assert got["AP"][0] == pytest.approx(2 / 3, abs=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_resample_counts_are_coco_eval_on_the_duplicated_images(seed):
    rng = np.random.default_rng(100 + seed)
    boxes, classes = scene(rng)
    gt = coco_ground_truth(boxes, classes, CANVAS, CLASSES)
    detections = detect(rng, boxes, classes)
    matches = image_matches(gt, detections)
    counts = resample_counts(len(boxes), resamples=6, seed=seed)
    counts[0] = 0
    counts[0, 0] = 3   # only image 0: classes 2 or 3 may have no gt and are left out
    got = weighted_ap(matches, counts)
    for b, row in enumerate(counts):
        expected = evaluate(*duplicated(boxes, classes, detections, row))
        for metric in METRICS:
            assert got[metric][b] == pytest.approx(expected[metric], abs=1e-12), (b, metric)
    # Blocks of a few resamples at a time give the same numbers.
    small = weighted_ap(matches, counts, max_elements=1)
    for metric in METRICS:
        np.testing.assert_array_equal(small[metric], got[metric])


def test_tied_detections_of_an_image_interleave_over_its_copies():
    """One object, two detections with the same score: the first (in the image's order) is the
    true positive. Twice the image is d1 d2 d1 d2 (TP FP TP FP): precision 1 up to recall 0.5,
    then 2/3; a weight of 2 per detection (TP TP FP FP) would say 1 throughout."""
    box = np.array([[10.0, 10.0, 40.0, 40.0]])
    gt = coco_ground_truth([box], [np.array([1])], CANVAS, 1)
    detections = [{"boxes": np.array([[10.0, 10.0, 40.0, 40.0], [11.0, 10.0, 41.0, 40.0]]),
                   "scores": np.array([0.7, 0.7]), "classes": np.array([1, 1])}]
    got = weighted_ap(image_matches(gt, detections), np.array([[1], [2]]))
    twice = evaluate(*duplicated([box], [np.array([1])], detections, np.array([2]), 1))
    assert 2 / 3 < twice["AP50"] < 0.9   # about (51 · 1 + 50 · 2/3) / 101
    assert got["AP50"][0] == pytest.approx(evaluate(gt, detections)["AP50"], abs=1e-12)
    assert got["AP50"][1] == pytest.approx(twice["AP50"], abs=1e-12)
    assert got["AP50"][0] == pytest.approx(1, abs=1e-12)


def test_a_resample_without_ground_truth_is_nan():
    rng = np.random.default_rng(5)
    boxes, classes = scene(rng)
    gt = coco_ground_truth(boxes, classes, CANVAS, CLASSES)
    counts = np.zeros((1, len(boxes)), np.int64)
    counts[0, 2] = len(boxes)   # image 2 has no ground truth
    got = weighted_ap(image_matches(gt, detect(rng, boxes, classes)), counts)
    assert all(np.isnan(got[metric][0]) for metric in METRICS)


def test_resample_counts_draw_every_image_count_times():
    counts = resample_counts(50, resamples=200, seed=3)
    assert counts.shape == (200, 50) and (counts.sum(axis=1) == 50).all()
    assert 0.5 < counts.mean(axis=0).min() and counts.mean(axis=0).max() < 1.5
    assert (counts == 0).mean() == pytest.approx((1 - 1 / 50) ** 50, abs=0.02)   # ≈ 1/e left out
    np.testing.assert_array_equal(counts, resample_counts(50, resamples=200, seed=3))


def arms(seeds=3, images=24):
    """Arm a detects with a small shift, arm b with a large one (loses the high IoU thresholds),
    each seed with its own jitter."""
    rng = np.random.default_rng(42)
    boxes, classes = scene(rng, images)
    gt = coco_ground_truth(boxes, classes, CANVAS, CLASSES)
    a = [detect(np.random.default_rng(s), boxes, classes, shift=0.02) for s in range(seeds)]
    b = [detect(np.random.default_rng(s), boxes, classes, shift=0.12) for s in range(seeds)]
    return gt, a, b


def test_an_arm_against_itself_is_exactly_zero():
    gt, a, _ = arms()
    out = paired_bootstrap(gt, a, a, resamples=200, seed=1)
    assert set(out) == set(METRICS)
    for metric in METRICS:
        assert out[metric] == {"mean": 0.0, "low": 0.0, "high": 0.0, "resamples": 200}


def test_a_known_gap_is_on_the_right_side_and_the_mean_is_coco_evals_difference():
    gt, a, b = arms()
    out = paired_bootstrap(gt, a, b, resamples=300, seed=2)
    for metric in ("AP", "AP75"):
        assert 0 < out[metric]["low"] < out[metric]["mean"] < out[metric]["high"], metric
    for metric in METRICS:
        expected = (np.mean([evaluate(gt, run)[metric] for run in a])
                    - np.mean([evaluate(gt, run)[metric] for run in b]))
        assert out[metric]["mean"] == pytest.approx(expected, abs=1e-12)
    swapped = paired_bootstrap(gt, b, a, resamples=300, seed=2)
    for metric in METRICS:
        assert swapped[metric]["mean"] == pytest.approx(-out[metric]["mean"], abs=1e-12)
        assert swapped[metric]["high"] == pytest.approx(-out[metric]["low"], abs=1e-12)
    assert swapped["AP"]["high"] < 0


def test_the_seed_argument_fixes_the_interval_and_the_interval_is_the_percentiles():
    gt, a, b = arms(seeds=2, images=16)
    first = paired_bootstrap(gt, a, b, resamples=100, seed=7)
    assert paired_bootstrap(gt, a, b, resamples=100, seed=7) == first
    other = paired_bootstrap(gt, a, b, resamples=100, seed=8)
    assert other["AP"]["low"] != first["AP"]["low"]
    assert other["AP"]["mean"] == first["AP"]["mean"]
    counts = resample_counts(16, resamples=100, seed=7)
    delta = (np.mean([weighted_ap(image_matches(gt, run), counts)["AP"] for run in a], axis=0)
             - np.mean([weighted_ap(image_matches(gt, run), counts)["AP"] for run in b], axis=0))
    assert (first["AP"]["low"], first["AP"]["high"]) == pytest.approx(
        tuple(np.percentile(delta, [2.5, 97.5])), abs=1e-12)
