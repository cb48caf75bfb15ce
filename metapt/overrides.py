"""Dotted ``KEY=VALUE`` overrides on a config tree, as the trial CLIs take them (``--set a.b.c=1``)."""

from __future__ import annotations

from typing import Any, Iterable

import yaml


def set_dotted(tree: dict, dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    for k in keys[:-1]:
        tree = tree.setdefault(k, {})
    tree[keys[-1]] = value


def parse_pairs(pairs: Iterable[str]) -> dict[str, Any]:
    """``["a.b=1", "c=[2, 3]"]`` → ``{"a.b": 1, "c": [2, 3]}`` with YAML values; a pair without ``=`` is an error."""
    out = {}
    for kv in pairs:
        if "=" not in kv:
            raise ValueError(f"override {kv!r} is not KEY=VALUE")
        k, v = kv.split("=", 1)
        out[k] = yaml.safe_load(v)
    return out


def apply_overrides(tree: dict, pairs: Iterable[str]) -> dict:
    for k, v in parse_pairs(pairs).items():
        set_dotted(tree, k, v)
    return tree
