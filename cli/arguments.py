"""The command line's shared arguments and how they become a config: clip and engine options, `--set`, sizes.

`--set` help lists every setting with its type and range and the docstring of its config field, so a setting
has one name and one help text (engine/config.py) wherever it is shown.
"""
from __future__ import annotations

import argparse
import json
import os
import stat
from fractions import Fraction
from pathlib import Path
from typing import Any

from vinpaint.engine import PRESETS, VARIANTS, InpaintConfig, make_config
from vinpaint.engine.config import setting_help
from vinpaint.errors import InputError
from vinpaint.media.writers import CODECS


class SettingsHelp(argparse.Action):
    """`--settings`: every setting `--set` takes, its values, default and help, from the config dataclasses."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(settings_text())
        parser.exit()


def settings_text(width: int = 100) -> str:
    """The `--settings` listing: one paragraph per setting, generated from engine/config.py."""
    import textwrap

    lines = ["settings for --set KEY=VALUE (values are JSON where they parse, text otherwise; a preset changes "
             "some defaults):", ""]
    for name, what, default, doc in setting_help():
        shown = json.dumps(list(default) if isinstance(default, tuple) else default)
        lines.append(f"  {name}  ({what}; default {shown})")
        if doc:
            lines += textwrap.wrap(doc, width, initial_indent="      ", subsequent_indent="      ")
    return "\n".join(lines)


def add_set_arguments(parser: argparse.ArgumentParser) -> None:
    """--set KEY=VALUE (repeatable) and --settings, the same wherever an engine config is made."""
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                        help="override any engine setting by dotted name, e.g. train.max_seconds=300 (repeatable; "
                             "--settings lists them all)")
    parser.add_argument("--settings", action=SettingsHelp, help="list every --set setting with its range and stop")


def add_engine_options(parser: argparse.ArgumentParser) -> None:
    """Options shared with `vinpaint demo`."""
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None,
                        help="how long and how big: tiny (smoke test), fast (CPU, minutes), paper (the paper's "
                             f"schedule, hours on a GPU) (default: {DEFAULT_PRESET})")
    parser.add_argument("--seed", type=int, default=None, help="random seed; the same seed gives the same result")
    parser.add_argument("--work-width", type=int, default=None, metavar="PX",
                        help="working width of the network, a multiple of 64 (default: the preset's)")
    add_set_arguments(parser)
    parser.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda (default: cuda if present)")
    parser.add_argument("--codec", default="auto", choices=["auto", *CODECS],
                        help="video codec: auto (ffv1 for .mkv/.avi, x264-420 for .mp4, x264-444 for .mov), "
                             "ffv1 and x264rgb are lossless (default: %(default)s)")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="where flow, checkpoints and the finished result are kept (default: OUT.work beside "
                             "the first output, with OUT's extension dropped)")
    parser.add_argument("--restart", action="store_true",
                        help="throw away what the work directory holds (flow, checkpoints, result) and start over; "
                             "needed after changing settings, since a work directory belongs to one run")
    parser.add_argument("--pause-after", type=int, default=None, metavar="STEPS",
                        help="stop after this many training steps in this session, keeping a checkpoint; the "
                             "same command continues later (on a GPU at the next loss read-back, up to "
                             "train.readback_every - 1 steps later)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace outputs that vinpaint did not write (without it, only outputs that vinpaint "
                             "wrote, or empty folders, are replaced, and anything else stops the run)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no config print-out")


def add_clip_arguments(parser) -> None:
    """VIDEO, --mask and --output, the same for `inpaint` and `submit`."""
    parser.add_argument("video", help="a video file, a folder of frames, or a frame pattern such as plate.%%04d.exr "
                                      "or plate.####.exr (EXR, DPX, TIFF, PNG)")
    parser.add_argument("--mask", "-m", required=True,
                        help="a mask video, a folder of mask images, a frame pattern (read at the clip's frame "
                             "numbers), or one image for a static mask; white = remove")
    parser.add_argument("--output", "-o", action="append", required=True, metavar="OUT",
                        help="result video (.mp4 .mkv .mov .avi), folder for PNGs, or a frame pattern such as "
                             "clean.%%04d.exr (.exr .dpx .tif .png; keeps the clip's frame numbers); repeatable")
    parser.add_argument("--reference", action="append", default=None, metavar="FRAME=IMAGE",
                        help="a clean frame painted by hand: its pixels are taken as known inside that frame's hole "
                             "and carried through the shot; FRAME is the clip's own frame number for a frame "
                             "pattern (1001), the 0-based index for a video or folder (repeatable)")
    parser.add_argument("--frames", default=None, metavar="FIRST-LAST",
                        help="with a frame-pattern input: the first and last frame number to use, e.g. 1001-1100 "
                             "(default: every frame found, which must run without gaps)")


def input_paths(args: argparse.Namespace, painted: dict) -> list[Path]:
    """The files a run reads as its clip, which no output may replace: the video, the mask and the painted
    reference frames. Not a --config: the `.config.json` beside an output is the record of the run that wrote
    them, and reloading it to run again (`-o clean.mkv --config clean.config.json`) rewrites it for the new run."""
    return [Path(args.video), Path(args.mask), *map(Path, painted.values())]


def parse_setting(text: str) -> tuple[str, Any]:
    """'train.max_steps=10' -> ('train.max_steps', 10); values are JSON where they parse, text otherwise."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise InputError(f"--set takes KEY=VALUE (e.g. train.max_seconds=300), not '{text}'.")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return key.strip(), value


