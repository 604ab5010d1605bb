"""Wire settings -> the engine's InpaintConfig, and the job id that hashes them with the clip.

Overrides are type-checked against the engine's defaults here, so a wrong value is refused at `job.open` with the
field named, not discovered minutes later by a crashed training. Settings that name files on the daemon's disk
are never settable over the wire.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

from vinpaint.engine import PRESETS, VARIANTS, InputError, InpaintConfig, make_config
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
    base = make_config(preset, variant).to_dict()
    dotted: dict[str, Any] = {"train.seed": settings["seed"]}
    if "mask_dilation" in settings:
        dotted["mask.dilation"] = settings["mask_dilation"]
    if "mask_feather" in settings:
        dotted["mask.feather"] = settings["mask_feather"]
    for name, value in settings.get("overrides", {}).items():
        field = f"overrides.{name}"
        if name in FIXED:
            raise bad(field, f"set '{name}' with settings.{name}, not in overrides")
        default = _lookup(base, name)
        if default is _MISSING:
            raise bad(field, f"'{name}' is not an engine setting")
        dotted[name] = _coerce(name, value, default, bad)
    try:
        return make_config(preset, variant, **dotted)
    except (InputError, TypeError, ValueError) as exc:
        raise bad("overrides", f"the engine refuses these settings: {exc}") from None


_MISSING = object()


def _lookup(tree: dict[str, Any], dotted: str) -> Any:
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return _MISSING if isinstance(node, dict) else node


def _coerce(name: str, value: Any, default: Any, bad) -> Any:
    field = f"overrides.{name}"
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise bad(field, f"'{name}' is a bool")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad(field, f"'{name}' is an int")
        if value < 0:
            raise bad(field, f"'{name}' must not be negative")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad(field, f"'{name}' is a number")
        if value < 0:
            raise bad(field, f"'{name}' must not be negative")
        return float(value)
    if isinstance(default, str):
        if name not in STR_SETTINGS_ALLOWED:
            raise bad(field, f"'{name}' cannot be set over the wire")
        if not isinstance(value, str):
            raise bad(field, f"'{name}' is a str")
        return value
    raise bad(field, f"'{name}' cannot be set over the wire (it is a list)")


def job_id(content_hash: str, config: InpaintConfig) -> str:
    """SPEC.md section 5: the first 32 hex chars of SHA-256 over the clip hash and the resolved settings."""
    canonical = json.dumps(config.to_dict(), sort_keys=True, separators=(",", ":"))
    data = f"vinpaint-job-v1\n{content_hash}\n{canonical}".encode("utf-8")
    return hashlib.sha256(data).hexdigest()[:32]
