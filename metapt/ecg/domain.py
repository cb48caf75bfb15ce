"""The ECG domain, declared: SimCLR PT of a 1-D ResNet on 12-lead ECGs, with a learned warp augmentation.

Methods: no PT; SimCLR with fixed default augmentations (the baseline, on the same loop); meta-SimCLR,
whose warp is φ and learns from N labelled records (MetaFT). Columns are label budgets ``N=<n>``;
partial access fine-tunes a meta-SimCLR run that learned from N labels on N_FT > N (row ``meta_simclr@N``).
"""

from metapt.domain import Domain, Method, RunGroup

METHODS = (
    Method("no_pt", pretrains=False, description="fine-tune the seeded random initialisation"),
    Method("simclr", description="SimCLR with fixed default augmentations"),
    Method("meta_simclr", learns_phi=True, sees_ft_data=True, plain="simclr", description="SimCLR whose warp augmentation is learned by hypergradient"),
)

DOMAIN = Domain(
    name="ecg",
    title="ECG (PTB-XL, 1-D ResNet)",
    order=1,
    methods=METHODS,
    groups=(
        RunGroup("nopt", axes={"seed": "seeds"}, fixed={"method": "no_pt"}, ft_params=("model", "grid.labels")),
        RunGroup("", axes={"method": "ecg.grid.methods", "seed": "seeds"}, ft_params=("grid.labels",),
                 comment="ECG: fixed-augmentation baselines do not see labels in PT; fine-tuned at every N and N_FT."),
        RunGroup("meta", axes={"labels": "ecg.grid.labels", "seed": "seeds"}, fixed={"method": "meta_simclr"},
                 comment="meta-SimCLR learns its warp from N labels; fine-tuned at N and each larger N_FT."),
    ),
    code={"acquire": "metapt.ecg.acquire:acquire", "preprocess": "metapt.ecg.preprocess:preprocess",
          "pretrain": "metapt.ecg.pretrain:pretrain_run", "finetune": "metapt.ecg.finetune:finetune_run",
          "evaluate": "metapt.ecg.evaluation:evaluation"},
    params={"acquire": ("data",), "preprocess": ("data",),
            "pretrain": ("model", "pretrain", "/torch_threads", "/device"),
            "finetune": ("finetune", "ft_seeds", "grid.partial_ft_labels", "/torch_threads", "/device"),
            "evaluate": ("/seeds", "grid")},
    params_model="metapt.ecg.settings:ECGParams",
    encoder="metapt.ecg.model:encoder",
    metrics=("test_macro_auroc",),
    headline_metric="test_macro_auroc",
    ft_mode_preference=("linear", "full"),
    paper=(
        {"cell": "largest_n", "quantity": "PTB-XL: meta-parameterised SimCLR macro AUROC (ours: largest N)", "paper": 86.7},
        {"gain": True, "quantity": "ECG: largest gain of meta over best baseline (AUROC points)", "paper": 1.9},
    ),
    standin="metapt.ecg.standin:build",
)


def setting_of(n: int) -> str:
    """The table column of a label budget (the report orders columns by ``EvalRow.ft_labels``, not by this text)."""
    return f"N={n}"
