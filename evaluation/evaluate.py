"""`vinpaint eval`: compose clips, run every method, score them as the paper does, draw, and write the table."""
from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import time
from pathlib import Path

import numpy as np

from vinpaint.errors import InputError, OtherRunError
from vinpaint.files import atomic_write_text, first_folder_clash
from vinpaint.engine import InpaintConfig, inpaint
from vinpaint.engine.config import FLOW_OFFSETS
from vinpaint.engine.flow import KnownFlow
from vinpaint.evaluation import baselines, compose, dataset, metrics, pictures, report
from vinpaint.evaluation.config import EvalConfig, MethodSpec, folder_name
from vinpaint.evaluation.runner import Snapshot, check_job, make_jobs, run_jobs


BASELINE_NOTES = {"prop-telea": "propagation from other frames, Telea for the unseen rest; no training"}
"""What a baseline row's note says when it is not the plain frame-wise OpenCV fill."""


def load_composed(data: Path, out: Path, cfg: EvalConfig, composed: Path | None, echo) -> list[compose.ComposedClip]:
    """An existing composed set (a folder with manifest.json), or a new one drawn from `data` into out/composed.

    OUT's runs and results belong to the set in out/composed: a set that differs from it (another --data, --seed,
    --frames, --size ...) is refused before anything in OUT is written (`check_same_set`)."""
    target = out / "composed"
    existing = target / "manifest.json"
    if composed is not None:
        manifest = compose.load_manifest(composed / "manifest.json")
        if existing.is_file():
            check_same_set(compose.load_manifest(existing), manifest, out, f"the set {composed}")
        clips = compose.read_set(composed)
        check_recorded_set(out, manifest, clips, composed, echo)
        return clips
    manifest = json.loads(json.dumps(compose.make_manifest(data, cfg.compose)))  # as it reads back from disk
    if existing.is_file():
        held = compose.load_manifest(existing)
        check_same_set(held, manifest, out, f"--data {data}")
        if not compose.interrupted_set(target):  # else stopped while written: written again below
            stored = check_same_pixels(data, held, target, out)
            if held == manifest:
                return stored if stored is not None else compose.read_set(target)
    echo(f"composing {len(manifest['clips'])} clips into {target}")
    compose.write_set(data, manifest, target)
    return compose.read_set(target)


SET_OPTIONS = {"seed": "--seed", "frames": "--frames", "size": "--size",
               "backgrounds": "--backgrounds", "mask_sources": "--mask-sources"}
"""The option that sets each field of a composed set's config (the rest come with the profile)."""


def set_difference(held: dict, wanted: dict) -> str | None:
    """How the composed set `wanted` differs from `held`, or None when its clips are the same: a set is its clips
    (entries and the size they are made at), so `--clips` alone, which draws the first clips alike, adds or leaves
    off clips at the end, and `--backgrounds bg/tree` where tree is the only one changes nothing."""
    a, b = held.get("config", {}), wanted.get("config", {})
    pairs = list(zip(held["clips"], wanted["clips"]))
    if all(x == y for x, y in pairs) and all(a.get(k) == b.get(k) for k in ("width", "height", "fill")):
        return None
    changed = [k for k in sorted(set(a) | set(b)) if k != "count" and a.get(k) != b.get(k)]
    if "width" in changed or "height" in changed:  # one option, one clause
        changed = ["size"] + [k for k in changed if k not in ("width", "height")]
        a = {**a, "size": f"{a.get('width')}x{a.get('height')}"}
        b = {**b, "size": f"{b.get('width')}x{b.get('height')}"}
    if changed:  # the options that drew it otherwise
        return "; ".join(f"{SET_OPTIONS.get(k, k)}: {_shown(b.get(k))} here, {_shown(a.get(k))} there"
                         for k in changed)
    for e_held, e_wanted in pairs:  # the same options on other data
        if e_held["name"] != e_wanted["name"]:
            return f"the clip drawn first there is {e_held['name']}, here {e_wanted['name']}"
        fields = [k for k in sorted(set(e_held) | set(e_wanted)) if e_held.get(k) != e_wanted.get(k)]
        if fields:
            return f"clip {e_held['name']} is drawn with other {', '.join(fields)}"
    return "its clips differ"


def _shown(value) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value)) or "all"
    return str(value)


