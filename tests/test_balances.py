"""Class balances from data: counts of both label forms, the two weight formulas against hand and
60-digit values, HDF5 files and source lists, the command line, and an error naming the value for
every bad input."""
import json
import os
import re
import subprocess
import sys
from decimal import Decimal, localcontext

import h5py
import numpy as np
import pytest
from caffe_nets import focal_layer, input_net, load_net
from naive_reference import naive_focal_loss, naive_softmax_focal_loss

from focal_loss_layer.balances import (
    UnseenClassWarning,
    class_balances,
    class_counts,
    count_label_file,
    count_labels,
    format_class_balances,
    main,
)
from focal_loss_layer.errors import InputError, ParamError
from focal_loss_layer.params import parse_param_str, parse_softmax_param_str

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Index labels (N=4, 1, 2, 3): 9 background, class 1 ×5, class 2 ×1, class 3 ×6, 3 ignored (−1).
INDEX_LABELS = np.random.default_rng(0).permutation(
    np.repeat([0, 1, 2, 3, -1], [9, 5, 1, 6, 3])).reshape(4, 1, 2, 3).astype(np.float32)
INDEX_COUNTS = [5, 1, 6]

# Per-class targets (N=3, C=3, W=2), soft, 255 = ignored. Σ per channel over non-ignored entries:
# channel 0: 1 + 0 + 0 + 1 + 1 = 3 (one 255 skipped); channel 1: 0.5 + 1 + 1 + 0 = 2.5 (one 255
# skipped); channel 2: 0.25.
TARGET_LABELS = np.array([[[1, 0], [0, 0.5], [0, 0]],
                          [[0, 255], [1, 1], [0.25, 0]],
                          [[1, 1], [255, 0], [0, 0]]], dtype=np.float32)
TARGET_COUNTS = [3, 2.5, 0.25]


def write_h5(path, **datasets):
    with h5py.File(path, "w") as f:
        for name, values in datasets.items():
            f.create_dataset(name, data=values)
    return str(path)


def run_cli(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "focal_loss_layer.balances", *map(str, args)],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def fragment_weights(stdout, num_classes):
    """The weights of the last stdout line, read the way the layer reads param_str."""
    fragment = stdout.strip().splitlines()[-1]
    assert fragment.startswith("'class_balances': [")
    return parse_param_str("{" + fragment + "}").class_weights(num_classes)


# ---------------------------------------------------------------- counting

@pytest.mark.parametrize("labels", [INDEX_LABELS, INDEX_LABELS.reshape(4, 2, 3),
                                    INDEX_LABELS.ravel().astype(np.int64)])
def test_index_counts_skip_background_and_ignore_label(labels):
    counts = count_labels(labels, ignore_label=-1)
    np.testing.assert_array_equal(counts.counts, INDEX_COUNTS)
    assert (counts.form, counts.background, counts.ignored, counts.entries) == (
        "indices", 9, 3, 24)
    assert counts.num_classes == 3 and "largest label" in counts.num_classes_reason


def test_target_counts_sum_soft_positives_over_non_ignored_entries():
    counts = count_labels(TARGET_LABELS, ignore_label=255)
    np.testing.assert_allclose(counts.counts, TARGET_COUNTS, rtol=1e-7)
    assert (counts.form, counts.background, counts.ignored, counts.num_classes) == (
        "targets", None, 2, 3)


def test_given_num_classes_adds_unseen_classes_and_bounds_the_labels():
    padded = INDEX_COUNTS + [0, 0]
    np.testing.assert_array_equal(class_counts(INDEX_LABELS, 5, ignore_label=-1), padded)
    np.testing.assert_array_equal(class_counts(INDEX_LABELS, 5.0, ignore_label=-1.0), padded)
    with pytest.raises(InputError, match=r"holds 6 value\(s\) not allowed; the first is 3.0 at index "
                                         r".*: class-index labels must be integers 0..2 \(0 = "
                                         r"background\) or ignore_label=-1"):
        class_counts(INDEX_LABELS, 2, ignore_label=-1)


ONE_HOT = np.eye(3)[[0, 1, 2, 2]]  # (4, 3)


