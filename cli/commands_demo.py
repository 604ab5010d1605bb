"""`vinpaint demo`: make the sample clip, remove its ball with the fast preset, and score the fill.

The sample is drawn procedurally (media/sample.py), so the background behind the ball is known and the hole PSNR
says how good the fill is. It goes through the same files and code path as `vinpaint inpaint`.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

from vinpaint.cli.arguments import DEFAULT_VARIANT, add_engine_options, build_config, check_pause, parse_setting
from vinpaint.cli.outputs import BESIDE, OutputPlan, enclosing_store, same_or_inside, write_outputs
from vinpaint.cli.runs import OutputLock, WorkdirLock, check_workdir, clear_workdir, other_run, run_engine, to_continue
from vinpaint.engine import validate
from vinpaint.engine.config import STEPS_ALONE
from vinpaint.engine.devices import usable_device
from vinpaint.errors import InputError, OtherRunError, TrainingCancelled
from vinpaint.media.io import read_clip, read_inputs
from vinpaint.media.sample import SampleConfig, make_sample, write_sample
from vinpaint.media.writers import INCOMPLETE, is_vinpaint_output


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="inpaint a generated sample clip and report the quality against its known background",
        description="Generate a sample clip (a panning camera over a landscape, a ball rolling across), remove "
                    "the ball with the chosen preset, and write result.mp4, result/ (PNGs), result.before_after.png "
                    "and result.loss.png into OUT, printing the hole PSNR against the true background. "
                    "Runs on the CPU in a few minutes with the default settings.")
    parser.add_argument("--output", "-o", type=Path, default=Path("vinpaint-demo"), metavar="OUT",
                        help="folder for the sample and the results (default: %(default)s)")
    parser.add_argument("--frames", type=int, default=SampleConfig.frames,
                        help="length of the sample clip (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=None,
                        help="training steps (default: the preset's own budget; 1000 steps with fast)")
    add_engine_options(parser)
    parser.set_defaults(run=run, variant=DEFAULT_VARIANT, config=None, dilate=None, feather=None, invert_mask=False)


MAX_SAMPLE_FRAMES = 10000
"""The sample's texture grows with its length; past about 16,000 frames it is wider than OpenCV's remap takes."""


def run(args: argparse.Namespace) -> int:
    if not 2 <= args.frames <= MAX_SAMPLE_FRAMES:
        raise InputError(f"the sample needs 2 to {MAX_SAMPLE_FRAMES} frames, not {args.frames}.")
    steps = args.steps
    if steps is not None and steps < 1:
        raise InputError(f"--steps must be at least 1, not {steps}.")
    out = Path(os.path.expanduser(args.output))
    if out.exists() and not out.is_dir():
        raise InputError(f"output {out} exists and is not a folder.")
    check_demo_folder(out, args.work_dir)
    check_pause(args.pause_after)
    config = build_config(args)
    user_keys = {parse_setting(item)[0] for item in args.set or []}
    if steps is not None and "train.max_steps" not in user_keys:
        config = config.replace(**{"train.max_steps": steps})
        config = config.replace(**{k: v for k, v in STEPS_ALONE.items() if k not in user_keys})
    plan = OutputPlan.from_args([str(out / f"{STEM}.mp4"), str(out / STEM)], args.codec)
    plan.check_outputs(args.overwrite)  # before the sample is written: nothing of the user's is replaced
    device = usable_device(args.device)

    sample_config = SampleConfig(frames=args.frames, seed=args.seed or 0)
    sample = make_sample(sample_config)
    validate(sample.frames, sample.masks, config)  # before anything is written
    workdir = args.work_dir or plan.default_workdir
    with OutputLock(plan):  # a second demo into the same folder at once: one sentence, not two writers
        if not args.restart:
            check_earlier_sample(out / "sample", sample)
        for part in ("frames", "masks", "background"):  # all three before any: no half-written sample left behind
            if os.path.lexists(out / "sample" / part) and not is_vinpaint_output(out / "sample" / part):
                raise InputError(f"{out / 'sample' / part} holds files that vinpaint did not write; the demo writes "
                                 "its sample clip there, so give another -o.")
        paths = write_sample(out / "sample", sample)
        clip, masks = read_inputs(paths["frames"], paths["masks"])  # back from disk: the path a user's files take
        truth = read_clip(paths["background"]).frames
        plan.check(clip, [paths["frames"], paths["masks"]], workdir, args.overwrite)
        validate(clip.frames, masks, config)

        with WorkdirLock(workdir):
            if args.restart:
                clear_workdir(workdir)
            print(f"sample clip: {paths['frames']} ({clip.frames.shape[0]} frames, {clip.size[0]}x{clip.size[1]}), "
                  f"masks: {paths['masks']}, true background: {paths['background']}")
            print(("propagating real pixels, then training " if config.propagation.enabled else "training ")
                  + f"{config.variant} with the {config.preset} preset"
                  + (f" for up to {config.train.max_steps} steps" if config.train.max_steps else "")
                  + f" on {args.device or 'the default device'}; work directory: {workdir}", flush=True)
            started = time.monotonic()
            try:
                result = run_engine(clip.frames, masks, config, workdir, args.quiet, args.pause_after, device)
            except TrainingCancelled as exc:
                print(f"vinpaint: {exc} in {workdir}; {to_continue(args)}.", file=sys.stderr)
                return 130
            except OtherRunError as exc:
                raise other_run(workdir, "settings", "-o or --work-dir", exc) from None
            written = write_outputs(plan, clip, result, truth=truth, overwrite=args.overwrite,
                                    restart=args.restart)
    seconds = time.monotonic() - started
    from vinpaint.evaluation.baselines import opencv_inpaint  # loaded once a result is there to score
    from vinpaint.evaluation.metrics import hole_psnr

    psnr = hole_psnr(result.frames, truth, result.hole)
    print(f"done in {seconds:.0f} s ({result.steps} training steps)")
    for what, path in written.items():
        print(f"  {what}: {path}")
    baseline = hole_psnr(opencv_inpaint(clip.frames, result.hole).frames, truth, result.hole)
    print(f"hole PSNR against the true background: {psnr:.2f} dB "
          f"(the hole is {100 * result.hole.mean():.1f}% of the pixels; OpenCV's frame-by-frame Telea fill of the "
          f"same hole: {baseline:.2f} dB)")
    return 0


def check_demo_folder(out: Path, workdir: Path | None) -> None:
    """OUT is new, empty, or an earlier demo's, and no daemon's store: the demo writes its sample and results
    beside what is there, and a user's folder of frames given as -o was left holding the demo's PNGs, no longer
    readable as a clip (2026-12-02). Checked before the sample is written."""
    for where, what in ((out, "output folder"), (workdir, "work directory")):
        store = enclosing_store(where) if where is not None else None
        if store is not None:
            raise InputError(f"the {what} {where} lies inside the store {store} of a vinpaint daemon, whose folders "
                             "are the daemon's own; give another.")
    # as inpaint's: a user's folder as the work directory (--work-dir, or OUT/result.work made by hand) had its
    # config.json replaced
    check_workdir(workdir if workdir is not None else out / f"{STEM}.work")
    if not out.is_dir():
        return
    own = None  # the entry of OUT that is or holds the --work-dir: an earlier demo's too
    if workdir is not None and same_or_inside(workdir, out) and os.path.realpath(workdir) != os.path.realpath(out):
        own = Path(os.path.relpath(os.path.realpath(workdir), os.path.realpath(out))).parts[0]
    theirs = sorted(e.name for e in out.iterdir() if not _the_demos(e.name) and e.name != own)
    if theirs:
        more = f" and {len(theirs) - 1} more" if len(theirs) > 1 else ""
        raise InputError(f"output folder {out} holds {theirs[0]}{more}, which the demo did not write; the demo "
                         "writes its sample clip and results into -o, so give a new or empty folder, or an earlier "
                         "demo's.")
    sample = out / "sample"
    if os.path.lexists(sample) and (sample.is_symlink() or not sample.is_dir()):  # before: "File exists: OUT/sample"
        raise InputError(f"{sample} is not a folder, and the demo writes its sample clip into a folder of that name; "
                         "move it, or give another -o.")


STEM = "result"
"""The demo's outputs are OUT/result.mp4 and OUT/result/, and what goes beside them is named result.*."""
DEMO_NAMES = frozenset({"sample", STEM, f"{STEM}.mp4", f"{STEM}.work", f"{STEM}{INCOMPLETE}",
                        *(STEM + suffix for suffix in BESIDE)})
