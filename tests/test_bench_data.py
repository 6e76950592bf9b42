"""`rs bench data` prints, from one run on the same files, the Ray/raw and Ray/DataLoader ratios for the
stored (lzf) and uncompressed copies, and peak memory."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_bench_data_json(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "rs", "bench", "data", "--work", str(tmp_path), "--copies", "1",
                           "--passes", "1", "--json"], capture_output=True, text=True, cwd=REPO, env=os.environ)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(proc.stdout)
    assert {"ray_over_raw", "ray_over_raw_uncompressed", "ray_over_dataloader", "peak_rss_mb"} <= set(r)
    stored, plain = r["sizes"]
    assert (stored["compression"], plain["compression"]) == ("lzf", "none")
    for s in r["sizes"]:
        assert min(s["raw_frames_per_s"], s["dataloader_samples_per_s"], s["ray_samples_per_s"]) > 0
        assert s["ray_over_raw"] == pytest.approx(s["ray_samples_per_s"] / s["raw_frames_per_s"])
        assert s["ray_over_raw_pass"] == pytest.approx(s["ray_pass_samples_per_s"] / s["raw_frames_per_s"])
    assert r["ray_over_raw"] == stored["ray_over_raw"] and r["ray_over_raw_uncompressed"] == plain["ray_over_raw"]
    assert r["ray_over_dataloader"] == pytest.approx(stored["ray_samples_per_s"] / stored["dataloader_samples_per_s"])
    assert r["peak_rss_mb"] == max(s["peak_rss_mb"]["ray"] for s in r["sizes"]) >= 0
    assert not list(tmp_path.glob("x1-*"))  # the copies are removed after each size


def test_bench_data_grid_fields_and_gzip(tmp_path):
    """The origin's scale in small: frames resampled to a larger grid, more channels, gzip beside none; the
    per-core figure is samples over the CPU seconds of Ray's read side, and the files hold what was asked."""
    proc = subprocess.run([sys.executable, "-m", "rs", "bench", "data", "--work", str(tmp_path), "--copies", "1",
                           "--passes", "1", "--grid", "96", "--fields", "3", "--compression", "gzip,none",
                           "--no-dataloader", "--json"], capture_output=True, text=True, cwd=REPO, env=os.environ)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(proc.stdout)
    gz, plain = r["sizes"]
    assert (gz["compression"], plain["compression"]) == ("gzip", "none")
    for s in r["sizes"]:
        assert (s["grid"], s["fields"]) == ([96, 96], 3)
        assert s["in_memory_mb"] == pytest.approx(8 * 40 * 3 * 96 * 96 * 4 / 1e6)  # 8 simulations of 40 frames
        assert s["ray_samples_per_s_per_core"] == pytest.approx(1e3 / s["read_cpu_ms_per_sample"])
        assert 0 < s["consumer_cpu_ms_per_sample"] and 0 < s["read_cpu_ms_per_sample"]
    assert gz["compression_ratio"] > 1.5 > plain["compression_ratio"]  # gzip did compress
    assert r["ray_samples_per_s_per_core_gzip"] == gz["ray_samples_per_s_per_core"]
    with pytest.raises(subprocess.CalledProcessError):
        subprocess.run([sys.executable, "-m", "rs", "bench", "data", "--work", str(tmp_path), "--compression", "zstd"],
                       capture_output=True, text=True, cwd=REPO, env=os.environ, check=True)
