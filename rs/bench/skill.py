"""`rs bench skill`: generate the benchmark dataset → train the surrogate and the diffusion model → roll both
out on the held-out test simulations; VRMSE / rel-L2 / solid-fraction error beside persistence.

Persistence (the last frame, repeated) is the baseline every forecast must beat: its error grows with the
horizon at the rate the physics moves."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

STEPS = (1, 20, 50)
FIELDS = ("phi", "c")
MODELS = ("surrogate", "diffusion")
# The targets (docs/skill.md).
TARGETS = {"surrogate_vrmse_1": 0.02, "surrogate_over_persistence_1": 0.1, "surrogate_vrmse_20": 0.10}


def run(data_config: Path, configs: dict[str, Path], work: Path, overrides: list[str],
        horizon: int = max(STEPS)) -> dict[str, Any]:
    from rs.bench.common import ensure_data, machine
    from rs.config import load_config
    from rs.eval.run import evaluate
    from rs.train.api import fit

    root = load_config(configs["surrogate"], overrides).data.root
    out: dict[str, Any] = {"machine": machine(), "data": str(root), "horizon": horizon,
                           "generate_s": round(ensure_data(data_config, root, overrides), 1)}
    steps = [s for s in STEPS if s <= horizon]
    evals: dict[str, dict[str, Any]] = {}
    for model, config in configs.items():
        t0 = time.perf_counter()
        result = fit(config, [*overrides, f"train.storage_path={work}", f"train.run_name=bench-{model}"])
        out[f"{model}_train_s"] = round(time.perf_counter() - t0, 1)
        out[f"{model}_epochs"] = int(result.metrics.get("epoch", -1)) + 1
        t0 = time.perf_counter()
        ev = evaluate(result.checkpoint or result.run_dir,
                      [f"eval.horizon={horizon}", f"eval.plot_steps={list(steps)}"], split="test")
        out[f"{model}_eval_s"] = round(time.perf_counter() - t0, 1)
        evals[model] = ev.summary
        out[f"{model}_plots"] = str(ev.out_dir / "plots")
    for model, summary in evals.items():
        _copy(out, model, summary, "", steps)
    # Persistence is the same for both models (the test frames themselves): take the surrogate's.
    _copy(out, "persistence", evals["surrogate"], "persistence_", steps)
    out["surrogate_over_persistence_1"] = _ratio(out.get("surrogate_vrmse_1"), out.get("persistence_vrmse_1"))
    last = steps[-1]
    out["targets"] = {
        "surrogate_vrmse_1 <= 0.02": _le(out.get("surrogate_vrmse_1"), TARGETS["surrogate_vrmse_1"]),
        "surrogate_vrmse_1 <= 0.1 x persistence": _le(out["surrogate_over_persistence_1"], 0.1),
        "surrogate_vrmse_20 <= 0.10": _le(out.get("surrogate_vrmse_20"), TARGETS["surrogate_vrmse_20"]),
        f"diffusion_vrmse_{last} < surrogate_vrmse_{last}": _le(out.get(f"diffusion_vrmse_{last}"),
                                                                out.get(f"surrogate_vrmse_{last}")),
    }
    return out


def _copy(out: dict[str, Any], name: str, summary: dict[str, Any], prefix: str, steps: list[int]) -> None:
    """Eval summary keys (`[persistence_]<metric>[_<field>]_<step>`) as `<name>_<metric>[_<field>]_<step>`."""
    out[f"{name}_one_step_vrmse"] = summary.get(f"{prefix}one_step_vrmse_1")  # from every frame
    for field in FIELDS:
        out[f"{name}_one_step_vrmse_{field}"] = summary.get(f"{prefix}one_step_vrmse_{field}_1")
    for step in steps:
        out[f"{name}_solid_fraction_error_{step}"] = summary.get(f"{prefix}solid_fraction_error_phi_{step}")
        if not prefix:  # the exact solver run on from the model's step 1 (persistence has none)
            out[f"{name}_continuation_vrmse_{step}"] = summary.get(f"continuation_vrmse_{step}")
        for metric in ("vrmse", "rel_l2"):
            out[f"{name}_{metric}_{step}"] = summary.get(f"{prefix}{metric}_{step}")
            for field in FIELDS:
                out[f"{name}_{metric}_{field}_{step}"] = summary.get(f"{prefix}{metric}_{field}_{step}")


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _le(a: float | None, b: float | None) -> bool | None:
    return None if a is None or b is None else bool(a <= b)


def table(r: dict[str, Any]) -> str:
    def cell(v: Any) -> str:
        return "—" if v is None else f"{v:.4g}"

    steps = [s for s in STEPS if s <= r["horizon"]]
    lines = [f"machine: {r['machine']}; test split of {r['data']}",
             f"generate {r['generate_s']} s; train surrogate {r['surrogate_train_s']} s "
             f"({r['surrogate_epochs']} epochs), diffusion {r['diffusion_train_s']} s ({r['diffusion_epochs']} epochs)",
             f"{'metric':<24}{'step':>5}{'surrogate':>11}{'diffusion':>11}{'persistence':>12}"]
    rows = [("vrmse (mean of fields)", "vrmse"), ("rel_l2 (mean of fields)", "rel_l2"),
            *[(f"vrmse {f}", f"vrmse_{f}") for f in FIELDS], *[(f"rel_l2 {f}", f"rel_l2_{f}") for f in FIELDS],
            ("solid fraction error", "solid_fraction_error"),
            ("exact solver from step 1", "continuation_vrmse")]
    for label, key in rows:
        for s in steps:
            lines.append(f"{label:<24}{s:>5}{cell(r.get(f'surrogate_{key}_{s}')):>11}"
                         f"{cell(r.get(f'diffusion_{key}_{s}')):>11}{cell(r.get(f'persistence_{key}_{s}')):>12}")
    for label, key in [("1 step from every frame", "one_step_vrmse"),
                       *[(f"  {f}", f"one_step_vrmse_{f}") for f in FIELDS]]:
        lines.append(f"{label:<24}{'':>5}{cell(r.get(f'surrogate_{key}')):>11}{cell(r.get(f'diffusion_{key}')):>11}"
                     f"{cell(r.get(f'persistence_{key}')):>12}")
    lines.append("targets: " + "; ".join(f"{k}: {'met' if v else ('not met' if v is False else 'n/a')}"
                                         for k, v in r["targets"].items()))
    return "\n".join(lines)
