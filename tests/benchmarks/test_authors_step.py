"""The authors' hyper-step (benchmarks/authors_step.py, with ``higher``) computes metapt's paper-mode
hypergradient, and the side-by-side benchmark runs; ``higher`` stays out of the package."""

from pathlib import Path

import pytest
import torch

from benchmarks.authors_step import agreement, bench

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("size", ["tiny", "embedded"])
def test_the_authors_structure_gives_metapts_paper_mode_hypergradient(size):
    a = agreement(size, torch.device("cpu"))
    assert a["authors"] >= 0.999, a
    assert a["skip"] > a["batches"], a  # dropping the HVP moves the estimate less than drawing other batches does


def test_side_by_side_benchmark_runs_on_tiny_gin():
    out = bench("tiny", torch.device("cpu"), rounds=1)
    assert out["plain_ms"] > 0 and all(out[f"{k}_steps"] > 0 for k in ("authors", "paper", "paper+skip", "fast"))
    assert 0 < out["paper+skip_bound"] < 1 and 0 <= out["fast+skip_skipped"] <= 1


def test_higher_is_a_benchmark_dependency_only():
    users = [str(p.relative_to(ROOT)) for p in (ROOT / "metapt").rglob("*.py") if "import higher" in p.read_text()]
    assert users == []
