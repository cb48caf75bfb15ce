"""Baseline pieces: fixed and sampled task weights, PCGrad, CoTrain, FT, and evaluation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from metapt.engine import BatchStream, MetaLoopConfig
from metapt.engine.cotrain import CoTrainer, pcgrad_combine
from metapt.engine.metaparams import FixedTaskWeights, SampledTasks
from metapt.evaluate import mean_auroc, per_task_auroc, weights_vs_truth
from metapt.finetune import FTConfig, finetune
from tests.unit.toys import MLPMultitask, multitask_data, stack


def test_per_task_auroc_skips_single_class_tasks():
    y = np.array([[0, 1, 1], [1, 1, 0], [0, 1, 1], [1, 1, 0]])
    s = np.array([[0.1, 0.5, 0.9], [0.9, 0.2, 0.1], [0.2, 0.3, 0.8], [0.8, 0.1, 0.3]])
    aucs = per_task_auroc(y, s)
    assert aucs[0] == 1.0 and np.isnan(aucs[1]) and aucs[2] == 1.0
    assert mean_auroc(y, s) == 1.0
    assert mean_auroc(y, 1 - s, tasks=np.array([0])) == 0.0


def test_per_task_auroc_equals_scikit_learn_with_ties():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    y = (rng.random((300, 12)) < np.linspace(0.02, 0.6, 12)).astype(np.float32)
    s = np.round(rng.normal(size=(300, 12)) + y, 1)  # one decimal: many tied scores, within and across classes
    y[:, 0] = 0  # a column with one class: NaN, as before
    got = per_task_auroc(y, s)
    assert np.isnan(got[0])
    want = roc_auc_score(y[:, 1:], s[:, 1:], average=None)
    np.testing.assert_allclose(got[1:], want, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="NaN"):
        per_task_auroc(y, np.where(s > 2, np.nan, s))
    with pytest.raises(ValueError, match="0/1"):
        per_task_auroc(2 * y, s)


def test_weights_vs_truth():
    out = weights_vs_truth(np.array([1.5, 1.2, 0.5, 0.4]), np.array([1, 1, 0, 0]), ["helpful", "helpful", "noise", "distractor"], np.array([1.0, 0.8, 0.0, 0.1]))
    assert out["weights_auc"] == 1.0
    assert out["mean_weight_helpful"] == pytest.approx(1.35)
    assert out["weights_spearman"] == pytest.approx(0.8)


def test_pcgrad_removes_the_conflicting_component():
    g_pt, g_ft = [torch.tensor([1.0, 0.0])], [torch.tensor([-1.0, 1.0])]
    combined = pcgrad_combine(g_pt, g_ft)
    # PT projected on the normal plane of FT: (0.5, 0.5); FT on the normal plane of PT: (0, 1)
    assert torch.allclose(combined[0], torch.tensor([0.5, 1.5]))
    aligned = pcgrad_combine([torch.tensor([1.0, 0.0])], [torch.tensor([1.0, 1.0])])
    assert torch.allclose(aligned[0], torch.tensor([2.0, 1.0]))


def test_fixed_and_sampled_task_weights():
    fixed = FixedTaskWeights(torch.tensor([2.0, 0.0, 1.0]))
    assert list(fixed.parameters()) == []
    assert fixed(torch.tensor([1.0, 5.0, 1.0])) == pytest.approx(1.0)
    torch.manual_seed(0)
    sampled = SampledTasks(torch.tensor([2.0, 1.0, 0.0]))
    masks = torch.stack([sampled.weights() for _ in range(4000)])
    assert masks[:, 2].sum() == 0 and masks[:, 0].min() > 0
    assert (masks > 0).float().mean(0)[1] == pytest.approx(0.5, abs=0.05)


def test_cotrain_and_pcgrad_train_the_shared_encoder():
    data = multitask_data(n=96)
    for pcgrad in (False, True):
        problem = MLPMultitask(seed=0)
        problem.meta = FixedTaskWeights(torch.ones(7))
        before = [t.detach().clone() for t in problem.theta() + list(problem.ft_head.parameters())]
        streams = [BatchStream(data[:64], 8, seed=s, collate=stack) for s in (1, 2, 3)]
        trainer = CoTrainer(problem, *streams, MetaLoopConfig(epochs=2, warmup_epochs=2, pt_lr=1e-2, ft_head_lr=1e-2, checkpoint_every=0), progress=False, pcgrad=pcgrad).run()
        after = trainer.problem.theta() + list(trainer.problem.ft_head.parameters())
        assert all(not torch.equal(a, b) for a, b in zip(after, before))


class _Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.1))
        self.out_dim = 16

    def forward(self, batch):
        return self.net(batch[0])


@pytest.mark.parametrize("mode", ["full", "linear"])
def test_finetune_learns_and_reports_the_best_validation_epoch(mode):
    data = multitask_data(n=240, seed=4)
    torch.manual_seed(0)
    res = finetune(_Encoder(), 3, data[:160], data[160:200], {"test": data[200:]}, stack, lambda b: b[2], FTConfig(mode=mode, lr=1e-2, epochs=8, dropout=0.2), seed=0)
    assert len(res.val_auroc) == 8 and res.val_auroc[res.best_epoch] == max(res.val_auroc)
    assert res.test_auroc["test"] > 0.8
    held = finetune(_Encoder(), 3, data[:160], data[160:200], {"test": data[200:]}, stack, lambda b: b[2], FTConfig(mode=mode, lr=1e-2, epochs=2), seed=0, tasks=np.array([1]))
    assert len(held.test_per_task["test"]) == 1


@pytest.mark.parametrize("mode", ["full", "linear"])
def test_finetune_steps_per_epoch_bounds_the_optimiser_steps(mode, monkeypatch):
    """A bounded run (the rehearsal profile) takes exactly ``epochs × steps_per_epoch`` FT steps, however large the split."""
    from metapt import finetune as ft

    calls = []
    real = ft.train_step
    monkeypatch.setattr(ft, "train_step", lambda *a: calls.append(1) or real(*a))
    data = multitask_data(n=240, seed=4)
    cfg = FTConfig(mode=mode, lr=1e-2, epochs=2, steps_per_epoch=3, batch_size=8)
    res = finetune(_Encoder(), 3, data[:160], data[160:200], {"test": data[200:]}, stack, lambda b: b[2], cfg, seed=0)
    assert len(calls) == 6 and len(res.val_auroc) == 2  # a full pass would be 2 × 20 steps
    calls.clear()
    finetune(_Encoder(), 3, data[:160], data[160:200], {"test": data[200:]}, stack, lambda b: b[2], cfg.model_copy(update={"steps_per_epoch": None}), seed=0)
    assert len(calls) == 40
