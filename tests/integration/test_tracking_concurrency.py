"""Many stage jobs run by hand publish to one MLflow store at the same moment (a cluster, a shared server).

Each worker is a separate process doing what a job does outside the workflow: ``stage_run(...,
output=dir)`` records ~200 step metrics and one artifact, ``write``s its record, and publishes it on
exit. All are released together, against an ``mlflow server`` (SQLite behind it, artifacts served)
and against one SQLite file directly; every run must arrive whole, exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import pytest

ROOT = Path(__file__).resolve().parents[2]
N, STEPS = 8, 200
EXPERIMENT = "concurrency"
pytestmark = pytest.mark.timeout(300)


def _loss(i: int, step: int) -> float:
    return 1.0 / (1 + step) + i


# ---------------------------------------------------------------------------------------- the worker
def _job(out: Path, i: int, barrier: Path) -> None:
    """One stage job run by hand. Imports first (a real job has long done so when it ends), then waits
    at the barrier so that every job publishes at the same moment."""
    import mlflow  # noqa: F401

    from metapt import tracking

    out.mkdir(parents=True)
    (barrier / f"ready-{i}").touch()
    while not (barrier / "go").exists():
        time.sleep(0.005)
    with tracking.stage_run("pretrain", f"job-{i}", {"seed": i, "model": {"hidden": 8}}, output=out) as t:
        for s in range(STEPS):
            t.log_metrics({"pt/loss": _loss(i, s)}, step=s)
        (out / "phi.txt").write_text(f"phi of job {i}\n")
        t.log_artifact("phi.txt")
        t.write(out)


def _run_jobs(tmp_path: Path, uri: str, n: int = N, before_release=lambda: None) -> float:
    """Start ``n`` workers, release them together once all are ready and ``before_release()`` has returned;
    returns the wall time from release to the last exit."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "METAPT_EXPERIMENT": EXPERIMENT, "PYTHONPATH": str(ROOT), "no_proxy": "*", "NO_PROXY": "*"}
    for var in ("METAPT_DEFER_TRACKING", "METAPT_PIPELINE_RUN_ID"):
        env.pop(var, None)
    barrier, logs = tmp_path / "barrier", tmp_path / "logs"
    barrier.mkdir()
    logs.mkdir()
    procs = []
    for i in range(n):
        with open(logs / f"{i}.log", "w") as log:
            procs.append(subprocess.Popen([sys.executable, "-m", __spec__.name, str(tmp_path / "jobs" / f"job-{i}"), str(i), str(barrier)],
                                          cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT))
    try:
        t0 = time.time()
        before_release()
        deadline = t0 + 120
        while len(list(barrier.glob("ready-*"))) < n:
            assert all(p.poll() is None for p in procs), "a worker died before the barrier:\n" + _tails(logs)
            assert time.time() < deadline, "workers not ready after 120 s:\n" + _tails(logs)
            time.sleep(0.05)
        start = time.time()
        print(f"{n} workers ready in {start - t0:.1f} s")
        (barrier / "go").touch()
        codes = [p.wait(timeout=150) for p in procs]
        wall = time.time() - start
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert codes == [0] * n, f"exit codes {codes}:\n" + _tails(logs)
    return wall


def _tails(logs: Path) -> str:
    return "\n".join(f"--- worker {p.stem}\n" + "\n".join(p.read_text().splitlines()[-15:]) for p in sorted(logs.glob("*.log")) if p.read_text().strip())


def _check_runs(uri: str, tmp_path: Path, n: int = N) -> None:
    """Exactly ``n`` FINISHED runs, each with its params, full metric history and artifact."""
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(EXPERIMENT)
    assert exp is not None, f"no experiment {EXPERIMENT!r} in {uri}"
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    print(f"runs recorded / launched: {len(runs)}/{n}")
    assert sorted(r.info.run_name for r in runs) == sorted(f"job-{i}" for i in range(n)), "duplicate or missing runs"
    for r in runs:
        i, rid = int(r.info.run_name.split("-")[1]), r.info.run_id
        assert r.info.status == "FINISHED", r.info
        assert r.data.params == {"seed": str(i), "model.hidden": "8"}
        assert r.data.tags["metapt.stage"] == "pretrain" and "mlflow.parentRunId" not in r.data.tags
        history = sorted((m.step, m.value) for m in client.get_metric_history(rid, "pt/loss"))
        assert history == [(s, _loss(i, s)) for s in range(STEPS)], f"job-{i}: {len(history)} of {STEPS} steps"
        assert {"job/wall_s", "job/peak_rss_mb"} <= set(r.data.metrics)
        got = client.download_artifacts(rid, "phi.txt", str(tmp_path / "downloads" / rid))
        assert Path(got).read_text() == f"phi of job {i}\n"


