# Snakemake adapter over the one stage graph in dvc.yaml: every expanded DVC stage becomes one rule.
# Run it through `python3 bootstrap.py reproduce` (it also asks DVC what is stale), or directly:
#   snakemake --cores 2                                       (profiles/default is picked up)
#   snakemake --workflow-profile profiles/slurm               (SLURM: PT/FT on GPU nodes)
include: "workflow/rules/common.smk"
include: "workflow/rules/stages.smk"


rule all:
    default_target: True
    localrule: True
    input: [o for s in STAGES for o in s["outs"]]
