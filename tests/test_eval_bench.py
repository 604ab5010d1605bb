"""The benchmark's plumbing (its numbers are printed, never asserted against a speed)."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from vinpaint.errors import InputError
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


def test_seconds_per_step_is_measured_when_the_losses_come_back_in_one_burst():
    """On CUDA the trainer reads the losses back every 20 steps (and at each batch's end), so a short benchmark's
    progress came in one burst at the end: no two read-backs to time between, NaN s/step. Forced here on a CPU:
    the benchmark reads back every step whatever the settings say."""
    cfg = BenchConfig(width=128, height=64, frames=11, steps=3, warmup=1, preset="tiny", vgg_weights="random",
                      variants=["dip-vid"], threads=1,
                      overrides={"train.readback_every": 20, "train.updates_per_batch": 50, "loss.perceptual": 0.0})
    row = measure("dip-vid", cfg)
    assert row["steps"] == 4
    assert math.isfinite(row["seconds_per_step"]) and row["seconds_per_step"] > 0
    assert math.isfinite(row["cpu_seconds_per_step"])


def test_flow_payoff_bench_scores_each_method_at_each_point(tmp_path):
    """bench/flow_payoff.py end to end on a tiny composed set: one PSNR per method per scoring point."""
    import json
    import subprocess
    import sys

    from test_compose import make_data
    from vinpaint.evaluation import compose

    data = make_data(tmp_path / "data", bg_len=14, src_len=14, w=128, h=64)
    manifest = compose.make_manifest(data, compose.ComposeConfig(seed=1, count=1, frames=11, width=128, height=64))
    compose.write_set(data, manifest, tmp_path / "set")
    script = Path(__file__).resolve().parents[1] / "bench" / "flow_payoff.py"
    proc = subprocess.run([sys.executable, str(script), "--composed", str(tmp_path / "set"), "--clip",
                           manifest["clips"][0]["name"], "--preset", "tiny", "--seconds", "2", "--every", "1",
                           "--jobs", "1", "--json", str(tmp_path / "curves.json"),
                           "--methods", "dip-vid,known=dip-vid-flow:loss.consistency_from=known"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    curves = {r["label"]: r["points"] for r in json.loads((tmp_path / "curves.json").read_text())}
    assert sorted(curves) == ["dip-vid", "known"]
    for points in curves.values():
        assert len(points) == 2
        assert all(seconds >= 1.0 and steps > 0 and 0 < psnr < 100 for seconds, steps, psnr in points)
    assert "last 3" in proc.stdout and "known" in proc.stdout


BENCH = ["bench", "--preset", "tiny", "--size", "64x64", "--steps", "2", "--warmup", "0", "--variants",
         "dip-vid-flow", "--threads", "1"]


@pytest.fixture
def no_workers(monkeypatch):
    """A refused option must be said before any worker process (each loads torch and trains) starts."""
    from vinpaint.evaluation import bench

    def refuse(*args, **kwargs):
        raise AssertionError(f"a benchmark worker started: {args}")

    monkeypatch.setattr(bench.subprocess, "run", refuse)


@pytest.mark.parametrize("extra, says", [
    (["--frames", "0"], "--frames must be from 2 to 200, not 0."),  # was "ValueError: need at least one array..."
    (["--frames", "1"], "--frames must be from 2 to 200, not 1."),  # was a BatchNorm ValueError
    (["--size", "0x0"], "--size 0x0 is not an engine working size: width and height must be multiples of 64 from "
                        "64 to 2048."),  # was a cv2.error
    (["--size", "100x64"], "--size 100x64 is not an engine working size: width and height must be multiples of 64 "
                           "from 64 to 2048."),
    (["--threads", "-1"], "--threads must be from 0 (torch's choice) to 4096, not -1."),  # was a RuntimeError
    (["--threads", "99999999999"], "--threads must be from 0 (torch's choice) to 4096, not 99999999999."),
    (["--device", "potato"], "device 'potato' is not a device name; use cpu, cuda or cuda:N."),
    (["--warmup", "-3"], "--warmup must be 0 or more, not -3."),  # named the timed steps
    (["--steps", "0"], "--steps must be at least 1 (the benchmark needs at least one timed step), not 0."),
    (["--steps", "1"], "--steps must be at least 2 with --warmup 0 (the end of the first step starts the clock), "
                       "not 1."),  # exited 0 printing "nan s/step" and wrote nan into bench.md
    (["--variants", ","], "--variants names no variant; choose from dip, dip-vid, dip-vid-3dcn, dip-vid-flow."),
    (["--variants", "dip"], "--variants dip cannot be benchmarked with these settings: working size 64x64 is too "
                            "small for per-frame DIP (BatchNorm needs a bottleneck of at least 2 pixels): use a "
                            "working width of 128 or more"),
])
def test_bench_options_are_one_sentence_before_any_worker(tmp_path, capsys, no_workers, extra, says):
    from vinpaint.cli.main import main

    out = tmp_path / "out"
    assert main([*BENCH, *extra, "-o", str(out)]) == 2
    assert capsys.readouterr().err == f"vinpaint: error: {says}\n"
    assert not out.exists()


def test_bench_output_under_a_file_is_refused_before_the_timing(tmp_path, capsys, no_workers):
    """Before: the whole benchmark ran, then writing its table failed with "Not a directory"."""
    from vinpaint.cli.main import main

    (tmp_path / "afile").write_text("mine")
    out = tmp_path / "afile" / "x"
    assert main([*BENCH, "-o", str(out)]) == 2
    assert capsys.readouterr().err == (f"vinpaint: error: cannot write {out / 'bench.json'}: {tmp_path / 'afile'} "
                                       "is a file, not a folder.\n")
    assert (tmp_path / "afile").read_text() == "mine"


def test_bench_with_no_warmup_times_a_real_number(tmp_path, capsys):
    """--warmup 0 --steps 2: the first step's end starts the clock, the second is timed; no NaN in the table."""
    from vinpaint.cli.main import main

    assert main([*BENCH, "-o", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert "nan" not in printed.lower() and " s/step on " in printed
    md = (tmp_path / "out" / "bench.md").read_text()
    assert "| dip-vid-flow | 3 |" in md and "nan" not in md.lower()
    import json

    row = json.loads((tmp_path / "out" / "bench.json").read_text())["rows"][0]
    assert math.isfinite(row["seconds_per_step"]) and row["seconds_per_step"] > 0
