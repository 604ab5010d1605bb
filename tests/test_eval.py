"""The eval harness: method specs, table arithmetic, snapshot equivalence, and the command end to end (tiny)."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from vinpaint.errors import InputError
from vinpaint.evaluation import report
from vinpaint.evaluation.config import EvalConfig, MethodSpec, profile
from vinpaint.cli.main import main


def _png(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    """A panning textured background and a masked clip whose 30x30 object moves right (128x64, 12 frames)."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    world = cv2.GaussianBlur(rng.uniform(0, 255, (64, 160, 3)).astype(np.uint8), (0, 0), 2)
    for i in range(12):
        _png(root / "bg" / "pan" / "frames" / f"{i:05d}.png", np.ascontiguousarray(world[:, i:i + 128]))
        m = np.zeros((64, 128), np.uint8)
        m[16:46, 20 + 4 * i:50 + 4 * i] = 255
        _png(root / "obj" / "frames" / f"{i:05d}.png", np.full((64, 128, 3), (200, 30, 30), np.uint8))
        _png(root / "obj" / "masks" / f"{i:05d}.png", m)
    return root


# --- configuration ----------------------------------------------------------------------------------------------

def test_method_spec_parsing():
    assert MethodSpec.parse("dip-vid") == MethodSpec("dip-vid", "engine", "dip-vid")
    assert MethodSpec.parse("ns") == MethodSpec("ns", "baseline", "ns")
    m = MethodSpec.parse("flow-m50=dip-vid-flow:train.updates_per_batch=50;train.intervals=[1]")
    assert m.label == "flow-m50" and m.variant == "dip-vid-flow"
    assert dict(m.overrides) == {"train.updates_per_batch": 50, "train.intervals": (1,)}
    with pytest.raises(InputError, match="unknown method"):
        MethodSpec.parse("patchmatch")
    with pytest.raises(InputError, match="key=value"):
        MethodSpec.parse("x=dip-vid:train.epochs")
    with pytest.raises(InputError, match="no overrides"):
        MethodSpec.parse("telea:x=1")


def test_config_validation():
    cfg = profile("cpu")
    cfg.validate()
    cfg.compose.width = 100
    with pytest.raises(InputError, match="multiples of 64"):
        cfg.validate()
    with pytest.raises(InputError, match="clock"):
        EvalConfig(clock="sundial").validate()
    with pytest.raises(InputError, match="label"):
        EvalConfig(methods=["dip-vid", "dip-vid"]).validate()
    with pytest.raises(InputError, match="unknown profile"):
        profile("laptop")


def test_the_clock_follows_the_device():
    """A GPU's work is invisible to the CPU clock: there budgets count wall seconds, and asking for the CPU clock
    is refused; on the CPU the default stays the CPU clock at one torch thread per run."""
    import torch

    on_cpu = EvalConfig(device="cpu").resolved()
    assert (on_cpu.device, on_cpu.clock, on_cpu.threads) == ("cpu", "cpu", 1)
    walled = EvalConfig(device="cpu", clock="wall").resolved()
    assert (walled.clock, walled.threads) == ("wall", 0)
    assert EvalConfig(device="cpu", threads=2).resolved().threads == 2
    if torch.cuda.is_available():
        on_gpu = EvalConfig(device="cuda").resolved()
        assert on_gpu.device.startswith("cuda:") and on_gpu.clock == "wall"
        with pytest.raises(InputError, match="--clock wall"):
            EvalConfig(device="cuda", clock="cpu").resolved()
    else:
        assert EvalConfig().resolved().device == "cpu"
        with pytest.raises(InputError, match="cuda"):
            EvalConfig(device="cuda").resolved()


