"""Run the pipeline: Snakemake executes what is stale, the jobs that ran are committed to DVC.

    python -m metapt.workflow [--profile embedded|paper|tiny] [--cores N] [--dry-run] [--pull] [-- extra snakemake args]
    python -m metapt.workflow graph [--write]      (dvc.yaml and workflow/code/ from the domain declarations)

Snakemake reruns on changed inputs (mtimes), and on params through ``dvc.lock`` (see
``workflow/rules/common.smk``), so it agrees with ``dvc status`` whichever tool built an output
(``tests/integration/test_pipeline.py``). The Snakefile's ``onsuccess`` then ``dvc commit``s exactly
the stages that ran, so ``dvc.lock`` always describes what is on disk.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from metapt import forkserver
from metapt.config import PROFILES, ParamsError, load_params, switch_profile
from metapt.io import remove_dead_writers_temps


def rule_name(addressing: str) -> str:
    """The Snakemake rule of a DVC stage: ``finetune_ppi@meta-0`` → ``finetune_ppi__meta_0``."""
    return "".join(c if c.isalnum() else "_" for c in addressing.replace("@", "__"))


STAGE_CACHE = Path(".cache/dvc-stages.json")


def expanded_stages(cwd: Path | None = None) -> list[dict]:
    """DVC's expansion of ``dvc.yaml``: addressing, cmd, deps, outs, resolved params, meta per stage.

    Only ``dvc.yaml`` is read (not the lock file, which costs seconds to parse), params.yaml once; the
    result is cached under the hash of both files and the DVC version (resolution takes ~1 s).
    """
    import dvc
    import yaml

    cwd = Path.cwd() if cwd is None else Path(cwd)
    cache = cwd / STAGE_CACHE
    key = hashlib.sha256((cwd / "dvc.yaml").read_bytes() + (cwd / "params.yaml").read_bytes() + dvc.__version__.encode()).hexdigest()
    if cache.exists() and (cached := json.loads(cache.read_text())).get("key") == key:
        return cached["stages"]
    from dvc.dependency.param import ParamsDependency
    from dvc.dvcfile import ProjectFile
    from dvc.repo import Repo

    params_tree = yaml.load((cwd / "params.yaml").read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    with Repo(str(cwd)) as repo:
        project = ProjectFile(repo, "dvc.yaml")
        project.__dict__["lockfile_contents"] = {}  # a cached_property: skip parsing dvc.lock
        stages = [dict(addressing=s.addressing, cmd=s.cmd, meta=s.meta or {},
                       params={f"{d.def_path}:{k}": _lookup(params_tree, k) for d in s.deps if isinstance(d, ParamsDependency) for k in d.params},
                       deps=[d.def_path for d in s.deps if not isinstance(d, ParamsDependency)], outs=[o.def_path for o in s.outs])
                  for s in project.stages.values()]
    missing = sorted({k.partition(":")[2] for s in stages for k, v in s["params"].items() if v is KeyError})
    if missing:  # a declared params key the file lacks (DVC would fail on it too, later and less clearly)
        from metapt.config import ParamsError

        raise ParamsError(f"params.yaml: {', '.join(missing)}: missing; the stage graph (dvc.yaml) reads these keys, so every profile must set them")
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f"{cache.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps({"key": key, "stages": stages}))
    os.replace(tmp, cache)
    return stages


def params_stale(cwd: Path | None = None) -> list[str]:
    """Declared stages whose params in ``dvc.lock`` differ from ``params.yaml`` now.

    The params half of ``dvc status``, for the Snakefile (file and code changes reach Snakemake through
    mtimes). Reading two YAML files takes well under a second; ``dvc status`` takes ~10 s over the
    embedded graph (it re-reads params.yaml once per stage).
    """
    import yaml

    cwd = Path.cwd() if cwd is None else Path(cwd)
    lock = locked_stages(cwd)
    if not lock:
        return []
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    current = yaml.load((cwd / "params.yaml").read_text(), Loader=loader)
    declared = {s["addressing"] for s in expanded_stages(cwd)}  # the lock may hold stages no longer declared
    stale = []
    for name, entry in lock.items():
        if name not in declared:
            continue
        for file, values in entry.get("params", {}).items():
            tree = current if file == "params.yaml" else yaml.load((cwd / file).read_text(), Loader=loader)
            if any(_lookup(tree, k) != v for k, v in values.items()):
                stale.append(name)
                break
    return sorted(stale)


def locked_stages(cwd: Path) -> dict[str, dict]:
    """``dvc.lock``'s stages (empty without a lock), read with the C YAML loader: the file is ~200 kB."""
    import yaml

    lock_file = cwd / "dvc.lock"
    if not lock_file.exists():
        return {}
    return yaml.load(lock_file.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)).get("stages", {})