def check_same_set(held: dict, wanted: dict, out: Path, source: str) -> None:
    """Refuse, before anything in OUT is written, a composed set other than the one OUT's runs and results belong
    to: composing it would replace that set and then stop on (or mix in) the runs made from it."""
    difference = set_difference(held, wanted)
    if difference is not None:
        raise InputError(f"{out} holds an evaluation of another composed set than {source} makes ({difference}); "
                         f"its runs and results belong to that set, so give a new -o for this one (or delete {out} "
                         "to start over).")


RECORDED_SET = "composed_set.json"
"""In OUT, for a set given with --composed (it stays where it is): its manifest and a digest of its clips."""


def check_recorded_set(out: Path, manifest: dict, clips: list[compose.ComposedClip], composed: Path,
                       echo=print) -> None:
    """A set given with --composed is recorded in OUT (its manifest, a digest per clip), and another set, or the
    same folder composed again, is refused after; more clips of the same draw (--clips) continue it, as with
    --data. Before (2026-12-02) nothing recorded it, and a second set's results replaced the first's in OUT."""
    digests = {}
    for clip in clips:
        digest = hashlib.sha256()
        for array in (clip.frames, clip.masks, clip.truth):
            digest.update(np.ascontiguousarray(array).tobytes())
        digests[clip.name] = digest.hexdigest()
    record = out / RECORDED_SET
    if record.is_file():
        try:
            held = json.loads(record.read_text(encoding="utf-8"))
            held_manifest, held_digests = held["manifest"], dict(held["digests"])
        except (OSError, ValueError, TypeError, KeyError):
            raise InputError(f"{record} is damaged, so the set evaluated in {out} cannot be told; give a new -o (or "
                             f"delete {out} to start over).") from None
        check_same_set(held_manifest, manifest, out, f"the set {composed}")
        if any(held_digests.get(name, digest) != digest for name, digest in digests.items()):
            raise InputError(f"{out} holds an evaluation of another composed set: the clips in {composed} are not "
                             "the ones evaluated there (composed again since?); its runs and results belong to that "
                             f"set, so give a new -o for this one (or delete {out} to start over).")
        digests = {**held_digests, **digests}
    elif (out / "results.csv").is_file():
        echo(f"warning: {out} holds an evaluation made before sets given with --composed were recorded; it is taken "
             f"to be of {composed}, which cannot be checked")
    atomic_write_text(record, json.dumps({"set": str(composed), "manifest": manifest, "digests": digests},
                                         indent=1) + "\n")


def check_same_pixels(data: Path, held: dict, target: Path, out: Path) -> list[compose.ComposedClip] | None:
    """The same manifest drawn from another data folder (same clip names and lengths, other footage) is still
    another set: each clip of the set in OUT must come out of `data` as it is on disk (a small tolerance lets a
    re-encoded or re-scaled copy of the same footage, or another OpenCV's resampling, pass). Returns the clips it
    read (the set as read_set gives it), or None for a damaged set."""
    clips = []
    for entry in held["clips"]:
        try:
            stored = compose.read_set_clip(target, entry)
        except InputError:
            return None  # a damaged set is composed again, as before
        made = compose.build_clip(data, held, entry)
        same = (stored.frames.shape == made.frames.shape and np.mean(stored.masks != made.masks) <= 0.01
                and np.mean(np.abs(stored.truth.astype(np.int16) - made.truth)) <= 2.0
                and np.mean(np.abs(stored.frames.astype(np.int16) - made.frames)) <= 2.0)
        if not same:
            raise InputError(f"{out} holds an evaluation of another composed set: its clip {entry['name']} was not "
                             f"made from the footage in --data {data}; its runs and results belong to that set, so "
                             f"give a new -o for this one (or delete {out} to start over).")
        clips.append(stored)
    return clips


def load_real(data: Path, cfg: EvalConfig) -> list[compose.ComposedClip]:
    """Real masked clips at working size (first `real_frames` frames); truth is None."""
    out = []
    for name in cfg.real_clips:
        src = dataset.find_clip(data, name)
        folder = cfg.compose.mask_folder if cfg.compose.mask_folder in src.masks else "masks"
        if folder not in src.masks:
            raise InputError(f"the real clip {name} has no mask folder.")
        n = min(cfg.real_frames, dataset.frame_count(src.frames))
        size = (cfg.compose.width, cfg.compose.height)
        out.append(compose.ComposedClip(name, dataset.read_frames(src.frames, list(range(n)), size),
                                        dataset.read_masks(src.masks[folder], list(range(n)), size), None))
    return out


