"""The ECG methods run end to end on a tiny synthetic set, over two label budgets."""

import numpy as np
import pytest

from metapt.ecg.finetune import finetune_and_test
from metapt.ecg.labelled import metaft_sizes
from metapt.ecg.pretrain import pretrain
from metapt.ecg.settings import ECGConfig
from metapt.ecg.synth import generate, preset
from metapt.labelled import labelled_indices

TINY = {
    "model": {"widths": [8, 16], "strides": [1, 2], "blocks": 1, "kernel": 7, "stem_stride": 4},
    "pretrain": {"batch_size": 16, "meta_batch_size": 8, "warp_channels": 4,
                 "loop": {"epochs": 2, "warmup_epochs": 1, "hyper_every": 2, "pt_lr": 1e-3, "meta_lr": 1e-3, "checkpoint_every": 0, "hypergrad": {"normalise": "rms"}}},
    "finetune": {"linear": {"mode": "linear", "lr": 1e-2, "epochs": 3, "batch_size": 8}},
    "ft_seeds": [0],
}


def test_metaft_sizes_follow_the_paper():
    assert metaft_sizes(10) == (5, 5) and metaft_sizes(25) == (15, 10) and metaft_sizes(100) == (80, 20)
    with pytest.raises(ValueError, match="N must be"):
        metaft_sizes(1)
    pool = np.arange(50)
    assert set(labelled_indices(pool, 10, 0)) <= set(labelled_indices(pool, 25, 0))  # nested across N
    with pytest.raises(ValueError, match="only 50 in the PT pool"):
        labelled_indices(pool, 60, 0)


def test_methods_run_and_meta_moves_the_warp():
    x, y, _ = generate(preset("default", n_records=120, seed=0))
    x = np.pad((x - x.mean((0, 1))) / x.std((0, 1)), ((0, 0), (0, 24), (0, 0))).astype(np.float32)
    y = y.astype(np.float32)
    pt_idx, test_idx = np.arange(96), np.arange(96, 120)
    cfg = ECGConfig.model_validate(TINY)
    for method in ("no_pt", "simclr", "meta_simclr"):
        enc, log = pretrain(method, x, y, pt_idx, 10, cfg, seed=0)
        res = finetune_and_test(enc, x, y, pt_idx, test_idx, 25, cfg, seed=0)
        assert 0 <= res["linear"]["test_macro_auroc"] <= 1
        if method == "meta_simclr":
            assert log["hyper_steps"] > 0 and log["warp_std_final"] != pytest.approx(1600.0)
        if method == "simclr":
            assert log["hyper_steps"] == 0 and log["warp_std_final"] == pytest.approx(1600.0)


def test_trial_cli_writes_json_and_a_summary(tmp_path):
    from metapt.ecg.trial import run, table

    rows = run(ECGConfig.model_validate(TINY), 120, ["no_pt", "simclr"], [10], [0, 1], tmp_path, progress=False)
    assert len(list(tmp_path.glob("*.json"))) == 4
    text = table(rows)
    assert "| 10 | no_pt | linear |" in text and "[" in text  # paired Δ against simclr with a CI
    from metapt.ecg.figures import ecg_figure

    assert ecg_figure(tmp_path, tmp_path / "ecg.png").read_bytes()[:4] == b"\x89PNG"


def test_shipped_ecg_config_validates():
    from pathlib import Path

    import yaml

    cfg = ECGConfig.model_validate(yaml.safe_load((Path(__file__).resolve().parents[2] / "configs/ecg_trial.yaml").read_text()))
    assert cfg.pretrain.loop.warmup_epochs < cfg.pretrain.loop.epochs