def _lookup(tree, dotted: str):
    for part in dotted.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return KeyError  # a sentinel no recorded value equals
        tree = tree[part]
    return tree


def snakemake_cmd(cores: int, dry_run: bool = False, extra: list[str] = ()) -> list[str]:
    cmd = [sys.executable, "-m", "snakemake", "--cores", str(cores)]
    if dry_run:
        cmd += ["--dry-run", "--quiet", "rules"]
    return cmd + list(extra)


def reproduce(profile: str | None = None, cores: int = 2, dry_run: bool = False, extra: list[str] = (), cwd: Path | None = None,
              from_remote: bool = False) -> int:
    """Bring every output up to date in the repository at ``cwd`` (default: here); returns Snakemake's exit code.

    ``from_remote``: first fetch what ``dvc.lock`` records from the DVC remote (``pull``), after the
    profile switch, so that the stages pulled are those of the profile that runs. A dry run still pulls:
    it then lists what is left to compute.
    """
    cwd = Path.cwd() if cwd is None else Path(cwd)
    with one_at_a_time(cwd) as other:
        if other is not None:
            print(f"error: another reproduce is running in {cwd} ({other}); nothing was changed. "
                  "Wait for it to finish, or stop it (a killed run resumes where it stopped).", file=sys.stderr, flush=True)
            return 3
        return _reproduce(profile, cores, dry_run, extra, cwd, from_remote)


TEMP_TREES = ("results", "data", ".cache/tracking")  # where the atomic writers put their temporaries
LOCK_FILE = Path(".cache/reproduce.lock")
KILLED_FILE = Path(".cache/reproduce.killed")  # what a killed reproduce left in the lock file, until its MLflow run is closed


@contextmanager
def one_at_a_time(cwd: Path):
    """Hold this checkout's reproduce lock (``flock``, released by the kernel when the process dies);
    yields None, or what the holder wrote (its pid and start time) when another run holds it. A lock
    file found not cleared means the last holder was killed: that is noted in ``KILLED_FILE``."""
    import fcntl

    path = cwd / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            yield fh.read().strip() or "pid unknown"
            return
        fh.seek(0)
        if left := fh.read().strip():  # a holder that exits clears the file: this one was killed
            (cwd / KILLED_FILE).write_text(left)
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}")
        fh.flush()
        try:
            yield None
        finally:
            fh.seek(0)
            fh.truncate()


def _reproduce(profile: str | None, cores: int, dry_run: bool, extra: list[str], cwd: Path, from_remote: bool) -> int:
    t0, t_start = time.perf_counter(), time.time()
    if profile is not None and switch_profile(profile, cwd / "params.yaml"):
        print(f"params.yaml: active profile is now {profile}", flush=True)
    try:
        load_params(cwd / "params.yaml")  # before anything is scheduled: a typo names its key here, in well under a second
    except ParamsError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        return 2
    _regenerate_graph(cwd, write=not dry_run)
    if from_remote:
        got = pull(cwd)
        print(f"dvc pull: {len(got['fresh'])} stage(s) up to date, {len(got['stale'])} stale: {got['stale']}", flush=True)
    restore_interrupted_commit(cwd)
    if not dry_run:
        drop_removed_stages(cwd)  # a shrunk grid: before Snakemake schedules, so the evaluate stages see the results folders as a cold run would
    if stale := stale_snakemake_lock(cwd):
        print(f"metapt: removed the lock that a killed Snakemake left ({stale} file(s) in .snakemake/locks)", flush=True)
    if not dry_run and (left := [p for top in TEMP_TREES for p in remove_dead_writers_temps(cwd / top, recursive=True)]):
        print(f"metapt: removed {len(left)} temporary file(s) or folder(s) that killed writers left: "
              f"{', '.join(str(p.relative_to(cwd)) for p in left[:5])}{' …' if len(left) > 5 else ''}", flush=True)
    with forkserver.running(cwd) as env:  # jobs fork from one process that imported torch and PyG once
        code = subprocess.run(snakemake_cmd(cores, dry_run, extra), cwd=cwd, env=env).returncode
    if not dry_run:  # what a killed run left and Snakemake's hooks did not reach (it runs none when nothing is to be done)
        committed, published = commit_ran_stages(cwd), publish_pending(cwd)
        if committed or published:
            print(f"metapt: after Snakemake, dvc commit of {len(committed)} stage(s) a killed run left; {len(published)} pending MLflow run(s)", flush=True)
        if (cwd / KILLED_FILE).exists():  # Snakemake's onstart closes it too, but runs no hook when nothing is to be done
            from metapt import tracking

            with inside(cwd):
                tracking.close_killed_pipeline_runs(load_params().active.name)
            (cwd / KILLED_FILE).unlink()
        if table := job_time_table(cwd, since=t_start, wall=time.perf_counter() - t0, cores=cores):
            print(table, flush=True)
    if code == 0 and not dry_run:
        report = cwd / "results" / "report"
        print(f"\nDone in {time.perf_counter() - t0:.0f} s. Tables: {report / 'README.md'} and {report / 'tables'}/; "
              f"figures: {report / 'figures'}/; every cell: {report / 'summary.json'}.\n"
              f"Lineage of a cell: python stages/lineage.py <cell id>;  runs: mlflow ui --backend-store-uri sqlite:///mlflow.db", flush=True)
    return code


