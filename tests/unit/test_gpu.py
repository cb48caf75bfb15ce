"""The engine on CUDA: the same code path, skipped cleanly where there is no GPU."""

import pytest
import torch

from metapt.engine import BatchStream, HypergradConfig, MetaLoopConfig, MetaPretrainer
from tests.unit.toys import MLPMultitask, multitask_data, stack

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")]


def test_meta_pt_runs_on_cuda():
    device = torch.device("cuda")
    problem = MLPMultitask(seed=0)
    for m in problem.modules().values():
        m.to(device)
    data = multitask_data(n=96)
    streams = [BatchStream(data[:64], 8, seed=s, collate=stack) for s in (1, 2, 3)]
    cfg = MetaLoopConfig(epochs=2, warmup_epochs=1, hyper_every=2, checkpoint_every=0, hypergrad=HypergradConfig(normalise="rms"))
    records = []
    trainer = MetaPretrainer(problem, *streams, cfg, hooks=[records.append], progress=False, prepare=lambda b: tuple(t.to(device) for t in b)).run()
    assert any(r.hyper for r in records)
    assert trainer.problem.meta.logits.is_cuda and torch.isfinite(trainer.problem.meta.logits).all()
