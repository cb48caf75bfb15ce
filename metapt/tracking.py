"""MLflow tracking: one run per stage job, nested under the pipeline's run.

A job records what it would log (params, tags, per-step metrics, artifacts) in a record beside its
output, ``.cache/tracking/<output>.json`` (never inside the output: it holds wall times, the host's
memory peak and the git commit, which would change the output's DVC hash on every run); the workflow then
publishes, in one process after ``dvc commit`` (so each run also carries its stage's ``dvc.lock``
hashes), every committed output's record not yet published: the jobs that ran, and any that a killed
run finished but never published (``publish`` is idempotent). Why not
log from the jobs: importing MLflow and opening the store costs ~2 s per job (a quarter of a
small job), and many parallel jobs writing one SQLite file (or one on NFS, on a cluster) contend
for its lock. A stage run outside Snakemake (``dvc repro``, by hand) publishes its own record.

SQLite at the repository root by default (``mlflow.db``); ``MLFLOW_TRACKING_URI`` points elsewhere.
The full φ trajectory goes as a compressed npz artifact, never as thousands of metrics.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import subprocess
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parents[1]
PARENT_ENV = "METAPT_PIPELINE_RUN_ID"
DEFER_ENV = "METAPT_DEFER_TRACKING"  # set by the Snakefile: jobs leave records, the workflow publishes
EXPERIMENT_ENV = "METAPT_EXPERIMENT"
RECORDS = Path(".cache/tracking")


def record_path(output: str | os.PathLike) -> Path:
    """Where the tracking record of a stage output lives (relative outputs mirror their path)."""
    out = Path(output)
    if out.is_absolute():
        return RECORDS / "abs" / f"{hashlib.sha256(out.as_posix().encode()).hexdigest()[:16]}.json"
    return RECORDS / f"{out.as_posix()}.json"


def marker_path(output: str | os.PathLike) -> Path:
    """Beside the record: which record of the output was published, or is being published, and as which run."""
    rec = record_path(output)
    return rec.with_name(rec.name[: -len(".json")] + ".published")


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def git_state(root: Path | None = None) -> dict[str, str]:
    """Commit and dirty flag of the working tree (``unknown`` outside git)."""
    try:
        run = lambda *a: subprocess.run(["git", *a], cwd=root, capture_output=True, text=True, check=True).stdout.strip()  # noqa: E731
        return {"git.commit": run("rev-parse", "HEAD"), "git.dirty": str(bool(run("status", "--porcelain", "--untracked-files=no"))).lower()}
    except (OSError, subprocess.CalledProcessError):
        return {"git.commit": "unknown", "git.dirty": "unknown"}


def content_hash(path: str | os.PathLike) -> str:
    """SHA-256 of a file, or of a folder's sorted (relative path, file hash) list."""
    from metapt.io import sha256_file

    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    h = hashlib.sha256()
    for p in sorted(q for q in path.rglob("*") if q.is_file() and q.name != ".snakemake_timestamp"):
        h.update(f"{p.relative_to(path).as_posix()}\0{content_hash(p)}\n".encode())
    return h.hexdigest()


def metric_name(key: str) -> str:
    """MLflow allows alphanumerics and ``_-. :/`` in names: ``N=25/linear`` becomes ``N_25/linear``."""
    return re.sub(r"[^\w\-. :/]", "_", key)


def _flatten(tree: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(tree, dict):
        out: dict[str, str] = {}
        for k, v in tree.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): str(tree)[:500]}


