"""The Ray Data source: samples equal the frames read with h5py, splits stay apart, and two Ray Train
workers see every train sample exactly once per epoch in an order that is new each epoch and repeats
with the same seed."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from rs.config import load_config
from rs.data import synthetic
from rs.data.meta import DataError
from rs.data.source import ORDER_STRIDE, build_split, iterate, rebatch

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    r = tmp_path_factory.mktemp("data")
    synthetic.write_layout_a(r / "train.h5", n_sims=4, T=10, H=16, W=16, seed=0)
    synthetic.write_layout_a(r / "val.h5", n_sims=1, T=10, H=16, W=16, seed=10)
    return r


def cfg_for(root: Path, *sets: str):
    return load_config(REPO / "configs/train/debug.yaml",
                       [f"data.root={root}", "data.read_block_frames=4", "data.cond_params=[pulling_speed]", *sets],
                       env={})


@pytest.mark.parametrize("drop_last", [False, True])
def test_rebatch_cuts_blocks_into_batches_in_order(drop_last: bool):
    """Batches cut from whole blocks of any sizes (empty ones too) hold every row once, in order, with
    `batch_size` rows each but the last; a batch that spans blocks joins every column alike."""
    rng = np.random.default_rng(0)
    for _ in range(300):
        sizes = rng.integers(0, 20, size=rng.integers(0, 7))
        batch_size, rows = int(rng.integers(1, 10)), int(sizes.sum())
        edges = np.concatenate([[0], np.cumsum(sizes)])
        blocks = [{"order": np.arange(a, b), "x": np.arange(a, b) * 2.0} for a, b in itertools.pairwise(edges)]
        out = list(rebatch(iter(blocks), batch_size, drop_last))
        kept = rows // batch_size * batch_size if drop_last else rows
        got = np.concatenate([b["order"] for b in out]) if out else np.zeros(0, int)
        assert got.tolist() == list(range(kept))
        assert len(out) == (rows // batch_size if drop_last else -(-rows // batch_size))
        assert all(len(b["order"]) == batch_size for b in out[: -1 if not drop_last else None])
        assert all(np.array_equal(b["x"], b["order"] * 2.0) for b in out)


def collect(ds, batch_size=5):
    out = []
    for b in iterate(ds, batch_size):
        out.append(b)
    return out


def test_samples_equal_normalized_h5py_frames(root, ray_session):
    cfg = cfg_for(root, "data.history=2", "data.stride=2")
    tr = build_split(cfg, "train")
    assert tr.samples == 4 * (10 - (1 + 2))
    with h5py.File(root / "train.h5") as f:
        mean, std = f.attrs["channel_mean"][:, None, None], f.attrs["channel_std"][:, None, None]
        raw = {k: f[k]["images"][()] for k in f}
        speeds = {k: f[k].attrs["pulling_speed"] for k in f}
    batches = collect(tr.datasets["train"])
    n = 0
    for b in batches:
        assert b.input.shape[1:] == (4, 16, 16) and b.target.shape[1:] == (2, 16, 16) and b.cond.shape[1:] == (2,)
        for i in range(len(b)):
            sim, t = str(b.meta["sim"][i]), int(b.meta["frame"][i])
            z = (raw[sim] - mean) / std
            np.testing.assert_allclose(b.input[i].numpy(), np.concatenate([z[t - 1], z[t]]), atol=1e-5)
            np.testing.assert_allclose(b.target[i].numpy(), z[t + 2], atol=1e-5)
            assert float(b.cond[i, 1]) == pytest.approx(t / 9)  # time of the last input frame
            n += 1
    assert n == tr.samples
    v = np.array(list(speeds.values()))
    expect = (speeds["sim_0002"] - v.mean()) / v.std()
    got = [float(b.cond[i, 0]) for b in batches for i in range(len(b)) if b.meta["sim"][i] == "sim_0002"]
    assert got and np.allclose(got, expect, atol=1e-5)


def test_block_and_chunk_memory_is_bounded_by_read_block_mb(root, ray_session):
    """A sample's bytes decide how many fit in `data.read_block_mb`: chunks stay within it and Ray Data
    blocks within twice it (a block closes at the first chunk that reaches it; a 512² grid would otherwise
    make 256-row blocks of GBs), and every sample still arrives once."""
    from rs.data import layouts
    from rs.data.samples import SampleSpec, build_index

    row = 4 * 16 * 16 * 2 * (2 + 1)  # float32, 16², C=2, history 2 + target 1
    spec = SampleSpec.from_config(cfg_for(root, "data.history=2").data)
    chunks = build_index(layouts.scan(root / "train.h5"), spec, 64, 3 * row)
    assert max(c.rows for c in chunks) == 3 and sum(c.rows for c in chunks) == 4 * 8
    small = build_split(cfg_for(root, "data.history=2", f"data.read_block_mb={3 * row / 2**20}"), "train")
    blocks = list(small.datasets["train"].iter_batches(batch_size=None, batch_format="numpy"))
    assert 3 <= max(len(b["order"]) for b in blocks) <= 5  # uncapped: all 28 of the split in one block
    full = build_split(cfg_for(root, "data.history=2"), "train")

    def key(batches: list) -> list:
        return sorted(zip(*(np.concatenate([b.meta[k] for b in batches]).tolist() for k in ("sim", "frame")),
                          strict=True))

    got = key(collect(small.datasets["train"]))
    assert len(got) == small.samples == full.samples and got == key(collect(full.datasets["train"]))


def test_already_normalized_images_pass_through(tmp_path, ray_session):
    synthetic.write_layout_a(tmp_path / "train.h5", n_sims=2, T=5, normalized=True)
    with h5py.File(tmp_path / "train.h5") as f:
        stored = f["sim_0001"]["images"][()]
    b = collect(build_split(cfg_for(tmp_path), "train", shuffle=False).datasets["train"], 100)[0]
    rows = [i for i in range(len(b)) if b.meta["sim"][i] == "sim_0001"]
    np.testing.assert_allclose(b.input[rows[0]].numpy(), stored[int(b.meta["frame"][rows[0]])], atol=1e-6)


def test_unroll_and_thermal_channel(root, ray_session):
    cfg = cfg_for(root, "data.unroll_steps=3", "data.thermal_input=true")
    b = collect(build_split(cfg, "train").datasets["train"])[0]
    assert b.target.shape[1:] == (3, 2, 16, 16) and b.input.shape[1:] == (3, 16, 16)
    assert cfg.model.in_channels == 3
    th = b.input[:, 2].numpy()
    assert np.all(np.diff(th[:, 0, :], axis=-1) > 0)  # temperature rises along +x


def test_layout_b_streams_the_same_way(tmp_path, ray_session):
    (tmp_path / "train").mkdir()
    synthetic.write_layout_b(tmp_path / "train" / "a.hdf5", n_traj=2, T=6, H=16, W=12)
    cfg = load_config(REPO / "configs/train/debug.yaml", [f"data.root={tmp_path}", "data.cond_params=[G]"], env={})
    tr = build_split(cfg, "train")
    b = collect(tr.datasets["train"], 100)[0]
    assert len(b) == 2 * 5 and b.input.shape[1:] == (2, 16, 12)
    st = tr.stats
    with h5py.File(tmp_path / "train" / "a.hdf5") as f:
        phi = f["t0_fields/phi"][()]
    i = 0
    traj, t = int(b.meta["sim"][i]), int(b.meta["frame"][i])
    np.testing.assert_allclose(b.input[i, 0].numpy(), (phi[traj, t] - st.channel_mean[0]) / st.channel_std[0],
                               atol=1e-5)


def test_shapes_are_grouped_never_mixed(tmp_path, ray_session):
    synthetic.write_layout_a(tmp_path / "train.h5", n_sims=3, T=6, shapes=[(16, 16), (12, 20), (16, 16)])
    tr = build_split(cfg_for(tmp_path), "train")
    assert sorted(tr.datasets) == ["train@12x20", "train@16x16"]
    for name, ds in tr.datasets.items():
        for b in collect(ds, 7):
            assert tuple(b.input.shape[-2:]) == tuple(int(v) for v in name.split("@")[1].split("x"))
    cropped = build_split(cfg_for(tmp_path, "data.shape_policy=crop", "data.crop_size=[12, 16]"), "train")
    assert list(cropped.datasets) == ["train"]
    assert {tuple(b.input.shape[-2:]) for b in collect(cropped.datasets["train"])} == {(12, 16)}


def test_bad_simulation_fail_or_skip(tmp_path, ray_session):
    synthetic.write_layout_a(tmp_path / "train.h5", n_sims=2, T=6)
    with h5py.File(tmp_path / "train.h5", "a") as f:
        f["sim_0002/images"][2, 0, 0, 0] = np.nan
    with pytest.raises(Exception, match=r"sim_0002/images: non-finite values in frame 2"):
        collect(build_split(cfg_for(tmp_path), "train").datasets["train"])
    b = collect(build_split(cfg_for(tmp_path, "data.on_bad_simulation=skip"), "train").datasets["train"], 100)[0]
    frames_2 = [int(f) for s, f in zip(b.meta["sim"], b.meta["frame"], strict=True) if s == "sim_0002"]
    assert 1 not in frames_2 and 2 not in frames_2 and len(frames_2) == 3  # windows touching frame 2 dropped
    with pytest.raises(DataError, match=r"conditioning attribute 'nope' missing"):
        build_split(cfg_for(tmp_path, "data.cond_params=[nope]"), "train")


TRAIN_LOOP = '''
def loop(config):
    import json, ray, ray.train
    from rs.data.source import iterate
    from rs.train.pipeline import EarlyEpoch, open_epoch
    rank = ray.train.get_context().get_world_rank()
    early = EarlyEpoch(config, "train", config["early"], 4, rank)  # as the training loop opens its first epoch
    val = ray.train.get_dataset_shard("val")
    for epoch in range(2):
        batches = early.take("train", epoch) or open_epoch(config, "train", epoch, 4, rank, first_key=True)
        seen = [(str(f), str(s), int(t), int(o)) for b in batches
                for f, s, t, o in zip(b.meta["file"], b.meta["sim"], b.meta["frame"], b.meta["order"])]
        nval = sum(len(b) for b in iterate(val, 4))
        with open(f"{config['out']}/seen-{epoch}-{rank}.json", "w") as fh:
            json.dump({"seen": seen, "val": nval}, fh)
        ray.train.report({"epoch": epoch, "n": len(seen)})
'''


# early=0: the first epoch opened while the worker builds (the training loop's path); early=1: the epoch opened
# early is not the one the loop starts at (its checkpoint did not load), so it is closed unread.
@pytest.mark.parametrize("early", [0, 1])
def test_two_train_workers_two_epochs_exactly_once(early, root, ray_session, tmp_path):
    import ray
    from ray.train import DataConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from rs.data.source import EpochClock

    cfg = cfg_for(root)
    ns: dict = {}
    exec(TRAIN_LOOP, ns)  # a plain function, shipped to the workers by value
    clock = EpochClock.remote()
    tr = build_split(cfg, "train", clock=clock)
    va = build_split(cfg, "val", tr.stats, shuffle=False)
    assert tr.samples % 2 == 0, "an even count: streaming_split(equal=True) then drops nothing"
    TorchTrainer(
        ns["loop"], train_loop_config={"clock": clock, "out": str(tmp_path), "early": early},
        scaling_config=ScalingConfig(num_workers=2, resources_per_worker={"CPU": 0.5}),
        datasets={"train": tr.datasets["train"], "val": va.datasets["val"]},
        dataset_config=DataConfig(datasets_to_split=["train"]),
        run_config=RunConfig(name="source", storage_path=str(tmp_path / "runs")),
    ).fit()
    ray.kill(clock)
    orders = []
    for epoch in (0, 1):
        ranks = [json.loads((tmp_path / f"seen-{epoch}-{r}.json").read_text()) for r in (0, 1)]
        assert len(ranks[0]["seen"]) == len(ranks[1]["seen"])  # equal work: the report barrier never hangs
        assert all(r["val"] == va.samples for r in ranks)  # validation is whole on every rank
        seen = ranks[0]["seen"] + ranks[1]["seen"]
        keys = [(s, t) for _, s, t, _ in seen]
        assert len(keys) == len(set(keys)) == tr.samples, "every train sample exactly once across ranks"
        assert {Path(f).name for f, *_ in seen} == {"train.h5"}, "no sample crosses splits"
        order = [(s, t) for _, s, t, o in sorted(seen, key=lambda x: x[3])]
        orders.append(order)
        # The same seed and epoch give the same order outside Train, in a single reader.
        alone = [b for b in iterate(build_split(cfg, "train", epoch=epoch).datasets["train"], 64)]
        again = sorted(((int(o), str(s), int(t)) for b in alone
                        for s, t, o in zip(b.meta["sim"], b.meta["frame"], b.meta["order"], strict=True)))
        assert [(s, t) for _, s, t in again] == order, "the order repeats with the same seed"
    assert orders[0] != orders[1], "the order differs between epochs"
    other = [b for b in iterate(build_split(cfg_for(root, "data.seed=7"), "train").datasets["train"], 64)]
    other_order = [(str(s), int(t)) for _, s, t in sorted(
        (int(o), s, t) for b in other for s, t, o in zip(b.meta["sim"], b.meta["frame"], b.meta["order"], strict=True))]
    assert other_order != orders[0], "another seed, another order"
    assert ORDER_STRIDE > 100


def test_chunks_of_one_slab_read_its_frames_once(root, monkeypatch):
    """Small chunks (large frames) share a slab whose frames are read once: the samples are those read chunk
    by chunk, and the frames decoded drop from rows + span per chunk to windows + span per slab."""
    from rs.data import layouts
    from rs.data.normalize import compute_stats
    from rs.data.samples import SampleSpec, Slabs, build_index, read_chunk

    cfg = cfg_for(root, "data.history=2")
    spec = SampleSpec.from_config(cfg.data)
    metas = layouts.scan(root / "train.h5")
    stats = compute_stats(metas, list(cfg.data.fields), list(cfg.data.cond_params))
    row = 4 * 16 * 16 * 2 * (2 + 1)
    alone = build_index(metas, spec, 64, 3 * row)
    shared = build_index(metas, spec, 64, 3 * row, 10**9)
    assert [(c.meta.key, c.start, c.stop) for c in alone] == [(c.meta.key, c.start, c.stop) for c in shared]
    assert len({c.slab for c in shared}) < len(shared)  # several chunks to a slab
    decoded = []
    real = layouts.read_frames
    monkeypatch.setattr(layouts, "read_frames", lambda m, a, b: decoded.append(b - a) or real(m, a, b))
    want = [read_chunk(c, spec, stats, None) for c in alone]
    n_alone, decoded[:] = sum(decoded), []
    slabs = Slabs()
    got = [read_chunk(c, spec, stats, None, slabs=slabs) for c in shared]
    for w, g in zip(want, got, strict=True):
        for k in ("input", "target", "cond", "meta_frame"):
            np.testing.assert_array_equal(w[k], g[k])
    windows = sum(c.rows for c in shared)
    assert sum(decoded) == windows + spec.span * len(metas) < n_alone == windows + spec.span * len(alone)
    # A task holding part of a slab (many CPUs, few rows) reads that part, not the whole slab.
    part = [c for c in shared if c.meta.key == shared[0].meta.key][1:3]
    decoded[:] = []
    slabs = Slabs(part)
    got = [read_chunk(c, spec, stats, None, slabs=slabs) for c in part]
    assert sum(decoded) == sum(c.rows for c in part) + spec.span
    np.testing.assert_array_equal(got[0]["input"], want[shared.index(part[0])]["input"])
