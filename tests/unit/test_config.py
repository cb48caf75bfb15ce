"""params.yaml: both profiles validate, typos name the key and what is allowed, the profile switch is one line."""

from pathlib import Path

import pytest
import yaml

from metapt.config import ParamsError, load_params, switch_profile

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_params_validate():
    p = load_params(ROOT / "params.yaml")
    assert p.active == p.profiles["embedded"]
    assert set(p.profiles) == {"embedded", "paper", "rehearsal", "tiny"}  # tiny: the test suite's pipeline
    assert p.profiles["paper"].ppi.data.source == "bio" and p.profiles["paper"].ecg.data.source == "ptbxl"


def test_rehearsal_is_the_paper_bounded_in_steps_and_seeds_only():
    """The overlay keeps the paper's data, models, batch sizes, hypergradient and grid; it bounds each PT and
    FT job to a few steps (meta-PT still takes hyper-steps), keeps one PT and one FT seed, and reads from 127.0.0.1."""
    from urllib.parse import urlparse

    from metapt.domain import domains

    p = load_params(ROOT / "params.yaml")
    paper, reh = p.profiles["paper"], p.profiles["rehearsal"]
    assert len(reh.seeds) == len(reh.setting_seeds) == 1 and reh.device == paper.device
    for d in domains():
        a, b = getattr(paper, d.name), getattr(reh, d.name)
        assert (b.model, b.grid) == (a.model, a.grid), d.name
        assert b.data.source == a.data.source and urlparse(b.data.url).hostname == "127.0.0.1"
        assert b.data.model_copy(update={"url": a.data.url}) == a.data, d.name
        assert b.pretrain.model_copy(update={"loop": a.pretrain.loop}) == a.pretrain, d.name
        bounded = {"epochs", "steps_per_epoch", "warmup_epochs", "hyper_every", "checkpoint_every", "snapshot_every"}
        assert b.pretrain.loop.model_copy(update={k: getattr(a.pretrain.loop, k) for k in bounded}) == a.pretrain.loop
        assert b.pretrain.loop.meta_enabled and b.pretrain.loop.epochs * b.pretrain.loop.steps_per_epoch <= 10
        assert b.pretrain.loop.steps_per_epoch > b.pretrain.loop.hyper_every  # at least one hyper-step per meta epoch
        assert set(b.finetune) == set(a.finetune) and len(b.ft_seeds) == 1
        for mode, ft in b.finetune.items():
            assert ft.epochs == 1 and ft.steps_per_epoch <= 5
            assert ft.model_copy(update={"epochs": a.finetune[mode].epochs, "steps_per_epoch": None}) == a.finetune[mode]


def _write(tmp_path, mutate) -> Path:
    tree = yaml.safe_load((ROOT / "params.yaml").read_text())
    mutate(tree)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"profiles": tree["profiles"], "active": tree["profiles"]["embedded"]}))
    return path


def test_unknown_key_is_named_with_the_allowed_keys(tmp_path):
    path = _write(tmp_path, lambda t: t["profiles"]["embedded"]["ppi"]["finetune"]["full"].update(lrr=0.1))
    with pytest.raises(ParamsError) as err:
        load_params(path)
    msg = str(err.value)
    assert "profiles.embedded.ppi.finetune.full.lrr: unknown key" in msg
    assert "batch_size, dropout, epochs, lr, mode, steps_per_epoch, weight_decay" in msg


def test_bad_choice_names_the_allowed_values(tmp_path):
    path = _write(tmp_path, lambda t: t["profiles"]["embedded"]["ppi"]["pretrain"]["loop"]["hypergrad"].update(normalise="l2"))
    with pytest.raises(ParamsError) as err:
        load_params(path)
    assert "profiles.embedded.ppi.pretrain.loop.hypergrad.normalise" in str(err.value)
    assert "'paper', 'rms' or 'centred'" in str(err.value)


def test_ill_typed_value_is_rejected(tmp_path):
    path = _write(tmp_path, lambda t: t["profiles"]["embedded"].update(seeds="five"))
    with pytest.raises(ParamsError, match=r"profiles\.embedded\.seeds"):
        load_params(path)


