import numpy as np
import pytest
from scipy import stats as sps

from metapt.stats import paired, summarise


def test_summary_ci_matches_the_t_interval():
    x = [0.70, 0.74, 0.78, 0.72]
    s = summarise(x)
    lo, hi = sps.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=sps.sem(x))
    assert (s.ci_low, s.ci_high) == pytest.approx((lo, hi))
    assert s.std == pytest.approx(np.std(x, ddof=1)) and s.n == 4
    assert np.isnan(summarise([0.5]).ci_low)


def test_paired_difference_and_errors():
    a, b = [0.80, 0.82, 0.79], [0.75, 0.78, 0.76]
    pr = paired(a, b)
    assert pr.diff.mean == pytest.approx(np.mean(np.subtract(a, b)))
    assert pr.p_value == pytest.approx(sps.ttest_rel(a, b).pvalue)
    with pytest.raises(ValueError, match="matched seeds"):
        paired([1, 2], [1])
    with pytest.raises(ValueError, match="no values"):
        summarise([])