def check_clip_folders(clips: list[compose.ComposedClip], real: list[compose.ComposedClip]) -> None:
    """Each clip has runs/<name>/ and pictures/<name>/ of its own: a composed clip named as a real one (by hand in
    a manifest) or a real clip given twice would run in one folder, each moving the other's runs aside."""
    clash = first_folder_clash([(c, "composed clip") for c in clips] + [(c, "real clip") for c in real],
                               lambda item: item[0].name)
    if clash is not None:
        (first, first_kind), (clip, kind) = clash
        raise InputError(f"the {first_kind} {first.name!r} and the {kind} {clip.name!r} would share one folder of "
                         f"runs (runs/{clip.name}); give the real clips (--real-clips) once each, and composed "
                         "clips names of their own.")


def load_snapshot(snap: Snapshot, clip: compose.ComposedClip):
    """The engine's cached result of a finished snapshot (no training happens here)."""
    wd = Path(snap.workdir)
    cfg = InpaintConfig.load(wd / "config.json")
    try:
        return inpaint(clip.frames, clip.masks, cfg, workdir=wd)
    except OtherRunError as exc:  # the engine's advice names a --work-dir, which eval has not
        if exc.damaged:  # a damaged run.json: said as the engine says it
            raise
        raise OtherRunError(f"{wd} holds a run of {snap.method} on other frames of {clip.name} than this evaluation "
                            "gives it; give a new -o, or move that folder aside to run it again") from None


def score(output: np.ndarray, raw: np.ndarray | None, clip: compose.ComposedClip, cfg: EvalConfig,
          fid_net) -> dict:
    """All metrics of one output video (composited) and its raw generated frames. `raw` None: the run generated
    no whole frames (it trained on a crop around the hole), so its raw columns stay empty rather than score a
    stretched crop against whole frames."""
    row: dict = {}
    c = metrics.temporal_consistency(output, clip.masks, cfg.consistency)
    row["cons_psnr"], row["cons_ssim"] = c
    if raw is not None:
        c = metrics.temporal_consistency(raw, clip.masks, cfg.consistency)
        row["cons_psnr_raw"], row["cons_ssim_raw"] = c
    if clip.truth is not None:
        s = metrics.video_scores(output, clip.truth, clip.masks).means()
        row.update(psnr=s["psnr"], ssim=s["ssim"], psnr_hole=s["psnr_hole"], ssim_hole=s["ssim_hole"])
        if raw is not None:
            s = metrics.video_scores(raw, clip.truth, clip.masks).means()
            row.update(psnr_raw=s["psnr"], ssim_raw=s["ssim"])
        if fid_net is not None:
            if raw is not None:
                row["fid_raw"] = fid_net.video_fid(raw, clip.truth)
            row["fid"] = fid_net.video_fid(output, clip.truth)
    return row


def whole_frame_generation(res) -> np.ndarray | None:
    """The run's raw generation when it covers whole frames; None for a run that could train on a crop around
    the hole (resolution.crop_to_hole), whose generation is the crop at the working size."""
    return None if res.config.resolution.crop_to_hole else res.generated


def _blank() -> dict:
    return {c: math.nan for c in report.NUMERIC}


