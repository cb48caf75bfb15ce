"""MLflow tracking: one run per stage job, nested under the pipeline's run.

SQLite at the repository root by default (``mlflow.db``); ``MLFLOW_TRACKING_URI`` points elsewhere
(a shared ``mlflow server``). The Snakefile opens the pipeline run and exports its id as
``METAPT_PIPELINE_RUN_ID``; each stage job's run carries it as ``mlflow.parentRunId``.
Per-step scalars are buffered and sent in batches; the full φ trajectory goes as a compressed npz
artifact, never as thousands of metrics (brief: 1.4 s per step that way).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parents[1]
PARENT_ENV = "METAPT_PIPELINE_RUN_ID"
EXPERIMENT_ENV = "METAPT_EXPERIMENT"


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{ROOT / 'mlflow.db'}"


def git_state(root: Path = ROOT) -> dict[str, str]:
    """Commit and dirty flag of the working tree (``unknown`` outside git)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True, check=True).stdout.strip()
        return {"git.commit": commit, "git.dirty": str(bool(dirty)).lower()}
    except (OSError, subprocess.CalledProcessError):
        return {"git.commit": "unknown", "git.dirty": "unknown"}


def content_hash(path: str | os.PathLike) -> str:
    """SHA-256 of a file, or of a folder's sorted (relative path, file hash) list."""
    path = Path(path)
    if path.is_file():
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()
    h = hashlib.sha256()
    for p in sorted(q for q in path.rglob("*") if q.is_file() and q.name != ".snakemake_timestamp"):
        h.update(f"{p.relative_to(path).as_posix()}\0{content_hash(p)}\n".encode())
    return h.hexdigest()


def _client():
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())
    return mlflow.MlflowClient()


def experiment_id(client, name: str) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    artifacts = None
    if tracking_uri().startswith("sqlite:"):
        artifacts = (ROOT / "mlartifacts").as_uri()
    try:
        return client.create_experiment(name, artifact_location=artifacts)
    except Exception:  # another job created it first
        return client.get_experiment_by_name(name).experiment_id


def _retry(fn, *args, tries: int = 8, **kw):
    """SQLite allows one writer: parallel jobs retry briefly instead of failing the stage."""
    for i in range(tries):
        try:
            return fn(*args, **kw)
        except Exception as err:  # sqlalchemy OperationalError arrives wrapped in MlflowException
            if "locked" not in str(err) or i == tries - 1:
                raise
            time.sleep(0.2 * 2**i)


def _flatten(tree: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(tree, dict):
        out: dict[str, str] = {}
        for k, v in tree.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): str(tree)[:500]}


def metric_name(key: str) -> str:
    """MLflow allows alphanumerics and ``_-. :/`` in names: ``N=25/linear`` becomes ``N_25/linear``."""
    return re.sub(r"[^\w\-. :/]", "_", key)


class StageRun:
    """The MLflow run of one stage job: params, tags, buffered step metrics, artifacts."""

    def __init__(self, client, run_id: str):
        self.client, self.run_id = client, run_id
        self._metrics: list = []

    def log_params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        flat = [Param(k, v) for k, v in _flatten(params).items()]
        for i in range(0, len(flat), 100):
            _retry(self.client.log_batch, self.run_id, params=flat[i:i + 100])

    def set_tags(self, tags: dict[str, str]) -> None:
        from mlflow.entities import RunTag

        _retry(self.client.log_batch, self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self._metrics += [Metric(metric_name(k), float(v), now, step) for k, v in metrics.items() if v is not None]
        if len(self._metrics) >= 5000:
            self.flush()

    def step_hook(self, prefix: str = "pt/"):
        """A MetaPretrainer hook: every PT step's scalars (losses, ‖hypergrad‖, φ summaries)."""

        def hook(record) -> None:
            self.log_metrics({prefix + k: v for k, v in record.scalars().items()}, step=record.step)

        return hook

    def flush(self) -> None:
        for i in range(0, len(self._metrics), 1000):
            _retry(self.client.log_batch, self.run_id, metrics=self._metrics[i:i + 1000])
        self._metrics = []

    def log_artifact(self, path: str | os.PathLike) -> None:
        _retry(self.client.log_artifact, self.run_id, str(path))


@contextmanager
def stage_run(stage: str, run_name: str, params: dict[str, Any], inputs: list[str | os.PathLike] = (), profile: str = "embedded") -> Iterator[StageRun]:
    """Open an MLflow run for a stage job; on error it is marked FAILED, never left RUNNING."""
    client = _client()
    exp = experiment_id(client, os.environ.get(EXPERIMENT_ENV, f"metapt-{profile}"))
    tags = {"metapt.stage": stage, "metapt.profile": profile, "mlflow.runName": run_name, **git_state()}
    if parent := os.environ.get(PARENT_ENV):
        tags["mlflow.parentRunId"] = parent
    for p in inputs:
        if Path(p).exists():
            tags[f"input.sha256.{Path(p).as_posix()}"] = content_hash(p)
    run = _retry(client.create_run, exp, tags=tags, run_name=run_name)
    tracked = StageRun(client, run.info.run_id)
    tracked.log_params(params)
    try:
        yield tracked
        tracked.flush()
        _retry(client.set_terminated, tracked.run_id, "FINISHED")
    except BaseException:
        try:
            tracked.flush()
        finally:
            _retry(client.set_terminated, tracked.run_id, "FAILED")
        raise


def start_pipeline_run(profile: str, targets: str = "all") -> str:
    """The parent run of one workflow invocation; its id goes to jobs through the environment."""
    client = _client()
    exp = experiment_id(client, os.environ.get(EXPERIMENT_ENV, f"metapt-{profile}"))
    run = _retry(client.create_run, exp, tags={"metapt.stage": "pipeline", "metapt.profile": profile, "metapt.targets": targets, **git_state()}, run_name=f"pipeline-{profile}")
    return run.info.run_id


def end_pipeline_run(run_id: str, ok: bool, stage_tags: dict[str, dict[str, str]] | None = None) -> None:
    client = _client()
    _retry(client.set_terminated, run_id, "FINISHED" if ok else "FAILED")


def tag_with_lock(stages: list[str], lock_path: str | os.PathLike = "dvc.lock") -> int:
    """After ``dvc commit``: tag each stage's MLflow run with the dvc.lock hashes of its outs and deps.

    The job cannot know them while it runs (DVC hashes after it ends), so the workflow adds them here.
    Returns how many runs were tagged.
    """
    import yaml

    lock = yaml.safe_load(Path(lock_path).read_text()).get("stages", {})
    client, n = None, 0
    for stage in stages:
        entry = lock.get(stage)
        if not entry:
            continue
        run_id = None
        for out in entry.get("outs", []):
            for name in ("pretrain.json", "finetune.json"):
                f = Path(out["path"]) / name
                if f.is_file():
                    run_id = json.loads(f.read_text()).get("mlflow_run_id")
        if not run_id:
            continue
        client = client or _client()
        tags = {"dvc.stage": stage, **{f"dvc.out.{o['path']}": o.get("md5", "?") for o in entry.get("outs", [])},
                **{f"dvc.dep.{d['path']}": d.get("md5", "?") for d in entry.get("deps", []) if d["path"].startswith(("data/", "results/"))}}
        StageRun(client, run_id).set_tags(tags)
        n += 1
    return n
