"""compose, eval, demo and bench given hostile names or a folder that changed under them: one sentence, and nothing
of the user's (outside OUT, in a folder of theirs) written or replaced."""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from test_eval import _png, tiny_data  # noqa: F401 (tiny_data: a fixture)
from vinpaint.cli.main import main
from vinpaint.errors import InputError
from vinpaint.evaluation import compose
from vinpaint.evaluation.config import EvalConfig


@pytest.fixture(scope="module")
def data(tiny_data) -> Path:
    """test_eval's data set: a panning background and a masked clip with a moving 30x30 object (128x64, 12
    frames)."""
    return tiny_data


def refused(capsys, args, pattern: str) -> str:
    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    assert re.search(r"^vinpaint: error: " + pattern, err, re.M), err
    assert err.count("\n") == 1, err
    return err


def digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def composed_set(tmp_path: Path, data: Path, name: str = "set1", frames: int = 8) -> Path:
    out = tmp_path / name
    assert main(["compose", "--data", str(data), "-o", str(out), "--clips", "1", "--frames", str(frames),
                 "--size", "128x64"]) == 0
    return out


# ---- 1. a clip's name in a manifest is one plain folder name ------------------------------------------------------

def test_compose_never_writes_outside_out_for_a_clip_name_of_a_manifest(tmp_path, data, capsys):
    """Before: a manifest naming a clip ../victim made `compose --manifest` overwrite victim/frames/00000.png."""
    manifest = json.loads((composed_set(tmp_path, data) / "manifest.json").read_text())
    capsys.readouterr()
    victim = tmp_path / "victim" / "frames" / "00000.png"
    victim.parent.mkdir(parents=True)
    victim.write_text("x")
    for name in ("../victim", str(tmp_path / "victim")):
        manifest["clips"][0]["name"] = name
        (tmp_path / "evil.json").write_text(json.dumps(manifest))
        refused(capsys, ["compose", "--data", data, "-o", tmp_path / "set2", "--manifest", tmp_path / "evil.json"],
                rf"the manifest \S+evil.json names a clip '{re.escape(name)}', which is not one plain folder name "
                r"\(.*\); rename it there\.$")
        assert victim.read_text() == "x" and not (tmp_path / "set2").exists()


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "a\\b", "a\0b", "a\nb", "x" * 256, "é" * 128, "\ud800",
                                  "manifest.json"])