@pytest.mark.parametrize("labels, kwargs, form, reason, counts", [
    (np.array([0, 2, 1, 2]), {}, "indices", "is (N,)", [1, 2]),
    (np.array([[[0, 1, 0]], [[1, 1, 0]]]), {}, "indices", "axis 1 of size 1", [3]),
    (ONE_HOT, {}, "targets", "every value in [0, 1]", [1, 1, 2]),
    (np.array([[0, 3], [1, 2]]), {}, "indices", "values outside [0, 1]", [1, 1, 1]),
    (ONE_HOT, {"num_classes": 4}, "indices", "not num_classes = 4", [4, 0, 0, 0]),
    (ONE_HOT, {"form": "indices"}, "indices", "given", [4]),  # the ambiguous case, said outright
])
def test_auto_form_decides_by_shape_then_values_and_says_why(labels, kwargs, form, reason, counts):
    result = count_labels(labels, **kwargs)
    assert result.form == form and reason in result.form_reason
    np.testing.assert_array_equal(result.counts, counts)


# ---------------------------------------------------------------- weights

def test_inverse_frequency_hand_values():
    np.testing.assert_allclose(class_balances([1, 3], "inverse_frequency"), [1.5, 0.5], rtol=1e-15)
    # 1/n = 1/2, 1/4, 1/8; mean 7/24 → 12/7, 6/7, 3/7
    np.testing.assert_allclose(class_balances([2, 4, 8], "inverse_frequency"),
                               [12 / 7, 6 / 7, 3 / 7], rtol=1e-15)


def test_effective_number_hand_values():
    # β = 0.5: E(1) = 1, E(3) = (1 − 1/8)/(1/2) = 7/4 → w ∝ 1, 4/7 → 14/11, 8/11
    np.testing.assert_allclose(class_balances([1, 3], beta=0.5), [14 / 11, 8 / 11], rtol=1e-15)
    # β = 0.9: E(1) = 1, E(2) = (1 − 0.81)/0.1 = 1.9 → w ∝ 1, 1/1.9 → 3.8/2.9, 2/2.9
    np.testing.assert_allclose(class_balances([1, 2], beta=0.9), [3.8 / 2.9, 2 / 2.9], rtol=1e-14)


def test_default_is_effective_number_with_beta_0_999():
    counts = [10, 300, 5000]
    np.testing.assert_array_equal(class_balances(counts),
                                  class_balances(counts, "effective_number", 0.999))
    assert not np.allclose(class_balances(counts), class_balances(counts, "inverse_frequency"))


@pytest.mark.parametrize("beta", [0.0, 1e-12])
def test_beta_towards_zero_gives_equal_weights(beta):
    # β^n ≤ β for n ≥ 1, so every 1 − β^n is within 1e-12 of 1
    np.testing.assert_allclose(class_balances([1, 10, 1000], beta=beta), 1, rtol=1e-11)


def test_beta_towards_one_approaches_inverse_frequency():
    counts = np.array([1, 10, 100, 2.5])
    inverse = class_balances(counts, "inverse_frequency")
    np.testing.assert_allclose(class_balances(counts, beta=1 - 1e-9), inverse, rtol=1e-6)
    # ... and only there: at β = 0.9 the counts above 10 all weigh about the same.
    assert np.max(np.abs(class_balances(counts, beta=0.9) / inverse - 1)) > 0.5


@pytest.mark.parametrize("beta", [1 - 2 ** -40, 0.9999, 0.999, 0.5, 1e-3])
def test_effective_number_matches_a_60_digit_reference(beta):
    # 1 − β^n by expm1: the naive (1 − β) / (1 − β**n) is off by ~5e-9 at β = 1 − 2⁻⁴⁰ here.
    counts = [0.5, 1.5, 3.25, 1e4, 7e6]
    with localcontext() as ctx:
        ctx.prec = 60
        b = Decimal(beta)
        raw = [(1 - b) / (1 - (b.ln() * Decimal(n)).exp()) for n in counts]
        mean = sum(raw) / len(raw)
        reference = [float(w / mean) for w in raw]
    np.testing.assert_allclose(class_balances(counts, beta=beta), reference, rtol=1e-13)


