# One rule per expanded DVC stage. The command goes through `params.cmd` and `shell` stays constant:
# rules made in a loop would otherwise all run the last command (snakemake#2832).
STAGES = load_stages()




for spec in STAGES:
    outputs = [directory(o) if is_dir_path(o) else o for o in spec["outs"]]
    if spec["meta"].get("report"):
        r = spec["meta"]["report"]
        outputs = [report(directory(o), patterns=r["patterns"], caption=str(Path(workflow.basedir) / r["caption"]), category=r.get("category")) for o in spec["outs"]]

    rule:
        name: spec["name"]
        localrule: bool(spec["meta"].get("head_node"))
        input: spec["inputs"]
        output: outputs
        params:
            cmd=spec["cmd"],
            stage=spec["addressing"],
            values=json.dumps(spec["params"], sort_keys=True),
        resources: **resources_for(spec["meta"])
        log: f".cache/logs/{spec['name']}.log"
        # Up to date by content (metapt/cutoff.py): outputs from the DVC cache; else run (a failure ends the job with its status:
        # `|| exit`, since a list's failure does not stop a shell under `set -e`), and mark it for commit. The job's start
        # and end go to JOB_TIMES for reproduce's time table (not a `benchmark:` file: Snakemake compares those to the inputs' mtimes,
        # so an output rebuilt by `dvc repro` would look stale to it).
        shell:
            "t0=$(date +%s.%N); if python -m metapt.cutoff '{params.stage}' > {log} 2>&1; then :; else"
            " ({params.cmd}) >> {log} 2>&1 || exit $?; mkdir -p .cache/ran && echo '{params.stage}' > .cache/ran/{rule}; fi;"
            " mkdir -p " + JOB_TIMES + " && echo \"$t0 $(date +%s.%N)\" > " + JOB_TIMES + "/{rule}.txt"


onstart:
    os.environ[tracking.DEFER_ENV] = "1"  # jobs leave tracking records; published below, in one process
    os.environ[tracking.PARENT_ENV] = tracking.start_pipeline_run(ACTIVE.name)


onsuccess:
    ran = commit_ran_stages()
    faults.reach("workflow.committed")  # a test's SIGKILL between the commit and the publish (metapt/faults.py)
    print(f"metapt: dvc commit of {len(ran)} stage(s) that ran; {len(publish_pending())} MLflow run(s)", file=sys.stderr)
    if tracking.PARENT_ENV in os.environ:
        tracking.end_pipeline_run(os.environ[tracking.PARENT_ENV], ok=True)


onerror:
    ran = commit_ran_stages()
    print(f"metapt: dvc commit of {len(ran)} stage(s) that finished before the error; {len(publish_pending())} MLflow run(s)", file=sys.stderr)
    if tracking.PARENT_ENV in os.environ:
        tracking.end_pipeline_run(os.environ[tracking.PARENT_ENV], ok=False)