def evaluate(data: Path, out: Path, cfg: EvalConfig, *, workers: int = 1, composed: Path | None = None,
             echo=print) -> Path:
    """Run the whole evaluation; returns the path of results.md. Re-running continues from what is on disk."""
    cfg.validate()
    cfg = cfg.resolved()
    data, out = Path(data), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    clips = load_composed(data, out, cfg, composed, echo)  # refuses another set before OUT is written
    specs = cfg.method_specs()
    real = load_real(data, cfg)
    check_clip_folders(clips, real)
    size = {c.frames.shape[1:3] for c in clips + real}
    if len(size) != 1:
        raise InputError("all clips must share one working size; compose them with the same --size.")
    atomic_write_text(out / "config.json", cfg.to_json() + "\n")  # cut short, it made OUT a stranger's folder

    fid_net, fid_notice = _fid(cfg)
    echo(fid_notice)

    jobs = []
    for c in clips:
        jobs += make_jobs(cfg, c.name, c.frames, c.masks, out / "runs")
    for c in real:
        jobs += make_jobs(cfg, c.name, c.frames, c.masks, out / "runs", own=True, budgets=[],
                          specs=cfg.real_specs())
    for job in jobs:
        check_job(job)
    if workers > 1 and cfg.clock == "wall":
        echo(f"warning: {workers} runs at once on {cfg.device} with the wall clock: each run's seconds (and its "
             f"budgets) are those of a shared device, not of a run alone; use --jobs 1 for equal-time numbers")
    snaps = run_jobs(jobs, workers, echo)

    schedules = (["own"] if cfg.own_schedule else []) + [f"budget {b:g}s" for b in sorted(cfg.budgets)]
    rows: list[dict] = []
    outputs: dict[tuple[str, str], dict[str, tuple]] = {}  # (clip, schedule) -> method -> (composited, raw, flows)
    by_clip = {c.name: c for c in clips + real}
    for s in snaps:
        clip = by_clip[s.clip]
        res = load_snapshot(s, clip)
        row = {**_blank(), "schedule": s.schedule, "method": s.method, "clip": s.clip,
               "kind": "composed" if clip.truth is not None else "real", "clock_s": s.clock_seconds,
               "wall_s": s.wall_seconds, "cpu_s": s.cpu_seconds, "steps": float(s.steps), "note": s.note}
        raw = whole_frame_generation(res)
        row.update(score(res.frames, raw, clip, cfg, fid_net))
        rows.append(row)
        outputs.setdefault((s.clip, s.schedule), {})[s.method] = (res.frames, raw, None if raw is None else res.flows,
                                                                  Path(s.workdir))
    dilation = int(cfg.overrides.get("mask.dilation", 0))
    real_labels = {s.label for s in cfg.real_specs()}
    for clip in clips + real:
        for spec in specs:
            if spec.kind != "baseline" or (clip.truth is None and spec.label not in real_labels):
                continue
            b = baselines.opencv_inpaint(clip.frames, clip.masks, spec.variant, cfg.baseline_radius, dilation)
            base = {**_blank(), "method": spec.label, "clip": clip.name,
                    "kind": "composed" if clip.truth is not None else "real", "clock_s": b.seconds,
                    "wall_s": b.seconds, "cpu_s": b.cpu_seconds, "steps": 0.0,
                    "note": BASELINE_NOTES.get(spec.variant, "frame-wise OpenCV") + "; raw = composited"}
            base.update(score(b.frames, b.frames, clip, cfg, fid_net))
            for sch in (schedules if clip.truth is not None else ["own"]):
                rows.append({**base, "schedule": sch})
                outputs.setdefault((clip.name, sch), {})[spec.label] = (b.frames, b.frames, None, None)
        if clip.truth is not None:
            ref = {**_blank(), "method": "truth (reference)", "clip": clip.name, "kind": "composed",
                   "note": "consistency of the true background"}
            ref["cons_psnr"], ref["cons_ssim"] = metrics.temporal_consistency(clip.truth, clip.masks,
                                                                              cfg.consistency)
            ref["cons_psnr_raw"], ref["cons_ssim_raw"] = ref["cons_psnr"], ref["cons_ssim"]
            for sch in schedules:
                rows.append({**ref, "schedule": sch})

    order = [s.label for s in specs] + ["truth (reference)"]
    rows.sort(key=lambda r: (r["kind"], schedules.index(r["schedule"]) if r["schedule"] in schedules else 99,
                             r["clip"], order.index(r["method"]) if r["method"] in order else 99))
    means = report.mean_rows(rows)
    report.write_csv(means + rows, out / "results.csv")

    pics = _draw(out, cfg, clips, real, outputs, means, specs, schedules, rows) if cfg.pictures else []
    header = _header(cfg, clips, real, time.monotonic() - started, workers, fid_notice,
                     _training_seconds(snaps, cfg.clock), composed)
    md = report.markdown(header, schedules, means, [r for r in rows if r["kind"] == "composed"],
                         [r for r in rows if r["kind"] == "real"], order, pics)
    atomic_write_text(out / "results.md", md)
    echo(f"wrote {out / 'results.md'} and {out / 'results.csv'}")
    return out / "results.md"


def _fid(cfg: EvalConfig):
    from vinpaint.evaluation import fid

    path = fid.find_inception(cfg.inception or None)
    if path is None:
        return None, (f"FID skipped: no Inception weights file (give --inception PATH or set {fid.ENV_VAR}; "
                      "a TorchScript inception-2015-12-05.pt)")
    return fid.InceptionFeatures(path), f"FID with Inception weights {path}"


