"""The benchmark's plumbing (its numbers are printed, never asserted against a speed)."""
from __future__ import annotations

import math

import pytest

from vinpaint.engine.errors import InputError
from vinpaint.evaluation.bench import BenchConfig, format_row, measure, write_markdown


def test_bench_config_rejects_unknown_variants():
    with pytest.raises(InputError, match="unknown variant"):
        BenchConfig(variants=["dip-vid-lstm"]).validate()
    with pytest.raises(InputError, match="timed step"):
        BenchConfig(steps=0).validate()


@pytest.mark.slow
def test_measure_reports_steps_and_memory(tmp_path):
    cfg = BenchConfig(width=128, height=64, frames=11, steps=2, warmup=1, preset="tiny", vgg_weights="random",
                      variants=["dip-vid-flow"], threads=1)
    row = measure("dip-vid-flow", cfg)
    assert row["steps"] == 3 and row["batch"] == 3 and row["size"] == "128x64"
    assert math.isfinite(row["seconds_per_step"]) and row["seconds_per_step"] > 0
    assert row["peak_rss_mb"] >= row["rss_before_mb"] > 0
    assert "RANDOM" in " ".join(row["notices"])
    write_markdown([row], cfg, tmp_path / "bench.md")
    assert "| dip-vid-flow | 3 |" in (tmp_path / "bench.md").read_text()
    assert "s/step" in format_row(row)