def process_age() -> float | None:
    """Seconds since this process started (Linux ``/proc``; None elsewhere): at a stage's start, its start-up cost."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])  # field 22, starttime
        return float(Path("/proc/uptime").read_text().split()[0]) - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


class StageRun:
    """What one stage job reports: params, tags, per-step metrics and artifacts, kept in memory."""

    def __init__(self, stage: str, run_name: str, profile: str, params: dict[str, Any], tags: dict[str, str]):
        self.stage, self.run_name, self.profile = stage, run_name, profile
        self.startup_s = process_age()  # imports and params, before the stage's own work
        self.params = _flatten(params)
        self.tags = dict(tags)
        self.metrics: dict[str, list[list[float]]] = {}  # name → [[step, value], ...]
        self.artifacts: list[str] = []  # file names inside the stage's output folder
        self.start_ms = int(time.time() * 1000)

    def set_tags(self, tags: dict[str, str]) -> None:
        self.tags.update({k: str(v) for k, v in tags.items()})

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        for k, v in metrics.items():
            if v is not None:
                self.metrics.setdefault(metric_name(k), []).append([step, float(v)])

    def step_hook(self, prefix: str = "pt/", journal: str | os.PathLike | None = None) -> "StepMetrics":
        """A MetaPretrainer hook: every PT step's scalars (losses, ‖hypergrad‖, φ summaries), journaled with each checkpoint."""
        return StepMetrics(self, prefix, journal)

    def log_artifact(self, name: str) -> None:
        self.artifacts.append(name)

    def write(self, output: str | os.PathLike) -> None:
        """Save the record of the job whose output is ``output`` (the final folder; artifacts are read from it at publish)."""
        import resource

        from metapt.io import write_json

        self.log_metrics({"job/peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                          "job/wall_s": time.time() - self.start_ms / 1000, "job/startup_s": self.startup_s})
        record = {"record_id": uuid.uuid4().hex, "stage": self.stage, "run_name": self.run_name, "profile": self.profile, "params": self.params, "tags": self.tags,
                  "metrics": self.metrics, "artifacts": self.artifacts, "start_ms": self.start_ms, "end_ms": int(time.time() * 1000)}
        write_json(record_path(output), record)


class StepMetrics:
    """Logs each PT step's scalars into a ``StageRun`` under ``prefix``.

    A ``metapt.engine.JournaledHook``: a run resumed from step k gets the rows of steps 1..k back and
    logs k+1.. again, as the uninterrupted run did. With a ``journal`` file (the job's resume folder)
    each step's row is appended there and a checkpoint records only the file's length, which it then
    commits: on resume the file is cut back to that length and read. Without one the rows themselves go
    into each checkpoint, which grows with the run (fine for short runs and tests).
    """

    def __init__(self, run: StageRun, prefix: str, journal: str | os.PathLike | None = None):
        self.run, self.prefix = run, prefix
        self.journal = Path(journal) if journal is not None else None
        self._fh = None

    def scoped(self, name: str) -> "StepMetrics":
        """The hook for one of several loops in a job (the digits tasks): its rows under ``<prefix><name>/``, its own journal."""
        journal = self.journal.with_name(f"{self.journal.stem}-{name}{self.journal.suffix}") if self.journal is not None else None
        return StepMetrics(self.run, f"{self.prefix}{name}/", journal)

    def __call__(self, record) -> None:
        row = {self.prefix + k: v for k, v in record.scalars().items()}
        self.run.log_metrics(row, step=record.step)
        if self.journal is not None:
            if self._fh is None:  # a run that did not resume starts the journal afresh
                self.journal.parent.mkdir(parents=True, exist_ok=True)
                self._fh = open(self.journal, "w")
            with self._space():
                self._fh.write(json.dumps({"step": record.step, "row": row}) + "\n")

    def state_dict(self) -> dict[str, Any]:
        if self.journal is None:
            return {"rows": {k: [list(r) for r in v] for k, v in self.run.metrics.items() if k.startswith(self.prefix)}}
        if self._fh is None:
            return {"journal_bytes": 0}
        with self._space():
            self._fh.flush()
            os.fsync(self._fh.fileno())
        return {"journal_bytes": self._fh.tell()}

    def _space(self):
        """A full disk while journaling: the error names the file (the checkpoint, and what it committed, stay)."""
        from metapt.io import naming_full_disk

        return naming_full_disk(self.journal, lambda: "the last checkpoint")

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k in [k for k in self.run.metrics if k.startswith(self.prefix)]:
            del self.run.metrics[k]
        if "rows" in state:
            self.run.metrics.update({k: [list(r) for r in v] for k, v in state["rows"].items()})
            return
        if self.journal is None:
            raise ValueError("the checkpoint's step metrics are in a journal file, and this hook was given none")
        self.journal.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.journal, "a+")
        self._fh.truncate(int(state["journal_bytes"]))  # what was logged after the checkpoint is logged again
        self._fh.seek(0)
        for line in self._fh:
            entry = json.loads(line)
            self.run.log_metrics(entry["row"], step=entry["step"])
        self._fh.seek(0, os.SEEK_END)


@contextmanager
def stage_run(stage: str, run_name: str, params: dict[str, Any], inputs: list[str | os.PathLike] = (), profile: str = "embedded",
              output: str | os.PathLike | None = None) -> Iterator[StageRun]:
    """Record a stage job. Outside the workflow (no ``METAPT_DEFER_TRACKING``) it is published on success.

    Inside the workflow the input checksums are the ``dvc.lock`` dep hashes that ``publish`` tags, so
    the job does not re-read its inputs (gigabytes per job with the paper's data); a job run on its
    own hashes them here.
    """
    tags = {"metapt.stage": stage, "metapt.profile": profile, "metapt.output": str(output or ""), **git_state()}
    deferred = bool(os.environ.get(DEFER_ENV))
    for p in inputs if not deferred else ():
        if Path(p).exists():
            tags[f"input.sha256.{Path(p).as_posix()}"] = content_hash(p)
    tracked = StageRun(stage, run_name, profile, params, tags)
    yield tracked
    if output is not None and not deferred:
        publish([Path(output)])


# ---------------------------------------------------------------------------------------- publishing
def _client():
    import mlflow

    uri = tracking_uri()
    if uri.startswith("sqlite:"):
        _create_sqlite_store(uri)
    mlflow.set_tracking_uri(uri)
    return mlflow.MlflowClient()


def _create_sqlite_store(uri: str) -> None:
    """Create a missing SQLite store whole, then link it into place.

    MLflow creates and migrates a new database's tables on first open, unguarded: jobs opening a fresh
    store at once fail ("table experiments already exists", "duplicate column name: step") and may leave
    it half-migrated. So a job builds one under a private name and hard-links it in; if another's link
    came first, it uses that one. A lock on the folder (where the file system has one: not NFS) spares
    the others the 2 s build.
    """
    import fcntl

    from mlflow.store.tracking import DEFAULT_LOCAL_FILE_AND_ARTIFACT_PATH
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
    from sqlalchemy.engine import make_url

    db = make_url(uri).database
    if not db or db == ":memory:" or Path(db).exists():
        return
    db, folder = Path(db), os.open(Path(db).parent, os.O_RDONLY)
    tmp = db.with_name(f".{db.name}.{uuid.uuid4().hex}.new")  # not the pid: jobs on two NFS clients may share one
    try:
        try:
            fcntl.flock(folder, fcntl.LOCK_EX)
        except OSError:
            pass
        if not db.exists():
            SqlAlchemyStore(f"sqlite:///{tmp}", DEFAULT_LOCAL_FILE_AND_ARTIFACT_PATH).engine.dispose()
            os.link(tmp, db)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
        os.close(folder)


def _retry(call, *args, attempts: int = 6, **kwargs):
    """``call(*args, **kwargs)``, again after a jittered, doubling pause while the store says "database is locked".

    Jobs publishing at once contend for one SQLite file: a write that waits past SQLite's busy timeout
    (20 s in MLflow's sessions, 5 s when the store is opened) fails although nothing is wrong. Any other
    error is raised at once. The call must be safe to repeat: a locked write was rolled back.
    """
    for attempt in range(attempts):
        try:
            return call(*args, **kwargs)
        except Exception as e:  # MlflowException, or sqlalchemy's OperationalError while the store is opened
            if "database is locked" not in str(e) or attempt == attempts - 1:
                raise
            time.sleep(random.uniform(0.5, 1.5) * 2 ** attempt)


def experiment_id(client, name: str) -> str:
    """The experiment's id, created if missing (a concurrent job may create it first: then it is looked up again).

    With a local SQLite store artifacts go beside it, in ``mlartifacts/``; a tracking server stores them itself.
    """
    from mlflow.exceptions import MlflowException

    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    artifacts = (Path.cwd() / "mlartifacts").as_uri() if tracking_uri().startswith("sqlite:") else None
    try:
        return client.create_experiment(name, artifact_location=artifacts)
    except MlflowException as e:
        if e.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        return client.get_experiment_by_name(name).experiment_id


def start_pipeline_run(profile: str, targets: str = "all") -> str:
    """The parent run of one workflow invocation.

    One workflow runs per checkout at a time (``metapt.workflow.one_at_a_time``), so a pipeline run of
    this checkout still RUNNING was killed: it is marked KILLED here.
    """
    client = _retry(_client)
    exp = _retry(experiment_id, client, os.environ.get(EXPERIMENT_ENV, f"metapt-{profile}"))
    close_killed_pipeline_runs(profile, client)
    tags = {"metapt.stage": "pipeline", "metapt.profile": profile, "metapt.targets": targets, "metapt.checkout": str(Path.cwd().resolve()), **git_state()}
    return _retry(client.create_run, exp, tags=tags, run_name=f"pipeline-{profile}").info.run_id


def close_killed_pipeline_runs(profile: str, client=None) -> int:
    """Mark this checkout's pipeline runs still RUNNING as KILLED (call only while holding the reproduce lock)."""
    client = client or _retry(_client)
    exp = _retry(client.get_experiment_by_name, os.environ.get(EXPERIMENT_ENV, f"metapt-{profile}"))
    if exp is None:
        return 0
    query = f"tags.`metapt.stage` = 'pipeline' and tags.`metapt.checkout` = '{Path.cwd().resolve()}' and attributes.status = 'RUNNING'"
    stale = _retry(client.search_runs, [exp.experiment_id], query)
    for run in stale:
        _retry(client.set_terminated, run.info.run_id, "KILLED")
    return len(stale)


def end_pipeline_run(run_id: str, ok: bool) -> None:
    client = _retry(_client)
    _retry(client.set_terminated, run_id, "FINISHED" if ok else "FAILED")


def publish(outputs: list[Path], parent_run_id: str | None = None, lock: dict[str, dict] | None = None) -> list[str]:
    """Create one MLflow run per output whose record is not yet published; returns the new run ids.

    Idempotent, so that a rerun after a kill can publish whatever is pending and nothing twice: beside
    each record a marker (``marker_path``) says "publishing <record id>" before the run is created and
    "published" (with the record file's size and mtime, so that a rewritten record is published
    again, and a copied checkout is not) after it is finished. A marker left at "publishing" means a publish was killed: the runs
    carrying that record's id are then looked up (the only query), a finished one is kept, a partial
    one deleted. ``lock`` (dvc.lock's ``stages``) adds each stage's output and data-dep hashes as tags.
    """
    from metapt.io import write_json

    by_out = {o["path"]: (name, entry) for name, entry in (lock or {}).items() for o in entry.get("outs", [])}
    client, ids = None, []
    for out in outputs:
        rec_file, marker_file = record_path(out), marker_path(out)
        if not rec_file.is_file():
            continue
        st = rec_file.stat()
        marker = json.loads(marker_file.read_text()) if marker_file.is_file() else {}
        if marker.get("state") == "published" and (marker.get("size"), marker.get("mtime_ns")) == (st.st_size, st.st_mtime_ns):
            continue
        rec = json.loads(rec_file.read_text())
        rec_id = rec.get("record_id") or hashlib.sha256(rec_file.read_bytes()).hexdigest()[:32]
        client = client or _retry(_client)
        exp = _retry(experiment_id, client, os.environ.get(EXPERIMENT_ENV, f"metapt-{rec['profile']}"))
        done = dict(state="published", record=rec_id, size=st.st_size, mtime_ns=st.st_mtime_ns)
        if marker.get("record") == rec_id:  # a publish of this record began and was cut off
            earlier = _retry(client.search_runs, [exp], f"tags.`metapt.record_id` = '{rec_id}'")
            keep = next((r.info.run_id for r in earlier if r.info.status == "FINISHED"), None)
            for r in earlier:
                if r.info.run_id != keep:
                    _retry(client.delete_run, r.info.run_id)
            if keep is not None:
                write_json(marker_file, {**done, "run_id": keep})
                continue
        write_json(marker_file, {"state": "publishing", "record": rec_id})
        rid = _publish_one(client, exp, out, rec, rec_id, parent_run_id, by_out.get(str(out)))
        write_json(marker_file, {**done, "run_id": rid})
        ids.append(rid)
    return ids


def _publish_one(client, exp: str, out: Path, rec: dict, rec_id: str, parent_run_id: str | None, locked: tuple[str, dict] | None) -> str:
    from mlflow.entities import Metric, Param

    tags = {**rec["tags"], "metapt.record": str(record_path(out)), "metapt.record_id": rec_id}
    if parent_run_id or os.environ.get(PARENT_ENV):
        tags["mlflow.parentRunId"] = parent_run_id or os.environ[PARENT_ENV]
    if locked is not None:
        stage, entry = locked
        tags["dvc.stage"] = stage
        tags.update({f"dvc.out.{o['path']}": o.get("md5", "?") for o in entry.get("outs", [])})
        tags.update({f"dvc.dep.{d['path']}": d.get("md5", "?") for d in entry.get("deps", []) if d["path"].startswith(("data/", "results/"))})
    run = _retry(client.create_run, exp, start_time=rec["start_ms"], tags=tags, run_name=rec["run_name"])
    rid = run.info.run_id
    params = [Param(k, v) for k, v in rec["params"].items()]
    metrics = [Metric(k, v, rec["end_ms"], int(s)) for k, pts in rec["metrics"].items() for s, v in pts]
    for i in range(0, len(params), 100):
        _retry(client.log_batch, rid, params=params[i:i + 100])
    for i in range(0, len(metrics), 1000):
        _retry(client.log_batch, rid, metrics=metrics[i:i + 1000])
    for name in rec["artifacts"]:
        _retry(client.log_artifact, rid, str(Path(out) / name))
    _retry(client.set_terminated, rid, "FINISHED", end_time=rec["end_ms"])
    return rid


def find_run(output: str | os.PathLike, md5: str | None = None):
    """The latest MLflow run of a stage output (by tag), the one with its current dvc.lock hash if given."""
    client = _client()
    query = f"tags.`metapt.output` = '{Path(output).as_posix()}'"
    if md5:
        query += f" and tags.`dvc.out.{Path(output).as_posix()}` = '{md5}'"
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()], query, order_by=["attributes.start_time DESC"], max_results=1)
    return runs[0] if runs else None
