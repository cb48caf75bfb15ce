"""The schema of ``params.yaml``: profiles of one pipeline, and the active one.

``params.yaml`` holds ``profiles.embedded``, ``profiles.paper`` and ``profiles.tiny`` (the test suite's)
as YAML anchors and selects one with ``active: *embedded``. DVC stages depend on ``active.<section>``
keys only, so editing an inactive profile stales nothing. Every key is validated here, when the
workflow starts (the Snakefile, ``reproduce``, its dry run) and in every stage: a typo is reported
with its dotted path and the keys or values allowed there. A profile has one section per declared
domain (``metapt.domain``), each validated by that domain's own schema.
"""

from __future__ import annotations

import os
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from metapt import domain as domains

PARAMS_FILE = Path("params.yaml")
PROFILES = ("embedded", "paper", "rehearsal", "tiny")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProfileBase(_Strict):
    """What every profile sets besides its domain sections."""

    name: Literal[PROFILES]
    seeds: list[int] = Field(min_length=1, description="PT seeds of the headline cells (full access; ECG)")
    setting_seeds: list[int] = Field(min_length=1, description="PT seeds of the extra PPI settings (partial, heldout)")
    torch_threads: int = Field(1, ge=1, description="intra-op threads per job: jobs run in parallel")
    device: Literal["cpu", "cuda", "auto"] = "cpu"

    @model_validator(mode="after")
    def _reused_runs_exist(self) -> "ProfileBase":
        """A learn-then-re-PT run reads another run's PT output (``Method.reuses``): that run must be in the grid."""
        for d in domains.domains():
            if not hasattr(self, d.name):
                continue
            runs = d.runs(self)
            for g in d.groups:
                for r in g.expand(d.name, self):
                    src = d.source(r)
                    if src is not None and src not in runs:
                        raise ValueError(f"{d.name} run {r.name} reads the PT output of {src.name}, which the grid does not declare: "
                                         f"each run of {', '.join(g.axes.values())} needs its {src.method!r} run")
        return self


def _profile_model() -> type[ProfileBase]:
    """A profile: the shared keys plus one section per declared domain, each with that domain's schema."""
    sections = {}
    for d in domains.domains():
        model = domains.resolve(d.params_model)
        sections[d.name] = (model, model())
    return create_model("Profile", __base__=ProfileBase, **sections)


Profile = _profile_model()


class Params(_Strict):
    profiles: dict[Literal[PROFILES], Profile]
    active: Profile

    @model_validator(mode="after")
    def _active_is_a_profile(self) -> "Params":
        if self.profiles.get(self.active.name) != self.active:
            raise ValueError(f"active must be one of the profiles (active: *{self.active.name}); it differs from profiles.{self.active.name}")
        return self


class ParamsError(ValueError):
    """params.yaml is malformed; the message names each bad key and what is allowed there."""


def _model_at(model: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """The pydantic model that owns the field at ``loc`` (to list the allowed keys); None if unknown."""
    ann: Any = model
    for key in loc:
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            field = ann.model_fields.get(str(key))
            if field is None:
                return None
            ann = field.annotation
        elif typing.get_origin(ann) is dict:
            ann = typing.get_args(ann)[1]  # ``key`` is a dict key: step into the value type
        elif isinstance(key, int) and typing.get_origin(ann) in (list, tuple):
            ann = typing.get_args(ann)[0]
        else:
            return None
        members = [a for a in typing.get_args(ann) if isinstance(a, type) and issubclass(a, BaseModel)]
        if typing.get_origin(ann) in (typing.Union, types.UnionType) and members:
            ann = members[0]
    return ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None


def describe(err: ValidationError, root: type[BaseModel] = Params, source: str = "params.yaml") -> str:
    """One line per bad key: its dotted path and the keys or values allowed there.

    ``active`` is an alias of one profile, so its errors repeat that profile's: they are said once,
    under the profile's path, marked as the active one.
    """
    errors = err.errors()
    by_profile = {(tuple(e["loc"][2:]), e["msg"]) for e in errors if e["loc"][:1] == ("profiles",)}
    lines = []
    for e in errors:
        loc = tuple(e["loc"])
        if loc[:1] == ("active",) and (loc[1:], e["msg"]) in by_profile:
            continue
        key = ".".join(str(p) for p in loc) or "(top level)"
        if e["type"] == "extra_forbidden":
            owner = _model_at(root, loc[:-1])
            allowed = ", ".join(sorted(owner.model_fields)) if owner else "?"
            lines.append(f"{source}: {key}: unknown key; allowed keys here: {allowed}")
        else:
            got = "" if isinstance(e.get("input"), dict) else f" (got {e.get('input')!r})"  # a whole section says nothing
            lines.append(f"{source}: {key}: {e['msg']}{got}")
    return "\n".join(lines)


def load_params(path: str | os.PathLike = PARAMS_FILE) -> Params:
    """Parse and validate ``params.yaml``; raises :class:`ParamsError` naming each bad key."""
    path = Path(path)
    try:
        tree = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ParamsError(f"{path} not found (run from the repository root)") from None
    except yaml.MarkedYAMLError as err:
        raise ParamsError(_yaml_error(path, err)) from None
    if not isinstance(tree, dict):
        raise ParamsError(f"{path}: expected a mapping with keys profiles and active, got {type(tree).__name__}")
    try:
        return Params.model_validate(tree)
    except ValidationError as err:
        raise ParamsError(describe(err, source=str(path))) from None


def _yaml_error(path: Path, err: yaml.MarkedYAMLError) -> str:
    """A YAML error in plain words; an unknown ``*alias`` (a typo'd profile) lists the profiles."""
    where = f"{path}:{err.problem_mark.line + 1}" if err.problem_mark else str(path)
    alias = re.search(r"found undefined alias '?([^'\s]+)'?", str(err.problem))
    if alias:
        return f"{where}: unknown profile *{alias[1]}; the profiles are: {', '.join('*' + p for p in PROFILES)} (active: *embedded)"
    return f"{where}: not valid YAML: {err.problem}"


def active_profile(path: str | os.PathLike = PARAMS_FILE) -> Profile:
    return load_params(path).active


def switch_profile(name: str, path: str | os.PathLike = PARAMS_FILE) -> bool:
    """Point ``active:`` at another profile, keeping the file otherwise byte-identical. True if it changed."""
    if name not in PROFILES:
        raise ParamsError(f"unknown profile {name!r}; allowed: {', '.join(PROFILES)}")
    path = Path(path)
    text = path.read_text()
    new, n = re.subn(r"(?m)^active:\s*\*\w+\s*$", f"active: *{name}", text)
    if n != 1:
        raise ParamsError(f"{path}: expected exactly one line 'active: *<profile>', found {n}")
    if new == text:
        return False
    from metapt.io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(new)
    load_params(path)
    return True
