"""Frames in other light: copies are carried into the light of the frame they fill (engine/exposure.py)."""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from vinpaint.engine import make_config
from vinpaint.engine.config import PropagationConfig
from vinpaint.engine.exposure import EXPOSURE_SPREAD, clip_exposure
from vinpaint.engine.flow import DISFlow
from vinpaint.engine.propagate import neighbour_flows, propagate_clip


def _panning_clip(gains: np.ndarray, h: int = 64, w: int = 96, speed: int = 2):
    """A textured world panning `speed` px a frame under a light that multiplies frame t by gains[t], and a
    square hole moving the other way: every hole pixel is seen by another frame, in that frame's light.
    -> (shown uint8, holes bool, truth uint8)."""
    frames = len(gains)
    rng = np.random.default_rng(0)
    world = rng.random((h // 4, (w + speed * frames) // 4 + 1, 3)).astype(np.float32)
    world = cv2.GaussianBlur(cv2.resize(world, (world.shape[1] * 4, h), interpolation=cv2.INTER_CUBIC), (0, 0), 1.0)
    world = 50 + 130 * np.clip(world, 0, 1)  # mid-tones: no gain here clips
    truth = np.stack([np.clip(world[:, t * speed:t * speed + w] * g, 0, 255).round() for t, g in
                      enumerate(gains)]).astype(np.uint8)
    holes = np.zeros(truth.shape[:3], bool)
    for t in range(frames):
        holes[t, 20:40, 16 + 3 * t:32 + 3 * t] = True
    shown = truth.copy()
    shown[holes] = (255, 0, 255)
    return shown, holes, truth


GAINS = np.array([1.0, 1.2, 0.85, 1.1, 0.9, 1.25, 0.8, 1.0, 1.15, 0.9])


def test_each_frames_light_is_measured_against_the_first():
    shown, holes, _ = _panning_clip(GAINS)
    exposure = clip_exposure(shown, holes, neighbour_flows(shown, holes, DISFlow("medium")), tolerance=1.0)
    assert exposure is not None
    truth = np.log(GAINS / GAINS[0])
    assert np.abs(exposure.log_gain - truth[:, None]).max() < 0.02, exposure.log_gain[:, 0]
    colours = np.full((4, 3), 100.0, np.float32)
    assert np.allclose(exposure.relit(colours, 5, 6), 100.0 * GAINS[6] / GAINS[5], rtol=0.03)
    assert np.allclose(exposure.relit(colours, np.array([1, 2, 3, 4]), 0)[:, 0], 100.0 / GAINS[1:5], rtol=0.03)


def test_an_evenly_lit_clip_is_left_as_it_is():
    gains = np.ones(10)
    shown, holes, _ = _panning_clip(gains)
    flows = neighbour_flows(shown, holes, DISFlow("medium"))
    assert clip_exposure(shown, holes, flows, tolerance=1.0) is None
    measured = clip_exposure(shown, holes, flows, tolerance=1.0, spread=0.0)
    assert measured is None or measured.spread() < EXPOSURE_SPREAD / 4  # the noise is far below the threshold


def _copies(frames, holes, exposure: bool):
    result = propagate_clip(frames, holes, dataclasses.replace(PropagationConfig(), exposure=exposure),
                            DISFlow("medium"))
    return result.colours, result.reached & holes


def _errors(frames, holes, truth, scale: float = 255.0) -> tuple[float, float, float, float]:
    """Mean error of the copies without and with the correction, on the pixels both reach, and the share of the
    hole each reaches."""
    (c_off, r_off), (c_on, r_on) = _copies(frames, holes, False), _copies(frames, holes, True)
    both = r_off & r_on
    assert both.sum() > 0.3 * holes.sum()
    error = lambda c: float(np.abs(c[both] * scale - truth[both]).mean())  # noqa: E731
    return error(c_off), error(c_on), r_off.sum() / holes.sum(), r_on.sum() / holes.sum()


def test_copies_arrive_in_the_light_of_the_frame_they_fill():
    shown, holes, truth = _panning_clip(GAINS)
    off, on, reach_off, reach_on = _errors(shown, holes, truth)
    assert off > 8.0  # a copy from a neighbour is off by its 10-25 % of light
    assert on < 3.0 and on < off / 4, (on, off)
    # the calibration sees the copies in the right light too, so they travel as far as the scene allows
    assert reach_on > 0.9 and reach_on > reach_off, (reach_on, reach_off)


def test_linear_float_plates_are_measured_in_their_own_values():
    """Flow sees a float plate through a display curve; the copies are scaled in the plate's linear values."""
    shown, holes, truth = _panning_clip(GAINS)
    linear = (shown.astype(np.float32) / 255) ** 2.2
    truth_linear = (truth.astype(np.float32) / 255) ** 2.2
    off, on, _, _ = _errors(linear, holes, truth_linear, scale=1.0)
    assert on < off / 3, (on, off)


def test_fast_corrects_the_light_and_an_old_config_does_not():
    assert make_config("fast").propagation.exposure
    assert not PropagationConfig().exposure


def test_the_engine_fills_a_flickering_clip_in_each_frames_light_and_a_reused_run_gives_the_same_frames(tmp_path):
    """Through `inpaint`: copies and the steady fill of what no frame sees (a still box in the corner) both take
    the light of the frame they fill; after a cache load the exposure is measured again, to the same frames."""
    from vinpaint.engine import inpaint
    from vinpaint.evaluation.metrics import hole_psnr

    shown, holes, truth = _panning_clip(GAINS)
    holes[:, 2:10, 80:92] = True  # at the frame's edge in the direction of the pan: no frame shows it
    shown[holes] = (255, 0, 255)
    settings = {"propagation.train_below": 1.0}
    off = inpaint(shown, holes, make_config("fast", **settings, **{"propagation.exposure": False}))
    on = inpaint(shown, holes, make_config("fast", **settings), workdir=tmp_path / "work")
    assert np.array_equal(on.frames[~holes], shown[~holes])
    assert hole_psnr(on.frames, truth, holes) > hole_psnr(off.frames, truth, holes) + 5.0
    again = inpaint(shown, holes, make_config("fast", **settings), workdir=tmp_path / "work")
    assert np.array_equal(again.frames, on.frames)


def test_a_measured_change_of_light_is_used_only_where_copies_bear_it_out():
    """light_pays compares the ring's copies in each frame's light with the copies as they are: the clip's true
    flicker pays, and a drift the frames do not have (what a moving camera's vignetting can look like) does not."""
    from vinpaint.engine.exposure import Exposure
    from vinpaint.engine.propagate import light_pays

    shown, holes, _ = _panning_clip(GAINS)
    flows = neighbour_flows(shown, holes, DISFlow("medium"))
    true = Exposure(np.repeat(np.log(GAINS / GAINS[0])[:, None], 3, axis=1).astype(np.float32))
    pays, in_light, as_they_are = light_pays(shown, holes, flows, true)
    assert pays and in_light < 0.25 * as_they_are

    even, holes, _ = _panning_clip(np.ones(10))
    flows = neighbour_flows(even, holes, DISFlow("medium"))
    drift = Exposure(np.repeat(np.linspace(0.0, 0.08, 10)[:, None], 3, axis=1).astype(np.float32))
    pays, in_light, as_they_are = light_pays(even, holes, flows, drift)
    assert not pays and in_light > as_they_are
