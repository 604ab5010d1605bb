"""The steady fill: what no frame sees, averaged along the flow so it stands still where the plate does."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from vinpaint.engine import inpaint, make_config
from vinpaint.engine.propagate import NeighbourFlows
from vinpaint.engine.result import GENERATED
from vinpaint.engine.stabilise import STILL_PX, _follow, steady_unseen


def _world(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    world = cv2.resize(rng.random((h // 4, w // 4, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(cv2.GaussianBlur(world, (0, 0), 1.5), 0.0, 1.0)


def _flows(t_count: int, h: int, w: int, dx: float) -> NeighbourFlows:
    forward = np.zeros((t_count - 1, h, w, 2), np.float16)
    forward[..., 0] = dx
    return NeighbourFlows(forward, -forward, 1.0, 1.0)


def _noisy_fill(truth: np.ndarray, unseen: np.ndarray, sigma: float, seed: int = 1) -> np.ndarray:
    """The truth with a fill that is right on average but differs from frame to frame, as a per-frame fill does."""
    rng = np.random.default_rng(seed)
    out = truth.copy()
    out[unseen] = np.clip(truth[unseen] + rng.normal(0.0, sigma, (int(unseen.sum()), 3)), 0.0, 1.0)
    return out


def _rms(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
    return float(np.sqrt(((a.astype(np.float64) - b) ** 2)[where].mean()))


def test_a_still_fill_stops_shimmering_and_nothing_else_changes():
    t_count, h, w = 12, 40, 56
    truth = np.repeat(_world(h, w)[None], t_count, axis=0)
    unseen = np.zeros((t_count, h, w), bool)
    unseen[:, 10:30, 15:40] = True  # a logo on a locked-off shot: never revealed
    noisy = _noisy_fill(truth, unseen, 0.08)
    steady = steady_unseen(noisy, unseen, _flows(t_count, h, w, 0.0), radius=5)
    assert np.array_equal(steady[~unseen], noisy[~unseen])
    assert _rms(steady, truth, unseen) < 0.5 * _rms(noisy, truth, unseen)
    flicker = lambda v: float(np.abs(np.diff(v, axis=0))[unseen[1:]].mean())  # noqa: E731
    assert flicker(steady) < 0.4 * flicker(noisy)
    assert steady_unseen(noisy, unseen, _flows(t_count, h, w, 0.0), radius=0) is noisy


def test_on_a_panning_shot_the_fill_is_averaged_along_the_motion_not_in_place():
    t_count, h, w, speed = 10, 40, 64, 2
    world = _world(h, w + speed * t_count, seed=3)
    truth = np.stack([world[:, t * speed:t * speed + w] for t in range(t_count)])  # content slides left 2 px/frame
    unseen = np.zeros((t_count, h, w), bool)
    unseen[:, 8:32, 16:48] = True
    noisy = _noisy_fill(truth, unseen, 0.08)
    along = steady_unseen(noisy, unseen, _flows(t_count, h, w, -float(speed)), radius=4)
    in_place = steady_unseen(noisy, unseen, _flows(t_count, h, w, 0.0), radius=4)
    assert _rms(along, truth, unseen) < 0.6 * _rms(noisy, truth, unseen)
    assert _rms(along, truth, unseen) < 0.7 * _rms(in_place, truth, unseen)  # in place blurs the slide


def test_a_still_track_goes_on_to_the_still_radius_and_the_patch_stands_as_still_as_the_plate():
    t_count, h, w = 16, 32, 40
    truth = np.repeat(_world(h, w, seed=7)[None], t_count, axis=0)
    unseen = np.zeros((t_count, h, w), bool)
    unseen[:, 8:24, 10:30] = True
    noisy = _noisy_fill(truth, unseen, 0.08)
    still = _flows(t_count, h, w, 0.0)
    short = steady_unseen(noisy, unseen, still, radius=2)
    long = steady_unseen(noisy, unseen, still, radius=2, still_radius=t_count)
    assert np.array_equal(long[~unseen], noisy[~unseen])
    # every frame's track reaches every other frame: one mean, the same in all of them
    np.testing.assert_allclose(long[unseen].reshape(t_count, -1, 3),
                               np.broadcast_to(noisy[unseen].reshape(t_count, -1, 3).mean(axis=0),
                                               (t_count, unseen[0].sum(), 3)), atol=1e-5)
    assert _rms(long, truth, unseen) < 0.6 * _rms(short, truth, unseen)


def test_a_moving_track_ignores_the_still_radius_and_a_drifting_one_stops_a_pixel_away():
    t_count, h, w = 12, 24, 48
    unseen = np.ones((t_count, h, w), bool)
    xs, ys = np.array([10]), np.array([12])
    panning = [there for there, *_ in _follow(unseen, _flows(t_count, h, w, 2.0), 0, xs, ys, +1, 2, 4.0, 10)]
    assert panning == [1, 2]  # 2 px a frame: the still rule never holds, the radius is all it gets
    drift = 0.3
    drifting = [there for there, *_ in _follow(unseen, _flows(t_count, h, w, drift), 0, xs, ys, +1, 2, 4.0, 10)]
    assert drifting == list(range(1, int(STILL_PX / drift) + 1))  # within STILL_PX of the start: frames 1-3


def test_a_track_stops_where_it_leaves_what_no_frame_sees():
    t_count, h, w = 6, 24, 24
    frames = np.zeros((t_count, h, w, 3), np.float32)
    frames[:, :, :] = 0.2
    unseen = np.zeros((t_count, h, w), bool)
    unseen[:, 8:16, 8:16] = True
    frames[3][unseen[3]] = 0.8  # one frame's fill differs
    unseen[4:] = False  # the later frames show something else at that place: never averaged in
    frames[4:] = 0.9
    out = steady_unseen(frames, unseen, _flows(t_count, h, w, 0.0), radius=3)
    np.testing.assert_allclose(out[3][unseen[3]], (0.8 + 3 * 0.2) / 4, atol=1e-6)  # frames 0-3 only
    np.testing.assert_allclose(out[0][unseen[0]], (3 * 0.2 + 0.8) / 4, atol=1e-6)


def test_a_track_stops_at_a_cut():
    t_count, h, w = 6, 24, 24
    frames = np.full((t_count, h, w, 3), 0.2, np.float32)
    frames[3:] = 0.9  # the next shot's fill
    unseen = np.ones((t_count, h, w), bool)
    flows = _flows(t_count, h, w, 0.0)
    flows.linked = np.arange(t_count - 1) != 2  # a cut between frames 2 and 3
    out = steady_unseen(frames, unseen, flows, radius=3)
    np.testing.assert_allclose(out[:3], 0.2, atol=1e-6)
    np.testing.assert_allclose(out[3:], 0.9, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_every_sample_type_keeps_its_type_and_range(dtype):
    t_count, h, w = 5, 20, 20
    unseen = np.zeros((t_count, h, w), bool)
    unseen[:, 5:15, 5:15] = True
    rng = np.random.default_rng(0)
    top = np.iinfo(dtype).max if np.issubdtype(dtype, np.integer) else 4.0  # float plates may hold HDR values
    frames = (rng.random((t_count, h, w, 3)) * top).astype(dtype)
    out = steady_unseen(frames, unseen, _flows(t_count, h, w, 0.0), radius=2)
    assert out.dtype == dtype and np.array_equal(out[~unseen], frames[~unseen])
    expect = frames.astype(np.float64)[:, 5:15, 5:15].mean(axis=0)  # radius 2 on 5 frames: frame 2 sees all
    np.testing.assert_allclose(out[2, 5:15, 5:15], expect, atol=1.0 if top > 4 else 1e-5)


def test_the_engine_steadies_what_no_frame_sees_and_a_reused_run_gives_the_same_frames(tmp_path):
    t_count, h, w = 8, 64, 96
    world = (_world(h, w, seed=5) * 255).astype(np.uint8)
    frames = np.repeat(world[None], t_count, axis=0)
    holes = np.zeros((t_count, h, w), bool)
    holes[:, 20:40, 30:60] = True  # still camera, still hole: no frame sees behind it
    frames[holes] = (255, 0, 255)
    settings = {"resolution.work_width": 64}  # a model fills it, frame by frame
    plain = inpaint(frames, holes, make_config("tiny", "dip-vid", **settings))
    steadied = {"propagation.steady_radius": 2, "propagation.steady_still_radius": t_count}
    steady = inpaint(frames, holes, make_config("tiny", "dip-vid", **settings, **steadied), workdir=tmp_path / "work")
    assert steady.steps > 0 and (steady.matte[holes] == GENERATED).all()
    assert np.array_equal(steady.frames[~holes], frames[~holes])
    assert not np.array_equal(steady.frames, plain.frames)
    flicker = lambda v: float(np.abs(np.diff(v.astype(np.int16), axis=0))[holes[1:]].mean())  # noqa: E731
    assert flicker(steady.frames) < 0.05 * flicker(plain.frames)  # still tracks reach every frame: one patch
    again = inpaint(frames, holes, make_config("tiny", "dip-vid", **settings, **steadied),
                    workdir=tmp_path / "work")  # propagation and result from the cache, flows estimated again
    assert np.array_equal(again.frames, steady.frames)
    shorter = inpaint(frames, holes, make_config("tiny", "dip-vid", **settings, **{"propagation.steady_radius": 2}),
                      workdir=tmp_path / "work")  # steadied again from the same training: no retraining
    assert shorter.seconds == steady.seconds and shorter.steps == steady.steps
    assert np.array_equal(shorter.frames[~holes], frames[~holes])
    assert flicker(steady.frames) < flicker(shorter.frames) < flicker(plain.frames)


@pytest.mark.parametrize("width,followed", [(480, 3), (960, 6)])
def test_the_still_threshold_is_a_pixel_of_a_480_wide_plate(width, followed):
    """A drift of 0.3 px a frame stays 'still' for 3 frames at 480 wide and 6 at 960, where the same drift of the
    picture spans twice the pixels: one frame's fill then averages with that many later fills."""
    t_count, h = 10, 8
    unseen = np.zeros((t_count, h, width), bool)
    unseen[:, 2:6, 20:30] = True
    frames = np.zeros((t_count, h, width, 3), np.float32)
    frames[1:] = 1.0  # frame 0's fill is 0, every later one 1: the mean tells how many later ones it met
    out = steady_unseen(frames, unseen, _flows(t_count, h, width, 0.3), radius=1, still_radius=t_count)
    assert out[0, 4, 21, 0] == pytest.approx(followed / (followed + 1), abs=1e-6)