@pytest.mark.parametrize("method, beta", [("inverse_frequency", None), ("effective_number", 0.9),
                                          ("effective_number", 0.9999)])
def test_weights_have_mean_one_and_fall_as_counts_rise(method, beta):
    counts = np.random.default_rng(1).integers(1, 100000, size=37).astype(float)
    weights = class_balances(counts, method, beta)
    assert abs(weights.mean() - 1) < 1e-14
    order = np.argsort(counts)
    assert np.all(np.diff(weights[order]) <= 0)


def test_unseen_class_gets_the_largest_seen_weight_and_a_warning_saying_so():
    # 1/n: (unseen), 1/2, 1/8 → unseen takes 1/2; mean 3/8 → 4/3, 4/3, 1/3
    with pytest.warns(UnseenClassWarning, match=r"class id\(s\) 1\. Their inverse_frequency weight "
                                                r"is undefined .* largest weight of the seen classes"):
        weights = class_balances([0, 2, 8], "inverse_frequency")
    np.testing.assert_allclose(weights, [4 / 3, 4 / 3, 1 / 3], rtol=1e-15)
    with pytest.warns(UnseenClassWarning, match=r"class id\(s\) 2, 4\. Their effective_number"):
        weights = class_balances([1, 0, 5, 0], beta=0.5)  # E(1) = 1, E(5) = 1.9375
    np.testing.assert_allclose(weights / weights[0], [1, 1, 1 / 1.9375, 1], rtol=1e-15)


def test_fragment_rounds_to_significant_digits_and_parses():
    fragment = format_class_balances([1.0, 0.123456, 12345.678, 1.23456e-5])
    assert fragment == "'class_balances': [1, 0.1235, 1.235e+04, 1.235e-05]"
    np.testing.assert_array_equal(parse_param_str("{" + fragment + "}").class_weights(4),
                                  [1, 0.1235, 12350, 1.235e-5])
    assert format_class_balances([2 / 3], digits=2) == "'class_balances': [0.67]"


# ---------------------------------------------------------------- HDF5 files and source lists

def test_hdf5_file_counts_equal_the_arrays_counts(tmp_path):
    index_file = write_h5(tmp_path / "index.h5", data=np.zeros((4, 1, 8, 8), np.float32),
                          label=INDEX_LABELS)
    target_file = write_h5(tmp_path / "target.h5", y=TARGET_LABELS)
    counts = count_label_file(index_file, ignore_label=-1)
    np.testing.assert_array_equal(counts.counts, INDEX_COUNTS)
    assert counts.files == (index_file,) and counts.background == 9
    counts = count_label_file(target_file, "y", ignore_label=255)
    np.testing.assert_allclose(counts.counts, TARGET_COUNTS, rtol=1e-7)


def test_source_list_sums_its_files_and_opens_relative_paths_from_the_working_directory(
        tmp_path, monkeypatch):
    write_h5(tmp_path / "a.h5", label=INDEX_LABELS[:1])
    write_h5(tmp_path / "b.h5", label=INDEX_LABELS[1:])
    # Blank lines and stray spaces are fine, as for Caffe's `source_file >> line`.
    (tmp_path / "list.txt").write_text("a.h5\n\n   b.h5  \n")
    monkeypatch.chdir(tmp_path)
    counts = count_label_file("list.txt", ignore_label=-1)
    assert counts.files == ("a.h5", "b.h5")
    np.testing.assert_array_equal(counts.counts, INDEX_COUNTS)
    assert (counts.background, counts.ignored, counts.entries) == (9, 3, 24)
    monkeypatch.chdir(ROOT)
    with pytest.raises(InputError, match=r"'a.h5' \(line 1 of source list .*list.txt'\) is not a "
                                         r"file, seen from the working directory .* it exists next "
                                         r"to the list"):
        count_label_file(str(tmp_path / "list.txt"), ignore_label=-1)


