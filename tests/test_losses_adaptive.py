"""Losses (rel-L2, wavelet vs PyWavelets, interface weights) and adaptive region selectors."""

from __future__ import annotations

import numpy as np
import pytest
import pywt
import torch

from rs.config import load_config
from rs.config.schema import AdaptiveConfig
from rs.models.adaptive import REGION_SELECTORS, sample_patches
from rs.models.adaptive.selectors import interface_mask
from rs.models.losses import build_loss, interface_weight, mse, rel_l2, wavelet_loss
from rs.models.wavelets import wavedec2


def test_rel_l2_definition():
    target = torch.stack([torch.full((2, 4, 4), 2.0), torch.full((2, 4, 4), 1.0)])
    pred = target.clone()
    pred[0] += 0.2  # ‖Δ‖/‖t‖ = 0.1 for sample 0, 0 for sample 1
    assert float(rel_l2(pred, target)) == pytest.approx(0.05)
    assert float(mse(pred, target)) == pytest.approx(0.02)


@pytest.mark.filterwarnings("ignore:Level value")  # pywt warns that db4 at level 2 sees the boundary
@pytest.mark.parametrize("name", ["haar", "db2", "db4"])
@pytest.mark.parametrize("hw", [(16, 24), (15, 21)])
def test_wavelet_coefficients_match_pywavelets(name, hw):
    x = np.random.default_rng(0).normal(size=(2, 3, *hw))
    ref = pywt.wavedec2(x, name, mode="periodization", level=2, axes=(-2, -1))
    got = wavedec2(torch.from_numpy(x), name, 2)
    np.testing.assert_allclose(got[0].numpy(), ref[0], atol=1e-12)
    for r_level, g_level in zip(ref[1:], got[1:], strict=True):
        for r, g in zip(r_level, g_level, strict=True):
            np.testing.assert_allclose(g.numpy(), r, atol=1e-12)


def test_wavelet_loss_zero_iff_equal_and_differentiable():
    a = torch.randn(2, 2, 16, 16, requires_grad=True)
    assert float(wavelet_loss(a, a.detach().clone()).detach()) == 0.0
    b = a.detach().clone()
    b[0, 0, 3, 3] += 1e-3
    loss = wavelet_loss(a, b, "db2", 3)
    assert float(loss.detach()) > 0
    loss.backward()
    assert torch.isfinite(a.grad).all() and float(a.grad.abs().sum()) > 0


def _front(B=2, H=32, W=32):
    x = torch.arange(W).float()
    return -torch.tanh((x - 12.0) / 1.4).expand(B, 1, H, W).clone()


def test_interface_weight_peaks_on_the_interface():
    w = interface_weight(_front(), 4.0)
    assert w.shape == (2, 1, 32, 32)
    assert float(w[0, 0, 5, 12]) > 4.5 and float(w[0, 0, 5, 30]) == pytest.approx(1.0, abs=1e-3)


def test_composite_loss_from_config():
    cfg = load_config(None, ["loss.weight_wavelet_loss=0.5", "loss.weight_interface=2.0"], env={}).loss
    loss = build_loss(cfg, phi_channel=0)
    target = torch.cat([_front(), _front() * 0.5], dim=1)
    value, parts = loss(target + 0.1, target, None)
    assert set(parts) == {"mse", "wavelet"} and float(value) > parts["mse"]
    assert float(loss(target, target, None)[0]) == 0.0
    unrolled, _ = loss(torch.stack([target + 0.1] * 3, 1), torch.stack([target] * 3, 1), None)  # (B, S, C, H, W)
    torch.testing.assert_close(unrolled, value)


@pytest.mark.parametrize("name", sorted(REGION_SELECTORS))
def test_selectors_give_mean_one_weights_and_boxes_inside(name):
    phi = _front()
    r = REGION_SELECTORS[name](phi, AdaptiveConfig())
    assert r.weight.shape == phi.shape
    torch.testing.assert_close(r.weight.mean(dim=(1, 2, 3)), torch.ones(2))
    for boxes in r.boxes:
        for y0, x0, h, w in boxes:
            assert y0 >= 0 and x0 >= 0 and y0 + h <= 32 and x0 + w <= 32 and h > 0 and w > 0


def test_quadtree_boxes_tile_the_domain_and_cover_the_interface():
    phi = _front(B=1)
    cfg = AdaptiveConfig(quadtree_max_depth=3, band_width=1.0)
    r = REGION_SELECTORS["quadtree"](phi, cfg)
    cover = torch.zeros(32, 32)
    for y0, x0, h, w in r.boxes[0]:
        cover[y0 : y0 + h, x0 : x0 + w] += 1
    assert bool((cover == 1).all()), "leaves must tile the domain exactly once"
    band = interface_mask(phi, cfg.band_width)[0, 0].bool()
    finest = min(h * w for _, _, h, w in r.boxes[0])
    fine = torch.zeros(32, 32, dtype=torch.bool)
    for y0, x0, h, w in r.focus[0]:
        assert h * w == finest, "focus boxes are fully refined"
        fine[y0 : y0 + h, x0 : x0 + w] = True
    assert bool(fine[band].all()), "every interface cell lies in a finest focus box"
    assert float(fine.float().mean()) < 0.5, "refinement stays local to the interface"
    assert float(r.weight[0, 0, 5, 12]) > float(r.weight[0, 0, 5, 30])


def test_patches_sampled_at_refined_regions():
    phi = _front(B=2)
    r = REGION_SELECTORS["quadtree"](phi, AdaptiveConfig(quadtree_max_depth=3))
    other = torch.randn(2, 3, 32, 32)
    (p_phi, p_other), origins = sample_patches([phi, other], r, 8, torch.Generator().manual_seed(0))
    assert p_phi.shape == (2, 1, 8, 8) and p_other.shape == (2, 3, 8, 8)
    for i, (y, x) in enumerate(origins):
        torch.testing.assert_close(p_other[i], other[i, :, y : y + 8, x : x + 8])
        assert float(p_phi[i].abs().min()) < 0.9  # the patch holds interface