def test_oracle_needs_synthetic_data(tmp_path):
    path = _write(tmp_path, lambda t: t["profiles"]["paper"]["ppi"]["grid"].update(methods=["oracle"]))
    with pytest.raises(ParamsError, match="oracle"):
        load_params(path)


def test_switch_profile_rewrites_only_the_active_line(tmp_path):
    path = tmp_path / "params.yaml"
    original = (ROOT / "params.yaml").read_text()
    path.write_text(original)
    assert switch_profile("paper", path)
    assert load_params(path).active.name == "paper"
    changed = [(a, b) for a, b in zip(original.splitlines(), path.read_text().splitlines()) if a != b]
    assert changed == [("active: *embedded", "active: *paper")]
    assert not switch_profile("paper", path)
    with pytest.raises(ParamsError, match="allowed: embedded, paper"):
        switch_profile("laptop", path)


def test_active_must_be_one_of_the_profiles(tmp_path):
    tree = yaml.safe_load((ROOT / "params.yaml").read_text())
    active = dict(tree["profiles"]["embedded"], torch_threads=3)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"profiles": tree["profiles"], "active": active}))
    with pytest.raises(ParamsError, match="active must be one of the profiles"):
        load_params(path)


@pytest.mark.parametrize("grid, missing", [({"selection_seeds": [9]}, "meta-full-s9"), ({"budget_methods": []}, "meta-full-N2000-s0")])
def test_learn_then_re_pt_needs_the_meta_run_it_reads(tmp_path, grid, missing):
    path = _write(tmp_path, lambda t: t["profiles"]["embedded"]["ppi"]["grid"].update(grid))
    with pytest.raises(ParamsError) as err:
        load_params(path)
    msg = str(err.value)
    assert f"reads the PT output of {missing}" in msg and "ppi.grid.selection_seeds" in msg and "profiles.embedded" in msg
    assert "(got {" not in msg  # the whole profile is not dumped


def test_ecg_label_budgets_must_fit_the_synthetic_pool(tmp_path):
    # 600 records: PT folds 1-9 hold 540, so N_FT = 541 fails at load time, not after PT has run
    path = _write(tmp_path, lambda t: t["profiles"]["embedded"]["ecg"]["grid"].update(partial_ft_labels=[541]))
    with pytest.raises(ParamsError) as err:
        load_params(path)
    assert "profiles.embedded.ecg" in str(err.value) and "[541] exceed the 540 synthetic records" in str(err.value)
    ok = _write(tmp_path, lambda t: t["profiles"]["embedded"]["ecg"]["grid"].update(partial_ft_labels=[540]))
    assert load_params(ok).profiles["embedded"].ecg.grid.partial_ft_labels == [540]


@pytest.mark.parametrize("n", [20, 599, 600, 601])
def test_the_pool_rule_matches_the_synthetic_folds(tmp_path, n):
    """The load-time check's pool (n − n // 10) is what synth._folds leaves in PT folds 1-9."""
    import numpy as np

    from metapt.ecg.synth import _folds

    labels = (np.random.default_rng(0).random((n, 5)) < 0.3).astype(np.int8)
    pool = int((_folds(labels, np.random.default_rng(1)) <= 9).sum())
    fits = _write(tmp_path, lambda t: t["profiles"]["embedded"]["ecg"].update(data={"source": "synthetic", "n_records": n, "seed": 0},
                                                                              grid={"labels": [min(10, pool)], "partial_ft_labels": [pool]}))
    assert load_params(fits).profiles["embedded"].ecg.grid.partial_ft_labels == [pool]
    over = _write(tmp_path, lambda t: t["profiles"]["embedded"]["ecg"].update(data={"source": "synthetic", "n_records": n, "seed": 0},
                                                                              grid={"labels": [min(10, pool)], "partial_ft_labels": [pool + 1]}))
    with pytest.raises(ParamsError, match=f"exceed the {pool} synthetic records"):
        load_params(over)
