"""Learned ECG time warp: shape, identity at s = 0, monotone grid, gradients, determinism, lr split."""

import torch

from metapt.ecg.augment_learned import WarpAugmentation, integrate_velocity


def _x(b=4, t=256, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    tt = torch.linspace(0, 8 * torch.pi, t, dtype=dtype)
    return torch.sin(tt)[None, :, None] * torch.randn(b, 1, 12, generator=g, dtype=dtype) + \
        0.1 * torch.randn(b, t, 12, generator=g, dtype=dtype)


def test_shape_preserved_for_several_lengths():
    torch.manual_seed(0)
    aug = WarpAugmentation()
    for t in (64, 100, 1024):
        x = _x(3, t)
        assert aug(x).shape == x.shape


def test_zero_scale_is_identity():
    torch.manual_seed(0)
    aug = WarpAugmentation(s_init=0.0)
    x = _x()
    torch.testing.assert_close(aug(x), x, atol=1e-5, rtol=0)


def test_grid_strictly_monotone_even_for_large_magnitudes():
    torch.manual_seed(0)
    x = _x(8, 1024)
    for s in (4.0, 20.0, 1e3):
        for m_logit in (0.0, 20.0):  # m ≈ 1 and m → 2
            aug = WarpAugmentation(s_init=s)
            torch.nn.init.constant_(aug.net[-1].bias, m_logit)
            pos = aug.sample_grid(x).detach()
            assert torch.isfinite(pos).all()
            assert (pos[:, 1:] - pos[:, :-1]).min() > 0, (s, m_logit)
    # the integrator alone: a steep raw field stays non-decreasing (extra squaring steps); the
    # capped field (as in forward) stays strictly increasing
    v = 50 * torch.randn(4, 256, dtype=torch.float64)
    u = integrate_velocity(v)
    assert ((u[:, 1:] + 1) - u[:, :-1]).min() > -1e-9
    u = integrate_velocity(4 * torch.tanh(v / 4))
    assert ((u[:, 1:] + 1) - u[:, :-1]).min() > 1e-6


def test_default_warp_is_visible_but_moderate():
    torch.manual_seed(0)
    aug = WarpAugmentation()
    pos = aug.sample_grid(_x(16, 1024)).detach()
    d = (pos - torch.arange(1024.0)).abs().amax(1)
    assert 3 < d.median() < 50  # samples, out of 1024
    assert abs(aug.summary()["max_disp"] - d.max().item()) < 1e-3


def test_gradients_finite_and_nonzero():
    torch.manual_seed(0)
    aug = WarpAugmentation()
    x = _x()
    w = torch.randn_like(x)
    (aug(x) * w).sum().backward()
    for name, p in aug.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_deterministic_under_seed():
    aug = WarpAugmentation()
    x = _x()
    torch.manual_seed(123)
    a = aug(x)
    torch.manual_seed(123)
    b = aug(x)
    c = aug(x)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.allclose(b, c)


def test_param_groups_split_lr():
    aug = WarpAugmentation(scalar_lr=1.0)
    groups = aug.param_groups(1e-4)
    assert [g["lr"] for g in groups] == [1e-4, 1.0]
    assert groups[1]["params"] == [aug.s]
    assert len(groups[0]["params"]) == len(list(aug.net.parameters()))
    n = sum(len(g["params"]) for g in groups)
    assert n == len(list(aug.parameters()))
    torch.optim.Adam(groups)  # usable as-is


def test_summary_and_trajectory():
    torch.manual_seed(0)
    aug = WarpAugmentation()
    aug(_x())
    s = aug.summary()
    assert s["warp_std"] == 1600.0 and 0 < s["m_mean"] < 2 and s["m_std"] >= 0
    v = aug.trajectory_vector()
    assert v.shape == (2,) and v[0] == 1600.0 and v[1] == s["m_mean"]


def test_finite_difference_ds_float64():
    aug = WarpAugmentation(s_init=4.0).double()
    x = _x(2, 64, dtype=torch.float64)
    w = torch.randn(x.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)

    def loss():
        torch.manual_seed(7)  # same noise every evaluation
        return (aug(x) * w).sum()

    aug.zero_grad()
    loss().backward()
    analytic = aug.s.grad.item()
    eps = 1e-6
    with torch.no_grad():
        s0 = aug.s.item()
        aug.s.fill_(s0 + eps)
        lp = loss().item()
        aug.s.fill_(s0 - eps)
        lm = loss().item()
        aug.s.fill_(s0)
    numeric = (lp - lm) / (2 * eps)
    assert abs(analytic) > 1e-8
    assert abs(analytic - numeric) <= 1e-4 * abs(numeric) + 1e-10, (analytic, numeric)
