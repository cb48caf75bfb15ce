"""SimCLR with a learned augmentation runs through the engine, and the baseline leaves φ alone."""

import torch
from torch import nn

from metapt.ecg.model import ResNet1d
from metapt.ecg.problem import SimCLRECG
from metapt.engine import BatchStream, HypergradConfig, MetaLoopConfig, MetaParameterisation, MetaPretrainer


class LearnedGain(MetaParameterisation):
    """A stand-in augmentation: a learned per-lead gain (any differentiable φ works)."""

    def __init__(self):
        super().__init__()
        self.log_gain = nn.Parameter(torch.zeros(12))

    def forward(self, x):
        return x * self.log_gain.exp()


def data(n=48, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 128, 12, generator=gen)
    y = (torch.rand(n, 5, generator=gen) < 0.3).float()
    return [(x[i], y[i]) for i in range(n)]


def stack(items):
    return tuple(torch.stack(t) for t in zip(*items))


def run(meta_on: bool, make_meta=LearnedGain):
    torch.manual_seed(0)
    problem = SimCLRECG(ResNet1d(widths=(8, 16), strides=(1, 2), blocks=1, kernel=7, stem_stride=2), make_meta(), use_meta_augmentation=True)
    d = data()
    streams = [BatchStream(d[:32], 8, seed=1, collate=stack), BatchStream(d[32:40], 8, seed=2, collate=stack), BatchStream(d[40:], 8, seed=3, collate=stack)]
    cfg = MetaLoopConfig(epochs=3, warmup_epochs=1 if meta_on else 3, hyper_every=2, pt_lr=1e-3, meta_lr=0.05, checkpoint_every=0, hypergrad=HypergradConfig(normalise="rms"))
    records = []
    trainer = MetaPretrainer(problem, *streams, cfg, hooks=[records.append], progress=False).run()
    return trainer, records


def test_meta_simclr_updates_the_augmentation():
    trainer, records = run(True)
    hyper = [r for r in records if r.hyper]
    assert hyper and all(r.hypergrad_norm > 0 for r in hyper)
    assert not torch.equal(trainer.problem.meta.log_gain.detach(), torch.zeros(12))


def test_baseline_keeps_the_augmentation_fixed():
    trainer, records = run(False)
    assert not any(r.hyper for r in records)
    assert torch.equal(trainer.problem.meta.log_gain.detach(), torch.zeros(12))


def test_meta_simclr_learns_the_warp_augmentation():
    from metapt.ecg.augment_learned import WarpAugmentation

    trainer, records = run(True, make_meta=lambda: WarpAugmentation(channels=8))
    hyper = [r for r in records if r.hyper]
    assert hyper and all(r.hypergrad_norm > 0 for r in hyper)
    assert "warp_std" in records[-1].meta_summary
    assert trainer.problem.meta.std().item() != 100 * 4.0**2  # the global magnitude moved
