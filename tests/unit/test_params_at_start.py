"""A bad params.yaml stops the workflow before any job is scheduled, naming the dotted key and what is allowed.

Each case edits the shipped params.yaml as a user would (text, anchors kept) and runs the README's
dry run; the Snakefile validates the same way when Snakemake is called directly.
"""

import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CASES = {
    "typo'd key": (("full: {mode: full, lr: 0.001, epochs: 12", "full: {mode: full, lrr: 0.001, epochs: 12"),
                   ["profiles.embedded.ppi.finetune.full.lrr: unknown key; allowed keys here: batch_size, dropout, epochs, lr, mode, steps_per_epoch, weight_decay"]),
    "ill-typed value": (("pt_lr: 0.002", "pt_lr: fast"), ["profiles.embedded.ppi.pretrain.loop.pt_lr: Input should be a valid number", "(got 'fast')"]),
    "negative count": (("          epochs: 4\n", "          epochs: -3\n"), ["profiles.embedded.ppi.pretrain.loop.epochs: Input should be greater than or equal to 1 (got -3)"]),
    "list for a scalar": (("torch_threads: 1\n", "torch_threads: [1, 2]\n"), ["profiles.embedded.torch_threads: Input should be a valid integer (got [1, 2])"]),
    "unknown profile": (("active: *embedded", "active: *embeded"), ["unknown profile *embeded; the profiles are: *embedded, *paper, *rehearsal, *tiny"]),
}


def _bad_params(tmp_path: Path, old: str, new: str) -> Path:
    text = (ROOT / "params.yaml").read_text()
    assert old in text, f"the shipped params.yaml no longer holds {old!r}: update this case"
    (tmp_path / "params.yaml").write_text(text.replace(old, new, 1))
    return tmp_path


@pytest.mark.parametrize("case", sorted(CASES))
def test_reproduce_dry_run_names_the_bad_key(tmp_path, case):
    (old, new), expected = CASES[case]
    cwd = _bad_params(tmp_path, old, new)
    t0 = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "metapt.workflow", "--dry-run"], cwd=cwd, capture_output=True, text=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    seconds = time.perf_counter() - t0
    assert run.returncode == 2, run.stdout + run.stderr
    for part in expected:
        assert part in run.stderr, run.stderr
    assert "Traceback" not in run.stderr
    print(f"{case}: {seconds:.2f} s\n{run.stderr.strip()}")


def test_the_snakefile_stops_on_bad_params_before_scheduling(tmp_path):
    cwd = _bad_params(tmp_path, *CASES["typo'd key"][0])
    run = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(cwd), "-n", "--cores", "1"],
                         cwd=cwd, capture_output=True, text=True)
    assert run.returncode != 0
    assert CASES["typo'd key"][1][0] in run.stdout + run.stderr


def test_a_second_reproduce_in_one_checkout_stops_and_changes_nothing(tmp_path):
    """Two runs at once would race on params.yaml (a profile switch), dvc.lock and the outputs."""
    from metapt.workflow import one_at_a_time

    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    before = (tmp_path / "params.yaml").read_bytes()
    with one_at_a_time(tmp_path) as other:
        assert other is None  # this test holds the lock, as a running reproduce does
        run = subprocess.run([sys.executable, "-m", "metapt.workflow", "--profile", "paper", "--dry-run"], cwd=tmp_path, capture_output=True,
                             text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 3, run.stdout + run.stderr
    assert "another reproduce is running" in run.stderr and "nothing was changed" in run.stderr and "pid " in run.stderr
    assert (tmp_path / "params.yaml").read_bytes() == before  # the profile switch did not happen
    with one_at_a_time(tmp_path) as other:  # released when the holder is done
        assert other is None
