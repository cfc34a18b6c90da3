"""Property tests (hypothesis) of both compiled passes against the numpy cores: random shapes
(with and without spatial dims), γ (integer, taken by multiplication, and not), label forms,
options, ignored positions, logit scales; and NaN/±inf injected anywhere, which must raise the
InputError of fast.check_finite. Every example also runs backward's check on unchanged inputs,
which must not fire.

Reproducible: derandomize=True (examples follow from the test's code, not a random seed);
max_examples keeps the file's time to a few seconds once the passes are compiled (the other
kernel tests compile the same γ paths)."""
import numpy as np
from fast_checks import assert_float32_close, assert_same_error
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fast import fast as sigmoid_fast
from test_fast import reference as sigmoid_reference
from test_softmax_fast import fast as softmax_fast
from test_softmax_fast import reference as softmax_reference

from focal_loss_layer.fast import check_finite

PROPERTIES = settings(max_examples=300, deadline=None, derandomize=True,
                      suppress_health_check=[HealthCheck.too_slow])

shapes = st.tuples(st.integers(1, 3), st.integers(1, 6),
                   st.lists(st.integers(1, 6), min_size=0, max_size=2)).map(
    lambda t: (t[0], t[1], *t[2]))
gammas = st.one_of(st.sampled_from([0.0, 1.0, 2.0, 3.0, 4.0]),
                   st.floats(0.0, 6.0, allow_nan=False).map(lambda g: round(g, 3)))
scales = st.sampled_from([0.1, 3.0, 30.0, 1e4])
seeds = st.integers(0, 2**32 - 1)
# (how many, which value) of the non-finite logits to inject; none half the time.
injections = st.one_of(st.none(), st.tuples(st.integers(1, 3),
                                            st.sampled_from([np.nan, np.inf, -np.inf])))


def inject(rng, logits, injection):
    """Non-finite values at random places of a copy of logits, or logits unchanged."""
    if injection is None:
        return logits
    count, value = injection
    logits = logits.copy()
    logits.reshape(-1)[rng.choice(logits.size, size=min(count, logits.size), replace=False)] = value
    return logits


def check(run, reference, logits, labels, injection, rng):
    logits = inject(rng, logits, injection)
    if injection is None:
        assert_float32_close(run(logits, labels), reference(logits, labels))
    else:
        assert_same_error(lambda: check_finite(logits), lambda: run(logits, labels))


@PROPERTIES
@given(shape=shapes, gamma=gammas, scale=scales, seed=seeds, injection=injections,
       form=st.sampled_from(["targets", "soft targets", "indices", "indices (N, 1, ...)"]),
       ignore=st.booleans(), alpha=st.one_of(st.none(), st.floats(0.0, 1.0)),
       smoothing=st.sampled_from([0.0, 0.1]),
       normalization=st.sampled_from(["batch_size", "full", "valid", "positives", "none"]))
def test_sigmoid_pass_matches_the_core(shape, gamma, scale, seed, injection, form, ignore, alpha,
                                       smoothing, normalization):
    rng = np.random.default_rng(seed)
    n, c, spatial = shape[0], shape[1], shape[2:]
    logits = (rng.normal(size=shape) * scale).astype(np.float32)
    if form.startswith("indices"):
        labels = rng.integers(0, c + 1, size=(n,) + spatial).astype(np.float32)
        if form.endswith("...)"):
            labels = labels.reshape((n, 1) + spatial)
    else:
        labels = (rng.random(shape) if form == "soft targets"
                  else rng.random(shape) < 0.3).astype(np.float32)
    if ignore:
        labels[rng.random(labels.shape) < 0.25] = -1
    settings_ = {"focusing_parameter": gamma, "alpha": alpha, "label_smoothing": smoothing,
                 "normalization": normalization, "ignore_label": -1 if ignore else None,
                 "class_balances": [float(w) for w in rng.uniform(0, 2, c).round(2)]}
    check(lambda x, y: sigmoid_fast(x, y, settings_),
          lambda x, y: sigmoid_reference(x, y, settings_), logits, labels, injection, rng)


@PROPERTIES
@given(shape=shapes, gamma=gammas, scale=scales, seed=seeds, injection=injections,
       labels_with_channel=st.booleans(), ignore=st.sampled_from([None, -1, 0]),
       alpha=st.one_of(st.none(), st.floats(0.0, 1.0)),
       normalization=st.sampled_from(["valid", "full", "batch_size", "none"]))
def test_softmax_pass_matches_the_core(shape, gamma, scale, seed, injection, labels_with_channel,
                                       ignore, alpha, normalization):
    """ignore 0: an ignore_label inside the class range."""
    rng = np.random.default_rng(seed)
    n, c, spatial = shape[0], shape[1], shape[2:]
    logits = (rng.normal(size=shape) * scale).astype(np.float32)
    labels = rng.integers(0, c, size=(n,) + spatial).astype(np.float32)
    if ignore is not None:
        labels[rng.random(labels.shape) < 0.25] = ignore
    if labels_with_channel:
        labels = labels.reshape((n, 1) + spatial)
    settings_ = {"focusing_parameter": gamma, "alpha": alpha, "normalization": normalization,
                 "ignore_label": ignore,
                 "class_balances": [float(w) for w in rng.uniform(0, 2, c).round(2)]}
    check(lambda x, y: softmax_fast(x, y, settings_),
          lambda x, y: softmax_reference(x, y, settings_), logits, labels, injection, rng)