def test_files_that_disagree_on_the_form_are_an_error_naming_both(tmp_path):
    a = write_h5(tmp_path / "a.h5", label=ONE_HOT)
    b = write_h5(tmp_path / "b.h5", label=np.array([0.0, 3, 1, 2]))
    c = write_h5(tmp_path / "c.h5", label=np.eye(4))
    (tmp_path / "ab.txt").write_text(f"{a}\n{b}\n")
    (tmp_path / "ac.txt").write_text(f"{a}\n{c}\n")
    with pytest.raises(InputError, match=r"a.h5 dataset 'label' reads as targets .* but .*b.h5 "
                                         r"dataset 'label' as indices"):
        count_label_file(str(tmp_path / "ab.txt"))
    with pytest.raises(InputError, match=r"a.h5 dataset 'label' has C = 3 target channels .* but "
                                         r".*c.h5 dataset 'label' has 4"):
        count_label_file(str(tmp_path / "ac.txt"))


# ---------------------------------------------------------------- command line

def test_cli_prints_counts_and_a_fragment_with_the_function_apis_weights(tmp_path):
    write_h5(tmp_path / "a.h5", label=INDEX_LABELS[:2])
    write_h5(tmp_path / "b.h5", label=INDEX_LABELS[2:])
    (tmp_path / "train.txt").write_text("a.h5\nb.h5\n")
    done = run_cli("train.txt", "--ignore-label", -1, cwd=tmp_path)
    assert done.returncode == 0 and done.stderr == ""
    out = done.stdout
    assert "2 HDF5 file(s), dataset 'label', 24 label values" in out
    assert "C = 3 (inferred: the largest label)" in out and "ignored  3 (ignore_label -1)" in out
    rows = {int(m[1]): float(m[2]) for m in re.finditer(r"^\s+(\d)\s+([\d.,]+)\s", out, re.M)}
    assert rows == {0: 9, 1: 5, 2: 1, 3: 6}
    expected = class_balances(class_counts(INDEX_LABELS, ignore_label=-1))
    printed = fragment_weights(out, 3)
    np.testing.assert_array_equal(printed, [float(f"{w:.4g}") for w in expected])
    np.testing.assert_allclose(printed, expected, rtol=5e-4)


def test_cli_json_carries_full_precision_weights_of_the_function_api(tmp_path):
    path = write_h5(tmp_path / "t.h5", targets=TARGET_LABELS)
    done = run_cli(path, "--dataset", "targets", "--ignore-label", 255, "--method",
                   "inverse_frequency", "--digits", 6, "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert (out["form"], out["num_classes"], out["ignored"], out["beta"]) == (
        "targets", 3, 2, None)
    assert out["counts"] == TARGET_COUNTS and out["background"] is None
    expected = class_balances(class_counts(TARGET_LABELS, ignore_label=255), "inverse_frequency")
    assert out["weights"] == expected.tolist()
    weights = parse_param_str("{" + out["param_str_fragment"] + "}").class_weights(3)
    np.testing.assert_allclose(weights, expected, rtol=5e-6)


def test_cli_warns_on_stderr_about_unseen_classes(tmp_path):
    path = write_h5(tmp_path / "i.h5", label=INDEX_LABELS)
    done = run_cli(path, "--ignore-label", -1, "--num-classes", 5, "--method", "inverse_frequency")
    assert done.returncode == 0
    assert "warning: 2 class(es) have no samples (n_c = 0): class id(s) 4, 5." in done.stderr
    weights = fragment_weights(done.stdout, 5)
    assert weights[3] == weights[4] == weights.max() == weights[1]  # class 2, n = 1, the rarest seen


def test_cli_error_exits_2_with_the_message_and_no_traceback(tmp_path):
    path = write_h5(tmp_path / "i.h5", label=INDEX_LABELS)
    # The -1 labels (no --ignore-label) would be an error too: settings are checked first.
    done = run_cli(path, "--beta", "1")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("python -m focal_loss_layer.balances: error: beta = 1.0 is not "
                                  "allowed: beta must be a number in [0, 1)")
    assert "Traceback" not in done.stderr


