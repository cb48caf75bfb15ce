"""The digits domain, declared: SimCLR PT of a small CNN on real handwritten digits, with a learned
augmentation policy as φ, and FT tasks whose right invariances are planted by construction.

Data: scikit-learn's ``load_digits`` (1,797 real 8×8 digits, shipped with the package; embedded) or
MNIST (IDX files, checksummed download; paper). Each FT task builds its own images from the same
digits (``metapt.digits.data``): ``class`` (10-way, centred), ``orientation`` (upright or turned by
180°, digits that read differently when turned), ``position`` (left or right half of the canvas).
Every PT run pre-trains one encoder per task on that task's unlabelled images; FT columns are label
budgets ``N=<n>``, one table per task (the metric names the task).

Methods: no PT; SimCLR with the fixed start policy; SimCLR with the hand-chosen right policy of each
task (the oracle: a reference, never "the best baseline"); meta-SimCLR, whose policy magnitudes
learn from N labels of the task by hypergradient, starting from the fixed policy.
"""

from metapt.domain import Domain, Method, RunGroup

TASKS = ("class", "orientation", "position")
TRANSFORMS = ("rotation", "translation", "scale", "shear", "noise")

# The planted truth, fixed by how the tasks are built, not by results (docs/digits.md): at the start
# magnitudes (rotation ±120°, translation ±8 px of a 28-px canvas whose left and right digit centres
# are 6 px apart) a transform that maps examples of different labels onto each other should fall
# ("down"); one that keeps every label should not fall ("not_down"). Cells not listed are not scored.
PLANTED: dict[tuple[str, str], str] = {
    ("orientation", "rotation"): "down",       # turning by up to 120° brings an upright digit to its 180° twin
    ("position", "translation"): "down",       # a left digit shifted 6 px right sits where right digits are
    ("position", "rotation"): "down",          # rotating about the canvas centre carries a digit across it
    ("class", "translation"): "not_down",      # a shifted digit is the same digit
    ("orientation", "translation"): "not_down",  # a shifted digit keeps its orientation
}

METHODS = (
    Method("no_pt", pretrains=False, description="fine-tune the seeded random initialisation"),
    Method("simclr", description="SimCLR with the fixed start policy (every task)"),
    Method("oracle", upper_bound=True, description="SimCLR with the hand-chosen right policy of each task"),
    Method("meta_simclr", learns_phi=True, sees_ft_data=True, plain="simclr", description="SimCLR whose policy magnitudes are learned by hypergradient"),
)

DOMAIN = Domain(
    name="digits",
    title="Digits (real handwritten digits, small CNN, planted invariances)",
    order=2,
    methods=METHODS,
    groups=(
        RunGroup("nopt", axes={"seed": "seeds"}, fixed={"method": "no_pt"}, ft_params=("model", "grid.labels", "grid.tasks")),
        RunGroup("", axes={"method": "digits.grid.methods", "seed": "seeds"}, ft_params=("grid.labels", "grid.tasks"),
                 comment="digits: fixed policies do not see labels in PT; one encoder per task, fine-tuned at every N."),
        RunGroup("meta", axes={"labels": "digits.grid.meta_labels", "seed": "seeds"}, fixed={"method": "meta_simclr"}, ft_params=("grid.tasks",),
                 comment="meta-SimCLR learns each task's policy from N labels of it; fine-tuned at that N."),
    ),
    code={"acquire": "metapt.digits.acquire:acquire", "preprocess": "metapt.digits.preprocess:preprocess",
          "pretrain": "metapt.digits.pretrain:pretrain_run", "finetune": "metapt.digits.finetune:finetune_run",
          "evaluate": "metapt.digits.evaluation:evaluation"},
    params={"acquire": ("data",), "preprocess": ("data", "canvas"),
            "pretrain": ("model", "pretrain", "policy", "grid.tasks", "/torch_threads", "/device"),
            "finetune": ("finetune", "ft_seeds", "/torch_threads", "/device"),
            "evaluate": ("/seeds", "grid", "policy")},
    params_model="metapt.digits.settings:DigitsParams",
    encoder="metapt.digits.model:encoder",
    metrics=tuple(f"{t}_test_macro_auroc" for t in TASKS),
    headline_metric="class_test_macro_auroc",
    ft_mode_preference=("linear", "full"),
    report_section="metapt.digits.report:planted_section",
    standin="metapt.digits.standin:build",
)


def setting_of(n: int) -> str:
    """The table column of a label budget."""
    return f"N={n}"


def metric_of(task: str) -> str:
    return f"{task}_test_macro_auroc"