def _training_seconds(snaps: list[Snapshot], kind: str = "cpu") -> float:
    """CPU (or wall) seconds all training took: a paused run's snapshots share one run (take its last), DIP runs
    add up."""
    runs: dict[tuple[str, str], list[Snapshot]] = {}
    for s in snaps:
        runs.setdefault((s.clip, s.method), []).append(s)
    total = 0.0
    for group in runs.values():
        fresh = all("iterations per frame" in s.note for s in group)  # DIP: one fresh run per snapshot
        seconds = [s.cpu_seconds if kind == "cpu" else s.wall_seconds for s in group]
        total += sum(seconds) if fresh else max(seconds)
    return total


def _header(cfg: EvalConfig, clips, real, seconds: float, workers: int, fid_notice: str,
            training_seconds: float = 0.0, composed: Path | None = None) -> list[str]:
    c, k = cfg.compose, cfg.consistency
    t = clips[0].frames.shape[0] if clips else cfg.real_frames
    # the set's own size and origin: one given with --composed was drawn with its own settings, not the profile's
    # (before, 2026-12-03, the report named the profile's size and a manifest that was not there)
    height, width = clips[0].frames.shape[1:3] if clips else (c.height, c.width)
    drawn = (f"The composed set `{composed}` (its manifest recorded in `{RECORDED_SET}`)." if composed is not None
             else f"Composed clips drawn with seed {c.seed} (manifest in `composed/manifest.json`).")
    clock = ("CPU seconds of the training process at 1 torch thread (= wall seconds on an idle core; other jobs "
             "on the machine do not eat into it)" if cfg.clock == "cpu" and cfg.threads == 1 else
             "CPU seconds of the training process" if cfg.clock == "cpu" else f"wall-clock seconds on {cfg.device}")
    return [
        f"# Evaluation ({cfg.profile} profile): {len(clips)} composed clips of {t} frames at {width}x{height}",
        "",
        f"- Engine preset `{cfg.preset}`; engine overrides {cfg.overrides or 'none'}; seed {cfg.seed}. {drawn}",
        f"- Schedules: `own` = each method's own schedule from the preset (steps, no time cap); "
        f"`budget Ns` = every method stopped after N seconds of {clock}; flow estimation counts.",
        "- Columns: *raw* = the network's generated frames, scored on the full frame: what the paper's Table 1 "
        "reports (authors' issue #9). *composited* = generated pixels only inside the hole (what a user gets). "
        "*in the hole* = only the composed mask's pixels (raw and composited agree there). Consistency: "
        f"{k.patch}x{k.patch} patches ({k.patches_per_frame} per frame) in the hole at t, best PSNR match within "
        f"±{k.radius} px at t+1 (SSIM scored at that match), on the composited output (raw in the CSV). "
        "PSNR/SSIM are per-frame values averaged per video, then over videos.",
        f"- {fid_notice}.",
        *[f"- Row `{m.label}`: variant {m.variant} with " + "; ".join(f"{k}={v}" for k, v in m.overrides) + "."
          for m in cfg.method_specs() if m.overrides],
        f"- Baselines: OpenCV `cv2.inpaint` frame by frame, radius {cfg.baseline_radius}.",
        *([f"- Real clips (no truth, own schedules): {', '.join(c.name for c in real)}, the first "
           f"{real[0].frames.shape[0]} frames; methods: {', '.join(s.label for s in cfg.real_specs())}."]
          if real else []),
        f"- Machine: {platform.machine()}, {os.cpu_count()} cores, engine methods trained on {cfg.device}, "
        f"torch threads per run {cfg.threads or 'default'}, "
        f"{workers} run(s) in parallel{SHARED if workers > 1 and cfg.clock == 'wall' else ''}; this evaluation "
        f"took {seconds / 60:.1f} min of wall time (earlier runs found on disk are reused).",
        f"- Training took {training_seconds:.0f} CPU seconds in all (single-threaded runs): "
        f"{training_seconds / 60 / max(1, os.cpu_count() or 1):.0f} min on {os.cpu_count()} idle cores running "
        f"{os.cpu_count()} jobs side by side." if cfg.clock == "cpu" else
        f"- Training took {training_seconds:.0f} wall seconds in all on {cfg.device}.",
    ]


SHARED = " sharing the device (wall clock: each run's seconds are a shared device's)"


