"""`vinpaint submit`: send a clip to a vinpaint daemon, optionally wait, and write the result like `vinpaint inpaint`.

This is how a pipeline script or a render-farm wrapper uses a shared GPU: the daemon keeps the job, so the same
command run again (after a timeout, a Ctrl-C or a crash of the wrapper) finds the running or finished job by the
clip's content hash instead of training again.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from vinpaint.cli.arguments import add_clip_arguments, add_set_arguments, input_paths, parse_references, \
    parse_setting
from vinpaint.cli.outputs import Litter, OutputPlan, check_mask_is_not_the_video, curve_title, loss_history, \
    matte_picture, write_frames
from vinpaint.cli.runs import OutputLock, warn_notices
from vinpaint.engine.checks import EMPTY_MASK, check_holes
from vinpaint.errors import InputError
from vinpaint.host_bridge.client import Client, RequestError, check_address, client_config
from vinpaint.host_bridge.daemon_config import DEFAULT_ADDRESS
from vinpaint.host_bridge.job_settings import resolve
from vinpaint.media.io import read_inputs, read_references
from vinpaint.media.pictures import write_before_after, write_loss_curve
from vinpaint.media.sequences import parse_range
from vinpaint.media.writers import staged_outputs, write_marked, write_png_sequence
from vinpaint.protocol.codec import ProtocolError
from vinpaint.protocol.messages import check_settings


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "submit", help="inpaint a video on a vinpaint daemon (see `vinpaint serve`)",
        description="Send VIDEO and its mask to a vinpaint daemon as a job. With --wait, show progress and write "
                    "the result to OUT exactly as `vinpaint inpaint` does (video or PNG folder, plus "
                    "OUT.config.json, OUT.before_after.png and OUT.loss.png). Without --wait, print the job id "
                    "and return; the same command with --wait later collects the result without training again.")
    add_clip_arguments(p)
    p.add_argument("--wait", action="store_true", help="wait for the job, show progress, write the outputs")
    p.add_argument("--server", default=DEFAULT_ADDRESS, metavar="ADDRESS",
                   help=f"the daemon's ZeroMQ address (default {DEFAULT_ADDRESS})")
    p.add_argument("--server-key", type=Path, default=None, metavar="FILE",
                   help="the daemon's public CurveZMQ key (server.key); turns encryption on")
    p.add_argument("--client-key", type=Path, default=None, metavar="FILE",
                   help="this client's secret CurveZMQ key (client.key_secret)")
    p.add_argument("--preset", default="fast", help="tiny, fast or paper (default: %(default)s)")
    p.add_argument("--variant", default="dip-vid-flow",
                   help="dip, dip-vid, dip-vid-3dcn or dip-vid-flow (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same result")
    p.add_argument("--invert-mask", action="store_true", help="black = remove instead of white")
    p.add_argument("--dilate", type=int, default=None, metavar="PX", help="grow the mask by this many pixels")
    p.add_argument("--feather", type=int, default=None, metavar="PX",
                   help="blend the fill into the source over this many pixels inside the hole")
    p.add_argument("--work-width", type=int, default=None, metavar="PX",
                   help="working width of the network, a multiple of 64 (default: the preset's)")
    add_set_arguments(p)
    p.add_argument("--codec", default="auto", help="video codec, as for `vinpaint inpaint` (default: auto)")
    p.add_argument("--name", default="", help="a label shown in the daemon's job list")
    p.add_argument("--timeout", type=float, default=None, metavar="S",
                   help="with --wait: give up after this many seconds (the job keeps running)")
    p.add_argument("--request-timeout", type=float, default=10.0, metavar="S",
                   help="seconds to wait for each reply before retrying (default: %(default)s; uploads get more)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace outputs that vinpaint did not write (without it, only outputs that vinpaint wrote, "
                        "or empty folders, are replaced, and anything else stops before the upload)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=run)


def wire_settings(args: argparse.Namespace) -> dict[str, Any]:
    """Command-line options -> the keyword settings of Client.submit."""
    overrides = dict(parse_setting(item) for item in args.set or [])
    if args.work_width is not None:
        overrides["resolution.work_width"] = args.work_width
    settings: dict[str, Any] = {"preset": args.preset, "variant": args.variant, "seed": args.seed,
                                "overrides": overrides, "name": args.name or Path(args.video).name[:200]}
    if args.dilate is not None:
        settings["mask_dilation"] = args.dilate
    if args.feather is not None:
        settings["mask_feather"] = args.feather
    return settings


class Bars:
    """Upload and training progress on stderr with tqdm."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar = None
        self.label = ""

    def _bar(self, label: str, total: int, unit: str):
        from tqdm import tqdm

        if self.label != label:
            self.close()
            self.label = label
            if self.enabled:
                self.bar = tqdm(total=total, desc=label, unit=unit, file=sys.stderr, dynamic_ncols=True,
                                mininterval=0.5 if sys.stderr.isatty() else 5.0)
        return self.bar

    def upload(self, done: int, total: int) -> None:
        bar = self._bar("uploading", total, "item")
        if bar is not None:
            bar.update(done - bar.n)

    def status(self, status: dict[str, Any]) -> None:
        bar = self._bar(status["state"], 100, "%")
        if bar is None:
            return
        bar.update(max(int(status["progress"] * 100) - bar.n, 0))
        parts = [status["phase"]] if status["phase"] else []
        if status.get("eta_s") is not None:
            parts.append(f"eta {int(status['eta_s'])}s")
        parts += [f"{k}={v:.4g}" for k, v in sorted(status["losses"].items())]
        if status.get("position") is not None:
            parts.append(f"{status['position']} ahead in the queue")
        if status.get("frames_done") and status["state"] != "done":  # a long shot's frames come window by window
            parts.append(f"{status['frames_done']}/{status['frames']} frames written")
        bar.set_postfix_str(" ".join(parts), refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.bar, self.label = None, ""


def run(args: argparse.Namespace) -> int:
    plan = OutputPlan.from_args(args.output, args.codec)
    check_address(args.server)
    if not args.request_timeout > 0 or args.request_timeout > 86400:
        raise InputError("--request-timeout must be a number of seconds above 0, at most 86400")
    if args.timeout is not None and not args.timeout > 0:
        raise InputError("--timeout must be a positive number of seconds")
    settings = wire_settings(args)
    wire = {k: v for k, v in settings.items() if k != "name"}
    try:  # the daemon's own check of the settings, here, before anything is uploaded
        engine_config = resolve(check_settings(wire, {}), {})
    except ProtocolError as exc:
        raise InputError(f"{exc.message} ({exc.field})" if exc.field else exc.message) from None
    frame_range = parse_range(args.frames) if args.frames is not None else None
    painted = parse_references(args.reference)
    check_mask_is_not_the_video(args.mask, args.video)
    clip, masks = read_inputs(args.video, args.mask, invert=args.invert_mask, frame_range=frame_range)
    references = read_references(painted, clip)
    warn_notices(clip)
    engine_config = engine_config.for_frame_size(*clip.frames.shape[1:3])  # as the daemon fits it at job.open
    # the mask's own checks, as `vinpaint inpaint` makes them before any work (before, 2026-12-03: an empty mask
    # was uploaded and queued, then failed); not the rest of validate(): a weights file names the daemon's disk
    holes = masks.astype(bool)
    if not holes.any():
        raise InputError(EMPTY_MASK)
    check_holes(holes, engine_config.mask.dilation)
    plan.check(clip, input_paths(args, painted), None, args.overwrite)
    if args.wait:  # under a file, read-only, a name too long: said before the upload and the training, not after
        plan.check_writable()
    bars = Bars(enabled=not args.quiet)
    config = client_config(args.server, args.server_key, args.client_key, timeout_s=args.request_timeout)
    job = None
    with Client(config=config) as client:
        try:
            job = client.submit(clip.frames, masks, on_upload=bars.upload, references=references, **settings)
            bars.close()
            print(f"job {job} on {args.server}", flush=True)
            if not args.wait:
                print("submitted; run the same command with --wait to follow it and write the result")
                return 0
            final = client.wait(job, progress=bars.status, timeout_s=args.timeout)
            bars.close()
            frames = client.results(job, clip.frames.shape[0])
            matte = _matte_of(client, job, clip.frames.shape[0])
            history = _history_of(client, job)
        except KeyboardInterrupt:
            bars.close()
            if job is None:  # stopped while the job was opened, uploaded or started
                print("\nvinpaint: stopped while submitting; what reached the daemon is kept there. Run the same "
                      "command again to send the rest and start the job.", file=sys.stderr)
            else:
                print("\nvinpaint: stopped waiting; the job keeps running on the daemon. Run the same command "
                      "again to collect it.", file=sys.stderr)
            return 130
        finally:
            bars.close()
    plan.check_outputs(args.overwrite)  # again: a file may have appeared while the job ran
    said = []
    with OutputLock(plan), Litter(Path(plan.default_workdir), [path for path, _ in plan.paths()],
                                  note=plan.incomplete_note), \
            staged_outputs(plan.incomplete_note):
        for what, path in write_frames(plan, clip, frames, args.overwrite).items():
            said.append(f"  result, {what}: {path}")
        if matte is not None:
            write_png_sequence(plan.beside(".matte"), matte_picture(matte), names=clip.names or None,
                               overwrite=args.overwrite)
            said.append(f"  matte (white: propagated from other frames, grey: generated): {plan.beside('.matte')}")
        write_marked(plan.beside(".config.json"),
                     (ran_as(engine_config, final, clip.frames.shape[0]).to_json() + "\n").encode())
        write_before_after(plan.beside(".before_after.png"), clip.frames, masks, frames)
        said.append(f"  config: {plan.beside('.config.json')}")
        if history is not None:
            terms, steps, rows = history
            curve = write_loss_curve(plan.beside(".loss.png"), loss_history(rows, terms),
                                     curve_title(engine_config.variant, engine_config.preset, steps, args.server))
            said.append(f"  loss curve: {curve}")
    print("\n".join(said))  # once every output is in place (staged_outputs)
    return 0


def ran_as(config, final: dict[str, Any], frames: int):
    """The config saved beside the result: as the job ran, like `vinpaint inpaint`'s (InpaintConfig.as_ran), from
    the job's last status: its step count replaces train.fit_seconds, and a job done with 0 steps trained no model
    on the daemon's machine. A long shot fits each window on its own, so its saved config is the one asked for, as
    the CLI's long shots save theirs."""
    if frames > config.shot.window:
        return config
    return config.as_ran(int(final.get("step") or 0))


def _matte_of(client, job: str, frames: int):
    """The job's mattes uint8 [T,H,W], or None with a one-line notice when the daemon has none to give (an older
    daemon, or a job it finished before it kept mattes)."""
    try:
        return client.results(job, frames, layer="matte")[..., 0]
    except RequestError as err:
        if err.code not in ("internal", "bad_request"):
            raise
        print(f"vinpaint: no matte: {err}", file=sys.stderr)
        return None


def _history_of(client, job: str):
    """The job's loss history, or None with a one-line notice when the daemon has none to give."""
    try:
        return client.history(job)
    except RequestError as err:
        if err.code not in ("not_ready", "unknown_type"):
            raise
        print(f"vinpaint: no loss curve: {err}", file=sys.stderr)
        return None