MAX_CONFIG_BYTES = 1 << 20
"""A saved config is a few KB; `--config` refuses anything over 1 MB."""


DEFAULT_PRESET, DEFAULT_VARIANT = "fast", "dip-vid-flow"


SAVED_SECTIONS = ("network", "resolution", "mask", "flow", "loss", "train")
"""The sections every config vinpaint has saved holds (since its first version)."""


def config_from_saved(data: dict[str, Any]) -> InpaintConfig:
    """A --config file. One vinpaint saved (every section of SAVED_SECTIONS there) is read as it is: a setting
    newer than the file takes its default, the behaviour from before that setting, so the run is reproduced. A
    hand-written one that gives only some sections is laid over the preset and variant it names (fast,
    dip-vid-flow where it names none), as --preset would give the rest. Before (2026-12-02) the rest came from
    the settings' bare defaults while the config still said "fast"."""
    preset, variant = data.get("preset", DEFAULT_PRESET), data.get("variant", DEFAULT_VARIANT)
    if all(isinstance(data.get(name), dict) for name in SAVED_SECTIONS) or not isinstance(preset, str) or \
            not isinstance(variant, str) or preset not in PRESETS or variant not in VARIANTS:
        return InpaintConfig.from_dict(data)  # which names what is wrong with an unknown preset or variant

    def merged(base: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
        return {**base, **{k: merged(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
                           for k, v in given.items()}}

    return InpaintConfig.from_dict(merged(make_config(preset, variant).to_dict(), data))


def build_config(args: argparse.Namespace) -> InpaintConfig:
    """Preset and variant (or a saved config.json), then the named options, then --set overrides."""
    chosen = [f"--{name}" for name in ("preset", "variant") if getattr(args, name) is not None]
    if args.config and chosen:  # the saved config holds both: one of the two would be dropped without a word
        raise InputError(f"--config and {' and '.join(chosen)} both choose the settings: a saved config already "
                         f"holds its preset and variant. Give one of them (change single settings with --set).")
    if args.config:
        try:
            if stat.S_ISFIFO(os.stat(args.config).st_mode):  # opening it would wait for a writer for ever
                raise ValueError("it is a named pipe, not a file")
            with open(args.config, "rb") as handle:  # bounded: --config /dev/zero must not fill the memory
                text = handle.read(MAX_CONFIG_BYTES + 1)
            if len(text) > MAX_CONFIG_BYTES:
                raise ValueError(f"it is over {MAX_CONFIG_BYTES // 1024} KB, too big to be a config")
            data = json.loads(text.decode("utf-8-sig"))  # a BOM, as some Windows editors save
            if not isinstance(data, dict):
                raise ValueError("it is not a JSON object")
            config = config_from_saved(data)
        except (OSError, ValueError, TypeError, AttributeError, RecursionError, InputError) as exc:
            raise InputError(f"cannot use {args.config} as a config: {str(exc).rstrip('.')}.") from None
    else:
        config = make_config(args.preset or DEFAULT_PRESET, args.variant or DEFAULT_VARIANT)
    overrides: dict[str, Any] = {}
    for key, value in (("train.seed", args.seed), ("mask.dilation", args.dilate), ("mask.feather", args.feather),
                       ("resolution.work_width", args.work_width)):
        if value is not None:
            overrides[key] = value
    overrides.update(parse_setting(item) for item in args.set or [])
    return config.with_overrides(overrides)  # the engine's one check: type and range


def parse_fps(text: str) -> Fraction:
    """'24', '29.97' or '30000/1001' -> a frame rate from 1/1000 to 1000 fps; InputError otherwise."""
    try:
        fps = Fraction(str(text).strip())
    except (ValueError, ZeroDivisionError, TypeError):
        raise InputError(f"--fps takes a frame rate such as 24, 29.97 or 30000/1001, not '{text}'.") from None
    if not Fraction(1, 1000) <= fps <= 1000:
        raise InputError(f"--fps must be positive and at most 1000, not {text}.")
    return fps.limit_denominator(1_000_000)


def check_pause(pause_after: int | None) -> None:
    if pause_after is not None and pause_after < 1:
        raise InputError(f"--pause-after must be at least 1 step, not {pause_after}.")


def parse_references(items: list[str] | None) -> dict[int, str]:
    """['1001=paint.exr', ...] -> {1001: 'paint.exr'}; InputError for anything else, or a frame given twice."""
    references: dict[int, str] = {}
    for item in items or []:
        frame, sep, image = str(item).partition("=")
        if not sep or not frame.strip().isdigit() or not frame.strip().isascii() or not image:
            raise InputError(f"--reference takes FRAME=IMAGE (e.g. --reference 1001=paint.1001.exr), not '{item}'.")
        number = int(frame.strip())
        if number in references:
            raise InputError(f"--reference gives frame {number} twice; give one painting per frame.")
        references[number] = image
    return references


def parse_size(text: str) -> tuple[int, int]:
    """'256x128' -> (256, 128), for argparse's type=."""
    w, sep, h = text.lower().partition("x")
    try:
        return int(w), int(h)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be WIDTHxHEIGHT (e.g. 256x128), not {text!r}") from None