JOB_TIMES = ".cache/job-times"  # "<start> <end>" (epoch seconds) of each job's last run, one file per rule


def job_kind(stage: str) -> str:
    """``pretrain_ppi_access@meta-0`` → ``pretrain_ppi_access``: the stage's group, one kind of job."""
    return stage.split("@")[0]


def job_time_table(cwd: Path, since: float, wall: float, cores: int) -> str:
    """Where the time of this invocation went: per job kind, the jobs that ran (their ``JOB_TIMES`` files
    written since ``since``), their job-seconds and share, their peak memory (``metapt.jobstats``, the stage
    process or its largest worker), the bytes their outputs hold, and the critical path through the graph.

    Job-seconds ÷ (wall × cores) is how full the cores were; the critical path (the longest chain of
    dependent jobs, by their measured times) is the floor no number of cores can beat. A job restored
    from the DVC cache by the early cutoff counts its check only (and has no memory figure).
    """
    from metapt import jobstats
    from metapt.tracking import record_path

    times: dict[str, float] = {}
    folder = cwd / JOB_TIMES
    for f in folder.glob("*.txt") if folder.is_dir() else []:
        if f.stat().st_mtime >= since:
            start, end = (float(x) for x in f.read_text().split())
            times[f.stem] = end - start
    if not times:
        return ""
    stages = upstream_first(expanded_stages(cwd))
    by_rule = {rule_name(s["addressing"]): s for s in stages}
    kinds: dict[str, list[float]] = {}
    peak: dict[str, float] = {}
    written: dict[str, int] = {}
    startup, body = 0.0, 0.0  # the PT and FT jobs' process start-up (imports) against their stage bodies
    for rule, sec in times.items():
        kind = job_kind(by_rule[rule]["addressing"]) if rule in by_rule else rule
        kinds.setdefault(kind, []).append(sec)
        if rule not in by_rule:
            continue
        if stats := jobstats.read(by_rule[rule]["cmd"], cwd, since):
            peak[kind] = max(peak.get(kind, 0.0), stats["peak_rss_mb"], stats["child_peak_rss_mb"])
            written[kind] = written.get(kind, 0) + sum(jobstats.folder_bytes(cwd / out) for out in by_rule[rule]["outs"])
        for out in by_rule[rule]["outs"]:
            rec = cwd / record_path(out)
            if rec.is_file() and rec.stat().st_mtime >= since:
                m = json.loads(rec.read_text()).get("metrics", {})
                if m.get("job/startup_s") and m.get("job/wall_s"):
                    startup, body = startup + m["job/startup_s"][-1][1], body + m["job/wall_s"][-1][1]
    total = sum(sum(v) for v in kinds.values())
    needs, finish = upstream(stages), {}
    for s in stages:  # producers first: the longest chain of measured jobs ending at each stage
        name = s["addressing"]
        finish[name] = times.get(rule_name(name), 0.0) + max((finish[u] for u in needs[name]), default=0.0)
    critical = max(finish.values(), default=0.0)
    lines = ["", f"Job times of this run: {len(times)} job(s), {total:.0f} job-s in {wall:.0f} s wall on {cores} core(s) "
             f"(cores {total / max(wall * cores, 1e-9):.0%} busy); critical path {critical:.0f} s"
             + (f"; PT/FT process start-up {startup:.0f} s against {body:.0f} s of their stage bodies ({startup / (startup + body):.0%})" if body else ""),
             "| job kind | jobs | job-s | share | mean s | max s | peak RSS MB | outputs MB |", "|---|---|---|---|---|---|---|---|"]
    for kind, secs in sorted(kinds.items(), key=lambda kv: -sum(kv[1])):
        mem = f"{peak[kind]:.0f}" if kind in peak else "–"
        out = f"{written[kind] / 1e6:,.1f}" if kind in written else "–"
        lines.append(f"| {kind} | {len(secs)} | {sum(secs):.0f} | {sum(secs) / total:.0%} | {sum(secs) / len(secs):.1f} | {max(secs):.1f} | {mem} | {out} |")
    return "\n".join(lines)