def _frames_to_show(hole: np.ndarray) -> list[int]:
    with_hole = [i for i in range(hole.shape[0]) if hole[i].any()] or list(range(hole.shape[0]))
    return sorted({with_hole[0], with_hole[len(with_hole) // 2], with_hole[-1]})


def _draw(out: Path, cfg: EvalConfig, clips, real, outputs, means, specs, schedules,
          rows_all: list[dict]) -> list[str]:
    written: list[str] = []
    order = [s.label for s in specs]
    width = (clips + real)[0].frames.shape[2]
    zoom = max(1, 256 // width)  # small working sizes are drawn enlarged (nearest neighbour) to stay readable

    def save(rel: Path, image: np.ndarray) -> None:
        if zoom > 1:
            image = np.repeat(np.repeat(image, zoom, axis=0), zoom, axis=1)
        pictures.save(out / rel, image)
        written.append(str(rel))

    shown = [s for s in schedules if s == "own"] + ([schedules[-1]] if schedules and schedules[-1] != "own" else [])
    for clip in clips + real:
        for sch in (shown if clip.truth is not None else ["own"]):
            got = outputs.get((clip.name, sch), {})
            if not got:
                continue
            comp = {m: got[m][0] for m in order if m in got}
            tag = sch.replace(" ", "_")
            idx = _frames_to_show(clip.masks)
            save(Path("pictures") / clip.name / f"strip_{tag}.png",
                 pictures.strip(clip.frames, clip.masks, comp, clip.truth, idx))
            save(Path("pictures") / clip.name / f"slice_{tag}.png",
                 pictures.temporal_slices(clip.frames, clip.masks, comp, clip.truth))
            for m in order:
                if m in got and got[m][2] is not None:
                    raw, flows, wd = got[m][1], got[m][2], got[m][3]
                    k = FLOW_OFFSETS.index(1)
                    known = None
                    if wd is not None and (wd / "flow.npz").is_file():
                        known = KnownFlow.load(wd / "flow.npz").flow[:, k].transpose(0, 2, 3, 1)
                    fidx = [i for i in idx if i < raw.shape[0] - 1] or [0]
                    save(Path("pictures") / clip.name / f"flow_{_safe(m)}_{tag}.png",
                         pictures.flow_maps(raw, clip.masks, flows[:, k], fidx, known))
    clock_of = {(r["clip"], r["schedule"], r["method"]): r["clock_s"] for r in rows_all}
    for clip in clips:
        for m in order:
            stages = [(sch, got[m]) for (name, sch), got in outputs.items()
                      if name == clip.name and m in got and got[m][2] is not None]
            if len(stages) < 2:
                continue
            stages.sort(key=lambda st: clock_of.get((clip.name, st[0], m), 0.0))
            k = FLOW_OFFSETS.index(1)
            wd = stages[-1][1][3]
            known = (KnownFlow.load(wd / "flow.npz").flow[:, k].transpose(0, 2, 3, 1)
                     if wd is not None and (wd / "flow.npz").is_file() else None)
            with_hole = [i for i in range(clip.frames.shape[0] - 1) if clip.masks[i].any()] or [0]
            i = with_hole[len(with_hole) // 2]
            save(Path("pictures") / clip.name / f"flow_progress_{_safe(m)}.png",
                 pictures.flow_progress([(f"{sch} ({clock_of.get((clip.name, sch, m), 0):.0f} s)", g[1], g[2][:, k])
                                         for sch, g in stages], clip.masks, i, known))
    curves: dict[str, list[tuple[float, float]]] = {}
    flat: dict[str, float] = {}
    kinds = {s.label: s.kind for s in specs}
    for r in means:
        if kinds.get(r["method"]) == "engine":
            curves.setdefault(r["method"], []).append((r["clock_s"], r["psnr_hole"]))
        elif kinds.get(r["method"]) == "baseline":
            flat[r["method"]] = r["psnr_hole"]
    if curves:
        p = Path("pictures") / "psnr_vs_time.png"
        xlabel = ("training CPU seconds (1 thread; = seconds on an idle core)" if cfg.clock == "cpu"
                  else "training wall-clock seconds")
        pictures.psnr_vs_time(curves, out / p, f"Hole PSNR vs training time, mean of {len(clips)} composed clips "
                              f"({cfg.compose.width}x{cfg.compose.height})", flat, xlabel)
        written.append(str(p))
    return written


def _safe(name: str) -> str:
    return folder_name(name)  # as the runs' folders: labels that differ there (config.py) never share a picture


__all__ = ["evaluate", "MethodSpec"]
