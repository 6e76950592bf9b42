"""Multi-level 2-D discrete wavelet transform in torch (periodization mode, PyWavelets' filters), so the
wavelet loss is differentiable and its coefficients equal `pywt.wavedec2(..., mode="periodization")`."""

from __future__ import annotations

from functools import cache

import pywt
import torch
import torch.nn.functional as F


@cache
def _filters(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    w = pywt.Wavelet(name)
    return tuple(w.dec_lo), tuple(w.dec_hi)


def _dwt_last_axis(x: torch.Tensor, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """One periodized analysis step along the last axis: a[k] = Σ_j lo[j]·x[(2k + L/2 − j) mod N]."""
    lo, hi = _filters(name)
    L = len(lo)
    shape = x.shape
    flat = x.reshape(-1, 1, shape[-1])
    if shape[-1] % 2:
        flat = torch.cat([flat, flat[..., -1:]], dim=-1)  # odd length: repeat the last sample, like pywt
    flat = F.pad(flat, (L // 2 - 1, L // 2), mode="circular") if L > 2 else flat
    w = torch.tensor([lo[::-1], hi[::-1]], dtype=x.dtype, device=x.device).unsqueeze(1)  # (2, 1, L)
    out = F.conv1d(flat, w, stride=2)
    a, d = out[:, 0], out[:, 1]
    new = (*shape[:-1], a.shape[-1])
    return a.reshape(new), d.reshape(new)


def dwt2(x: torch.Tensor, name: str = "haar") -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """One level over the last two axes: (cA, (cH, cV, cD)) in PyWavelets' order."""
    lo_w, hi_w = _dwt_last_axis(x, name)
    ll, hl = _dwt_last_axis(lo_w.transpose(-1, -2), name)
    lh, hh = _dwt_last_axis(hi_w.transpose(-1, -2), name)
    t = lambda z: z.transpose(-1, -2)  # noqa: E731
    return t(ll), (t(hl), t(lh), t(hh))


def wavedec2(x: torch.Tensor, name: str = "haar", levels: int = 2) -> list:
    """[cA_n, (cH_n, cV_n, cD_n), …, (cH_1, cV_1, cD_1)] like `pywt.wavedec2`."""
    details = []
    a = x
    for _ in range(levels):
        if min(a.shape[-2:]) < 2:
            break
        a, d = dwt2(a, name)
        details.append(d)
    return [a, *reversed(details)]