def test_eval_on_a_device_this_machine_lacks_is_one_sentence(tmp_path, tiny_data, capsys):
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    out = tmp_path / "o"
    assert main(["eval", "--data", str(tiny_data), "-o", str(out), "--profile", "tiny",
                 "--device", f"cuda:{count}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vinpaint: error:") and f"cuda:{count}" in err and "\n" not in err
    assert not (out / "runs").exists()  # refused before any training


# --- table arithmetic --------------------------------------------------------------------------------------------

def _row(method, clip, psnr_hole, **kw):
    r = {c: math.nan for c in report.NUMERIC}
    r.update({"schedule": "own", "method": method, "clip": clip, "kind": "composed", "note": "",
              "psnr_hole": psnr_hole, **kw})
    return r


def test_mean_rows_average_over_clips_ignoring_missing():
    rows = [_row("dip", "a", 20.0, steps=10.0), _row("dip", "b", 30.0, steps=math.nan), _row("ns", "a", 25.0)]
    means = {r["method"]: r for r in report.mean_rows(rows)}
    assert means["dip"]["psnr_hole"] == pytest.approx(25.0)
    assert means["dip"]["steps"] == pytest.approx(10.0)
    assert means["ns"]["psnr_hole"] == pytest.approx(25.0) and means["dip"]["clip"] == report.MEAN_CLIP


def test_paper_ordering_verdict():
    ok = [_row(m, "ALL", v) for m, v in zip(("dip", "dip-vid", "dip-vid-3dcn", "dip-vid-flow"), (20, 21, 22, 23))]
    assert report.ordering(ok, "psnr_hole")[0] is True
    bad = [_row(m, "ALL", v) for m, v in zip(("dip", "dip-vid", "dip-vid-3dcn", "dip-vid-flow"), (20, 24, 22, 23))]
    holds, text = report.ordering(bad, "psnr_hole")
    assert holds is False and text.endswith("dip-vid (24.00)")
    assert report.ordering([_row("telea", "ALL", 30.0)], "psnr_hole")[0] is None


def test_csv_round_trip(tmp_path):
    rows = [_row("dip", "a", 20.5)]
    report.write_csv(rows, tmp_path / "r.csv")
    got = list(csv.DictReader(open(tmp_path / "r.csv")))
    assert got[0]["psnr_hole"] == "20.5000" and got[0]["psnr"] == "" and list(got[0]) == report.COLUMNS


def test_quality_against_seconds_folds_what_did_not_train():
    rows = [_row("telea", "ALL", 20.0, schedule=s, clock_s=0.5, steps=0.0, ssim_hole=0.5, cons_psnr=30.0)
            for s in ("own", "budget 60s")]
    rows += [_row("dip-vid-flow", "ALL", 24.0, schedule="own", clock_s=300.0, steps=1500.0),
             _row("dip-vid-flow", "ALL", 22.0, schedule="budget 60s", clock_s=61.0, steps=310.0)]
    lines = report.quality_vs_seconds(rows, ["dip-vid-flow", "telea", "absent"])
    body = [line.split(" | ") for line in lines[2:]]
    assert [(b[0], b[1], b[2]) for b in body] == [("| dip-vid-flow", "budget 60s", "61.0"),
                                                  ("| dip-vid-flow", "own", "300.0"),
                                                  ("| telea", "own, budget 60s", "0.5")]
    assert body[0][6] == "22.00" and body[1][6] == "24.00" and body[2][7] == "0.500"
    assert body[2][8].startswith("30.00")


# --- snapshots ---------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_paused_snapshot_equals_an_uninterrupted_run(tmp_path, tiny_data, request):
    """The runner pauses one long run at each stop point; the result must be the one a run of that length gives."""
    import torch

    from vinpaint.engine import inpaint
    from vinpaint.evaluation import compose
    from vinpaint.evaluation.runner import EngineJob, StopPoint, own_config, run_engine_job

    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # as the runner's job: the fresh run must take the same arithmetic
    request.addfinalizer(lambda: torch.set_num_threads(previous))  # later tests compare with daemons at 2
    manifest = compose.make_manifest(tiny_data, profile("tiny").compose)
    clip = compose.build_clip(tiny_data, manifest, manifest["clips"][0])
    job = EngineJob(clip.name, clip.frames, clip.masks, MethodSpec.parse("dip-vid-flow"),
                    [StopPoint("own"), StopPoint("budget 1000000s", 1e6)], str(tmp_path / "run"), "tiny", threads=1)
    # a huge budget is never reached: the 'own' point pauses the long run at the schedule's last step
    job.points = [StopPoint("own")]
    snaps = run_engine_job(job)
    own = own_config(job)
    fresh = inpaint(clip.frames, clip.masks, own)
    snap = np.load(Path(snaps[0].workdir) / "result.npz")
    assert snaps[0].steps == fresh.steps
    assert np.array_equal(snap["generated"], fresh.generated)


# --- the command ------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_eval_command_end_to_end(tmp_path, tiny_data, capsys):
    out = tmp_path / "out"
    argv = ["eval", "--data", str(tiny_data), "-o", str(out), "--profile", "tiny", "--budgets", "0.5",
            "--methods", "dip-vid,dip-vid-flow,telea", "--real-clips", "obj", "--real-frames", "11",
            "--real-methods", "dip-vid-flow,telea"]
    assert main(argv) == 0
    md = (out / "results.md").read_text()
    assert "| dip-vid-flow |" in md and "## budget 0.5s" in md and "Paper's ordering" in md
    rows = list(csv.DictReader(open(out / "results.csv")))
    composed = [r for r in rows if r["kind"] == "composed" and r["clip"] != "ALL"]
    assert {(r["schedule"], r["method"]) for r in composed} >= {("own", "dip-vid"), ("budget 0.5s", "dip-vid-flow"),
                                                               ("own", "telea"), ("own", "truth (reference)")}
    for r in composed:
        if r["method"] != "truth (reference)":
            assert 0 < float(r["psnr_hole"]) < float(r["psnr"])  # the hole is the hard part
    real = [r for r in rows if r["kind"] == "real"]
    assert {r["method"] for r in real} == {"dip-vid-flow", "telea"} and all(r["cons_psnr"] for r in real)
    assert "methods: dip-vid-flow, telea." in md
    saved = json.loads((out / "config.json").read_text())
    assert saved["profile"] == "tiny"
    assert saved["clock"] == ("cpu" if saved["device"] == "cpu" else "wall")  # as run: the device's clock
    assert f"trained on {saved['device']}" in md
    assert (out / "pictures" / "psnr_vs_time.png").is_file()
    assert any(p.name.startswith("slice_") for p in (out / "pictures").rglob("*.png"))
    assert any(p.name.startswith("flow_dip-vid-flow") for p in (out / "pictures").rglob("*.png"))
    assert (out / "pictures" / "00_pan_obj" / "flow_progress_dip-vid-flow.png").is_file()  # Figure 8

    # Running again reuses every finished run: no training, same numbers (baseline timings aside).
    def metrics_of(path):
        return [{k: v for k, v in r.items() if k not in ("clock_s", "wall_s", "cpu_s")}
                for r in csv.DictReader(open(path))]

    before = metrics_of(out / "results.csv")
    checkpoints = {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("checkpoint.pt")}
    assert main(argv) == 0
    assert metrics_of(out / "results.csv") == before
    assert checkpoints == {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("checkpoint.pt")}


@pytest.mark.slow
def test_eval_propagation_methods_and_quality_against_seconds(tmp_path, tiny_data):
    """The propagation stage as methods of its own: prop-telea (no training) and the engine with propagation, one
    set to train whatever is left and one never to train; the quality-against-seconds table shows each honestly."""
    out = tmp_path / "out"
    argv = ["eval", "--data", str(tiny_data), "-o", str(out), "--profile", "tiny", "--budgets", "0.5",
            "--methods", "prop-only=dip-vid-flow:propagation.enabled=true;propagation.train_below=1.0,"
            "prop-model=dip-vid-flow:propagation.enabled=true;propagation.train_below=0.0,telea,prop-telea"]
    assert main(argv) == 0
    md = (out / "results.md").read_text()
    table = md.split("## Quality against seconds: mean over composed clips")[1].split("\n## ")[0]
    rows = [line.split(" | ") for line in table.splitlines() if line.startswith("| prop")]
    by = {}
    for r in rows:
        by.setdefault(r[0][2:], []).append(r)
    assert [r[1] for r in by["prop-telea"]] == ["own, budget 0.5s"]  # no training: one cost whatever the budget
    assert [(r[1], r[5]) for r in by["prop-only"]] == [("own, budget 0.5s", "0")]
    # it trains the 0.1% no frame sees: its own schedule's 6 steps, and at the 0.5 s budget however many steps the
    # clock allowed after propagation and flow (0 on a cold, loaded machine, a few on a warm one: never asserted)
    # (when the budget reaches all 6 steps, the two points fold into one row that names both schedules)
    steps = {frozenset(r[1].split(", ")): float(r[5]) for r in by["prop-model"]}
    assert sorted(name for names in steps for name in names) == ["budget 0.5s", "own"]
    assert [v for names, v in steps.items() if "own" in names] == [6.0]
    assert all(0.0 <= v <= 6.0 for v in steps.values())
    csv_rows = [r for r in csv.DictReader(open(out / "results.csv")) if r["clip"] != "ALL"]
    prop_telea = [r for r in csv_rows if r["method"] == "prop-telea"]
    assert prop_telea and all(float(r["cpu_s"]) > 0 and "no training" in r["note"] for r in prop_telea)


def test_eval_bad_input_is_one_sentence(tmp_path, capsys):
    assert main(["eval", "--data", str(tmp_path / "nope"), "-o", str(tmp_path / "o"), "--profile", "tiny"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vinpaint: error:") and "does not exist" in err and "\n" not in err
    assert main(["eval", "--data", str(tmp_path), "-o", str(tmp_path / "o"), "--size", "100x64"]) == 2
    assert "multiples of 64" in capsys.readouterr().err


def test_eval_refuses_a_method_that_cannot_run_before_training_anything(tmp_path, tiny_data, capsys):
    out = tmp_path / "out"
    argv = ["eval", "--data", str(tiny_data), "-o", str(out), "--profile", "tiny", "--budgets", "0.5",
            "--methods", "dip-vid,dip-vid-flow", "--real-clips", "obj", "--real-frames", "8"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "dip-vid-flow cannot run on obj" in err and "8 frames" in err and "\n" not in err
    assert not (out / "runs").exists() or not any((out / "runs").rglob("checkpoint.pt"))


def test_real_methods_must_be_among_the_methods(tmp_path, tiny_data, capsys):
    argv = ["eval", "--data", str(tiny_data), "-o", str(tmp_path / "o"), "--profile", "tiny",
            "--methods", "dip-vid,telea", "--real-clips", "obj", "--real-methods", "dip-vid,ns"]
    assert main(argv) == 2
    assert "--real-methods names ns, not among the methods (dip-vid, telea)" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_compose_command_and_manifest_rebuild(tmp_path, tiny_data, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["compose", "--data", str(tiny_data), "-o", str(a), "--clips", "2", "--frames", "5",
                 "--size", "128x64", "--seed", "3"]) == 0
    assert main(["compose", "--data", str(tiny_data), "-o", str(b), "--manifest", str(a / "manifest.json")]) == 0
    pa = sorted(p.relative_to(a) for p in a.rglob("*.png"))
    assert pa == sorted(p.relative_to(b) for p in b.rglob("*.png")) and len(pa) == 2 * 5 * 3
    assert all((a / p).read_bytes() == (b / p).read_bytes() for p in pa)
    assert main(["compose", "--data", str(tiny_data), "-o", str(b), "--manifest", str(tmp_path / "none.json")]) == 2


def test_the_paper_variants_rows_are_the_models_own_fill_and_the_product_row_is_fast():
    """fast's self-check may hand a weak model's hole to Telea: on the variant rows it would make dip, dip-vid, ...
    the same diffusion, and the ablation would compare nothing (it did, on a moving-camera clip)."""
    from vinpaint.evaluation.config import DEFAULT_ENGINE_ROW, ENGINE_VARIANTS, MethodSpec
    from vinpaint.evaluation.runner import EngineJob, StopPoint, own_config

    frames, masks = np.zeros((4, 64, 128, 3), np.uint8), np.zeros((4, 64, 128), bool)
    for name in (*ENGINE_VARIANTS, DEFAULT_ENGINE_ROW):
        job = EngineJob("clip", frames, masks, MethodSpec.parse(name), [StopPoint("own")], "/nonexistent", "fast")
        config = own_config(job)
        product = name == DEFAULT_ENGINE_ROW
        assert config.propagation.self_check is product and config.propagation.enabled is product, name
        assert config.resolution.crop_to_hole is product, name


def test_a_methods_folder_is_reused_only_for_its_own_settings(tmp_path, capsys):
    from vinpaint.evaluation.runner import _claim_root

    root = tmp_path / "clip" / "dip-vid"
    _claim_root(root, '{"a": 1}', "dip-vid")
    (root / "own").mkdir()
    (root / "own" / "result.npz").write_bytes(b"x")
    _claim_root(root, '{"a": 1}', "dip-vid")  # the same settings: the run is kept for reuse
    assert (root / "own" / "result.npz").is_file()
    _claim_root(root, '{"a": 2}', "dip-vid")  # other settings: moved aside, nothing of it scored again
    assert not (root / "own").exists() and (root / "settings.json").read_text() == '{"a": 2}'
    aside = [p for p in root.parent.iterdir() if p.name.startswith("dip-vid.before-")]
    assert len(aside) == 1 and (aside[0] / "own" / "result.npz").read_bytes() == b"x"
    assert "other settings" in capsys.readouterr().out
    legacy = tmp_path / "clip" / "dip"  # written before folders recorded their settings
    (legacy / "own").mkdir(parents=True)
    _claim_root(legacy, '{"a": 1}', "dip")
    assert not (legacy / "own").exists()


def _variant(source: Path, target: Path, masks_kept: int | None = None, invert_background: bool = False) -> Path:
    """A copy of a data folder with fewer masks, or with other footage under the same names."""
    import shutil

    shutil.copytree(source, target)
    if masks_kept is not None:
        for p in sorted((target / "obj" / "masks").iterdir())[masks_kept:]:
            p.unlink()
    if invert_background:
        for p in (target / "bg" / "pan" / "frames").iterdir():
            cv2.imwrite(str(p), 255 - cv2.imread(str(p)))
    return target


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_eval_into_an_earlier_out_of_another_composed_set_is_refused_before_anything_is_written(
        tmp_path, tiny_data, capsys):
    """Before: `eval --data other -o OUT` (or another --seed, --frames) replaced OUT/composed, then stopped on the
    first run made from the old set ("choose another work directory", an option eval has not): OUT's manifest
    described the new set, results.csv the old one, and the old set was gone."""
    out = tmp_path / "ev"
    base = ["eval", "-o", str(out), "--profile", "tiny", "--methods", "telea,dip", "--frames", "6"]
    assert main(base + ["--data", str(tiny_data)]) == 0
    capsys.readouterr()
    before = _tree(out)
    few = _variant(tiny_data, tmp_path / "fewmasks", masks_kept=3)
    other = _variant(tiny_data, tmp_path / "other", invert_background=True)
    cases = [(["--data", str(few)], "mask_frames"), (["--data", str(tiny_data), "--seed", "4"], "--seed: 4 here, 0"),
             (["--data", str(tiny_data), "--frames", "5"], "--frames: 5 here, 6"),
             (["--data", str(tiny_data), "--size", "192x64"], "--size: 192x64 here, 128x64"),
             (["--data", str(other)], "not made from the footage")]
    for extra, difference in cases:
        assert main(base + extra) == 2, extra
        err = capsys.readouterr().err.strip()
        assert err.startswith("vinpaint: error:") and "\n" not in err, err
        assert "another composed set" in err and difference in err and "give a new -o" in err, err
        assert "--work-dir" not in err and "work directory" not in err, err
        assert _tree(out) == before, extra  # nothing in OUT replaced: not the set, not config.json
    # more clips of the same draw continue the same set (no dip run made again: telea only)
    assert main(["eval", "-o", str(out), "--profile", "tiny", "--methods", "telea", "--frames", "6",
                 "--clips", "2", "--data", str(tiny_data)]) == 0
    assert "composing 2 clips" in capsys.readouterr().out
    manifest = json.loads((out / "composed" / "manifest.json").read_text())
    assert len(manifest["clips"]) == 2 and manifest["clips"][0] == json.loads(before["composed/manifest.json"])[
        "clips"][0]


def test_the_report_of_a_given_composed_set_names_its_own_size_and_where_it_is(tmp_path, tiny_data, capsys):
    """Before (a hunt, 2026-12-03): results.md named the profile's size and a composed/manifest.json that an
    evaluation of a set given with --composed never writes."""
    assert main(["compose", "--data", str(tiny_data), "-o", str(tmp_path / "set"), "--clips", "1", "--frames",
                 "6", "--size", "192x64", "--seed", "1"]) == 0
    out = tmp_path / "ev"
    assert main(["eval", "-o", str(out), "--profile", "tiny", "--methods", "telea", "--data", str(tiny_data),
                 "--real-clips", "", "--no-pictures", "--budgets", "", "--composed", str(tmp_path / "set")]) == 0
    head = (out / "results.md").read_text().splitlines()[:4]
    assert head[0].endswith("1 composed clips of 6 frames at 192x64"), head
    assert f"The composed set `{tmp_path / 'set'}` (its manifest recorded in `composed_set.json`)." in head[2], head


def test_eval_of_a_composed_set_into_an_out_of_another_set_is_refused(tmp_path, tiny_data, capsys):
    """Before: `eval --composed setB -o OUT` where OUT held setA's evaluation ran and replaced its results, and so
    did setA composed again with another --seed: nothing in OUT recorded which set it held."""
    for name, seed in (("setA", "1"), ("setB", "2")):
        assert main(["compose", "--data", str(tiny_data), "-o", str(tmp_path / name), "--clips", "1", "--frames",
                     "6", "--size", "128x64", "--seed", seed]) == 0
    out = tmp_path / "ev"
    base = ["eval", "-o", str(out), "--profile", "tiny", "--methods", "telea", "--data", str(tiny_data),
            "--real-clips", "", "--no-pictures", "--budgets", ""]
    assert main(base + ["--composed", str(tmp_path / "setA")]) == 0
    assert main(base + ["--composed", str(tmp_path / "setA")]) == 0  # the same set: continued
    capsys.readouterr()
    before = _tree(out)
    assert main(base + ["--composed", str(tmp_path / "setB")]) == 2
    err = capsys.readouterr().err
    assert "holds an evaluation of another composed set" in err and "--seed: 2 here, 1 there" in err, err
    assert main(["compose", "--data", str(tiny_data), "-o", str(tmp_path / "setA"), "--clips", "1", "--frames",
                 "6", "--size", "128x64", "--seed", "3"]) == 0  # the same folder composed again
    capsys.readouterr()
    assert main(base + ["--composed", str(tmp_path / "setA")]) == 2
    assert "another composed set" in capsys.readouterr().err
    assert _tree(out) == before
    # more clips of the same draw continue the set, as with --data
    setb = ["eval", "-o", str(tmp_path / "evB"), *base[3:], "--composed", str(tmp_path / "setB")]
    assert main(setb) == 0
    assert main(["compose", "--data", str(tiny_data), "-o", str(tmp_path / "setB"), "--clips", "2", "--frames",
                 "6", "--size", "128x64", "--seed", "2"]) == 0
    assert main(setb) == 0
    assert len(json.loads((tmp_path / "evB" / "composed_set.json").read_text())["digests"]) == 2


def test_a_methods_folder_of_other_frames_is_moved_aside(tmp_path, capsys):
    """A real clip read with another --real-frames: its runs are moved aside as for other settings, not stopped
    on inside the engine (whose advice names a --work-dir eval has not)."""
    from vinpaint.evaluation.runner import _claim_root, clip_key

    frames, masks = np.zeros((4, 8, 8, 3), np.uint8), np.zeros((4, 8, 8), bool)
    root = tmp_path / "clip" / "dip"
    _claim_root(root, "{}", "dip", clip_key(frames, masks))
    (root / "own").mkdir()
    _claim_root(root, "{}", "dip", clip_key(frames, masks))
    assert (root / "own").is_dir()
    _claim_root(root, "{}", "dip", clip_key(frames[:3], masks[:3]))
    assert not (root / "own").exists() and "other frames" in capsys.readouterr().out
    assert [p.name.startswith("dip.before-") for p in root.parent.iterdir()].count(True) == 1
    (root / "own").mkdir()
    (root / "frames.sha256").unlink()  # written before frames were recorded: kept, the key recorded
    _claim_root(root, "{}", "dip", clip_key(frames, masks))
    assert (root / "own").is_dir() and (root / "frames.sha256").read_text().strip() == clip_key(frames, masks)


# --- options out of range: one sentence naming the option, nothing written ------------------------------------

@pytest.mark.parametrize("extra, says", [
    (["--budgets", "nan"], "--budgets must be seconds above 0 and at most 604800 (7 days), not nan."),  # never ended
    (["--budgets", "inf"], "--budgets must be seconds above 0 and at most 604800 (7 days), not inf."),  # traceback
    (["--budgets", "1e308"], "--budgets must be seconds above 0 and at most 604800 (7 days), not 1e+308."),
    (["--budgets", "60,604801"], "--budgets must be seconds above 0 and at most 604800 (7 days), not 604801."),
    (["--budgets", "0.3,0.4"], "--budgets 0.3 and 0.4 round to the same whole second, which names a budget's run "
                               "folder; give budgets at least a second apart."),  # both ran into one folder, b0
    (["--real-clips", "obj", "--real-frames", "0"],
     "--real-frames must be at least 2 (a real clip is scored frame to frame), not 0."),
    (["--real-clips", "obj", "--real-frames", "1"],
     "--real-frames must be at least 2 (a real clip is scored frame to frame), not 1."),
    (["--frames", "1"], "--frames must be from 2 (a clip is scored frame to frame) to 5000, not 1."),
    (["--clips", "0"], "--clips must be from 1 to 1000, not 0."),
    (["--clips", "100000000"], "--clips must be from 1 to 1000, not 100000000."),  # ran silently for ever
    (["--seed", "-1"], "--seed must be 0 or more, not -1."),
    (["--threads", "-1"], "--threads must be from 0 (torch's choice) to 4096, not -1."),
    (["--threads", "99999999999"], "--threads must be from 0 (torch's choice) to 4096, not 99999999999."),
    (["--size", "65536x65536"],
     "--size 65536x65536 is out of range: width and height must each be from 64 to 4096 pixels."),
    (["--size", "0x0"], "--size 0x0 is out of range: width and height must each be from 64 to 4096 pixels."),
])
def test_eval_options_out_of_range_are_one_sentence_before_anything_is_written(tmp_path, tiny_data, capsys,
                                                                                extra, says):
    out = tmp_path / "ev"
    argv = ["eval", "--data", str(tiny_data), "-o", str(out), "--profile", "tiny", "--no-pictures", *extra]
    assert main(argv) == 2
    assert capsys.readouterr().err == f"vinpaint: error: {says}\n"
    assert not out.exists()


def test_a_config_gets_the_budget_checks_of_the_flags():
    """A config.json read back (from_dict) is checked by the same validate: NaN is not a budget there either."""
    from vinpaint.evaluation.config import from_dict

    for budget, shown in ((float("nan"), "nan"), (float("inf"), "inf"), (-5, "-5"), ("300", "'300'")):
        cfg = from_dict({**profile("tiny").to_dict(), "budgets": [budget]})
        with pytest.raises(InputError, match=rf"^--budgets must be .* not {shown}\.$"):
            cfg.validate()
    from_dict({**profile("tiny").to_dict(), "budgets": [0.5, 604800]}).validate()


def test_reading_no_frames_is_one_sentence(tiny_data):
    """np.stack of nothing was a ValueError traceback (--real-frames 0 reached it)."""
    from vinpaint.evaluation import dataset

    with pytest.raises(InputError, match="^no frames asked of .*frames\\.$"):
        dataset.read_frames(tiny_data / "obj" / "frames", [])
    with pytest.raises(InputError, match="^no masks asked of .*masks\\.$"):
        dataset.read_masks(tiny_data / "obj" / "masks", [])


@pytest.mark.parametrize("extra, says", [
    (["--size", "65536x65536"],  # allocated until the OOM killer came
     "--size 65536x65536 is out of range: width and height must each be from 16 to 4096 pixels."),
    (["--size", "4097x64"], "--size 4097x64 is out of range: width and height must each be from 16 to 4096 pixels."),
    (["--size", "0x0"], "--size 0x0 is out of range: width and height must each be from 16 to 4096 pixels."),
    (["--frames", "1"], "--frames must be from 2 (a clip is scored frame to frame) to 5000, not 1."),
    (["--clips", "0"], "--clips must be from 1 to 1000, not 0."),
    (["--clips", "100000000"], "--clips must be from 1 to 1000, not 100000000."),  # ran silently for ever
    (["--seed", "-1"], "--seed must be 0 or more, not -1."),
])
def test_compose_options_out_of_range_are_one_sentence_before_anything_is_written(tmp_path, tiny_data, capsys,
                                                                                   extra, says):
    out = tmp_path / "set"
    assert main(["compose", "--data", str(tiny_data), "-o", str(out), "--clips", "1", "--frames", "5", *extra]) == 2
    assert capsys.readouterr().err == f"vinpaint: error: {says}\n"
    assert not out.exists()


def test_compose_refuses_a_manifest_asking_for_a_huge_size(tmp_path, tiny_data, capsys):
    """A manifest may be written by hand: its size is checked as --size is, before any clip is allocated."""
    good = tmp_path / "good"
    assert main(["compose", "--data", str(tiny_data), "-o", str(good), "--clips", "1", "--frames", "5",
                 "--size", "128x64"]) == 0
    capsys.readouterr()
    manifest = json.loads((good / "manifest.json").read_text())
    manifest["config"]["width"] = 65536
    (tmp_path / "huge.json").write_text(json.dumps(manifest))
    manifest["config"] = "none"
    (tmp_path / "broken.json").write_text(json.dumps(manifest))
    out = tmp_path / "out"
    for name, says in (("huge.json", "asks for settings the options refuse: --size 65536x64 is out of range: "
                                     "width and height must each be from 16 to 4096 pixels."),
                       ("broken.json", 'holds no readable settings (its "config").')):
        assert main(["compose", "--data", str(tiny_data), "-o", str(out), "--manifest", str(tmp_path / name)]) == 2
        assert capsys.readouterr().err == f"vinpaint: error: the manifest {tmp_path / name} {says}\n"
        assert not out.exists()


@pytest.mark.parametrize("command", ["eval", "compose"])
def test_an_output_under_a_file_is_refused_before_anything_runs(tmp_path, tiny_data, capsys, command):
    (tmp_path / "afile").write_text("mine")
    out = tmp_path / "afile" / "x"
    extra = ["--profile", "tiny", "--methods", "telea"] if command == "eval" else ["--clips", "1", "--frames", "5"]
    assert main([command, "--data", str(tiny_data), "-o", str(out), *extra]) == 2
    name = "config.json" if command == "eval" else "manifest.json"
    assert capsys.readouterr().err == (f"vinpaint: error: cannot write {out / name}: {tmp_path / 'afile'} is a "
                                       "file, not a folder.\n")
    assert (tmp_path / "afile").read_text() == "mine"


def test_a_run_that_trained_on_a_crop_is_scored_without_raw_columns(tmp_path):
    """A crop around the hole generates the crop, not whole frames: scoring it against whole truth frames gave a
    stretched crop's numbers, or (a crop of another shape) stopped the evaluation after all its training (found
    by an audit, 2026-12-01). Its raw columns now stay empty; the composited ones are scored."""
    from vinpaint.engine import inpaint, make_config
    from vinpaint.evaluation import compose, evaluate

    rng = np.random.default_rng(0)
    t, h, w = 11, 64, 128
    base = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3)).astype(np.uint8), (7, 7), 2)
    truth = np.stack([base] * t)
    hole = np.zeros((t, h, w), bool)
    hole[:, 8:20, 0:10] = True  # static: nothing propagates, and the crop is narrower than the frame
    frames = truth.copy()
    frames[hole] = 200
    config = make_config("fast", "dip-vid-flow", **{
        "resolution.work_width": 128, "resolution.work_height": 64, "loss.perceptual": 0.0,
        "resolution.crop_to_hole": True, "propagation.train_below": 0.0, "train.max_steps": 3,
        "train.fit_seconds": 0.0, "train.max_seconds": 0.0})
    result = inpaint(frames, hole, config, workdir=tmp_path / "work")
    assert result.steps > 0 and result.generated.shape[1:3] != (h, w), "precondition: it trained on a crop"
    raw = evaluate.whole_frame_generation(result)
    assert raw is None
    row = evaluate.score(result.frames, raw, compose.ComposedClip("x", frames, hole, truth), profile("cpu"), None)
    assert "psnr_raw" not in row and "cons_psnr_raw" not in row
    assert math.isfinite(row["psnr_hole"]) and math.isfinite(row["cons_psnr"])


def test_the_baselines_fill_the_engines_dilated_hole():
    from vinpaint.engine.composite import dilate_holes
    from vinpaint.evaluation.baselines import dilate

    masks = np.zeros((2, 40, 50), bool)
    masks[:, 10:20, 15:30] = True
    for pixels in (1, 3, 7):
        assert np.array_equal(dilate(masks, pixels), dilate_holes(masks, pixels))


def test_an_inception_weights_path_that_is_no_file_is_named_as_such(tmp_path):
    """A folder (or a pipe, a device) given as the weights was said not to exist (a hunt, 2026-12-03)."""
    from vinpaint.evaluation.fid import find_inception

    with pytest.raises(InputError, match=r"the Inception weights file \S+ is not a file \(a folder, a pipe or a "
                                         r"device\)\.$"):
        find_inception(tmp_path)
    with pytest.raises(InputError, match=r"the Inception weights file \S+nothing\.pt does not exist\.$"):
        find_inception(tmp_path / "nothing.pt")
