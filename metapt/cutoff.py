"""Early cutoff by content: a job whose inputs hash as recorded takes its outputs from the DVC cache.

    python -m metapt.cutoff <stage>      (exit 0: restored, nothing to compute; 1: run the stage)

Snakemake decides what runs by mtimes, and it plans the whole graph before any job starts: once a
stage reruns, every stage below it is scheduled, even when the rerun wrote the same bytes. The
stages are deterministic, so that happens often: an edit of the download code reruns the acquire
stages, whose outputs come out identical, and Snakemake would then rerun all 161 jobs below them.
``dvc repro`` stops there, because it compares hashes. Each Snakemake job therefore asks first
whether its stage is up to date by content, as ``dvc repro`` would (command, code, data deps and
params hash as in ``dvc.lock``, and its outputs are in the cache); if so it restores them from the
cache (links, no copy) and neither computes nor commits nor publishes anything.

The check is cheap when it cannot succeed (a stage never built here: no cache object), so a cold
build pays nothing; otherwise it costs one DVC index load (about 2 s). ``METAPT_NO_CUTOFF=1`` turns
it off, to recompute what is up to date (a forced rerun, ``rm -r results`` then ``reproduce`` to
check a reproduction in the same checkout, re-timing a job).
"""

from __future__ import annotations

import configparser
import os
import sys
from pathlib import Path

LOCK = Path("dvc.lock")
OFF_ENV = "METAPT_NO_CUTOFF"


def _cache_root() -> Path:
    """The DVC cache's md5 objects: ``.dvc/cache`` unless ``dvc cache dir`` moved it (a shared cache on a cluster)."""
    root = Path(".dvc/cache")
    cfg = configparser.ConfigParser()
    for name in (".dvc/config", ".dvc/config.local"):
        cfg.read(name)
        if cfg.has_option("cache", "dir"):
            d = Path(cfg.get("cache", "dir"))
            root = d if d.is_absolute() else Path(".dvc") / d
    return root / "files" / "md5"


def _locked_outs(stage: str) -> list[dict] | None:
    """The stage's outputs as recorded in dvc.lock, if every one of them is in the local cache."""
    import yaml

    if not LOCK.exists():
        return None
    entry = yaml.load(LOCK.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)).get("stages", {}).get(stage)
    outs = (entry or {}).get("outs") or []
    cache = _cache_root()
    if not outs or not all(o.get("md5") and (cache / o["md5"][:2] / o["md5"][2:]).exists() for o in outs):
        return None
    return outs


def restore_if_current(stage: str) -> bool:
    """Restore the stage's outputs from the cache if its command, deps and params are as locked; True if it did."""
    if os.environ.get(OFF_ENV) or _locked_outs(stage) is None:
        return False
    from dvc.repo import Repo

    with Repo(".") as repo:
        found = [s for s in repo.index.stages if s.addressing == stage]
        if not found:
            return False
        st = found[0]
        if st.changed_stage() or any(dep.status() for dep in st.deps) or any(out.changed_cache() for out in st.outs):
            return False
        for out in st.outs:
            out.checkout()
            path = Path(out.fs_path)
            if path.is_file():  # a linked file keeps the cache's old mtime: Snakemake must see it as just written
                path.touch()
    return True


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    if restore_if_current(argv[0]):
        print(f"metapt: {argv[0]} is up to date by content (command, code, data and params as in dvc.lock): outputs restored from the DVC cache")
        return 0
    return 1


if __name__ == "__main__":
    sys.exit(main())