def _files(tmp_path):
    """Paths for the error cases, made on demand."""
    p = tmp_path
    return {
        "good": lambda: write_h5(p / "good.h5", data=np.zeros((2, 3)), label=INDEX_LABELS),
        "empty": lambda: write_h5(p / "empty.h5", label=np.zeros((0,), np.float32)),
        "no_datasets": lambda: write_h5(p / "none.h5"),
        "half": lambda: write_h5(p / "half.h5", label=np.array([0, 2.5, 1], np.float32)),
        "soft": lambda: write_h5(p / "soft.h5", label=np.array([[0.5, 1.5]], np.float32)),
        "ignored": lambda: write_h5(p / "ign.h5", label=np.full((3,), -1, np.float32)),
        "background": lambda: write_h5(p / "bg.h5", label=np.zeros((3, 1, 2), np.float32)),
        "blank_list": lambda: (p / "blank.txt").write_text("\n  \n") and str(p / "blank.txt"),
        "bad_entry": lambda: (p / "bad.txt").write_text(str(p / "bad.txt")) and str(p / "bad.txt"),
        "binary": lambda: (p / "bin.dat").write_bytes(b"\xff\xfe\x00\x81") and str(p / "bin.dat"),
        "missing": lambda: str(p / "nope.h5"),
    }