def stale_snakemake_lock(cwd: Path) -> int:
    """Remove ``.snakemake/locks`` if no Snakemake is running in ``cwd``; returns how many files it held.

    A Snakemake killed with SIGKILL leaves its lock, and the next run then refuses to start ("Directory
    cannot be locked"). Called while this checkout's reproduce lock is held, so no other reproduce
    runs here; a Snakemake started by hand is looked for among the processes (``/proc``: their command
    line and working directory). Where that cannot be read, the lock is left for Snakemake to report.
    """
    locks = cwd / ".snakemake" / "locks"
    held = sorted(locks.glob("*")) if locks.is_dir() else []
    if not held or not Path("/proc/self/cwd").exists():
        return 0
    here = cwd.resolve()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if b"snakemake" in (proc / "cmdline").read_bytes() and (proc / "cwd").resolve() == here:
                return 0
        except OSError:  # gone meanwhile, or another user's
            continue
    for f in held:
        f.unlink(missing_ok=True)
    return len(held)


def _regenerate_graph(cwd: Path, write: bool = True) -> None:
    """Bring ``dvc.yaml`` and ``workflow/code/`` in line with the declarations and imports (a new import or
    method group); a dry run only says that they differ."""
    from metapt import graph

    if cwd.resolve() != graph.ROOT:
        return  # the generator reads the code of the repository it was imported from
    if not write:
        if (cwd / "dvc.yaml").read_text() != graph.dvc_yaml():
            print("metapt: dvc.yaml differs from the declarations; python -m metapt.workflow graph --write (or reproduce) regenerates it", flush=True)
        return
    changed = graph.write()
    if changed["dvc.yaml"] or changed["code"]:
        print(f"metapt: regenerated the stage graph (dvc.yaml {'changed' if changed['dvc.yaml'] else 'unchanged'}; "
              f"code folders {changed['code'] or 'unchanged'}); commit them with your change", flush=True)


def commit_stages(names: list[str], cwd: Path | None = None) -> list[str]:
    """``dvc commit`` of exactly these stages, through one DVC index.

    The CLI re-resolves ``dvc.yaml`` and rewrites ``dvc.lock`` once per target, which is quadratic in
    the number of stages (4+ minutes for the embedded run's 131); this saves them all, then writes
    each lock file once.
    """
    from itertools import groupby

    from dvc.repo import Repo

    wanted = set(names)
    with Repo(str(cwd or Path.cwd())) as repo, repo.lock:
        stages = [s for s in repo.index.stages if s.addressing in wanted]
        missing = wanted - {s.addressing for s in stages}
        if missing:
            raise KeyError(f"not stages of dvc.yaml: {sorted(missing)}")
        # Hardlinking an output into the cache rewrites its folder's entries, which moves the folder's
        # mtime: Snakemake would then see every consumer of a folder output as stale ("mtime ping-pong",
        # docs/background.md, "Workflow traps"). The contents are unchanged, so the mtimes are put back.
        outs = [Path(o.fs_path) for s in stages for o in s.outs if Path(o.fs_path).exists()]
        mtimes = {p: (p.stat().st_atime_ns, p.stat().st_mtime_ns) for p in outs}
        for stage in stages:
            stage.save()
            stage.commit()
        for dvcfile, group in groupby(sorted(stages, key=lambda s: s.dvcfile.path), key=lambda s: s.dvcfile):
            dvcfile.dump_stages(list(group), update_pipeline=False)
    for p, times in mtimes.items():
        os.utime(p, ns=times)
    return sorted(s.addressing for s in stages)


RAN_DIR = Path(".cache/ran")  # one marker per job that ran (workflow/rules/stages.smk): exactly those stages are committed
LOCK_BACKUP = Path(".cache/dvc.lock.committing")  # dvc.lock as it was before a commit; there only while one runs