# ---------------------------------------------------------------------------------------- the server
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def _mlflow_server(tmp_path: Path) -> Iterator[tuple[str, Callable[[], None]]]:
    """``mlflow server`` on a free loopback port, SQLite behind it, artifacts served from tmp_path.

    Yields its URL at once, with a function that waits until ``/health`` answers (it starts while the
    workers import); its whole process group (the uvicorn workers too) is killed after.
    """
    port = _free_port()
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
           "--artifacts-destination", str(tmp_path / "served-artifacts"), "--host", "127.0.0.1", "--port", str(port), "--workers", "2"]
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, "no_proxy": "*", "NO_PROXY": "*"})
    url, opener = f"http://127.0.0.1:{port}", urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def until_healthy(timeout: float = 90) -> None:
        deadline = time.time() + timeout
        while True:
            try:
                if opener.open(f"{url}/health", timeout=2).status == 200:
                    return
            except OSError:
                pass
            tail = (tmp_path / "server.log").read_text()[-3000:]
            assert proc.poll() is None, f"mlflow server exited with {proc.returncode}:\n{tail}"
            assert time.time() < deadline, f"mlflow server did not answer {url}/health within {timeout:.0f} s:\n{tail}"
            time.sleep(0.2)

    try:
        yield url, until_healthy
    finally:  # no graceful stop: uvicorn's takes ~10 s on a busy machine, and the store is thrown away
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        log.close()


# ---------------------------------------------------------------------------------------- the tests
def test_concurrent_jobs_against_tracking_server(tmp_path, monkeypatch):
    from mlflow import MlflowClient

    with _mlflow_server(tmp_path) as (url, until_healthy):
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        wall = _run_jobs(tmp_path, url, before_release=until_healthy)
        print(f"{N} jobs published to {url} in {wall:.1f} s")
        _check_runs(url, tmp_path)
        exp = MlflowClient(url).get_experiment_by_name(EXPERIMENT)
        assert exp.artifact_location.startswith("mlflow-artifacts:"), exp.artifact_location  # through the server, not a local path
    assert list((tmp_path / "served-artifacts").rglob("phi.txt")), "artifacts did not land in --artifacts-destination"


