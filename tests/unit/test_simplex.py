"""Task weights on the simplex with exponentiated gradient (issue 13's estimator): float64 closed forms,
the loop through the engine, and resume."""

import torch

from metapt.engine import ExponentiatedGradient, SimplexTaskWeights
from tests.unit.test_metaloop import assert_bit_identical, final_state, make_trainer
from tests.unit.toys import MLPMultitask

F64 = torch.float64


def test_one_step_is_the_normalised_multiplicative_update():
    p = torch.nn.Parameter(torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=F64))
    g = torch.tensor([0.5, -2.0, 1.0, 0.0], dtype=F64)
    p.grad = g.clone()
    ExponentiatedGradient([p], lr=0.3).step()
    expect = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=F64) * torch.exp(-0.3 * g / 2.0)
    torch.testing.assert_close(p.detach(), expect / expect.sum(), rtol=0, atol=1e-15)
    # it is mirror descent in the softmax's coordinates: λ ← λ − lr·ĝ, then p = softmax(λ)
    lam = torch.log(torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=F64)) - 0.3 * g / 2.0
    torch.testing.assert_close(p.detach(), torch.softmax(lam, 0), rtol=0, atol=1e-15)


def test_k_steps_on_a_linear_objective_have_the_closed_form_and_stay_on_the_simplex():
    """min ⟨c, w⟩ over the simplex: with a constant gradient c, k normalised steps give p_k ∝ p₀·exp(−k·lr·c/max|c|)."""
    torch.manual_seed(0)
    w = SimplexTaskWeights(6).double()
    c = torch.randn(6, dtype=F64)
    opt = w.make_optimizer(0.2, 1e-8)
    for _ in range(25):
        opt.zero_grad()
        (w.weights() @ c).backward()
        opt.step()
    expect = torch.softmax(-25 * 0.2 * 6 * c / (6 * c).abs().max(), 0)  # ∂⟨c, T·p⟩/∂p = T·c
    torch.testing.assert_close(w.probs.detach(), expect, rtol=1e-12, atol=1e-15)
    assert abs(w.weights().sum().item() - 6) < 1e-12
    assert (w.probs > 0).all() and w.probs.argmax() == c.argmin()  # the mass moves to the cheapest task


def test_the_hypergradient_reaches_p_as_the_weights_gradient_scaled_by_T():
    w = SimplexTaskWeights(4).double()
    losses = torch.tensor([1.0, 2.0, 0.5, 3.0], dtype=F64)
    (g,) = torch.autograd.grad(w(losses), w.probs)
    torch.testing.assert_close(g, 4 * losses / 4, rtol=0, atol=1e-15)  # mean_t w_t ℓ_t with w = 4p


def simplex_problem():
    problem = MLPMultitask(seed=0)
    problem.meta = SimplexTaskWeights(7)
    return problem


def test_meta_pt_on_the_simplex_moves_weight_between_tasks_and_resumes_bit_identically(tmp_path):
    trainer = make_trainer(problem=simplex_problem(), meta_lr=0.1).run()
    w = trainer.problem.meta.weights().detach()
    assert trainer.hyper_steps > 0 and not torch.allclose(w, torch.ones(7))
    assert abs(float(w.sum()) - 7) < 1e-5 and (w > 0).all()  # the total weight is the uniform baseline's
    assert isinstance(trainer.meta_opt, ExponentiatedGradient)

    class Killed(Exception):
        pass

    def kill(record):
        if record.step == 17:
            raise Killed

    try:
        make_trainer(tmp_path, problem=simplex_problem(), meta_lr=0.1, hooks=[kill], checkpoint_every=4).run()
    except Killed:
        pass
    resumed = make_trainer(tmp_path, problem=simplex_problem(), meta_lr=0.1, checkpoint_every=4).run()
    assert_bit_identical(final_state(resumed), final_state(trainer))
