"""examples/common/stats.py against scipy: the t-interval of a mean and of paired differences."""
import numpy as np
import pytest
from scipy import stats

from examples.common.stats import paired_difference, t_interval


@pytest.mark.parametrize("values", [[0.41, 0.52, 0.47, 0.44], [0.1, 0.3], [0.9, 0.2, 0.5, 0.6, 0.55]])
def test_the_interval_is_scipys_t_interval(values):
    out = t_interval(values)
    low, high = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values),
                                 scale=stats.sem(values))
    assert out["n"] == len(values)
    assert out["mean"] == pytest.approx(np.mean(values))
    assert out["sd"] == pytest.approx(np.std(values, ddof=1))
    assert (out["low"], out["high"]) == pytest.approx((low, high))


def test_the_paired_difference_is_scipys_paired_t_interval():
    a = [0.52, 0.47, 0.55, 0.49]
    b = [0.50, 0.41, 0.49, 0.48]
    out = paired_difference(a, b)
    interval = stats.ttest_rel(a, b).confidence_interval(0.95)
    assert out["mean"] == pytest.approx(np.mean(np.subtract(a, b)))
    assert (out["low"], out["high"]) == pytest.approx((interval.low, interval.high))
    assert out["values"] == pytest.approx(np.subtract(a, b).tolist())


def test_pairing_removes_a_shared_seed_effect_that_an_unpaired_interval_keeps():
    seed_effect = np.array([0.0, 0.2, -0.15, 0.1])
    a, b = 0.5 + seed_effect + [0.02, 0.03, 0.025, 0.035], 0.5 + seed_effect
    paired = paired_difference(a, b)
    assert paired["low"] > 0   # a is better on every seed by 0.02-0.035
    unpaired = t_interval(a)
    assert unpaired["high"] - unpaired["low"] > 10 * (paired["high"] - paired["low"])


def test_one_value_has_no_interval_and_unequal_lengths_are_refused():
    assert t_interval([0.3])["low"] is None
    with pytest.raises(ValueError, match="one value per seed"):
        paired_difference([0.1, 0.2], [0.1])