def commit_ran_stages(cwd: Path | None = None) -> list[str]:
    """``dvc commit`` the stages whose jobs ran (never a blanket --force over everything), then drop their markers.

    Markers a killed run left are committed by the next run: Snakemake's ``onsuccess``/``onerror``, or
    ``reproduce`` after Snakemake returns (with nothing to do, Snakemake runs no hook). DVC rewrites
    ``dvc.lock`` in place, so the commit first copies it to ``LOCK_BACKUP`` and removes the copy when done.
    """
    cwd = Path.cwd() if cwd is None else Path(cwd)
    restore_interrupted_commit(cwd)
    markers = sorted((cwd / RAN_DIR).iterdir()) if (cwd / RAN_DIR).is_dir() else []
    stages = sorted({m.read_text().strip() for m in markers})
    if stages:
        with lock_backup(cwd):
            commit_stages(stages, cwd)
    for m in markers:
        m.unlink()
    return stages


def drop_removed_stages(cwd: Path) -> list[str]:
    """Forget the stages the graph no longer has (a grid axis in params.yaml shrank): their ``dvc.lock``
    entries and their outputs. ``reproduce`` calls it before Snakemake schedules anything (not on a dry
    run; ``snakemake`` run directly does not).

    DVC keeps both, so the lock would record results no stage produces, and the folders that gather a
    domain's runs (the evaluate stage's deps) would hash differently from a cold run's. The outputs stay
    in the DVC cache. The lock is edited with DVC's own round-trip YAML writer (the other entries keep
    their bytes), under the same backup as a commit.
    """
    locked = locked_stages(cwd)
    graph = expanded_stages(cwd)
    gone = sorted(set(locked) - {s["addressing"] for s in graph})
    if not gone:
        return []
    from dvc.utils.serialize import modify_yaml

    produced = {o for s in graph for o in s["outs"]}
    with lock_backup(cwd):
        for name in gone:
            for out in locked[name].get("outs", []):
                path = cwd / out["path"]
                if out["path"] not in produced and path.exists():
                    shutil.rmtree(path) if path.is_dir() else path.unlink()
        with modify_yaml(cwd / "dvc.lock") as data:
            for name in gone:
                del data["stages"][name]
    print(f"metapt: dvc.lock: dropped {len(gone)} stage(s) no longer in the graph, and their outputs ({', '.join(gone[:4])}{', …' if len(gone) > 4 else ''})",
          file=sys.stderr, flush=True)
    return gone


@contextmanager
def lock_backup(cwd: Path) -> Iterator[None]:
    """Keep a copy of ``dvc.lock`` as ``LOCK_BACKUP`` while the body rewrites it in place (a ``dvc commit``,
    or dropping removed stages): a kill leaves the copy, and the next run puts it back
    (``restore_interrupted_commit``). Removed when the body is done."""
    if (cwd / "dvc.lock").exists():
        from metapt.io import atomic_path

        with atomic_path(cwd / LOCK_BACKUP) as tmp:
            shutil.copy2(cwd / "dvc.lock", tmp)
    yield
    (cwd / LOCK_BACKUP).unlink(missing_ok=True)


def restore_interrupted_commit(cwd: Path) -> bool:
    """Put ``dvc.lock`` back as it was before a commit that was killed (a ``LOCK_BACKUP`` left behind),
    since DVC may have left it cut short; the stages that commit was for still have their markers and
    are committed again. Called before Snakemake reads the lock, and before each commit."""
    backup = cwd / LOCK_BACKUP
    if not backup.exists():
        return False
    os.replace(backup, cwd / "dvc.lock")
    print("metapt: dvc.lock restored from before a dvc commit that was killed; its stages are committed again", file=sys.stderr, flush=True)
    return True


def publish_pending(cwd: Path | None = None, parent_run_id: str | None = None) -> list[str]:
    """One MLflow run per committed output not yet published: the jobs that ran, and any a killed run
    finished but never published (``tracking.publish`` skips what is published; MLflow is opened only
    when something is pending). Tagged with the outputs' dvc.lock hashes."""
    from metapt import tracking

    cwd = Path.cwd() if cwd is None else Path(cwd)
    lock = locked_stages(cwd)
    outs = [Path(o["path"]) for entry in lock.values() for o in entry.get("outs", [])]
    with inside(cwd):  # records and outputs are relative to the checkout
        return tracking.publish(outs, parent_run_id or os.environ.get(tracking.PARENT_ENV), lock)


