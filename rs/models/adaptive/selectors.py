"""Region selectors: where in a field the model should look harder. Uniform signature
`selector(phi_B1HW, cfg, indicator_B1HW | None) -> Regions`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from rs.config.schema import AdaptiveConfig

Box = tuple[int, int, int, int]  # (y0, x0, height, width)


@dataclass
class Regions:
    weight: torch.Tensor  # (B, 1, H, W), mean 1 per sample: multiplies pointwise losses
    boxes: list[list[Box]]  # per sample: the selector's boxes (quadtree: leaves tiling the domain)
    focus: list[list[Box]]  # per sample: the boxes whose indicator is high, where patches are sampled


def _normalize(w: torch.Tensor) -> torch.Tensor:
    return w / w.mean(dim=(1, 2, 3), keepdim=True).clamp(min=1e-8)


def interface_mask(phi: torch.Tensor, band_cells: float) -> torch.Tensor:
    """Cells within `band_cells` of the diffuse interface (|φ| < 0.9), by max-pool dilation. (B,1,H,W)."""
    core = (phi.abs() < 0.9).float()
    r = max(round(band_cells), 0)
    return F.max_pool2d(core, 2 * r + 1, stride=1, padding=r) if r else core


def none(phi: torch.Tensor, cfg: AdaptiveConfig, indicator: torch.Tensor | None = None) -> Regions:
    """Uniform weights; one box covering the domain."""
    B, _, H, W = phi.shape
    full = [[(0, 0, H, W)] for _ in range(B)]
    return Regions(torch.ones_like(phi), full, full)


def interface_band(phi: torch.Tensor, cfg: AdaptiveConfig, indicator: torch.Tensor | None = None) -> Regions:
    """Weight 1 + 4·band on the diffuse-interface band (normalized to mean 1); boxes bound the band."""
    band = interface_mask(phi, cfg.band_width)
    boxes = []
    for b in range(phi.shape[0]):
        ys, xs = torch.nonzero(band[b, 0], as_tuple=True)
        if ys.numel() == 0:
            boxes.append([(0, 0, phi.shape[2], phi.shape[3])])
        else:
            y0, x0 = int(ys.min()), int(xs.min())
            boxes.append([(y0, x0, int(ys.max()) - y0 + 1, int(xs.max()) - x0 + 1)])
    return Regions(_normalize(1.0 + 4.0 * band), boxes, boxes)


def quadtree(phi: torch.Tensor, cfg: AdaptiveConfig, indicator: torch.Tensor | None = None) -> Regions:
    """QDM-style recursive split: a box splits in four while its indicator (interface band, or a given
    error map) exceeds the threshold and depth allows; leaves' weights grow as 2^depth."""
    B, _, H, W = phi.shape
    ind = interface_mask(phi, cfg.band_width) if indicator is None else indicator
    weight = torch.ones_like(phi)
    all_boxes, all_focus = [], []
    for b in range(B):
        leaves: list[Box] = []
        focus: list[Box] = []
        stack: list[tuple[Box, int]] = [((0, 0, H, W), 0)]
        while stack:
            (y0, x0, h, w), depth = stack.pop()
            score = float(ind[b, 0, y0 : y0 + h, x0 : x0 + w].max()) if h and w else 0.0
            if score > cfg.quadtree_threshold and depth < cfg.quadtree_max_depth and min(h, w) >= 4:
                h2, w2 = h // 2, w // 2
                stack += [((y0, x0, h2, w2), depth + 1), ((y0, x0 + w2, h2, w - w2), depth + 1),
                          ((y0 + h2, x0, h - h2, w2), depth + 1), ((y0 + h2, x0 + w2, h - h2, w - w2), depth + 1)]
            else:
                leaves.append((y0, x0, h, w))
                if score > cfg.quadtree_threshold:
                    focus.append((y0, x0, h, w))
                weight[b, 0, y0 : y0 + h, x0 : x0 + w] = 2.0**depth
        all_boxes.append(sorted(leaves))
        all_focus.append(sorted(focus) or sorted(leaves))
    return Regions(_normalize(weight), all_boxes, all_focus)


REGION_SELECTORS: dict[str, Callable[..., Regions]] = {
    "none": none, "interface_band": interface_band, "quadtree": quadtree,
}


def sample_patches(
    tensors: list[torch.Tensor], regions: Regions, size: int, generator: torch.Generator | None = None
) -> tuple[list[torch.Tensor], list[tuple[int, int]]]:
    """Crop the same `size`×`size` patch, centred on a randomly chosen focus box, from every tensor
    (B, …, H, W); patches are clamped inside the domain. Returns the patches and their (y0, x0)."""
    H, W = tensors[0].shape[-2:]
    ph, pw = min(size, H), min(size, W)
    origins = []
    for boxes in regions.focus:
        y0, x0, h, w = boxes[int(torch.randint(len(boxes), (1,), generator=generator))]
        cy, cx = y0 + h // 2, x0 + w // 2
        origins.append((min(max(cy - ph // 2, 0), H - ph), min(max(cx - pw // 2, 0), W - pw)))
    out = [torch.stack([t[i, ..., y : y + ph, x : x + pw] for i, (y, x) in enumerate(origins)]) for t in tensors]
    return out, origins