LEFT_BY_A_KILL = re.compile(rf"\.(?:sample|{STEM})(?:\..+)?\.[a-z0-9_]{{8}}\.(?:partial(?:\..*)?|old)")
"""The hidden temporary names a write of the demo's cut short leaves (temp_sibling's, a folder swap's .old)."""


def _the_demos(name: str) -> bool:
    """A name the demo writes in OUT: sample/, result.mp4, result/ and what goes beside it (result.work, .matte,
    .config.json ...), and a write cut short by a kill (a hidden temporary name). Only those exact names: any
    `result.*` counted before, and a user's frames result.0000.png ... were taken for the demo's."""
    return name in DEMO_NAMES or LEFT_BY_A_KILL.fullmatch(name) is not None


def check_earlier_sample(folder: Path, sample) -> None:
    """An earlier demo's sample (other --frames or --seed) is kept unless --restart: its results beside it were made
    from it, and rewriting it first would leave them beside another clip even when this run is then refused."""
    if not (folder / "frames").is_dir():
        return
    try:
        earlier, masks = read_inputs(folder / "frames", folder / "masks")
        same = np.array_equal(earlier.frames, sample.frames) and np.array_equal(masks, sample.masks)
    except InputError:
        same = False  # damaged or partial: not a sample this command can vouch for either
    if not same:
        raise InputError(f"{folder} holds the sample clip of another demo run (other --frames or --seed); add "
                         "--restart to replace it and start over, or give another -o.")
