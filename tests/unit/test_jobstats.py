"""A stage process's wall time and peak memory (metapt.jobstats): keyed by the command dvc.yaml spells."""

import subprocess
import sys
import time
from pathlib import Path

from metapt import jobstats

ROOT = Path(__file__).resolve().parents[2]


def test_a_stage_process_records_its_stats_under_its_dvc_command(tmp_path):
    """The real entry point (stages/_common.py registers the writer); the reader finds it by the stage's cmd."""
    t0 = time.time()
    subprocess.run([sys.executable, str(ROOT / "stages/acquire.py"), "--help"], cwd=tmp_path, check=True, capture_output=True)
    stats = jobstats.read("python stages/acquire.py --help", tmp_path, since=t0)
    assert stats is not None and stats["peak_rss_mb"] > 10 and 0 < stats["wall_s"] < 60
    assert jobstats.read("python stages/acquire.py  --help", tmp_path) == stats  # the same command, spaced differently
    assert jobstats.read("python stages/acquire.py --help", tmp_path, since=time.time() + 60) is None  # an older run does not count
    assert jobstats.read("python stages/acquire.py ppi", tmp_path) is None


def test_folder_bytes_counts_files_not_links(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a").write_bytes(b"x" * 10)
    (tmp_path / "d" / "link").symlink_to(tmp_path / "d" / "a")
    assert jobstats.folder_bytes(tmp_path / "d") == 10 and jobstats.folder_bytes(tmp_path / "d" / "a") == 10
    assert jobstats.folder_bytes(tmp_path / "missing") == 0