@contextmanager
def inside(cwd: Path):
    here = Path.cwd()
    os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(here)


def upstream(stages: list[dict]) -> dict[str, set[str]]:
    """Each stage's producers: the stages whose outputs its deps read."""
    from metapt.lineage import feeders

    graph = {s["addressing"]: {"outs": [{"path": o} for o in s["outs"]]} for s in stages}  # dvc.lock's shape
    return {s["addressing"]: {up for d in s["deps"] for up in feeders(graph, d)} - {s["addressing"]} for s in stages}


def upstream_first(stages: list[dict]) -> list[dict]:
    """The stages in an order where every producer comes before the stages that read its outputs."""
    needs = upstream(stages)
    done: list[str] = []
    while len(done) < len(stages):
        ready = [name for name, ups in needs.items() if name not in done and ups <= set(done)]
        if not ready:
            raise ValueError(f"dvc.yaml has a cycle among {sorted(set(needs) - set(done))}")
        done += ready
    by_name = {s["addressing"]: s for s in stages}
    return [by_name[n] for n in done]


def pull(cwd: Path | None = None, jobs: int | None = None) -> dict[str, list[str]]:
    """``dvc pull`` every output in ``dvc.lock`` from the remote, then give Snakemake the same view as DVC.

    A pull writes outputs in no particular order, so Snakemake (mtimes) would rerun consumers that look
    older than their inputs, and would miss a code edit made before the pull. Outputs of stages that
    ``dvc status`` calls up to date get increasing times, producers first; those of stale stages (code
    or params changed since the lock) get a time older than any input, so both tools rerun exactly those
    and what they feed.
    """
    cwd = Path.cwd() if cwd is None else Path(cwd)
    # --allow-missing: stages declared since the lock was pushed (a new seed or N) have nothing to fetch
    cmd = [sys.executable, "-m", "dvc", "pull", "--allow-missing"] + (["--jobs", str(jobs)] if jobs else [])
    subprocess.run(cmd, cwd=cwd, check=True)
    status = subprocess.run([sys.executable, "-m", "dvc", "status", "--json"], cwd=cwd, check=True, capture_output=True, text=True)
    stale = set(json.loads(status.stdout or "{}"))
    now, fresh = time.time(), []
    for i, stage in enumerate(upstream_first(expanded_stages(cwd))):
        for out in stage["outs"]:
            _stamp(cwd / out, LONG_AGO if stage["addressing"] in stale else now + 0.01 * i)
        if stage["addressing"] not in stale:
            fresh.append(stage["addressing"])
    return {"fresh": fresh, "stale": sorted(stale)}


LONG_AGO = 86400.0  # 1970-01-02: older than any input. Not 0, which Snakemake reads as "no time".


def _stamp(out: Path, when: float) -> None:
    """Set the time Snakemake reads for an output: a folder's is its ``.snakemake_timestamp`` (else the
    newest file inside, whose inodes the DVC cache shares), so the stamp goes there."""
    if out.is_dir():
        out = out / ".snakemake_timestamp"  # in .dvcignore: DVC never sees it
        out.touch()
    if out.exists():
        os.utime(out, (when, when))


def graph_main(argv: list[str]) -> int:
    """``graph [--write]``: print ``dvc.yaml`` as the declarations generate it, or write it and the code folders."""
    from metapt import graph

    ap = argparse.ArgumentParser(prog="python -m metapt.workflow graph", description=graph.__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="write dvc.yaml and workflow/code/ (else print dvc.yaml)")
    args = ap.parse_args(argv)
    if not args.write:
        print(graph.dvc_yaml(), end="")
        return 0
    changed = graph.write()
    print(f"dvc.yaml {'rewritten' if changed['dvc.yaml'] else 'unchanged'}; code folders changed: {changed['code'] or 'none'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["graph"]:
        return graph_main(argv[1:])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", choices=PROFILES, help="switch params.yaml's active profile first")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--dry-run", action="store_true", help="list the jobs that would run")
    ap.add_argument("--pull", action="store_true", help="first fetch every output in dvc.lock from the DVC remote (dvc pull)")
    ap.add_argument("extra", nargs="*", help="further snakemake arguments (after --)")
    args = ap.parse_args(argv)
    return reproduce(args.profile, args.cores, args.dry_run, args.extra, from_remote=args.pull)


if __name__ == "__main__":
    sys.exit(main())
