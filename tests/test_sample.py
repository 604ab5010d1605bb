"""The demo clip: deterministic, the ball really moves, the camera really pans (with parallax), the truth is true."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from vinpaint.media.io import read_clip, read_inputs
from vinpaint.evaluation.metrics import hole_psnr
from vinpaint.media.sample import SampleConfig, make_sample, write_sample

SHORT = SampleConfig(frames=12)


@pytest.fixture(scope="module")
def sample():
    return make_sample(SHORT)


def test_same_seed_same_clip_other_seed_other_clip(sample):
    again = make_sample(SHORT)
    for a, b in ((sample.frames, again.frames), (sample.masks, again.masks), (sample.background, again.background)):
        np.testing.assert_array_equal(a, b)
    other = make_sample(SampleConfig(frames=12, seed=1))
    assert not np.array_equal(other.background, sample.background)


def test_shapes_and_types(sample):
    assert sample.frames.shape == (12, 180, 320, 3) and sample.frames.dtype == np.uint8
    assert sample.background.shape == sample.frames.shape and sample.background.dtype == np.uint8
    assert sample.masks.shape == (12, 180, 320) and sample.masks.dtype == bool
    assert sample.fps == 25


def test_the_ball_is_inside_the_mask_and_nothing_else_differs(sample):
    differs = np.any(sample.frames != sample.background, axis=-1)
    assert differs.any()
    assert not (differs & ~sample.masks).any()           # every ball pixel is in the hole
    area = sample.masks.mean(axis=(1, 2))
    assert (area > 0.005).all() and (area < 0.05).all()   # a ball, in every frame, not a wall


def test_the_ball_moves_across_the_frame(sample):
    centres = [np.argwhere(m).mean(axis=0) for m in sample.masks]  # (y, x)
    xs = np.array([c[1] for c in centres])
    assert np.all(np.diff(xs) > 0)                         # left to right
    assert xs[-1] - xs[0] > 320 * 0.6
    ys = np.array([c[0] for c in centres])
    assert np.ptp(ys) > 10                                  # and it bounces


def _shift(a: np.ndarray, b: np.ndarray) -> float:
    """Horizontal shift of b against a (pixels), by phase correlation on grey."""
    ga = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY).astype(np.float32)
    gb = cv2.cvtColor(b, cv2.COLOR_RGB2GRAY).astype(np.float32)
    (dx, _dy), _ = cv2.phaseCorrelate(ga, gb)
    return dx


def test_the_camera_pans_with_parallax(sample):
    bg = sample.background
    far = [_shift(bg[t, 10:60], bg[t + 4, 10:60]) for t in range(0, 8, 2)]       # sky and mountains
    near = [_shift(bg[t, 150:180], bg[t + 4, 150:180]) for t in range(0, 8, 2)]  # bottom of the ground plane
    pan = SHORT.pan
    assert all(s < -0.5 for s in far), far                  # content slides left: the camera pans right
    assert np.median(near) == pytest.approx(-4 * pan, abs=1.5)
    assert np.median(near) < 2 * np.median(far)            # the near ground moves at least twice as fast


def test_written_sample_reads_back_as_a_clip_with_masks(sample, tmp_path):
    paths = write_sample(tmp_path / "s", sample)
    clip, masks = read_inputs(paths["frames"], paths["masks"])
    np.testing.assert_array_equal(clip.frames, sample.frames)
    np.testing.assert_array_equal(masks, sample.masks)
    np.testing.assert_array_equal(read_clip(paths["background"]).frames, sample.background)


def test_hole_psnr():
    truth = np.zeros((2, 4, 4, 3), np.uint8)
    hole = np.zeros((2, 4, 4), bool)
    hole[0, 0, 0] = True
    result = truth.copy()
    assert hole_psnr(result, truth, hole) == float("inf")
    result[0, 0, 0] = 255
    result[1] = 255                                           # outside the hole: not counted
    assert hole_psnr(result, truth, hole) == pytest.approx(0.0)
    result[0, 0, 0] = (25, 25, 25)
    assert hole_psnr(result, truth, hole) == pytest.approx(20 * np.log10(255 / 25))
    with pytest.raises(ValueError):
        hole_psnr(result, truth, np.zeros_like(hole))
