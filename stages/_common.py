"""Shared by the stage entry points: import the repo's package, load the active profile, pick a domain."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from metapt.config import ParamsError, active_profile  # noqa: E402


def profile():
    try:
        return active_profile()
    except ParamsError as err:
        sys.exit(f"error: {err}")


def domain_module(domain: str, part: str = "pipeline"):
    """``metapt.<domain>.prepare`` (data stages) or ``metapt.<domain>.pipeline`` (model stages)."""
    return importlib.import_module(f"metapt.{domain}.{part}")
