"""`rs data inspect`: what a file holds, and a montage of φ and c over time."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rs.data import layouts
from rs.data.meta import SimulationMeta, h5open


def describe(path: str | Path, layout: str = "auto") -> str:
    kind = layouts.sniff(path) if layout == "auto" else layout
    sims = layouts.scan(path, kind)
    lines = [f"{path}: layout {kind}, {len(sims)} simulations"]
    with h5open(path) as f:
        for key, value in f.attrs.items():
            lines.append(f"  @{key} = {_short(value)}")
    for m in sims:
        frames = layouts.read_frames(m, 0, m.n_frames) if m.n_frames else np.zeros((0, m.channels, 1, 1))
        ranges = ", ".join(
            f"{name} [{frames[:, c].min():.4g}, {frames[:, c].max():.4g}]" if frames.size else f"{name} (empty)"
            for c, name in enumerate(m.fields)
        )
        norm = "z-scored" if m.normalized else "physical"
        lines.append(f"  {m.key}: (T, C, H, W) = {m.shape}, {norm}; {ranges}")
        shown = {k: v for k, v in m.params.items() if k in _KEY_PARAMS}
        if shown:
            lines.append("    " + ", ".join(f"{k}={v:.4g}" for k, v in shown.items()))
    return "\n".join(lines)


_KEY_PARAMS = ("pulling_speed", "thermal_gradient_raw", "velocity_over_critical", "dx", "tau0", "effective_dt")


def _short(value: object) -> str:
    arr = np.asarray(value)
    if arr.dtype.kind in "SO":
        arr = np.array([v.decode() if isinstance(v, bytes) else v for v in arr.ravel()])
    text = str(arr.tolist() if arr.ndim else arr.item() if arr.dtype.kind != "U" else str(arr))
    return text if len(text) < 120 else text[:117] + "..."


def montage(path: str | Path, out: str | Path, layout: str = "auto", sim: int = 0, columns: int = 5) -> Path:
    """PNG: one row per field, `columns` frames evenly spread over the simulation's time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sims = layouts.scan(path, layout)
    m: SimulationMeta = sims[min(sim, len(sims) - 1)]
    times = np.unique(np.linspace(0, m.n_frames - 1, columns).round().astype(int))
    frames = np.stack([layouts.read_frames(m, t, t + 1)[0] for t in times])
    fig, axes = plt.subplots(m.channels, len(times), figsize=(2.2 * len(times), 2.2 * m.channels), squeeze=False)
    for c, name in enumerate(m.fields):
        lo, hi = np.percentile(frames[:, c], [1, 99])
        for j, t in enumerate(times):
            ax = axes[c, j]
            im = ax.imshow(frames[j, c], origin="lower", cmap="viridis" if c else "RdBu_r", vmin=lo, vmax=hi)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_title(f"frame {t}")
            if j == 0:
                ax.set_ylabel(name)
        fig.colorbar(im, ax=axes[c, :].tolist(), shrink=0.8)
    v = m.params.get("velocity_over_critical")
    fig.suptitle(f"{m.name}" + (f"  V/Vc = {v:.2f}" if v is not None else ""))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp.png")
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    tmp.replace(out)
    return out
