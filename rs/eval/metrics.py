"""Rollout metrics as pure functions of (prediction, truth) arrays shaped (..., H, W) per field.

Generic: rel-L2, VRMSE (The Well: RMSE over the field's spatial standard deviation), MAE. Phase-field:
solid fraction (phi > 0), solute mass (mean c) drift, front (tip) position along the growth axis x.
Ensembles: spread-skill ratio and CRPS. Every function reduces the last two axes only.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-7


def rel_l2(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """‖pred − true‖₂ / ‖true‖₂ over the grid."""
    num = np.sqrt(((pred - true) ** 2).sum(axis=(-2, -1)))
    return num / (np.sqrt((true**2).sum(axis=(-2, -1))) + EPS)


def vrmse(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Variance-scaled RMSE, The Well (Ohana et al. 2024): sqrt(mean((p − t)²) / (var(t) + eps))."""
    mse = ((pred - true) ** 2).mean(axis=(-2, -1))
    return np.sqrt(mse / (true.var(axis=(-2, -1)) + EPS))


def mae(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    return np.abs(pred - true).mean(axis=(-2, -1))


def solid_fraction(phi: np.ndarray) -> np.ndarray:
    return (phi > 0).mean(axis=(-2, -1))


def tip_position(phi: np.ndarray) -> np.ndarray:
    """Furthest solid column along x (cells; the thermal gradient and growth point along +x), −1 if none."""
    solid_cols = (phi > 0).any(axis=-2)  # (..., W)
    W = solid_cols.shape[-1]
    last = W - 1 - np.argmax(solid_cols[..., ::-1], axis=-1)
    return np.where(solid_cols.any(axis=-1), last, -1).astype(np.float64)


def solute_drift(c_pred: np.ndarray, c_true: np.ndarray) -> np.ndarray:
    """Relative error of the mean concentration (solute mass per cell)."""
    m_true = c_true.mean(axis=(-2, -1))
    return (c_pred.mean(axis=(-2, -1)) - m_true) / (np.abs(m_true) + EPS)


def spread_skill(ens: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Ensemble spread over the RMSE of the ensemble mean, with the (E+1)/E finite-ensemble factor
    (Fortin et al. 2014); ≈ 1 for a calibrated ensemble. `ens`: (E, ..., H, W)."""
    E = ens.shape[0]
    spread = np.sqrt(ens.var(axis=0, ddof=1).mean(axis=(-2, -1))) if E > 1 else np.zeros(true.shape[:-2])
    skill = np.sqrt(((ens.mean(axis=0) - true) ** 2).mean(axis=(-2, -1)))
    return np.sqrt((E + 1) / E) * spread / (skill + EPS)


def crps(ens: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Ensemble CRPS, E|X − y| − ½E|X − X'| (Gneiting & Raftery 2007), averaged over the grid."""
    term1 = np.abs(ens - true[None]).mean(axis=0)
    term2 = np.abs(ens[:, None] - ens[None, :]).mean(axis=(0, 1))
    return (term1 - 0.5 * term2).mean(axis=(-2, -1))
