"""ECG encoder shapes, NT-Xent against a loop reference, and the default augmentations."""

import math

import pytest
import torch

from metapt.ecg.model import ProjectionHead, ResNet1d
from metapt.ecg.simclr import default_view, gaussian_noise, random_zero_crop
from metapt.simclr import nt_xent


def test_paper_encoder_shapes_and_size():
    enc = ResNet1d()
    x = torch.randn(2, 1024, 12)
    h = enc(x)
    assert h.shape == (2, 256) and enc.out_dim == 256
    assert ProjectionHead(256)(h).shape == (2, 128)
    small = ResNet1d(widths=(16, 32), strides=(1, 2), blocks=1, stem_stride=4)
    assert small(x).shape == (2, 32)
    with pytest.raises(ValueError, match="same length"):
        ResNet1d(widths=(8, 16), strides=(1,))


def test_nt_xent_matches_a_loop_reference():
    torch.manual_seed(0)
    z1, z2 = torch.randn(5, 8, dtype=torch.float64), torch.randn(5, 8, dtype=torch.float64)
    tau = 0.5
    z = torch.cat([z1, z2])
    z = z / z.norm(dim=1, keepdim=True)
    n, total = len(z1), 0.0
    for i in range(2 * n):
        pos = (i + n) % (2 * n)
        denom = sum(math.exp(float(z[i] @ z[k]) / tau) for k in range(2 * n) if k != i)
        total += -(float(z[i] @ z[pos]) / tau - math.log(denom))
    assert float(nt_xent(z1, z2, tau)) == pytest.approx(total / (2 * n), rel=1e-10)
    assert nt_xent(z1, z1 + 1e-3 * torch.randn_like(z1)) < nt_xent(z1, z2)  # aligned pairs score better


def test_zero_crop_zeroes_one_contiguous_segment_per_lead():
    torch.manual_seed(1)
    x = torch.ones(64, 100, 12)
    y = random_zero_crop(x)
    zero = (y == 0)
    assert zero.sum(dim=1).max() <= 50
    runs = (zero[:, 1:].int() - zero[:, :-1].int()).clamp(min=0).sum(dim=1) + zero[:, 0].int()
    assert runs.max() <= 1  # at most one zero segment per example and lead
    assert zero.any()


def test_noise_scale_is_bounded_by_lead_std():
    torch.manual_seed(2)
    x = torch.randn(256, 1000, 12) * torch.linspace(0.1, 2.0, 12)
    d = gaussian_noise(x) - x
    ratio = d.std(dim=1) / x.std(dim=1)
    assert ratio.max() <= 0.11 and ratio.mean() == pytest.approx(0.05, abs=0.01)
    assert default_view(x).shape == x.shape
