"""Fetch the real bio data with its checksum pinned in a config file (trust on first use).

    python -m metapt.ppi.download --config configs/bio_data.yaml

The first successful fetch writes the observed SHA-256 and size into the config (atomically,
keeping the other keys); later fetches must match them, or fail with a ChecksumError.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from metapt.io import atomic_path
from metapt.ppi.acquire import BIO_URL, FetchedBio, fetch_bio


class BioDataConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = BIO_URL
    data_dir: Path = Path("data/bio")
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    size: int | None = Field(None, gt=0)


def fetch_pinned(config_path: str | Path, progress: bool = True, **fetch_kw) -> FetchedBio:
    path = Path(config_path)
    cfg = BioDataConfig.model_validate(yaml.safe_load(path.read_text()) or {})
    got = fetch_bio(cfg.url, cfg.data_dir, cfg.sha256, cfg.size, progress=progress, **fetch_kw)
    if cfg.sha256 is None or cfg.size is None:
        tree = yaml.safe_load(path.read_text()) or {}
        tree.update(sha256=got.sha256, size=got.size)
        comments = "".join(line + "\n" for line in path.read_text().splitlines() if line.startswith("#"))
        with atomic_path(path) as tmp:
            tmp.write_text(comments + yaml.safe_dump(tree, sort_keys=False))
    return got


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=Path("configs/bio_data.yaml"))
    args = ap.parse_args()
    got = fetch_pinned(args.config)
    print(f"converted data: {got.path}\nsha256 {got.sha256}  size {got.size}")


if __name__ == "__main__":
    main()
