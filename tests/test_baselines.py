"""OpenCV baselines: only the hole changes, flat regions are restored exactly, bad input is one clear error."""
from __future__ import annotations

import numpy as np
import pytest

from vinpaint.errors import InputError
from vinpaint.evaluation import baselines, metrics


def _clip(t=3, h=40, w=60):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (t, h, w, 3), dtype=np.uint8)
    masks = np.zeros((t, h, w), bool)
    masks[:, 10:20, 20:35] = True
    return frames, masks


@pytest.mark.parametrize("method", ["telea", "ns", "prop-telea"])
def test_outside_the_hole_is_untouched(method):
    frames, masks = _clip()
    out = baselines.opencv_inpaint(frames, masks, method)
    assert out.frames.dtype == np.uint8 and out.frames.shape == frames.shape
    assert (out.frames[~masks] == frames[~masks]).all()
    assert (out.hole == masks).all()


@pytest.mark.parametrize("method,tolerance", [("ns", 0), ("telea", 2)])
def test_flat_background_is_restored(method, tolerance):
    # Navier-Stokes diffuses the boundary value exactly; Telea's weighted average is off by rounding (<= 2 levels).
    frames = np.full((2, 32, 32, 3), 90, np.uint8)
    masks = np.zeros((2, 32, 32), bool)
    masks[:, 8:20, 10:22] = True
    frames[masks] = (250, 0, 0)  # an object that must vanish
    out = baselines.opencv_inpaint(frames, masks, method)
    assert np.abs(out.frames.astype(int) - 90).max() <= tolerance


def test_static_scene_is_perfectly_consistent():
    frames, masks = _clip()
    frames[:] = frames[0]  # the same frame three times, the same hole
    out = baselines.opencv_inpaint(frames, masks, "telea")
    p, s = metrics.temporal_consistency(out.frames, masks, metrics.ConsistencyConfig(patch=20, radius=4))
    assert p == metrics.PSNR_CAP_DB and s == pytest.approx(1.0)


def test_dilation_grows_the_hole_by_hand_count():
    m = np.zeros((1, 9, 9), bool)
    m[0, 4, 4] = True
    assert baselines.dilate(m, 1).sum() == 5   # the engine's disc (OpenCV's ellipse): a plus at radius 1
    assert baselines.dilate(m, 2).sum() == 17  # 5x5 less its four corners
    assert (baselines.dilate(m, 0) == m).all()


def test_bad_input():
    frames, masks = _clip()
    with pytest.raises(InputError, match="unknown baseline"):
        baselines.opencv_inpaint(frames, masks, "patchmatch")
    with pytest.raises(InputError, match="uint8"):
        baselines.opencv_inpaint(frames.astype(np.float32), masks)
    with pytest.raises(InputError, match="shape"):
        baselines.opencv_inpaint(frames, masks[:, :-1])


def test_prop_telea_takes_the_background_from_the_frames_that_see_it():
    rng = np.random.default_rng(1)
    world = (rng.random((48, 120, 3)) * 255).astype(np.uint8)
    world = np.repeat(np.repeat(world[::4, ::4], 4, 0), 4, 1)[:48, :120]
    truth = np.stack([world[:, 2 * t:2 * t + 64] for t in range(10)])  # a camera panning 2 px a frame
    masks = np.zeros(truth.shape[:3], bool)
    for t in range(10):
        masks[t, 16:32, 12 + 3 * t:24 + 3 * t] = True
    frames = truth.copy()
    frames[masks] = 0
    prop = baselines.opencv_inpaint(frames, masks, "prop-telea")
    telea = baselines.opencv_inpaint(frames, masks, "telea")
    assert (prop.frames[~masks] == frames[~masks]).all()
    assert metrics.psnr(prop.frames, truth, masks) > metrics.psnr(telea.frames, truth, masks) + 6.0
