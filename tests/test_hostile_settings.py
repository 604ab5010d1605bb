"""Every setting has a declared type and range, and no value of any setting, however hostile, gets past
`vinpaint inpaint` as anything but a clean run (exit 0) or one sentence (exit 2), with nothing written.

The fuzz runs the real command in-process (`main([...])`) on a real 12-frame clip with `--check`, which does every
check a run does before anything is written (inputs, settings, outputs, device) and then stops."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from vinpaint.engine import PRESETS, VARIANTS, InputError, make_config
from vinpaint.engine.config import Flag, Int, Ints, Num, OneOf, Text, clean_setting, setting_fields
from vinpaint.media.sample import SampleConfig, make_sample
from vinpaint.media.writers import write_png_sequence, write_video
from vinpaint.cli.main import main

FIELDS = sorted(setting_fields())
FUZZ_CASES = 300
COMBO_CASES = 100


def test_every_setting_declares_its_type_and_range():
    """A field added to any config section without a Limit (engine/config.py LIMITS, or `setting(...)` in its
    dataclass) fails here: no setting reaches training unchecked."""
    missing = [name for name, (_, limit) in setting_fields().items() if limit is None]
    assert missing == [], f"settings without a declared type and range: {missing}"
    for preset in PRESETS:  # and every shipped preset and variant passes its own ranges
        for variant in VARIANTS:
            make_config(preset, variant)


@pytest.mark.parametrize("name", FIELDS)
def test_every_setting_refuses_the_wrong_type_and_the_non_finite(name):
    default, limit = setting_fields()[name]
    hostile = [None, [], {}, float("nan"), float("inf"), -float("inf"), "", "x" * 5000, [[1]], {"a": 1}]
    if not isinstance(limit, Flag):
        hostile.append(True)
    for value in hostile:
        if isinstance(limit, Text) and isinstance(value, str) and len(value) < 4096:
            continue  # text settings take text
        with pytest.raises(InputError, match=f"setting {name} must be"):
            clean_setting(name, value)
    if isinstance(limit, (Int, Num)):
        for bad in (limit.lo - 1, limit.hi * 2 + 1, 10**30):
            with pytest.raises(InputError, match=f"setting {name} must be"):
                clean_setting(name, bad)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("fuzz_clip")
    sample = make_sample(SampleConfig(frames=12, width=160, height=96, seed=5))
    write_video(folder / "clip.mkv", sample.frames, 24)
    write_png_sequence(folder / "masks", np.where(sample.masks, 255, 0).astype(np.uint8))
    return {"video": folder / "clip.mkv", "masks": folder / "masks"}


def _edges(name: str) -> list:
    """Values at and just past the declared range of one setting."""
    limit = setting_fields()[name][1]
    if isinstance(limit, Int):
        return [limit.lo - 1, limit.lo, limit.hi, limit.hi + 1, limit.lo + limit.step, -(2**63), 2**64]
    if isinstance(limit, Num):
        return [limit.lo, limit.hi, math.nextafter(limit.hi, math.inf), -1e-300, 1e308, limit.lo - 1]
    if isinstance(limit, Ints):
        return [[], [0], [limit.hi + 1], [limit.lo] * (limit.max_len + 1), [1, 3, 5], [limit.hi] * limit.max_len]
    if isinstance(limit, OneOf):
        return list(limit.allowed()) + [" " + limit.allowed()[0], limit.allowed()[0].upper()]
    return []


HOSTILE_TEXT = st.sampled_from([
    "NaN", "Infinity", "-Infinity", "1e999", "-1", "0", "-0", "1/0", "", " ", "[]", "{}", "null", "true", "false",
    "[[[[[[", "9" * 5000, "0x10", "1_000", "\"\"", "[1e999]", "\u0000", "a\nb", "../../etc/passwd", "é✓",
    "[1, 3, 5, 1, 3, 5, 1, 3, 5]", "2048", "4096", "65536", "100000", "1e12", "-1e-12", "[0]", "[16, 0, 4]",
])


def _value_text(data, name: str) -> str:
    edges = _edges(name)
    pick = data.draw(st.sampled_from(["edge", "text", "json"]) if edges else st.sampled_from(["text", "json"]))
    if pick == "edge":
        return json.dumps(data.draw(st.sampled_from(edges)))
    if pick == "text":
        return data.draw(HOSTILE_TEXT | st.text(max_size=12))
    value = data.draw(st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True)
                      | st.lists(st.integers(-3, 2000), max_size=9) | st.text(max_size=8))
    return json.dumps(value)


def _check(clip, tmp_path, capsys, sets: list[str]) -> None:
    before = sorted(os.listdir(tmp_path))
    argv = ["inpaint", str(clip["video"]), "--mask", str(clip["masks"]), "-o", str(tmp_path / "out.mkv"),
            "--preset", "tiny", "--quiet", "--check"]
    for item in sets:
        argv += ["--set", item]
    code = main(argv)
    out, err = capsys.readouterr()
    assert code in (0, 2), (sets, code, err)
    event(f"exit {code}")
    assert "Traceback" not in err
    if code == 2:
        assert err.count("\n") == 1 and err.startswith("vinpaint: error: "), (sets, err)
    else:
        assert err == "" and "check passed" in out, (sets, err)
    assert sorted(os.listdir(tmp_path)) == before, sets  # no litter


@settings(max_examples=FUZZ_CASES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                          HealthCheck.too_slow])
@given(data=st.data())
def test_fuzz_every_setting_with_hostile_values(clip, tmp_path, capsys, data):
    name = data.draw(st.sampled_from(FIELDS))
    _check(clip, tmp_path, capsys, [f"{name}={_value_text(data, name)}"])


@settings(max_examples=COMBO_CASES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                           HealthCheck.too_slow])
@given(data=st.data())
def test_fuzz_several_settings_at_once(clip, tmp_path, capsys, data):
    names = data.draw(st.lists(st.sampled_from(FIELDS), min_size=2, max_size=5, unique=True))
    _check(clip, tmp_path, capsys, [f"{name}={_value_text(data, name)}" for name in names])


EXTREME_BUT_ACCEPTED = [
    ["loss.reconstruction=1000000", "loss.flow=1000000", "loss.consistency=1000000", "train.learning_rate=1000000"],
    ["train.divergence_factor=1e-12", "train.checkpoint_every_s=0", "flow.occlusion_threshold=1",
     "mask.feather=512", "train.dip_iterations=1000000"],
    ["flow.occlusion_threshold=0", "loss.consistency_warmup=100000000", "train.epochs=1e-9",
     "train.intervals=[5]", "train.max_seconds=1e-9"],
    ["network.kind=3d", "network.temporal_kernel=9", "network.encoder_kernel=15", "network.decoder_kernel=15",
     "network.head_kernel=15", "network.skip_channels=1", "network.encoder_channels=[1]", "train.batch_size=12",
     "train.intervals=[1]", "network.flow_head=false", "resolution.work_width=64"],
    ["network.encoder_channels=[1, 1, 1, 1, 1, 1]", "resolution.work_height=64", "train.updates_per_batch=100000",
     "mask.dilation=20", "train.seed=2147483647", "flow.dis_preset=fast"],
]


@pytest.mark.slow
@pytest.mark.parametrize("sets", EXTREME_BUT_ACCEPTED)
def test_settings_at_the_ends_of_their_ranges_really_run(clip, tmp_path, capsys, sets):
    """--check accepting a value is a promise that a run with it works: a real training run at the edges."""
    argv = ["inpaint", str(clip["video"]), "--mask", str(clip["masks"]), "-o", str(tmp_path / "out.mkv"),
            "--preset", "tiny", "--quiet", "--set", "train.max_steps=2", "--set", "loss.perceptual=0",
            "--set", "propagation.enabled=false"]
    for item in sets:
        argv += ["--set", item]
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Traceback" not in err and "error" not in err
    assert (tmp_path / "out.mkv").is_file()