def test_under_a_flickering_light_each_frame_keeps_its_own_light():
    """A track's fills come from lighter and darker frames; with the clip's exposure they are taken in this
    frame's light, so the steady fill does not pull every frame's patch to the clip's mean brightness."""
    from vinpaint.engine.exposure import Exposure

    t_count, h, w = 12, 40, 56
    gains = np.array([1.0, 1.2, 0.85, 1.1, 0.9, 1.25, 0.8, 1.0, 1.15, 0.9, 1.05, 0.95], np.float32)
    truth = np.stack([(0.2 + 0.55 * _world(h, w)) * g for g in gains]).astype(np.float32)
    unseen = np.zeros((t_count, h, w), bool)
    unseen[:, 10:30, 15:40] = True
    noisy = _noisy_fill(truth, unseen, 0.05)
    flows = _flows(t_count, h, w, 0.0)
    lit = Exposure(np.repeat(np.log(gains / gains[0])[:, None], 3, axis=1))
    relit = steady_unseen(noisy, unseen, flows, radius=5, exposure=lit)
    as_is = steady_unseen(noisy, unseen, flows, radius=5)
    assert np.array_equal(relit[~unseen], noisy[~unseen])
    assert _rms(relit, truth, unseen) < 0.6 * _rms(noisy, truth, unseen)
    assert _rms(relit, truth, unseen) < 0.5 * _rms(as_is, truth, unseen), (_rms(relit, truth, unseen),
                                                                           _rms(as_is, truth, unseen))
