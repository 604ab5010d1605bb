"""The node's optional Reference clip and its Matte output, through our OFX host harness, the real bundle and a real
daemon: frames where the Reference clip has an image go to the daemon as reference frames (the C++ content hash
with references equals the Python client's), the painted frame renders as painted, and Output "Matte" shows how
each hole pixel was filled (white propagated, grey generated), as the daemon's matte layer says."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from test_plugin_harness import (FRAMES, PRESET_TINY, STREAM_SETTINGS, build_plugin, harness, load, start_daemon,
                                 stop_daemon, tennis_clip)

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake is not installed")]
PAINTED = 5          # 0-based index of the painted frame; the host's frame PAINTED + 1
PAINT = np.array([40, 90, 200], np.uint8)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    build_plugin()
    root = tmp_path_factory.mktemp("refclip")
    frames, holes = tennis_clip(seed=1)
    painted = frames[PAINTED].copy()
    painted[holes[PAINTED]] = PAINT
    for sub in ("source", "mask", "reference"):
        (root / sub).mkdir()
    for i in range(FRAMES):
        np.save(root / "source" / f"{i:05d}.npy", frames[i])
        np.save(root / "mask" / f"{i:05d}.npy", holes[i].astype(np.uint8) * 255)
    np.save(root / "reference" / "00000.npy", painted)
    daemon = start_daemon(tmp_path_factory.mktemp("refdaemon") / "store")
    try:
        yield root, frames, holes, painted, daemon
    finally:
        stop_daemon(daemon)


def test_reference_clip_frames_are_sent_as_references_and_matte_renders(setup, tmp_path: Path) -> None:
    from vinpaint.host_bridge.client import Client

    root, frames, holes, painted, daemon = setup
    args = ["--source", str(root / "source"), "--mask", str(root / "mask"), "--depth", "byte",
            "--daemon", daemon.endpoint, "--reference", str(root / "reference"),
            "--reference-first-frame", str(PAINTED + 1)]
    run = harness(*args, "--param", f"preset={PRESET_TINY}", "--out", str(tmp_path / "a"), "--watchdog", "600",
                  "--steps", "describe,create,train,wait:600,render-all,destroy,unload")
    assert run.steps["train"]["status"] == "OK", run.stdout[-3000:]
    assert run.event("summary")["ok"], run.stdout[-3000:]
    assert run.event("describe")["clips"]["Reference"]["optional"] == 1
    assert [e for e in run.events if e.get("event") == "refused"] == []
    job = run.steps["train"]["job"]
    with Client(daemon.endpoint) as client:
        # The C++ hash over frames, masks and the one reference equals the reference implementation's.
        same = client.submit(frames, holes, preset="tiny", mask_dilation=0, mask_feather=0,
                             references={PAINTED: painted})
        assert same == job
        status = client.status(job)
        assert status["state"] == "done" and status["missing_references"] == 0
        results = client.results(job)
        mattes = client.results(job, layer="matte")[..., 0]
    for f in range(1, FRAMES + 1):
        out, src = load(tmp_path / "a", "output", f), load(tmp_path / "a", "source", f)
        assert np.array_equal(out[..., :3], results[f - 1])
        assert np.array_equal(out[~holes[f - 1]], src[~holes[f - 1]])
    assert np.array_equal(load(tmp_path / "a", "output", PAINTED + 1)[..., :3], painted), "rendered as painted"
    assert not mattes[PAINTED].any() and mattes[PAINTED - 1].any()

    # A proxy render of the painted frame: its matte is empty (the painting replaced its hole), yet it must show
    # the painting, not the host's proxy of the plate with the object in it.
    proxy = harness(*args, "--param", f"jobId={job}", "--param", "jobFirstFrame=1", "--scale", "0.5",
                    "--out", str(tmp_path / "p"), "--steps", f"describe,create,render:{PAINTED + 1},destroy,unload")
    assert proxy.event("summary")["ok"], proxy.stdout[-3000:]
    out = load(tmp_path / "p", "output", PAINTED + 1)[..., :3].astype(float)
    h, w = out.shape[:2]
    halves = painted.reshape(h, 2, w, 2, 3).astype(float).mean(axis=(1, 3))  # the painting, averaged 2x2
    assert np.abs(out - halves).max() <= 1.0

    matte_run = harness(*args, "--param", f"jobId={job}", "--param", "jobFirstFrame=1", "--param", "output=3",
                        "--out", str(tmp_path / "m"), "--steps", "describe,create,render-all,destroy,unload")
    assert matte_run.event("summary")["ok"], matte_run.stdout[-3000:]
    grey = {0: 0, 1: 255, 2: 128}
    for f in range(1, FRAMES + 1):
        out = load(tmp_path / "m", "output", f)
        want = np.vectorize(grey.get)(mattes[f - 1]).astype(np.uint8)
        for c in range(3):
            assert np.array_equal(out[..., c], want), f
        assert np.all(out[..., 3] == 255)


def test_a_streaming_train_sends_each_reference_with_its_frame(setup, tmp_path: Path) -> None:
    """A long shot (three windows through Engine settings) is started before its upload; the painted frame goes
    up right after its own frame and mask, not at the end, since its window cannot train without it; the frame
    renders as painted."""
    root, frames, holes, painted, daemon = setup
    run = harness("--source", str(root / "source"), "--mask", str(root / "mask"), "--depth", "byte",
                  "--daemon", daemon.endpoint, "--reference", str(root / "reference"),
                  "--reference-first-frame", str(PAINTED + 1), "--param", f"preset={PRESET_TINY}",
                  "--param", f"engineSettings={STREAM_SETTINGS}", "--out", str(tmp_path), "--watchdog", "600",
                  "--steps", f"describe,create,train,wait:600,render:{PAINTED + 1},destroy,unload")
    assert run.event("summary")["ok"], run.stdout[-3000:]
    folder = daemon.store / "jobs" / run.steps["train"]["job"]
    assert json.loads((folder / "job.json").read_text())["stream"] is True
    inputs = folder / "inputs"
    mtime = {p.relative_to(inputs).as_posix(): p.stat().st_mtime_ns for p in inputs.rglob("*.bin")}
    reference = mtime[f"references/{PAINTED:05d}.bin"]
    assert mtime[f"masks/{PAINTED:05d}.bin"] <= reference <= mtime[f"frames/{PAINTED + 1:05d}.bin"], mtime
    assert np.array_equal(load(tmp_path, "output", PAINTED + 1)[..., :3], painted)


@pytest.mark.parametrize("source_components", ["RGB", "RGBA"])
def test_a_painting_transparent_over_the_hole_is_refused(setup, tmp_path: Path, source_components: str) -> None:
    """A painting on a transparent layer (RGBA, alpha 0 where nothing was painted) connected beside an RGB or RGBA
    plate: it reaches the node with its alpha (the node asks for the Reference's own components), and where its
    alpha is below one half over the hole, Train refuses before anything is uploaded, saying which frame and how
    many hole pixels, since a reference is taken whole over its frame's hole. The same painting made opaque over
    the hole (transparent elsewhere) is accepted and sent, and so is one whose alpha is 0 everywhere (an RGB file
    in a host that hands every clip over as RGBA, as Nuke does: that alpha means nothing)."""
    from vinpaint.host_bridge.client import Client

    root, frames, holes, painted, daemon = setup
    layer = np.zeros((*painted.shape[:2], 4), np.uint8)
    layer[..., :3] = painted
    ys, xs = np.nonzero(holes[PAINTED])
    cover = holes[PAINTED].copy()
    cover[ys[0], xs[0]] = cover[ys[-1], xs[-1]] = False  # two hole pixels left unpainted
    layer[cover, 3] = 255
    covered = layer.copy()
    covered[holes[PAINTED], 3] = 255
    blank = layer.copy()
    blank[..., 3] = 0  # an RGB painting as Nuke hands it over (RGBA, alpha 0 everywhere): no alpha at all
    for name, image in (("partial", layer), ("covered", covered), ("blank", blank)):
        (tmp_path / name).mkdir()
        np.save(tmp_path / name / "00000.npy", image)
    base = ["--source", str(root / "source"), "--mask", str(root / "mask"), "--depth", "byte",
            "--components", source_components, "--reference-components", "RGBA", "--daemon", daemon.endpoint,
            "--reference-first-frame", str(PAINTED + 1), "--param", f"preset={PRESET_TINY}"]
    with Client(daemon.endpoint) as client:
        before = {j["job"] for j in client.list_jobs()}
    refused = harness(*base, "--reference", str(tmp_path / "partial"), "--expect-failure", "train",
                      "--steps", "describe,create,train,destroy,unload")
    prefs = refused.event("clip_preferences")["clips"]
    assert prefs["Reference"]["components"] == "OfxImageComponentRGBA", prefs
    assert refused.steps["train"]["status"] == "Failed", refused.stdout[-3000:]
    line = refused.steps["train"]["status_param"]
    assert f"frame {PAINTED + 1} is transparent over 2 of the {int(holes[PAINTED].sum())} hole pixels" in line, line
    with Client(daemon.endpoint) as client:
        assert {j["job"] for j in client.list_jobs()} == before, "nothing was opened or uploaded"

    jobs = []
    for name in ("covered", "blank"):
        accepted = harness(*base, "--reference", str(tmp_path / name), "--watchdog", "600",
                           "--steps", "describe,create,train,destroy,unload")
        assert accepted.steps["train"]["status"] == "OK", (name, accepted.stdout[-3000:])
        jobs.append(accepted.steps["train"]["job"])
    assert jobs[0] == jobs[1]  # the same colour went up
    with Client(daemon.endpoint) as client:
        assert client.status(jobs[0])["missing_references"] == 0
        # The painting's colour went up whole: the same clip from Python, with the RGB painting, is this job.
        assert client.submit(frames, holes, preset="tiny", mask_dilation=0, mask_feather=0,
                             references={PAINTED: painted}) == jobs[0]


def test_renders_follow_the_references_train_sent_not_the_reference_input_now(setup, tmp_path: Path) -> None:
    """Which frames are painted is what Train sent, kept with the job (the hidden parameter jobReferences, saved
    with the project), not the Reference input as it is at render time. Before, a render decided from the live
    input: with the Reference disconnected after Train (the painting done, the graph cleaned up), and in the
    project reopened, the painted frame showed the Source in its hole with a false "the Source has changed since
    Train" (its matte is empty: the painting replaced its hole), and another painting connected there later said
    nothing. Now the trained frame renders at every frame whatever the input is, and the node warns only where the
    input holds a painting Train did not send: another one at a painted frame, or one at a frame sent none."""
    from vinpaint.host_bridge.client import Client

    root, frames, holes, painted, daemon = setup
    other = painted.copy()
    other[holes[PAINTED]] = [200, 30, 30]
    (tmp_path / "other").mkdir()
    np.save(tmp_path / "other" / "00000.npy", other)
    frame, later = PAINTED + 1, PAINTED + 3  # the painted frame (host numbers), and one Train sent no painting for
    steps = ["describe", "create", "train", "wait:600",
             f"out:{tmp_path}/connected", f"render:{frame}",
             "reference:none", f"out:{tmp_path}/disconnected", f"render:{frame}", f"render:{later}",
             "reopen", f"out:{tmp_path}/reopened", f"render:{frame}",
             f"reference:{tmp_path / 'other'}@{frame}", f"out:{tmp_path}/other", f"render:{frame}",
             f"reference:{root / 'reference'}@{later}", f"out:{tmp_path}/moved", f"render:{later}",
             f"reference:{root / 'reference'}@{frame}", f"out:{tmp_path}/back", f"render:{frame}",
             "destroy", "unload"]
    run = harness("--source", str(root / "source"), "--mask", str(root / "mask"), "--depth", "byte",
                  "--daemon", daemon.endpoint, "--reference", str(root / "reference"),
                  "--reference-first-frame", str(frame), "--param", f"preset={PRESET_TINY}", "--watchdog", "600",
                  "--steps", ",".join(steps))
    assert run.event("summary")["ok"], run.stdout[-3000:]
    assert [e for e in run.events if e.get("event") == "refused"] == []
    renders = [e for e in run.events if e.get("event") == "step" and e["step"].startswith("render:")]
    assert [e["status"] for e in renders] == ["OK"] * 7, renders
    said = [e["persistent"] for e in renders]
    with Client(daemon.endpoint) as client:
        results = client.results(run.steps["train"]["job"])
    assert np.array_equal(results[PAINTED], painted)

    def output(folder: str, f: int) -> np.ndarray:
        return load(tmp_path / folder, "output", f)[..., :3]

    for k, folder in enumerate(("connected", "disconnected")):
        assert np.array_equal(output(folder, frame), painted), folder
        assert said[k] == "", (folder, said[k])
    assert np.array_equal(output("disconnected", later), results[later - 1]) and said[2] == "", said[2]
    assert np.array_equal(output("reopened", frame), painted) and said[3] == "", said[3]
    # Another painting connected at the painted frame: the trained frame, and a warning to press Train.
    assert np.array_equal(output("other", frame), painted)
    assert f"Reference painting at frame {frame} has changed since Train" in said[4] and "Press Train" in said[4]
    # A painting at a frame Train sent none for: the trained fill in the hole, the Source outside, and a warning.
    moved = output("moved", later)
    hole = holes[later - 1]
    assert np.array_equal(moved[hole], results[later - 1][hole])
    assert np.array_equal(moved[~hole], frames[later - 1][~hole])
    assert f"a painting at frame {later} that Train did not send" in said[5], said[5]
    assert np.array_equal(output("back", frame), painted) and said[6] == "", said[6]