def test_concurrent_jobs_against_sqlite(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    wall = _run_jobs(tmp_path, uri)
    print(f"{N} jobs published to {uri} in {wall:.1f} s")
    _check_runs(uri, tmp_path)
    assert len(list((tmp_path / "mlartifacts").rglob("phi.txt"))) == N  # beside the jobs' working directory
    assert not list(tmp_path.glob(".mlflow.db*")), "a private store was left behind"


# ---------------------------------------------------------------------------------------- the races, one at a time
class _FailsOnce:
    """An MlflowClient whose every method first raises ``error``, then works."""

    def __init__(self, client, error):
        self.client, self.error, self.calls = client, error, []

    def __getattr__(self, name):
        def call(*args, **kwargs):
            self.calls.append(name)
            if self.calls.count(name) == 1:
                raise self.error
            return getattr(self.client, name)(*args, **kwargs)

        return call


@pytest.fixture
def local_store(tmp_path, monkeypatch):
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("METAPT_EXPERIMENT", EXPERIMENT)
    monkeypatch.delenv("METAPT_PIPELINE_RUN_ID", raising=False)
    return MlflowClient(uri)


def test_experiment_created_by_another_job_meanwhile(local_store):
    """Two jobs both find the experiment missing; the second one's create fails: it must use the first one's."""
    from metapt import tracking

    class LookedTooEarly:  # its first look came before the other job's create
        looks = 0

        def get_experiment_by_name(self, name):
            self.looks += 1
            return None if self.looks == 1 else local_store.get_experiment_by_name(name)

        def create_experiment(self, *args, **kwargs):
            return local_store.create_experiment(*args, **kwargs)

    first = local_store.create_experiment(EXPERIMENT)
    assert tracking.experiment_id(LookedTooEarly(), EXPERIMENT) == first


def test_publish_retries_a_locked_store_without_duplicating_runs(local_store, tmp_path, monkeypatch):
    """Every call fails once as on a store another job holds; one whole run must still arrive, and other errors must not be retried."""
    import sqlite3

    import sqlalchemy
    from mlflow.exceptions import MlflowException

    from metapt import tracking

    out = tmp_path / "job"
    out.mkdir()
    t = tracking.StageRun("pretrain", "job-0", "embedded", {"seed": 0}, {})
    for s in range(STEPS):
        t.log_metrics({"pt/loss": _loss(0, s)}, step=s)
    (out / "phi.txt").write_text("phi\n")
    t.log_artifact("phi.txt")
    t.write(out)
    pauses = []
    monkeypatch.setattr(tracking.time, "sleep", pauses.append)

    locked = _FailsOnce(local_store, MlflowException("(sqlite3.OperationalError) database is locked", error_code="TEMPORARILY_UNAVAILABLE"))
    opens = []

    def open_locked():  # opening the store fails first too, with sqlalchemy's error
        opens.append(1)
        if len(opens) == 1:
            raise sqlalchemy.exc.OperationalError("SELECT name FROM sqlite_master", {}, sqlite3.OperationalError("database is locked"))
        return locked

    monkeypatch.setattr(tracking, "_client", open_locked)
    [rid] = tracking.publish([out])
    assert locked.calls.count("create_run") == 2 and len(pauses) == 1 + len(set(locked.calls))  # each call retried once
    runs = local_store.search_runs([local_store.get_experiment_by_name(EXPERIMENT).experiment_id])
    assert [r.info.run_id for r in runs] == [rid] and runs[0].info.status == "FINISHED"
    assert len(local_store.get_metric_history(rid, "pt/loss")) == STEPS
    assert [a.path for a in local_store.list_artifacts(rid)] == ["phi.txt"]

    missing = _FailsOnce(local_store, MlflowException("no such run", error_code="RESOURCE_DOES_NOT_EXIST"))
    monkeypatch.setattr(tracking, "_client", lambda: missing)
    t.write(out)  # a new record: the one above is published and would be skipped
    with pytest.raises(MlflowException, match="no such run"):
        tracking.publish([out])
    assert missing.calls == ["get_experiment_by_name"]  # not retried


class _Cut(BaseException):
    """What a kill does to a publish: it stops there (not an Exception: nothing catches or retries it)."""


def test_publish_is_idempotent_and_completes_a_publish_that_was_cut_off(local_store, tmp_path, monkeypatch):
    """Publishing a published record adds nothing; one cut off after its run was created (a kill) leaves
    a RUNNING half run, which the next publish replaces by one whole run; a rewritten record is new."""
    from metapt import tracking

    out = tmp_path / "job"
    out.mkdir()
    t = tracking.StageRun("pretrain", "job-0", "embedded", {"seed": 0}, {})
    for s in range(STEPS):
        t.log_metrics({"pt/loss": _loss(0, s)}, step=s)
    t.write(out)
    exp = lambda: local_store.get_experiment_by_name(EXPERIMENT).experiment_id  # noqa: E731
    runs = lambda: local_store.search_runs([exp()])  # noqa: E731  (active runs only: deleted ones are gone)

    real = tracking._publish_one

    def cut_after_create(client, *args):
        class Client:  # the store works until the run is to be finished
            def __getattr__(self, name):
                if name == "set_terminated":
                    raise _Cut
                return getattr(client, name)

        return real(Client(), *args)

    monkeypatch.setattr(tracking, "_publish_one", cut_after_create)
    with pytest.raises(_Cut):
        tracking.publish([out])
    [half] = runs()
    assert half.info.status == "RUNNING" and tracking.marker_path(out).is_file()
    monkeypatch.setattr(tracking, "_publish_one", real)
    [rid] = tracking.publish([out])
    [whole] = runs()
    assert whole.info.run_id == rid != half.info.run_id and whole.info.status == "FINISHED"
    assert len(local_store.get_metric_history(rid, "pt/loss")) == STEPS
    assert tracking.publish([out]) == [] and len(runs()) == 1  # published: nothing added

    # cut off after the run was finished, before the marker said so: the finished run is kept, none added
    marker = tracking.marker_path(out)
    marker.write_text(json.dumps({"state": "publishing", "record": json.loads(tracking.record_path(out).read_text())["record_id"]}))
    assert tracking.publish([out]) == [] and [r.info.run_id for r in runs()] == [rid]
    t.write(out)  # the output was rebuilt: its new record is published once
    assert len(tracking.publish([out])) == 1 and len(runs()) == 2


if __name__ == "__main__":
    _job(Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]))