@pytest.mark.parametrize("file, args, message", [
    ("empty", [], r"empty.h5 dataset 'label' holds no labels \(shape \(0,\)\)"),
    ("good", ["--dataset", "labels"], r"has no dataset 'labels'; datasets present: 'data', 'label'"),
    ("no_datasets", [], r"has no dataset 'label'; datasets present: none"),
    ("blank_list", [], r"source list .*blank.txt' lists no HDF5 files"),
    ("missing", [], r"'.*nope.h5' is not a file"),
    ("bad_entry", [], r"'.*bad.txt' \(line 1 of source list .*\) is not an HDF5 file"),
    ("binary", [], r"bin.dat' is neither an HDF5 file nor a text list"),
    ("half", [], r"the first is 2.5 at index \(1,\): class-index labels must be integers >= 0 "
                 r"\(0 = background\) \(no ignore_label is set\)"),
    ("good", [], r"the first is -1.0 at index .*\(no ignore_label is set\)"),
    ("good", ["--ignore-label", "-1", "--num-classes", "2"], r"the first is 3.0 .* integers 0..2"),
    ("soft", ["--form", "targets"], r"the first is 1.5 at index \(0, 1\): per-class targets must "
                                    r"lie in \[0, 1\]"),
    ("soft", ["--form", "targets", "--num-classes", "3"], r"per-class targets have C = 2 classes "
                                                          r"on axis 1, but num_classes = 3"),
    ("ignored", ["--ignore-label", "-1"], r"every one of the 3 label value\(s\) in .*ign.h5 "
                                          r"dataset 'label' equals ignore_label"),
    ("background", [], r"every non-ignored label in .* is 0 \(background\)"),
    ("background", ["--num-classes", "2"], r"every one of the 2 class counts is 0"),
    ("good", ["--ignore-label", "-1", "--beta", "-0.1"], r"beta = -0.1 is not allowed"),
    ("good", ["--ignore-label", "-1", "--beta", "nan"], r"beta = nan is not allowed"),
    ("good", ["--ignore-label", "-1", "--method", "inverse"],
     r"method = 'inverse' is not allowed \(did you mean 'inverse_frequency'\?\); method must be "
     r"one of 'effective_number', 'inverse_frequency'"),
    ("good", ["--ignore-label", "-1", "--method", "inverse_frequency", "--beta", "0.9"],
     r"beta = 0.9 is not allowed with method 'inverse_frequency'"),
    ("good", ["--num-classes", "0"], r"num_classes = 0 is not allowed"),
    ("good", ["--form", "pixels"], r"form = 'pixels' is not allowed: form must be one of 'auto', "
                                   r"'indices', 'targets'"),
    ("good", ["--ignore-label", "-1", "--digits", "0"], r"digits = 0 is not allowed"),
    ("soft", ["--layer", "softmax", "--form", "targets"], r"form = 'targets' is not allowed with "
                                                          r"layer 'softmax'"),
    ("good", ["--layer", "softmax", "--ignore-label", "-1", "--num-classes", "3"],
     r"the first is 3.0 .* class labels must be integers 0..2 \(one class per position"),
    # 400-digit integers: a ParamError naming the option, not an OverflowError.
    ("good", ["--ignore-label", "1" + "0" * 400], r"ignore_label = <an integer of about 401 "
                                                  r"digits> is not allowed: ignore_label must be "
                                                  r"an integer \(e.g. -1 or 255\) in "
                                                  r"-2147483648..2147483647"),
    ("good", ["--ignore-label", "-1", "--num-classes", "1" + "0" * 400],
     r"num_classes = <an integer of about 401 digits> is not allowed: num_classes must be an "
     r"integer 1..2147483647"),
    ("good", ["--ignore-label", "-1", "--digits", "1" + "0" * 400],
     r"digits = <an integer of about 401 digits> is not allowed"),
])
def test_cli_errors_name_the_value_and_what_is_allowed(tmp_path, capsys, file, args, message):
    path = _files(tmp_path)[file]()
    assert main([path, *args]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("python -m focal_loss_layer.balances: error: ")
    assert re.search(message, err), err


@pytest.mark.parametrize("call, error, message", [
    (lambda: class_balances([1, 2], beta=1.0), ParamError, r"beta = 1.0 is not allowed: beta must "
                                                           r"be a number in \[0, 1\)"),
    (lambda: class_balances([1, 2], beta=True), ParamError, r"beta = True is not allowed"),
    (lambda: class_balances([1, 2], "focal"), ParamError, r"method = 'focal' is not allowed"),
    (lambda: class_balances([0, 0]), InputError, r"every one of the 2 class counts is 0"),
    (lambda: class_balances([3, -1]), InputError, r"counts hold -1.0 for class 2: counts must be "
                                                  r"finite and >= 0"),
    (lambda: class_balances([[1, 2]]), InputError, r"shape \(C,\); got shape \(1, 2\)"),
    (lambda: class_counts(np.zeros((0, 3))), InputError, r"labels holds no labels \(shape \(0, 3\)\)"),
    (lambda: class_counts([1, 2], ignore_label=0.5), ParamError, r"ignore_label = 0.5 is not allowed"),
    (lambda: class_counts([1, 2], num_classes=2.5), ParamError, r"num_classes = 2.5 is not allowed"),
    (lambda: class_counts(["a"]), InputError, r"labels has dtype <U1; labels must be numbers"),
    (lambda: class_balances([1, 10 ** 400]), InputError, r"counts = \[1, 1000.* is not allowed: "
                                                         r"counts must be numbers"),
    (lambda: class_balances([1, 2], beta=10 ** 400), ParamError, r"beta = <an integer of about "
                                                                 r"401 digits> is not allowed"),
    (lambda: class_counts([1, 2], ignore_label=2 ** 31), ParamError, r"ignore_label = 2147483648 "
                                                                     r"is not allowed"),
])
def test_api_errors_name_the_value(call, error, message):
    with pytest.raises(error, match=message):
        call()


# ---------------------------------------------------------------- the layer the weights are for

# (4, 3) labels, 255 ignored. Softmax reading: class 0 ×6, 1 ×2, 2 ×3 → 1/n = 1/6, 1/2, 1/3, mean
# 1/3 → weights 0.5, 1.5, 1. Sigmoid reading: 0 is background (×6), classes 1 ×2, 2 ×3.
SOFTMAX_LABELS = np.array([[0, 1, 2], [0, 0, 255], [2, 0, 1], [0, 2, 0]], dtype=np.float32)
# Sigmoid index labels: background ×2, class 1 ×2, 2 ×4, 3 ×4 → 1/n = 1/2, 1/4, 1/4 → 1.5, 0.75, 0.75
SIGMOID_LABELS = np.array([[0, 1, 2], [3, 2, 0], [1, 3, 2], [3, 2, 3]], dtype=np.float32)


def test_softmax_counts_every_label_as_a_class_from_zero():
    counts = count_labels(SOFTMAX_LABELS, ignore_label=255, layer="softmax")
    np.testing.assert_array_equal(counts.counts, [6, 2, 3])
    assert (counts.layer, counts.class_ids, counts.background, counts.form) == (
        "SoftmaxFocalLossLayer", [0, 1, 2], None, "indices")
    assert "the largest label + 1" in counts.num_classes_reason
    np.testing.assert_allclose(class_balances(counts.counts, "inverse_frequency", layer="softmax"),
                               [0.5, 1.5, 1.0], rtol=1e-15)
    # The sigmoid reading of the same labels: 0 is background, two classes.
    np.testing.assert_array_equal(class_counts(SOFTMAX_LABELS, ignore_label=255), [2, 3])
    # (N, W) labels of only 0 and 1 are indices for the softmax layer, never per-class targets.
    np.testing.assert_array_equal(class_counts(ONE_HOT, layer="softmax"), [8, 4])


def test_softmax_num_classes_pads_and_bounds_and_unseen_ids_start_at_zero():
    np.testing.assert_array_equal(class_counts(SOFTMAX_LABELS, 5, ignore_label=255,
                                               layer="softmax"), [6, 2, 3, 0, 0])
    with pytest.raises(InputError, match=r"class labels must be integers 0..1 \(one class per "
                                         r"position, as SoftmaxWithLoss\) or ignore_label=255"):
        class_counts(SOFTMAX_LABELS, 2, ignore_label=255, layer="softmax")
    with pytest.warns(UnseenClassWarning, match=r"class id\(s\) 0, 2\. Their"):
        class_balances([0, 4, 0, 2], "inverse_frequency", layer="softmax")
    with pytest.raises(InputError, match=r"counts hold -1.0 for class 1: counts must be finite"):
        class_balances([3, -1], layer="softmax")


@pytest.mark.parametrize("call, message", [
    (lambda: class_counts(SOFTMAX_LABELS, layer="SoftmaxFocalLossLayer"),
     r"layer = 'SoftmaxFocalLossLayer' is not allowed: layer must be one of 'sigmoid' "
     r"\(FocalLossLayer, class ids 1..C, 0 = background\), 'softmax' \(SoftmaxFocalLossLayer, "
     r"class ids 0..C-1, 0 is a class\)"),
    (lambda: class_counts(ONE_HOT, form="targets", layer="softmax"),
     r"form = 'targets' is not allowed with layer 'softmax': SoftmaxFocalLossLayer reads one "
     r"class index per position"),
    (lambda: class_balances([1, 2], layer=None), r"layer = None is not allowed"),
])
def test_a_bad_layer_or_form_for_it_is_a_param_error(call, message):
    with pytest.raises(ParamError, match=message):
        call()


def test_cli_help_lists_the_layers():
    done = run_cli("--help")
    assert done.returncode == 0
    assert "--layer {sigmoid,softmax}" in done.stdout
    assert "SoftmaxFocalLossLayer, class ids 0..C-1" in " ".join(done.stdout.split())
    done = run_cli("x.h5", "--layer", "softmaxx")
    assert done.returncode == 2
    assert "invalid choice: 'softmaxx' (choose from 'sigmoid', 'softmax')" in done.stderr


def test_cli_help_lists_the_forms_and_methods():
    usage = run_cli("--help").stdout
    assert "--form {auto,indices,targets}" in usage
    assert "--method {effective_number,inverse_frequency}" in usage
    done = run_cli("x.h5", "--method", "median")   # still the project's own message
    assert done.returncode == 2
    assert "method = 'median' is not allowed" in done.stderr


def test_cli_weights_for_the_softmax_layer_feed_a_softmax_focal_loss_net(tmp_path):
    """On softmax labels 0..2 the tool prints C = 3 weights, says they are for
    SoftmaxFocalLossLayer, and a real net with that param_str computes the weighted loss; the
    sigmoid reading of the same file gives 2 weights, which that layer refuses."""
    path = write_h5(tmp_path / "seg.h5", label=SOFTMAX_LABELS)
    done = run_cli(path, "--layer", "softmax", "--ignore-label", 255, "--method",
                   "inverse_frequency")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert done.stdout.startswith("layer    SoftmaxFocalLossLayer (--layer softmax): class ids "
                                  "0..2, 0 is a class\n")
    assert "param_str fragment for SoftmaxFocalLossLayer (4 significant digits):" in done.stdout
    rows = {int(m[1]): float(m[2]) for m in re.finditer(r"^\s+(\d)\s+([\d.,]+)\s", done.stdout,
                                                        re.M)}
    assert rows == {0: 6, 1: 2, 2: 3}
    fragment = done.stdout.strip().splitlines()[-1]
    param_str = "{'ignore_label': 255, 'focusing_parameter': 1, " + fragment + "}"
    weights = parse_softmax_param_str(param_str).class_weights(3)
    np.testing.assert_array_equal(weights, [0.5, 1.5, 1])

    logits = np.random.default_rng(6).normal(size=(4, 3, 3)).astype(np.float32)
    net = load_net(input_net((4, 3, 3), (4, 3), focal_layer(param_str,
                                                            layer="SoftmaxFocalLossLayer")))
    net.blobs["score"].data[...] = logits
    net.blobs["label"].data[...] = SOFTMAX_LABELS
    expected, _ = naive_softmax_focal_loss(logits, SOFTMAX_LABELS, focusing_parameter=1.0,
                                           class_balances=[0.5, 1.5, 1.0], ignore_label=255)
    np.testing.assert_allclose(net.forward()["loss"].item(), expected, rtol=1e-5)

    sigmoid_reading = run_cli(path, "--ignore-label", 255, "--method", "inverse_frequency")
    assert sigmoid_reading.stdout.startswith("layer    FocalLossLayer (--layer sigmoid)")
    two_weights = "{" + sigmoid_reading.stdout.strip().splitlines()[-1] + "}"
    with pytest.raises(ParamError, match=r"class_balances has 2 weights but the logits have C=3"):
        load_net(input_net((4, 3, 3), (4, 3), focal_layer(two_weights,
                                                          layer="SoftmaxFocalLossLayer")))


def test_cli_weights_for_the_sigmoid_layer_feed_a_focal_loss_net(tmp_path):
    path = write_h5(tmp_path / "det.h5", label=SIGMOID_LABELS)
    done = run_cli(path, "--layer", "sigmoid", "--method", "inverse_frequency", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert (out["layer"], out["class_ids"], out["background"]) == ("FocalLossLayer", [1, 2, 3], 2)
    assert out["counts"] == [2, 4, 4] and out["weights"] == [1.5, 0.75, 0.75]
    param_str = "{'focusing_parameter': 2, " + out["param_str_fragment"] + "}"
    logits = np.random.default_rng(7).normal(size=(4, 3, 3)).astype(np.float32)
    net = load_net(input_net((4, 3, 3), (4, 3), focal_layer(param_str)))
    net.blobs["score"].data[...] = logits
    net.blobs["label"].data[...] = SIGMOID_LABELS
    expected, _ = naive_focal_loss(logits, SIGMOID_LABELS, gamma=2.0,
                                   class_balances=[1.5, 0.75, 0.75])
    np.testing.assert_allclose(net.forward()["loss"].item(), expected, rtol=1e-5)
    # The default layer is the sigmoid one, and the text report says so.
    assert run_cli(path).stdout.startswith("layer    FocalLossLayer (--layer sigmoid): class ids "
                                           "1..3, 0 = background\n")


def test_cli_json_names_the_softmax_layer_and_its_class_ids(tmp_path):
    path = write_h5(tmp_path / "seg.h5", label=SOFTMAX_LABELS)
    out = json.loads(run_cli(path, "--layer", "softmax", "--ignore-label", 255, "--num-classes",
                             4, "--json").stdout)
    assert (out["layer"], out["class_ids"], out["counts"], out["background"]) == (
        "SoftmaxFocalLossLayer", [0, 1, 2, 3], [6, 2, 3, 0], None)
    assert "class id(s) 3." in out["warnings"][0]
