"""Typed config: precedence, provenance, derived values, round trips, schema completeness."""

from __future__ import annotations

import math
import typing
from pathlib import Path

import pytest

from rs.config import DESCRIPTORS, ConfigError, ExperimentConfig, load_config
from rs.config import derived as derived_mod
from rs.config.serialize import from_text, provenance, to_json, to_yaml
from rs.config.tree import is_derived, leaves

REPO = Path(__file__).resolve().parents[1]
DEBUG = REPO / "configs/train/debug.yaml"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def layered(tmp_path: Path) -> Path:
    write(tmp_path / "base.yaml", "train:\n  lr: 0.1\n  epochs: 7\nmodel:\n  width: 24\n")
    return write(tmp_path / "exp.yaml", "extends: base.yaml\ntrain:\n  lr: 0.2\n")


def test_precedence_each_layer_wins_over_the_ones_below(layered: Path):
    lr = lambda cfg: (cfg.train.lr, cfg.sources["train.lr"])  # noqa: E731
    env = {"RS_TRAIN__LR": "0.3"}
    assert lr(load_config(layered, env={})) == (0.2, f"file:{layered}")
    assert lr(load_config(layered, env=env)) == (0.3, "env:RS_TRAIN__LR")
    assert lr(load_config(layered, env=env, tune={"train.lr": 0.4})) == (0.4, "tune")
    cfg = load_config(layered, ["train.lr=0.5"], env=env, tune={"train.lr": 0.4})
    assert lr(cfg) == (0.5, "cli")
    # Untouched leaves keep lower layers' sources.
    assert cfg.train.epochs == 7 and cfg.sources["train.epochs"] == f"file:{layered.parent / 'base.yaml'}"
    assert cfg.sources["train.batch_size"] == "default"
    assert cfg.sources["model.in_channels"] == "derived"


def test_extends_list_applies_in_order_and_nested_env_paths(tmp_path: Path):
    write(tmp_path / "a.yaml", "model:\n  width: 8\n")
    write(tmp_path / "b.yaml", "model:\n  width: 12\n")
    exp = write(tmp_path / "e.yaml", "extends: [a.yaml, b.yaml]\n")
    cfg = load_config(exp, env={"RS_DATA__GENERATE__W0_OVER_D0": "10"})
    assert cfg.model.width == 12
    assert cfg.data.generate.w0_over_d0 == 10.0
    assert cfg.sources["data.generate.w0_over_d0"] == "env:RS_DATA__GENERATE__W0_OVER_D0"


def test_cli_values_are_yaml_scalars():
    cfg = load_config(DEBUG, ["data.fields=[phi]", "train.use_gpu=true", "train.max_steps_per_epoch=null"])
    assert cfg.data.fields == ["phi"] and cfg.train.use_gpu is True
    assert cfg.train.max_steps_per_epoch is None
    assert cfg.model.in_channels == 1 and cfg.model.out_channels == 1


def test_debug_config_resolves_with_run_dir_from_its_name():
    cfg = load_config(DEBUG, env={})
    assert cfg.name == "debug" and cfg.train.run_name == "debug"
    assert cfg.sources["train.run_name"] == "default:config-name"
    assert cfg.run_dir == REPO / "runs" / "debug" or cfg.run_dir.name == "debug"
    assert cfg.run_dir.is_absolute()
    cfg = load_config(DEBUG, ["train.run_name=mine", "train.storage_path=/tmp/x"], env={})
    assert cfg.run_dir == Path("/tmp/x/mine")


def test_descriptors_are_the_seven_dotted_fields():
    cfg = load_config(DEBUG, ["diffusion.noise_schedule=sigmoid", "loss.weight_wavelet_loss=0.5"], env={})
    d = cfg.descriptors()
    assert list(d) == list(DESCRIPTORS) and len(d) == 7
    assert d["diffusion.noise_schedule"] == "sigmoid" and d["loss.weight_wavelet_loss"] == 0.5
    assert d["train.model_family"] == "surrogate" and d["adaptive.enable_adaptive_resolution"] is False


def test_round_trip_yaml_and_json_give_equal_objects():
    cfg = load_config(DEBUG, ["train.lr=0.003", "model.backbone=fno"], env={"RS_TRAIN__EPOCHS": "5"})
    for text in (to_yaml(cfg), to_json(cfg)):
        back = from_text(text)
        assert back == cfg
        assert back.sources == cfg.sources and back.name == cfg.name
        assert provenance(back)["train.epochs"] == {"value": 5, "source": "env:RS_TRAIN__EPOCHS"}


def test_resolved_file_with_tampered_derived_value_is_refused():
    text = to_yaml(load_config(DEBUG, env={})).replace("in_channels: 2", "in_channels: 9")
    with pytest.raises(ConfigError, match=r"model.in_channels = 9 disagrees"):
        from_text(text)


