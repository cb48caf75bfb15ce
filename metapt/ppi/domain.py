"""The PPI domain, declared: multitask PT of a GIN on ego-graphs with learned per-task loss weights.

Methods (Hu et al.'s supervised PT and the paper's Table 1): no PT; uniform multitask PT; co-training
and co-training with PCGrad (PT and FT losses together); meta-learned task weights (``meta``); the
downstream-agnostic meta-objective on held-out PT tasks (``agnostic``); learn, then PT again from scratch on
the tasks a meta run weighted highest (``task_selection``, at every budget where meta runs); PT on the planted helpful tasks only (``oracle``,
synthetic data). FT-access settings: ``full`` (MetaFT = FT train/val), ``partial`` (a random 50 %),
``heldout`` (the meta-objective uses 30 FT tasks; final FT and evaluation the other 10). The MetaFT
label-budget axis: columns ``full`` (at ``ft_budget``) and ``N=<n>`` (``grid.budgets``), each meta-PT'd and
fine-tuned on its own FT data.
"""

from metapt.domain import Domain, Method, RunGroup

METHODS = (
    Method("no_pt", pretrains=False, description="fine-tune the seeded random initialisation"),
    Method("uniform", description="supervised multitask PT, every task weighted 1 (Hu et al.)"),
    Method("cotrain", sees_ft_data=True, description="PT and FT losses summed"),
    Method("cotrain_pcgrad", sees_ft_data=True, description="co-training with PCGrad's projected gradients"),
    Method("meta", learns_phi=True, sees_ft_data=True, plain="uniform", description="task weights learned by hypergradient"),
    Method("agnostic", learns_phi=True, plain="uniform", description="task weights learned against held-out PT tasks"),
    Method("task_selection", sees_ft_data=True, reuses="meta", plain="uniform", description="PT again on the tasks a meta run weighted highest"),
    Method("oracle", upper_bound=True, description="PT on the planted helpful tasks (synthetic only)"),
)

DOMAIN = Domain(
    name="ppi",
    title="PPI (bio ego-graphs, GIN)",
    order=0,
    methods=METHODS,
    groups=(
        RunGroup("nopt", axes={"seed": "seeds"}, fixed={"method": "no_pt", "setting": "full"}, ft_params=("model", "grid.settings"),
                 comment="No PT: fine-tuning from the seeded random initialisation (no pre-training job to depend on)."),
        RunGroup("", axes={"method": "ppi.grid.methods", "seed": "seeds"}, fixed={"setting": "full"}, ft_params=("grid.settings",),
                 comment="PPI, full FT access: the methods whose PT never sees FT data (one PT run serves every setting)."),
        RunGroup("access", axes={"method": "ppi.grid.access_methods", "seed": "seeds"}, fixed={"setting": "full"},
                 comment="PPI, full FT access: the methods whose PT sees FT data."),
        RunGroup("budget", axes={"method": "ppi.grid.budget_methods", "labels": "ppi.grid.budgets", "seed": "seeds"}, fixed={"setting": "full"},
                 comment="PPI, the MetaFT label-budget axis: meta-PT per extra budget (grid.budgets), fine-tuned on the same FT data."),
        RunGroup("selection", axes={"seed": "ppi.grid.selection_seeds"}, fixed={"method": "task_selection", "setting": "full"},
                 comment="PPI, learn then re-PT: PT from scratch on the top tasks of the meta run of the same seed."),
        RunGroup("selection_budget", axes={"labels": "ppi.grid.budgets", "seed": "ppi.grid.selection_seeds"},
                 fixed={"method": "task_selection", "setting": "full"}, comment="PPI, learn then re-PT at each extra MetaFT budget."),
        RunGroup("setting", axes={"method": "ppi.grid.access_methods", "setting": "ppi.grid.settings", "seed": "setting_seeds"},
                 ft_params=("grid.settings",), comment="PPI, the other FT-access settings (partial, held-out tasks)."),
    ),
    code={"acquire": "metapt.ppi.acquire:acquire", "preprocess": "metapt.ppi.preprocess:preprocess",
          "pretrain": "metapt.ppi.pretrain:pretrain_run", "finetune": "metapt.ppi.finetune:finetune_run",
          "evaluate": "metapt.ppi.evaluation:evaluation"},
    params={"acquire": ("data",), "preprocess": ("data",),
            "pretrain": ("model", "pretrain", "ft_budget", "grid.budgets", "grid.heldout_fold", "/torch_threads", "/device"),
            "finetune": ("finetune", "ft_seeds", "ft_budget", "grid.budgets", "grid.heldout_fold", "/torch_threads", "/device"),
            "evaluate": ("/seeds", "/setting_seeds", "grid")},
    params_model="metapt.ppi.settings:PPIParams",
    encoder="metapt.ppi.model:encoder",
    metrics=("test_hard_auroc", "test_easy_auroc"),
    headline_metric="test_hard_auroc",
    ft_mode_preference=("full", "linear"),
    settings=("full", "partial", "heldout"),
    paper=(
        {"cell": "full", "quantity": "PPI, full FT access: meta-PT mean test AUROC", "paper": 78.6},
        {"cell": "heldout", "quantity": "PPI, 10 held-out FT tasks: meta-PT mean test AUROC", "paper": 77.0},
        {"gain": True, "quantity": "PPI: largest gain of meta over best baseline (AUROC points)", "paper": 3.9},
    ),
    truth_kinds={"helpful": "tab:green", "distractor": "tab:orange", "noise": "tab:grey"},
    report_section="metapt.ppi.report:budget_section",
    standin="metapt.ppi.standin:build",
)


def budget_column(n_train: int) -> str:
    """The report column of an extra MetaFT label budget (``ppi.grid.budgets``): ``N=<FT-train graphs>``."""
    return f"N={n_train}"
