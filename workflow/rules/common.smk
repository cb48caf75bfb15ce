# Helpers for the DVC → Snakemake adapter (no rules here).
import json
import os
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(workflow.basedir)))
from metapt import faults, tracking  # noqa: E402  (light: mlflow is imported only when a run starts)
from metapt.config import ParamsError, load_params  # noqa: E402
from metapt.workflow import JOB_TIMES, commit_ran_stages, expanded_stages, params_stale, publish_pending, restore_interrupted_commit, rule_name  # noqa: E402

# Jobs run `python ...` and `dvc ...` from PATH: make it the interpreter running Snakemake (the venv).
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"

# The whole of params.yaml is validated before any job is scheduled (a typo fails here, naming the key,
# not in a job after it queued on SLURM); the stages validate it again when they run.
restore_interrupted_commit(Path.cwd())  # before anything reads dvc.lock (snakemake run directly; reproduce did it already)
try:
    ACTIVE = load_params().active
except ParamsError as err:
    sys.stderr.write(f"error: {err}\n")
    sys.exit(1)


def is_dir_path(path):
    return not Path(path).suffix or Path(path).is_dir()


def load_stages():
    """Every expanded DVC stage as a rule spec; folder deps expanded afresh (a new module must be seen).

    Params: `dvc.lock` is the one record of the params each output was built with, whichever tool
    built it. A stage whose locked params differ from params.yaml gets params.yaml as an input, so
    the edit (newer than the outputs) reruns it through mtime; Snakemake's own params trigger is off
    (profiles/default), since its metadata goes stale when `dvc repro` rebuilt an output.
    """
    try:
        raw = expanded_stages()
    except ParamsError as err:  # a key the graph reads is missing from params.yaml
        sys.stderr.write(f"error: {err}\n")
        sys.exit(1)
    stale = set(params_stale())
    out_paths = [o for s in raw for o in s["outs"]]
    return [dict(s, name=rule_name(s["addressing"]),
                 inputs=[i for d in s["deps"] for i in expand_dep(d, out_paths)] + (["params.yaml"] if s["addressing"] in stale else []))
            for s in raw]


def expand_dep(path, out_paths):
    """Snakemake sees files and declared outputs, not folders: a folder dep becomes the outputs inside it,
    or (library code) its .py files, whose edits would not change the folder's mtime."""
    if path in out_paths:
        return [path]
    inside = [o for o in out_paths if o.startswith(path.rstrip("/") + "/")]
    if inside:
        return inside
    if path.startswith("workflow/code/"):  # links to the stage's code: Snakemake compares the files' own mtimes
        return sorted(os.path.relpath(p.resolve()) for p in Path(path).rglob("*.py"))
    if Path(path).is_dir():
        return sorted(str(p) for p in Path(path).rglob("*.py"))
    return [path]


def resources_for(meta):
    """Scheduler hints from the stage's `meta:`. They are sized for the paper on GPU nodes: a profile
    that runs on the CPU (the embedded one) keeps only the runtime and takes the executor profile's
    default memory and cores, so small jobs share a node. GPU jobs go to `config: gpu_partition` when
    the executor profile names one (profiles/slurm), the others to its default partition."""
    res = dict(meta.get("resources", {}))
    if ACTIVE.device == "cpu":
        res = {k: v for k, v in res.items() if k == "runtime"}
    if res.get("gpu") and config.get("gpu_partition"):
        res["slurm_partition"] = config["gpu_partition"]
    return res