# --- derived values -----------------------------------------------------------------------------


def test_derived_pipeline_shapes_by_hand():
    cfg = load_config(None, ["data.history=3", "data.thermal_input=true", "data.cond_params=[a, b, c]",
                             "diffusion.num_steps=250"], env={})
    assert cfg.data.channels == 2
    assert cfg.model.in_channels == 3 * 2 + 1
    assert cfg.model.out_channels == 2
    assert cfg.model.cond_dim == 4
    assert cfg.diffusion.beta_table_length == 250


def test_derived_phase_field_numerics_by_hand():
    g = "data.generate."
    cfg = load_config(None, [g + "w0_over_d0=10", g + "partition_coefficient=0.5", g + "liquidus_slope=-1",
                             g + "c0=2", g + "gibbs_thomson=2e-7", g + "diffusivity=1e-9",
                             g + "dx_over_w0=1.0", g + "dt_safety=1.0", g + "anisotropy=0.02"], env={})
    gen = cfg.data.generate
    # ΔT0 = |m| c0 (1-k)/k = 1·2·0.5/0.5 = 2 K; d0 = Γ/ΔT0 = 1e-7 m; W0 = 10 d0 = 1e-6 m
    assert gen.freezing_range == pytest.approx(2.0)
    assert gen.capillary_length == pytest.approx(1e-7)
    assert gen.interface_width == pytest.approx(1e-6)
    # λ = 0.8839·10; D̃ = 0.6267·λ = 5.5394; τ0 = D̃ W0²/D = 5.5394e-3 s
    assert gen.coupling == pytest.approx(8.839, rel=1e-4)
    assert gen.diffusivity_nondim == pytest.approx(5.5394, rel=1e-4)
    assert gen.tau0 == pytest.approx(5.5394e-3, rel=1e-4)
    # dt = min(1/(4·5.5394), 0.5/4·(0.94/1.02)²) = min(0.045131, 0.10616)
    assert gen.dt == pytest.approx(0.045131, rel=1e-4)


def test_design_calibration_dt():
    # DESIGN: dt ≲ dx²/(4 D̃) = 0.0144 at W0/d0 = 20, dx = 0.8 W0.
    cfg = load_config(None, ["data.generate.dt_safety=1.0"], env={})
    assert cfg.data.generate.dt == pytest.approx(0.0144, rel=5e-3)


def test_derived_cycle_is_reported():
    reg = {
        "a.x": derived_mod.Derived("a.x", ("a.y",), lambda y: y),
        "a.y": derived_mod.Derived("a.y", ("a.x",), lambda x: x),
    }
    with pytest.raises(ConfigError, match=r"cycle: a\.(x|y) -> a\.(x|y) -> a\.(x|y)"):
        derived_mod.compute(lambda p: 0, reg)


def test_derived_resolves_in_dependency_order_regardless_of_registration():
    reg = {
        "c": derived_mod.Derived("c", ("b",), lambda b: b * 10),
        "b": derived_mod.Derived("b", ("a",), lambda a: a + 1),
    }
    assert derived_mod.compute(lambda p: {"a": 1}[p], reg) == {"b": 2, "c": 20}


def test_schema_derived_fields_match_the_registry():
    schema_derived = {p for p, info in leaves(ExperimentConfig).items() if is_derived(info)}
    assert schema_derived == set(derived_mod.DERIVED)


# --- schema completeness ------------------------------------------------------------------------


def _numeric(annotation) -> bool:
    if typing.get_origin(annotation) in (tuple, list, dict):
        return False  # element bounds live in the element types
    args = typing.get_args(annotation) or (annotation,)
    return any(a in (int, float) for a in args) and annotation is not bool


@pytest.mark.parametrize("path", sorted(leaves(ExperimentConfig)))
def test_every_field_is_documented_and_bounded(path: str):
    info = leaves(ExperimentConfig)[path]
    assert info.description and len(info.description) > 8, f"{path} lacks a doc"
    if _numeric(info.annotation) and not is_derived(info) and not path.endswith("seed"):
        assert any(hasattr(m, a) for m in info.metadata for a in ("ge", "gt", "le", "lt")), path
    if path.endswith("seed"):
        assert any(getattr(m, "ge", None) == 0 for m in info.metadata)


def test_descriptor_fields_exist_in_schema():
    for path in DESCRIPTORS:
        assert path in leaves(ExperimentConfig)


def test_defaults_validate_and_physical_fields_carry_units():
    cfg = load_config(None, env={})
    assert math.isfinite(cfg.data.generate.tau0)
    units = {p: (info.json_schema_extra or {}).get("unit") for p, info in leaves(ExperimentConfig).items()}
    for path in ("data.generate.diffusivity", "data.generate.velocity_range", "data.generate.tau0",
                 "data.generate.gibbs_thomson", "data.generate.gradient_range"):
        assert units[path], f"{path} needs a unit"