def test_a_clip_name_that_is_no_plain_folder_name_is_refused(tmp_path, name):
    manifest = {"version": compose.MANIFEST_VERSION, "clips": [
        {"name": name, "background": "bg/pan", "mask_source": "obj", "mask_folder": "masks", "mirror": False,
         "background_frames": [0, 1], "mask_frames": [0, 1]}]}
    (tmp_path / "m.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match=r"names a clip .*, which is not one plain folder name"):
        compose.load_manifest(tmp_path / "m.json")
    with pytest.raises(InputError, match=r"names a clip .*, which is not one plain folder name"):
        compose.write_set(tmp_path, manifest, tmp_path / "out")  # a manifest made in memory: checked too
    assert not (tmp_path / "out").exists()


def test_two_clips_of_one_name_are_refused(tmp_path):
    entry = {"background": "bg/pan", "mask_source": "obj", "mask_folder": "masks", "mirror": False,
             "background_frames": [0, 1], "mask_frames": [0, 1]}
    for names, says in ((["a", "a"], "the clip 'a' twice"), (["Clip", "clip"], "two clips 'Clip' and 'clip'")):
        (tmp_path / "m.json").write_text(json.dumps({"version": compose.MANIFEST_VERSION,
                                                     "clips": [{**entry, "name": n} for n in names]}))
        with pytest.raises(InputError, match=f"names {says}, which would share one folder"):
            compose.load_manifest(tmp_path / "m.json")
    long_ok = "é" * 127  # 254 bytes: a folder name the disk takes
    (tmp_path / "m.json").write_text(json.dumps({"version": compose.MANIFEST_VERSION,
                                                 "clips": [{**entry, "name": long_ok}]}))
    assert compose.load_manifest(tmp_path / "m.json")["clips"][0]["name"] == long_ok


def test_eval_of_a_composed_set_naming_a_clip_outside_it_is_refused(tmp_path, data, capsys):
    """Before: eval --composed read the clip from SET/../victim and ran it in OUT/runs/../victim (whose folder
    _claim_root could move aside)."""
    folder = composed_set(tmp_path, data)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["clips"][0]["name"] = "../../victim"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (tmp_path / "victim").mkdir()
    (tmp_path / "victim" / "mine.txt").write_text("mine")
    before = digests(tmp_path / "victim")
    capsys.readouterr()
    refused(capsys, ["eval", "--data", data, "-o", tmp_path / "ev", "--profile", "tiny", "--methods", "telea",
                     "--composed", folder],
            r"the manifest \S+set1/manifest.json names a clip '../../victim', which is not one plain folder name")
    assert digests(tmp_path / "victim") == before and os.listdir(tmp_path / "victim") == ["mine.txt"]
    assert not (tmp_path / "ev" / "runs").exists() and not (tmp_path / "ev" / "config.json").exists()


def test_a_composed_clip_named_as_a_real_clip_is_refused():
    from vinpaint.evaluation.evaluate import check_clip_folders

    def clip(name):
        return compose.ComposedClip(name, np.zeros((2, 4, 4, 3), np.uint8), np.zeros((2, 4, 4), bool), None)

    with pytest.raises(InputError, match=r"the composed clip 'obj' and the real clip 'obj' would share one folder "
                                         r"of runs \(runs/obj\)"):
        check_clip_folders([clip("obj")], [clip("obj")])
    with pytest.raises(InputError, match=r"the real clip 'obj' and the real clip 'OBJ' would share"):
        check_clip_folders([], [clip("obj"), clip("OBJ")])
    check_clip_folders([clip("00_pan_obj")], [clip("obj")])


# ---- 4. method labels name folders of their own --------------------------------------------------------------------

@pytest.mark.parametrize("methods, says", [
    ("a b=dip-vid:train.learning_rate=0.002,a_b=dip-vid",
     r"the method labels 'a b' and 'a_b' would share one folder of runs \(runs/<clip>/a_b: characters other than "
     r"letters, digits, '-', '_' and '\.' become '_', and a label is cut at 80\); give them labels that differ "
     r"there\.$"),
    ("A=dip-vid,a=dip-vid", r"the method labels 'A' and 'a' would share one folder of runs \(runs/<clip>/a: they "
                            r"differ only in case"),
    ("x" * 80 + "1=dip-vid," + "x" * 80 + "2=dip-vid", r"the method labels 'x{80}1' and 'x{80}2' would share"),
    ("..=dip-vid", r"the method label '\.\.' names no folder of its own \(its runs would go in runs/<clip>/\.\.\); "
                   r"give it a label with a letter or digit\.$"),
    (".=telea", r"the method label '\.' names no folder of its own"),
    ("x=dip-vid,x=telea", r"two methods share the label 'x'; name them with LABEL=VARIANT:\.\.\.$"),
])
def test_method_labels_sharing_a_folder_are_refused_before_any_work(tmp_path, data, capsys, methods, says):
    """Before: `a b` and `a_b` both ran in runs/<clip>/a_b, each moving the other's runs aside, and results.csv
    gave one method's numbers to both; `..` ran in runs/ itself and ended in "Device or resource busy"."""
    refused(capsys, ["eval", "--data", data, "-o", tmp_path / "ev", "--profile", "tiny", "--methods", methods],
            says)
    assert not (tmp_path / "ev").exists()


def test_distinct_labels_keep_distinct_folders():
    EvalConfig(methods=["a-b=dip-vid", "a_b=dip-vid", "a.b=telea", "dip-vid"]).method_specs()


# ---- 6. eval writes whole files, and says a damaged config.json as such -------------------------------------------

def test_eval_writes_its_config_and_results_whole(tmp_path, data, capsys):
    """Before: config.json and results.md were written in place: a kill in the middle left a truncated
    config.json, and the folder was then refused as a stranger's."""
    args = ["eval", "--data", str(data), "-o", str(tmp_path / "ev"), "--profile", "tiny", "--methods", "telea",
            "--frames", "8", "--no-pictures"]
    assert main(args) == 0
    held = {name: os.stat(tmp_path / "ev" / name).st_ino for name in ("config.json", "results.md")}
    assert main(args) == 0  # continued: each file replaced by a rename, never rewritten where it lies
    assert all(os.stat(tmp_path / "ev" / name).st_ino != ino for name, ino in held.items())
    capsys.readouterr()
    (tmp_path / "ev" / "config.json").write_text('{"profile": "tiny", "pre')  # as a kill mid-write left it
    before = digests(tmp_path / "ev")
    refused(capsys, args, r"\S+ev/config.json is damaged \(empty or not JSON\), so the evaluation in \S+ev cannot "
                          r"be told; delete that file to continue it with the same command \(it is written again\), "
                          r"or give a new -o\.$")
    assert digests(tmp_path / "ev") == before
    (tmp_path / "ev" / "config.json").unlink()  # the way forward the sentence gives
    assert main(args) == 0
    assert json.loads((tmp_path / "ev" / "config.json").read_text())["profile"] == "tiny"


def test_a_damaged_config_json_of_an_evaluation_is_said_as_such(tmp_path, data, capsys):
    from vinpaint.cli.commands_eval import earlier_evaluation

    out = tmp_path / "ev"
    composed_set(out, data, "composed")  # what eval writes first, before its config.json
    assert earlier_evaluation(out)  # a run cut short before config.json: continued
    (out / "config.json").write_text("")
    with pytest.raises(InputError, match=r"config.json is damaged \(empty or not JSON\)"):
        earlier_evaluation(out)
    (out / "notes.txt").write_text("mine")  # a folder with the user's files is no evaluation's
    assert not earlier_evaluation(out)
    (out / "notes.txt").unlink()
    (out / "config.json").unlink()
    assert earlier_evaluation(out)
    mine = tmp_path / "mine"  # an empty config.json of a user's own folder: a stranger's folder, as before
    mine.mkdir()
    (mine / "config.json").write_text("")
    assert not earlier_evaluation(mine)


# ---- 2, 3. the demo never writes in a user's folder ----------------------------------------------------------------

DEMO = ["demo", "--frames", "4", "--preset", "tiny", "--quiet"]


def test_demo_refuses_a_users_folder_as_its_work_directory(tmp_path, capsys):
    """Before: `demo --work-dir uw` (or OUT/result.work made by the user) replaced uw/config.json."""
    uw = tmp_path / "uw"
    uw.mkdir()
    (uw / "config.json").write_text('{"mine": 1}')
    refused(capsys, [*DEMO, "-o", tmp_path / "d1", "--work-dir", uw],
            rf"the work directory \S+uw holds files that vinpaint did not put there \(it has no run.json\)")
    out = tmp_path / "d2"
    (out / "result.work").mkdir(parents=True)
    (out / "result.work" / "notes.txt").write_text("mine")
    refused(capsys, [*DEMO, "-o", out], r"the work directory \S+d2/result.work holds files that vinpaint did not put")
    assert (uw / "config.json").read_text() == '{"mine": 1}' and os.listdir(uw) == ["config.json"]
    assert os.listdir(out) == ["result.work"] and os.listdir(out / "result.work") == ["notes.txt"]
    assert not (tmp_path / "d1").exists()


def test_demo_refuses_a_folder_of_the_users_frames_named_result(tmp_path, capsys):
    """Before: any name starting with `result.` was taken for the demo's, and the demo wrote among a user's
    result.0000.png ..."""
    ufr = tmp_path / "ufr"
    for i in range(3):
        _png(ufr / f"result.{i:04d}.png", np.full((8, 8, 3), 40 * i, np.uint8))
    (ufr / ".result.notes").write_text("mine")
    before = digests(ufr)
    refused(capsys, [*DEMO, "-o", ufr], r"output folder \S+ufr holds \.result\.notes and 3 more, which the demo did "
                                        r"not write")
    assert digests(ufr) == before
    from vinpaint.cli.commands_demo import _the_demos

    assert all(_the_demos(n) for n in ("sample", "result", "result.mp4", "result.work", "result.config.json",
                                       "result.before_after.png", "result.loss.png", "result.matte",
                                       "result.incomplete.txt", ".result.mp4.ab_d12z9.partial.mp4",
                                       ".result.k2j4m5n6.old", ".result.k2j4m5n6.partial"))
    assert not any(_the_demos(n) for n in ("result.0000.png", "result.txt", ".result.notes", "result.mp4.bak"))


# ---- 5. bench checks its outputs again before writing them, and writes them whole ---------------------------------

BENCH = ["bench", "--preset", "tiny", "--size", "128x64", "--frames", "4", "--steps", "2", "--warmup", "0",
         "--variants", "dip-vid", "--threads", "1"]
ROW = {"variant": "dip-vid", "label": "dip-vid", "batch": 3, "seconds_per_step": 0.5, "cpu_seconds_per_step": 0.5,
       "flow_seconds": 0.1, "peak_rss_mb": 100.0, "rss_before_mb": 90.0, "device": "cpu", "threads": 1,
       "size": "128x64"}


def test_bench_never_replaces_a_file_put_there_during_the_timing(tmp_path, capsys, monkeypatch):
    """Before: bench checked its outputs, timed for minutes, then wrote bench.md over the notes a user had put in
    the folder meanwhile."""
    from vinpaint.evaluation import bench

    out = tmp_path / "bo"

    def timing(cfg, echo=print):  # the user saves notes there while the variants are timed
        out.mkdir(exist_ok=True)
        (out / "bench.md").write_text("# my own numbers")
        return [ROW]

    monkeypatch.setattr(bench, "run_all", timing)
    refused(capsys, [*BENCH, "-o", out], r"output \S+bo/bench.md exists and was not written by vinpaint bench; give "
                                         r"another --output folder \(found after the timing, whose numbers are "
                                         r"printed above and written nowhere\)\.$")
    assert os.listdir(out) == ["bench.md"] and (out / "bench.md").read_text() == "# my own numbers"


def test_bench_replaces_its_own_files_whole(tmp_path, monkeypatch, capsys):
    """bench.json and bench.md are written beside and renamed into place: a kill leaves the earlier ones whole."""
    from vinpaint.evaluation import bench

    monkeypatch.setattr(bench, "run_all", lambda cfg, echo=print: [ROW])
    out = tmp_path / "bo"
    assert main([*BENCH, "-o", str(out)]) == 0
    held = {name: os.stat(out / name).st_ino for name in ("bench.json", "bench.md")}
    assert main([*BENCH, "-o", str(out)]) == 0
    assert all(os.stat(out / name).st_ino != ino for name, ino in held.items())
    assert "| dip-vid | 3 |" in (out / "bench.md").read_text()
    assert json.loads((out / "bench.json").read_text())["rows"] == [ROW]


@pytest.mark.parametrize("name", ["bench.md", "bench.json"])
def test_bench_does_not_replace_its_own_file_edited_since(tmp_path, monkeypatch, capsys, name):
    """bench.json and bench.md carry vinpaint's mark with a digest: notes a user added to an earlier bench.md were
    replaced by the next run without a word (a hunt, 2026-12-03; bench.json alone said the folder was bench's)."""
    from vinpaint.evaluation import bench

    monkeypatch.setattr(bench, "run_all", lambda cfg, echo=print: [ROW])
    out = tmp_path / "bo"
    assert main([*BENCH, "-o", str(out)]) == 0
    capsys.readouterr()
    text = (out / name).read_text()
    edited = text.replace("dip-vid", "dip-vid (my note)", 1)
    (out / name).write_text(edited)
    refused(capsys, [*BENCH, "-o", out], rf"output \S+bo/{name} was written by vinpaint bench but changed since; "
                                         r"give another --output folder, or move it away to keep it\.$")
    assert (out / name).read_text() == edited


@pytest.mark.parametrize("setting, said", [
    (["--set", "train.nonsense=3"], r"--set: unknown setting 'train\.nonsense'$"),
    (["--set", "train.learning_rate=-1"], r"--set: setting train\.learning_rate must be a finite number above 0"),
    (["--methods", "x=dip-vid:train.nonsense=1"], r"--set or method x's overrides: unknown setting 'train\.nonsense'$"),
])
def test_eval_refuses_a_bad_setting_before_it_composes_or_writes_anything(data, tmp_path, capsys, setting, said):
    """Before: the set was composed and config.json written, then the first run said "unknown setting"."""
    out = tmp_path / "ev"
    refused(capsys, ["eval", "--data", data, "-o", out, "--profile", "tiny", "--budgets", "", "--no-pictures",
                     *setting], said)
    assert not out.exists()


def test_demo_says_when_its_sample_folders_name_is_taken_by_a_file(tmp_path, capsys):
    """Before: "File exists: OUT/sample.", after the outputs were checked and locked."""
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "sample").write_text("mine")
    refused(capsys, ["demo", "-o", tmp_path / "d", "--frames", "4", "--preset", "tiny", "--quiet"],
            r"\S+sample is not a folder, and the demo writes its sample clip into a folder of that name; move it, "
            r"or give another -o\.$")
    assert os.listdir(tmp_path / "d") == ["sample"] and (tmp_path / "d" / "sample").read_text() == "mine"
