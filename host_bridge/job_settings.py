"""Wire settings -> the engine's InpaintConfig, and the job id that hashes them with the clip.

Overrides go through the engine's own check of each setting's type and range (engine/config.py LIMITS, the same
one the command line's --set uses), so a wrong or huge value is refused at `job.open` with the field named, not
discovered minutes later by a crashed or endless training. Settings that name files on the daemon's disk
are never settable over the wire.
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import Any

from vinpaint.engine import PRESETS, VARIANTS, InputError, InpaintConfig, make_config, working_size
from vinpaint.engine.config import SettingError, setting_fields
from vinpaint.engine.parallel import pool_memory
from vinpaint.protocol.codec import ProtocolError

STR_SETTINGS_ALLOWED = {"flow.estimator", "flow.dis_preset", "network.kind"}
"""The only str-valued engine settings a client may set (others, such as weight paths, name daemon files)."""
FIXED = {"preset", "variant"}


def resolve(settings: dict[str, Any], ctx: dict[str, str]) -> InpaintConfig:
    """A normalised `settings` map (protocol.messages.check_settings) -> the engine config it asks for."""
    def bad(field: str, message: str) -> ProtocolError:
        return ProtocolError("bad_request", message, field=f"body.settings.{field}", **ctx)

    preset, variant = settings["preset"], settings["variant"]
    if preset not in PRESETS:
        raise bad("preset", f"unknown preset {preset!r}; this daemon has {', '.join(PRESETS)}")
    if variant not in VARIANTS:
        raise bad("variant", f"unknown variant {variant!r}; this daemon has {', '.join(VARIANTS)}")
    dotted: dict[str, Any] = {"train.seed": settings["seed"]}
    if "mask_dilation" in settings:
        dotted["mask.dilation"] = settings["mask_dilation"]
    if "mask_feather" in settings:
        dotted["mask.feather"] = settings["mask_feather"]
    overrides = settings.get("overrides", {})
    known = setting_fields()
    for name, value in overrides.items():
        field = f"overrides.{name}"
        if name in FIXED:
            raise bad(field, f"set '{name}' with settings.{name}, not in overrides")
        if name not in known:
            raise bad(field, f"'{name}' is not an engine setting")
        if isinstance(known[name][0], (list, tuple)) and isinstance(value, str):
            try:  # a list setting travels as its JSON text: protocol 1 carries scalars only
                value = json.loads(value)
            except ValueError:
                raise bad(field, f"'{name}' takes a list, sent as its JSON text (e.g. \"[1, 3, 5]\"), not "
                                 f"{value[:40]!r}") from None
        elif isinstance(known[name][0], str) and name not in STR_SETTINGS_ALLOWED:
            raise bad(field, f"'{name}' cannot be set over the wire")
        dotted[name] = value
    try:
        return make_config(preset, variant).with_overrides(dotted)  # the same check as the command line's --set
    except SettingError as exc:
        if exc.name in overrides:
            raise bad(f"overrides.{exc.name}", str(exc)) from None
        raise bad("overrides", f"the engine refuses these settings: {exc}") from None
    except (InputError, TypeError, ValueError) as exc:
        raise bad("overrides", f"the engine refuses these settings: {exc}") from None


def job_id(content_hash: str, config: InpaintConfig) -> str:
    """SPEC.md section 5: the first 32 hex chars of SHA-256 over the clip hash and the resolved settings."""
    canonical = json.dumps(config.to_dict(), sort_keys=True, separators=(",", ":"))
    data = f"vinpaint-job-v1\n{content_hash}\n{canonical}".encode("utf-8")
    return hashlib.sha256(data).hexdigest()[:32]


def windows(config: InpaintConfig, frames: int) -> list:
    """The windows the training process trains a clip in (engine/shot.py plan_windows): one for a clip of at most
    shot.window frames. Geometry only: whether a window holds the settings' batches is engine/shot.py
    check_windows, which job.open asks too (handlers.py _precheck)."""
    from vinpaint.engine.shot import plan_windows

    return plan_windows(frames, config.shot.window, config.shot.overlap)


def planned_steps(config: InpaintConfig, frames: int) -> int:
    """Training steps the job will really plan: each window trains its own schedule (cut short by
    train.max_steps on its own), so a long shot's steps are the sum over its windows, not one schedule of the
    whole clip. Each window length is planned once: the windows of a long shot share one length, and planning
    9,999 two-frame windows one by one held the daemon's only thread for 10-20 s at `job.open`."""
    lengths = Counter(len(w) for w in windows(config, frames))
    return sum(count * config.planned_steps(length) for length, count in lengths.items())


def trained_frames(config: InpaintConfig, frames: int) -> int:
    """Frames one training run holds: the whole clip, or one window of a long shot."""
    return min(frames, config.shot.window)


def job_memory(config: InpaintConfig, frames: int, height: int, width: int, channels: int, itemsize: int,
               ) -> tuple[int, int]:
    """An estimate of a job's peak memory in bytes: (host, device). Host: the clip at source size in the
    training process (inputs, the RGB copy, the float copy made for resizing, holes, the composited result, and
    a frame's temporaries per worker of the frame pool, engine/parallel.py).
    Device: the clip at working size, the known and generated flow, and the network's activations with their
    gradients for one forward pass (train.batches_per_step batches of train.batch_size frames). Within a factor
    of about 2; used to refuse at `job.open` a job that cannot fit, and to give it to a device where it fits.
    A long shot (more frames than shot.window) is trained one window at a time (worker.py), so only a window's
    frames count."""
    t, big = trained_frames(config, frames), height * width
    host = t * big * (channels * itemsize + 3 * itemsize + 3 * 4 + 2 + 3 * itemsize)
    host += pool_memory(big)
    h, w = working_size(height, width, config)
    small = h * w
    device = t * small * 4 * (2 * 3 + 1 + 1 + 3)
    if config.uses_flow:
        device += t * small * 4 * 6 * (2 + 1 + 1 + 2 * 2)
    # frames in one forward pass: a group of train.batches_per_step batches (no more than the schedule holds)
    n = 1 if config.variant == "dip" else \
        config.train.batch_size * max(1, min(config.train.batches_per_step, config.planned_batches(t)))
    net, skip = config.network.encoder_channels, config.network.skip_channels
    per_frame = sum(6 * c * small / 4 ** (k + 1) + 6 * c * small / 4 ** k + 3 * skip * small / 4 ** k
                    for k, c in enumerate(net))
    if config.loss.perceptual > 0:
        per_frame += 2 * (3 * 64 + 3 * 128 / 4 + 4 * 256 / 16) * small  # VGG16 to relu3_3, result and target
    device += int(n * per_frame * 4 * 2)
    return int(host), int(device)
