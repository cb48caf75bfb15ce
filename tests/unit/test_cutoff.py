"""The early cutoff never restores what it cannot vouch for (the pipeline test covers a real restore)."""

from pathlib import Path

from metapt import cutoff


def test_no_lock_or_no_cache_object_means_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert not cutoff.restore_if_current("acquire_ppi")  # no dvc.lock
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\nstages:\n  acquire_ppi:\n    outs:\n    - path: data/ppi/raw\n      md5: 0123456789abcdef0123456789abcdef.dir\n")
    assert not cutoff.restore_if_current("acquire_ppi")  # locked, but the object is not in the cache
    assert not cutoff.restore_if_current("not_a_stage")


def test_the_cache_dir_follows_dvc_config_and_the_switch_turns_it_off(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".dvc").mkdir()
    (tmp_path / ".dvc/config").write_text("[cache]\n    dir = /scratch/shared-cache\n")
    assert cutoff._cache_root() == Path("/scratch/shared-cache/files/md5")
    md5 = "0123456789abcdef0123456789abcdef.dir"
    (tmp_path / ".dvc/config").write_text("[cache]\n    type = hardlink\n")
    obj = tmp_path / ".dvc/cache/files/md5" / md5[:2] / md5[2:]
    obj.parent.mkdir(parents=True)
    obj.write_text("[]")
    (tmp_path / "dvc.lock").write_text(f"schema: '2.0'\nstages:\n  s:\n    outs:\n    - path: out\n      md5: {md5}\n")
    assert cutoff._locked_outs("s") is not None
    monkeypatch.setenv(cutoff.OFF_ENV, "1")
    assert not cutoff.restore_if_current("s")  # off: run, without looking further
