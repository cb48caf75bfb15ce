"""CoTrain baselines: train θ and ψ jointly on L_PT + L_FT, optionally with PCGrad.

PCGrad (Yu et al. 2020): when the PT and FT gradients conflict (negative dot product),
each is projected onto the normal plane of the other before they are summed.
The loop shares the engine's streams, checkpoints and hooks through ``MetaPretrainer``.
"""

from __future__ import annotations

import torch

from metapt import faults
from metapt.engine.metaloop import MetaPretrainer, StepRecord, check_finite


def gradients_conflict(g_pt: list[torch.Tensor], g_ft: list[torch.Tensor]) -> bool:
    return bool(sum((a * b).sum() for a, b in zip(g_pt, g_ft)) < 0)


def pcgrad_combine(g_pt: list[torch.Tensor], g_ft: list[torch.Tensor]) -> list[torch.Tensor]:
    """Sum of the two gradients after projecting away their conflicting components."""
    dot = sum((a * b).sum() for a, b in zip(g_pt, g_ft))
    if dot >= 0:
        return [a + b for a, b in zip(g_pt, g_ft)]
    n_pt = sum((a * a).sum() for a in g_pt).clamp_min(1e-30)
    n_ft = sum((b * b).sum() for b in g_ft).clamp_min(1e-30)
    pt_proj = [a - dot / n_ft * b for a, b in zip(g_pt, g_ft)]
    ft_proj = [b - dot / n_pt * a for a, b in zip(g_pt, g_ft)]
    return [a + b for a, b in zip(pt_proj, ft_proj)]


class CoTrainer(MetaPretrainer):
    """Each step: one PT batch and one MetaFT-train batch; θ (encoder, PT head) and ψ trained together.

    φ is never updated (use fixed task weights). ``pcgrad=True`` resolves conflicts on the shared encoder.
    """

    def __init__(self, *args, pcgrad: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.pcgrad = pcgrad
        self.conflict_steps = 0  # steps whose PT and FT encoder gradients conflict (PCGrad acts on those)
        self.ft_opt = torch.optim.Adam(self.problem.ft_head.parameters(), lr=self.cfg.ft_head_lr)

    def state_dict(self):
        return {**super().state_dict(), "ft_opt": self.ft_opt.state_dict(), "conflict_steps": self.conflict_steps}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.ft_opt.load_state_dict(state["ft_opt"])
        self.conflict_steps = int(state["conflict_steps"])

    def _one_step(self) -> None:
        p = self.problem
        step = self.step + 1
        faults.reach("pt.step")
        p.encoder.train()
        p.pt_head.train()
        pt_loss = p.pt_loss(self.prepare(self.pt_stream.batch(self.step)))
        ft_batch = self.prepare(next(self.ft_train_stream))
        ft_loss = p.ft_loss(p.ft_head(p.features(ft_batch)), ft_batch)
        check_finite(step, "CoTrain loss", [pt_loss.detach(), ft_loss.detach()])
        enc = list(p.named_encoder_params().values())
        head_pt, head_ft = list(p.pt_head.parameters()), list(p.ft_head.parameters())
        g_pt = torch.autograd.grad(pt_loss, enc + head_pt, materialize_grads=True)
        g_ft = torch.autograd.grad(ft_loss, enc + head_ft, materialize_grads=True)
        n = len(enc)
        self.conflict_steps += gradients_conflict(list(g_pt[:n]), list(g_ft[:n]))
        g_enc = (pcgrad_combine if self.pcgrad else lambda a, b: [x + y for x, y in zip(a, b)])(list(g_pt[:n]), list(g_ft[:n]))
        for t, g in zip(enc + head_pt + head_ft, g_enc + list(g_pt[n:]) + list(g_ft[n:])):
            t.grad = g.detach()
        self.pt_opt.step()
        self.ft_opt.step()
        self.pt_opt.zero_grad(set_to_none=True)
        self.ft_opt.zero_grad(set_to_none=True)
        self.step = step
        record = StepRecord(step=step, epoch=(step - 1) // self.steps_per_epoch, pt_loss=float(pt_loss.detach()), ft_loss=float(ft_loss.detach()))
        for hook in self.hooks:
            hook(record)
        if self.cfg.checkpoint_every and step % self.cfg.checkpoint_every == 0:
            self.save()
