"""Flow-guided propagation: real pixels from other frames, the matte, the cache, and the engine's use of them."""
from __future__ import annotations

import dataclasses
import json

import cv2
import numpy as np
import pytest

from vinpaint.engine import inpaint, make_config
from vinpaint.evaluation.metrics import hole_psnr
from vinpaint.engine.composite import composite
from vinpaint.engine.flow import DISFlow
from vinpaint.engine.result import GENERATED, PROPAGATED
from vinpaint.engine.propagate import (NeighbourFlows, clip_flows, complete_flow, hidden_band, load_propagation,
                                       neighbour_flows, propagate, propagate_clip, ring_around, same_scene,
                                       save_propagation)


def _panning_clip(frames: int = 12, h: int = 64, w: int = 96, speed: int = 2, seed: int = 0, hole_speed: int = 3):
    """A textured world seen through a window that pans `speed` px a frame, and a square hole that moves the
    other way: every hole pixel is seen by some other frame. -> (frames uint8, holes bool, truth uint8)."""
    rng = np.random.default_rng(seed)
    world = rng.random((h // 4, (w + speed * frames) // 4 + 1, 3)).astype(np.float32)
    world = cv2.resize(world, (world.shape[1] * 4, h), interpolation=cv2.INTER_CUBIC)
    world = cv2.GaussianBlur(world, (0, 0), 1.0)
    world = (np.clip(world, 0, 1) * 255).astype(np.uint8)
    truth = np.stack([world[:, t * speed:t * speed + w] for t in range(frames)])
    holes = np.zeros((frames, h, w), bool)
    for t in range(frames):
        x = 16 + hole_speed * t  # against the content, which slides left
        holes[t, 20:40, x:x + 16] = True
    shown = truth.copy()
    shown[holes] = (255, 0, 255)  # the "object": must never leak into the fill
    return shown, holes, truth


def test_complete_flow_continues_a_smooth_motion_across_the_hole():
    h, w = 48, 64
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    flow = np.stack([1.5 + 0.02 * xs, -0.5 + 0.01 * ys], axis=-1)
    unknown = np.zeros((h, w), bool)
    unknown[15:35, 20:44] = True
    garbage = flow.copy()
    garbage[unknown] = 40.0  # what an estimator says about the object inside the hole
    filled = complete_flow(garbage, unknown)
    assert np.array_equal(filled[~unknown], flow[~unknown])
    assert np.abs(filled[unknown] - flow[unknown]).max() < 0.3


def test_propagation_copies_the_true_background_into_the_hole_and_nothing_of_the_object():
    frames, holes, truth = _panning_clip()
    flows = neighbour_flows(frames, holes, DISFlow("medium"))
    result = propagate(frames.astype(np.float32) / 255, holes, flows, tolerance=2.0)
    assert not result.reached[~holes].any()
    assert result.reached.sum() / holes.sum() > 0.9
    out, matte = composite(frames, None, holes, 0, result, seam=3)
    assert np.array_equal(out[~holes], frames[~holes])  # bit-exact outside the hole
    assert hole_psnr(out, truth, result.reached) > 30.0
    telea = np.stack([cv2.inpaint(f, m.astype(np.uint8) * 255, 5, cv2.INPAINT_TELEA) for f, m in zip(frames, holes)])
    assert hole_psnr(out, truth, result.reached) > hole_psnr(telea, truth, result.reached) + 8.0
    # the object's colour never leaks in: no filled pixel is nearer magenta than its truth is
    magenta = np.array([255, 0, 255], np.float64)
    near = np.abs(out.astype(np.float64) - magenta).sum(-1) < np.abs(truth.astype(np.float64) - magenta).sum(-1) - 60
    assert not (near & result.reached).any()
    assert np.array_equal(matte > 0, holes)
    assert np.array_equal(matte == PROPAGATED, result.reached)
    assert set(np.unique(matte[holes])) <= {PROPAGATED, GENERATED}


def test_a_hole_that_never_moves_over_a_still_background_cannot_be_propagated():
    frames, holes, _ = _panning_clip(speed=0, hole_speed=0)
    flows = neighbour_flows(frames, holes, DISFlow("medium"))
    result = propagate(frames.astype(np.float32) / 255, holes, flows, tolerance=2.0)
    assert not result.reached.any()  # nobody sees behind it: all of it must be generated


def test_propagation_cache_round_trips_and_stores_no_pickles(tmp_path):
    frames, holes, _ = _panning_clip(frames=6)
    flows = neighbour_flows(frames, holes, DISFlow("ultrafast"))
    result = propagate(frames.astype(np.float32) / 255, holes, flows)
    path = tmp_path / "propagation.npz"
    save_propagation(path, result)
    back = load_propagation(path)
    assert np.array_equal(back.reached, result.reached)
    assert np.array_equal(back.colours[result.reached], result.colours[result.reached])
    with np.load(path, allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)


def _uniform_flows(frames: int, h: int, w: int, dx: float) -> NeighbourFlows:
    forward = np.zeros((frames - 1, h, w, 2), np.float16)
    forward[..., 0] = dx
    return NeighbourFlows(forward, -forward, 1.0, 1.0)


def test_a_cut_is_found_between_two_shots_and_a_change_of_light_or_motion_is_not():
    first, holes, _ = _panning_clip(frames=6, seed=0)
    second, _, _ = _panning_clip(frames=6, seed=1, speed=3)
    brighter = np.clip(first[3:].astype(np.float32) * 1.3, 0, 255).astype(np.uint8)  # a flicker, not a cut
    clip = np.concatenate([first[:3], brighter, second])
    flows = neighbour_flows(clip, np.concatenate([holes, holes]), DISFlow("medium"))
    assert flows.linked.tolist() == [True] * 5 + [False] + [True] * 5
    assert flows.links(4) and not flows.links(5)
    flat = np.full((32, 48, 3), 90, np.uint8)  # too flat to tell: one scene, as before the check
    still = np.zeros((32, 48, 2), np.float32)
    assert same_scene(flat, flat, np.zeros((32, 48), bool), np.zeros((32, 48), bool), still, still, 1.0)


def test_nothing_is_carried_across_a_cut():
    t_count, h, w, cut = 8, 32, 48, 3
    frames = np.zeros((t_count, h, w, 3), np.float32)
    frames[cut + 1:] = 0.7  # the second shot shows something else where the first has its hole
    holes = np.zeros((t_count, h, w), bool)
    holes[:cut + 1, 10:20, 10:30] = True  # a still hole on a still camera: only the next shot "shows" behind it
    linked = _uniform_flows(t_count, h, w, 0.0)
    assert propagate(frames, holes, linked).reached[holes].all()  # without the cut the other shot is copied in
    linked.linked = np.arange(t_count - 1) != cut
    assert not propagate(frames, holes, linked).reached.any()


def test_the_hidden_band_is_the_whole_band_on_a_still_camera_and_less_where_other_frames_show_it():
    frames, h, w = 8, 40, 60
    holes = np.zeros((frames, h, w), bool)
    holes[:, 14:26, 24:36] = True  # the same place in every frame, nothing propagated: all of it unseen
    reached = np.zeros_like(holes)
    band = ring_around(holes, 4) & ~holes
    still = hidden_band(holes, reached, _uniform_flows(frames, h, w, 0.0), 4, 1.0, 0)
    assert np.array_equal(still, band)  # hidden at the same place in every frame: no frame shows it
    # the camera pans 3 px a frame; copies may come from one frame away
    panning = hidden_band(holes, reached, _uniform_flows(frames, h, w, 3.0), 4, 1.0, 1)
    assert not (panning & ~band).any() and 0 < panning.sum() < band.sum()
    # 3 px right of the hole in frame 3 lies 6 px right of it in frame 4, outside that frame's band: shown there
    assert band[3, 20, 36 + 2] and not panning[3, 20, 36 + 2]
    # 1 px right of it lies in frame 4's band and in frame 2's hole: no frame within reach shows it
    assert panning[3, 20, 36]
    anywhere = hidden_band(holes, reached, _uniform_flows(frames, h, w, 3.0), 4, 1.0, 0)
    assert not (anywhere & ~panning).any()  # with no limit on the copies' reach, more of the band is shown


def test_propagate_clip_keeps_the_hidden_band_with_the_self_check_and_its_cache_round_trips(tmp_path):
    frames, holes, _ = _panning_clip(frames=6)
    for t in range(6):  # a second hole that moves with the world (2 px a frame): no frame sees under it
        holes[t, 44:58, 70 - 2 * t:86 - 2 * t] = True
    settings = make_config("fast").propagation
    result = propagate_clip(frames, holes, settings, DISFlow("ultrafast"))
    unseen = holes & ~result.reached
    assert unseen.any() and result.hidden_band is not None and result.hidden_band.any()
    assert not (result.hidden_band & holes & ~result.reached).any()  # known or propagated pixels only
    assert not (result.hidden_band & ~ring_around(unseen, settings.check_band)).any()
    path = tmp_path / "propagation.npz"
    save_propagation(path, result)
    assert np.array_equal(load_propagation(path).hidden_band, result.hidden_band)
    without = propagate_clip(frames, holes, dataclasses.replace(settings, self_check=False), DISFlow("ultrafast"))
    assert without.hidden_band is None
    save_propagation(path, without)
    assert load_propagation(path).hidden_band is None  # and a cache from before it existed loads the same way


def test_engine_skips_training_when_every_hole_pixel_was_seen_and_writes_a_matte(tmp_path):
    frames, holes, truth = _panning_clip()
    config = make_config("tiny", "dip-vid", **{"resolution.work_width": 64, "propagation.tolerance": 3.0,
                                               "propagation.seam": 0})
    result = inpaint(frames, holes, config, workdir=tmp_path / "work")
    assert np.array_equal(result.frames[~holes], frames[~holes])
    assert np.array_equal(result.matte > 0, result.hole)
    reached = result.matte == PROPAGATED
    if reached.all() or (result.matte[result.hole] == PROPAGATED).all():
        assert result.steps == 0 and any("no training needed" in n for n in result.notices)
    else:
        assert result.steps > 0
    assert hole_psnr(result.frames, truth, reached) > 30.0
    # a second run is served from the work directory, propagation included
    again = inpaint(frames, holes, config, workdir=tmp_path / "work")
    assert np.array_equal(again.frames, result.frames) and np.array_equal(again.matte, result.matte)


def test_engine_trains_on_what_propagation_could_not_reach():
    frames, holes, _ = _panning_clip(frames=8, speed=0, hole_speed=0)  # never revealed: the model must generate all of it
    config = make_config("tiny", "dip-vid", **{"resolution.work_width": 64})
    result = inpaint(frames, holes, config)
    assert result.steps > 0
    assert (result.matte[result.hole] == GENERATED).all()


def test_paper_preset_is_the_paper_alone():
    assert not make_config("paper").propagation.enabled
    assert make_config("fast").propagation.enabled
    with pytest.raises(Exception, match="propagation.tolerance"):
        make_config("fast", **{"propagation.tolerance": float("nan")})
    assert json.loads(make_config("fast").to_json())["propagation"]["enabled"] is True


def test_a_small_unseen_rest_is_diffused_without_training_and_the_cached_result_is_identical(tmp_path):
    frames, holes, truth = _panning_clip(frames=8, speed=0, hole_speed=0)  # never revealed
    config = make_config("tiny", "dip-vid", **{"resolution.work_width": 64, "propagation.train_below": 1.0})
    first = inpaint(frames, holes, config, workdir=tmp_path / "work")
    assert first.steps == 0 and any("no training needed" in n for n in first.notices)
    assert (first.matte[first.hole] == GENERATED).all()
    telea = np.stack([cv2.inpaint(f, m.astype(np.uint8) * 255, 5, cv2.INPAINT_TELEA) for f, m in zip(frames, holes)])
    assert abs(hole_psnr(first.frames, truth, holes) - hole_psnr(telea, truth, holes)) < 0.5
    again = inpaint(frames, holes, config, workdir=tmp_path / "work")
    assert np.array_equal(again.frames, first.frames)
    strict = make_config("tiny", "dip-vid", **{"resolution.work_width": 64, "propagation.train_below": 0.0})
    assert inpaint(frames, holes, strict).steps > 0


def test_a_painted_reference_frame_is_carried_through_the_shot():
    frames, holes, truth = _panning_clip(frames=8, speed=0, hole_speed=0)  # nobody sees behind the hole: only the painting can tell
    config = make_config("tiny", "dip-vid", **{"resolution.work_width": 64, "propagation.train_below": 1.0})
    without = inpaint(frames, holes, config)
    painted = inpaint(frames, holes, config, references={3: truth[3]})
    assert np.array_equal(painted.frames[3][holes[3]], truth[3][holes[3]])  # the painted frame is the painting
    assert np.array_equal(painted.frames[3][~holes[3]], frames[3][~holes[3]])
    assert not painted.hole[3].any() and painted.hole[4].all() == holes[4].all()
    others = np.ones(len(frames), bool)
    others[3] = False
    assert hole_psnr(painted.frames[others], truth[others], holes[others]) > 30.0
    assert hole_psnr(painted.frames[others], truth[others], holes[others]) > \
        hole_psnr(without.frames[others], truth[others], holes[others]) + 10.0
    with pytest.raises(Exception, match="reference frame 99"):
        inpaint(frames, holes, config, references={99: truth[0]})
    with pytest.raises(Exception, match="bit depth"):
        inpaint(frames, holes, config, references={0: truth[0].astype(np.uint16)})


def test_a_small_unseen_hole_is_trained_on_its_region_at_native_detail():
    frames, holes, truth = _panning_clip(frames=8, h=128, w=256, speed=0, hole_speed=0)
    config = make_config("tiny", "dip-vid", **{"resolution.work_width": 128, "resolution.crop_to_hole": True,
                                               "propagation.train_below": 0.0})
    result = inpaint(frames, holes, config)
    assert result.steps > 0
    # the hole's box (16 wide, 20 high, at x 16, y 20) plus 32 px each side, cut by the frame's edges, is 64x72:
    # trained at 64x64 (its own detail), not the whole 256x128 frame squashed to 128x64
    assert result.generated.shape[1:3] == (64, 64)
    assert np.array_equal(result.frames[~holes], frames[~holes])
    assert np.array_equal(result.matte > 0, holes)
    whole = inpaint(frames, holes, config.replace(**{"resolution.crop_to_hole": False}))
    assert whole.generated.shape[1:3] == (64, 128)


def test_the_clip_chooses_how_far_copies_may_travel():
    from vinpaint.engine.propagate import calibrate_distance

    still, holes, _ = _panning_clip(frames=12, speed=0, hole_speed=3)
    flows = neighbour_flows(still, holes, DISFlow("medium"))
    limit, errors = calibrate_distance(still, holes, flows)
    assert limit == 0 and errors[1] < errors[0]  # a still scene: copies from any distance beat diffusion
    # a smooth scene whose light rises 14 levels a frame: a copy from d frames away is 14d levels off, while
    # diffusion from the pixels around is nearly exact, so copies are kept to the nearest frame only
    smooth = (cv2.GaussianBlur(still[0], (0, 0), 6.0) * 0.4).astype(np.int16)
    rising = np.stack([np.clip(smooth + 14 * t, 0, 255).astype(np.uint8) for t in range(len(still))])
    flows = neighbour_flows(rising, holes, DISFlow("medium"))
    limit, errors = calibrate_distance(rising, holes, flows)
    assert limit == 1 and errors[1] > errors[0]


def test_copies_are_calibrated_through_flow_completed_as_the_holes_is():
    """A still wire over a still wall that small things cross: the hole's copies follow flow completed from the
    still wall around it and bring the crossing things along, where the ring's estimated flow follows them. With
    calibrate_completed the ring is carried as the hole is, and its copies are found as bad as the hole's."""
    from vinpaint.engine.propagate import calibrate_distance, ring_completed

    frames_n, h, w = 24, 64, 96
    rng = np.random.default_rng(3)
    wall = cv2.GaussianBlur((rng.random((h, w, 3)) * 255).astype(np.float32), (0, 0), 2.0).astype(np.uint8)
    frames = np.repeat(wall[None], frames_n, axis=0)
    forward = np.zeros((frames_n - 1, h, w, 2), np.float16)
    backward = np.zeros_like(forward)
    for t in range(frames_n):
        x = 4 + 3 * t  # an 8x8 square walks right, 3 px a frame, through the wire
        frames[t, 28:36, x:x + 8] = (250, 250, 250)
        if t + 1 < frames_n:
            forward[t, 28:36, x:x + 8] = (3, 0)
            backward[t, 28:36, x + 3:x + 11] = (-3, 0)
    holes = np.zeros((frames_n, h, w), bool)
    holes[:, :, 46:50] = True
    flows = NeighbourFlows(forward, backward, 1.0, 1.0)
    _, estimated = calibrate_distance(frames, holes, flows)
    _, completed = calibrate_distance(frames, holes, ring_completed(holes, flows))
    assert all(completed[d] > 1.2 * estimated[d] for d in (1, 2, 4)), (completed, estimated)
    assert completed[0] == estimated[0]  # diffusion is scored on the same pixels either way


def test_flow_input_masked_or_as_given():
    """neighbour_flows estimates on Telea-filled frames by default, and on the frames as given with masked=False
    (the object visible, as the authors did); the hole's flow is completed either way."""
    frames, holes, _ = _panning_clip(frames=3)
    seen = []

    def spy(a, b):
        seen.append(a.copy())
        return DISFlow("ultrafast")(a, b)

    neighbour_flows(frames, holes, spy)
    assert not np.array_equal(seen[0][holes[0]], frames[0][holes[0]])  # the hole was filled before estimation
    seen.clear()
    flows = neighbour_flows(frames, holes, spy, masked=False)
    assert np.array_equal(seen[0], frames[0])
    assert flows.forward.shape == (2, *holes.shape[1:], 2)


def _still_clip_with_rising_light(frames: int = 9, h: int = 48, w: int = 64, rise: int = 6):
    """A still textured scene whose light rises `rise` levels a frame, and a square hole that moves across it:
    a hole pixel is seen by frames on both sides of it, whose copies are off by as much either way."""
    rng = np.random.default_rng(3)
    base = cv2.GaussianBlur(rng.random((h, w, 3)).astype(np.float32), (0, 0), 2.0)
    base = (base - base.min()) / (base.max() - base.min()) * 120 + 40
    truth = np.stack([np.clip(base + rise * t, 0, 255).round().astype(np.uint8) for t in range(frames)])
    holes = np.zeros((frames, h, w), bool)
    for t in range(frames):
        holes[t, 16:32, 4 + 5 * t:20 + 5 * t] = True
    shown = truth.copy()
    shown[holes] = 0
    return shown, holes, truth


def test_copies_from_both_sides_average_out_a_scene_that_changes_on_its_own():
    from vinpaint.engine.propagate import Fusion

    shown, holes, truth = _still_clip_with_rising_light()
    flows = neighbour_flows(shown, holes, DISFlow("medium"))
    frames = shown.astype(np.float32) / 255
    nearest = propagate(frames, holes, flows, tolerance=2.0)
    fused = propagate(frames, holes, flows, tolerance=2.0, fusion=Fusion({1: 0.02, 2: 0.04}, np.zeros(1), None))
    assert np.array_equal(fused.reached, nearest.reached) and np.array_equal(fused.distance, nearest.distance)
    middle = fused.reached.copy()
    middle[[0, -1]] = False  # the first and last frames see the background from one side only
    error = lambda p: np.abs(p.colours[middle] * 255 - truth[middle]).mean()  # noqa: E731
    assert error(nearest) > 4.0  # one side's copy: a frame's worth of light off
    assert error(fused) < 0.6 * error(nearest)  # where both sides see it, the two errors cancel


@pytest.mark.parametrize("method", ["telea", "membrane"])
def test_diffusion_joins_the_copies_near_the_edge_and_hardly_deep_inside(method):
    from vinpaint.engine.diffusion import diffuse
    from vinpaint.engine.propagate import Fusion, diffusion_error_by_depth, hole_depth

    shown, holes, truth = _still_clip_with_rising_light(rise=0)
    depths, rms = diffusion_error_by_depth(shown, holes, diffusion=method)
    assert len(depths) >= 2 and rms[-1] > 1.5 * rms[0]  # a textured scene: diffusion is worse deeper in
    flows = neighbour_flows(shown, holes, DISFlow("medium"))
    frames = shown.astype(np.float32) / 255
    copies = propagate(frames, holes, flows, tolerance=2.0, fusion=Fusion({1: 0.02}, depths, None))
    both = propagate(frames, holes, flows, tolerance=2.0, fusion=Fusion({1: 0.02}, depths, rms, diffusion=method))
    assert np.array_equal(both.reached, copies.reached)
    diffused = np.stack([diffuse(f, h, method) for f, h in zip(frames, holes)])
    # where copy and diffusion differ, the blend lies between them, at diffusion's share of the weight
    gap = diffused - copies.colours
    share = np.where(np.abs(gap) > 0.02, (both.colours - copies.colours) / np.where(gap == 0, 1, gap), np.nan)
    assert np.nanmin(share) > -1e-3 and np.nanmax(share) < 1 + 1e-3
    depth = np.stack([hole_depth(h) for h in holes])[..., None].repeat(3, axis=-1)
    edge, deep = both.reached[..., None] & (depth <= 1.5), both.reached[..., None] & (depth >= 6)
    assert np.nanmedian(share[edge]) > 2 * np.nanmedian(share[deep]) > 0


def test_fusion_is_a_setting_and_nearest_is_the_old_choice():
    from vinpaint.engine.config import PropagationConfig
    from vinpaint.engine.propagate import propagate_clip

    shown, holes, truth = _still_clip_with_rising_light()
    nearest = propagate_clip(shown, holes, PropagationConfig(fusion="nearest"), DISFlow("medium"))
    flows = neighbour_flows(shown, holes, DISFlow("medium"))
    from vinpaint.engine.propagate import calibrate_distance
    limit = calibrate_distance(shown, holes, flows)[0]
    assert np.array_equal(nearest.colours, propagate(shown.astype(np.float32) / 255, holes, flows,
                                                     PropagationConfig().tolerance, limit).colours)
    lines = []
    fused = propagate_clip(shown, holes, PropagationConfig(), DISFlow("medium"), log=lines.append)
    assert any("by depth" in line for line in lines)
    assert np.array_equal(fused.reached, nearest.reached)
    assert hole_psnr(_u8(fused.colours), truth, fused.reached) > hole_psnr(_u8(nearest.colours), truth, fused.reached)


def _u8(colours: np.ndarray) -> np.ndarray:
    """Propagated colours (0-1) as the uint8 frames they become, to score against uint8 truth."""
    return (np.clip(colours, 0, 1) * 255).round().astype(np.uint8)


def _still_and_flickering_clip(t_count: int = 10, h: int = 64, w: int = 128):
    """A still camera; the left half a fixed fine texture (a copy from any frame is exact, diffusion blurs it), the
    right half a smooth ramp whose brightness jumps every frame (a copy carries another frame's light, diffusion
    from the frame's own surround gets it right); a hole across both halves that moves down. -> shown, holes, truth."""
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.random((h, w // 2, 3)).astype(np.float32), (0, 0), 1.0)
    texture = (texture - texture.min()) / (texture.max() - texture.min())
    ramp = np.linspace(0.3, 0.6, w // 2, dtype=np.float32)[None, :, None].repeat(h, 0).repeat(3, 2)
    truth = np.stack([np.concatenate([texture, np.clip(ramp + rng.uniform(-0.15, 0.15), 0, 1)], 1)
                      for _ in range(t_count)])
    truth = (truth * 255).round().astype(np.uint8)
    holes = np.zeros((t_count, h, w), bool)
    for t in range(t_count):
        holes[t, 6 + 2 * t:26 + 2 * t, 50:78] = True
    shown = truth.copy()
    shown[holes] = (255, 0, 255)
    return shown, holes, truth


def test_copies_count_for_more_beside_a_still_scene_and_less_beside_a_changing_one():
    """propagation.local_errors: one-frame copies on the ring around the hole are scored where they are, so the
    hole's still side trusts its copies more and its flickering side trusts diffusion more than one clip-wide
    error allows; both sides come out nearer the truth."""
    from vinpaint.engine.config import PropagationConfig
    from vinpaint.engine.propagate import local_copy_error

    shown, holes, truth = _still_and_flickering_clip()
    local = local_copy_error(shown, holes, neighbour_flows(shown, holes, DISFlow("medium")))
    still, flicker = (float(local.ratio[:, :, cols].astype(np.float32).mean()) for cols in (slice(40, 60),
                                                                                           slice(68, 88)))
    assert still < 0.7 and flicker > 1.3
    scores = {}
    for flag in (False, True):
        p = propagate_clip(shown, holes, dataclasses.replace(PropagationConfig(), local_errors=flag),
                           DISFlow("medium"))
        left, right = p.reached.copy(), p.reached.copy()
        left[..., 64:], right[..., :64] = False, False
        assert left.sum() > 500 and right.sum() > 500
        scores[flag] = (hole_psnr(_u8(p.colours), truth, left), hole_psnr(_u8(p.colours), truth, right))
    assert scores[True][0] > scores[False][0] + 0.5 and scores[True][1] > scores[False][1] + 0.3


class _FixedFlow:
    """A flow estimator that answers +dx px in x for every pair, whichever way round (so each step's forward and
    backward flows disagree by 2 dx), everywhere or only in one column (as flow along an object's edge)."""

    def __init__(self, dx: float, column: int | None = None):
        self.dx, self.column = dx, column

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        flow = np.zeros(a.shape[:2] + (2,), np.float32)
        flow[:, slice(None) if self.column is None else self.column, 0] = self.dx
        return flow


def _noise_with_box(t_count: int, h: int, w: int, rows: slice, cols: slice, pan: int = 0
                    ) -> tuple[np.ndarray, np.ndarray]:
    """One frame of noise panning `pan` px right a frame (one scene: same_scene links its frames), a still box."""
    noise = np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)
    frames = np.stack([np.roll(noise, pan * t, axis=1) for t in range(t_count)])
    holes = np.zeros((t_count, h, w), bool)
    holes[:, rows, cols] = True
    return frames, holes


@pytest.mark.parametrize("width,reaches", [(480, False), (960, True)])
def test_the_forward_backward_tolerance_is_in_pixels_of_a_480_wide_plate(width, reaches):
    """4 px on a 480-wide plate is 8 on a 960-wide one: the same motion and flow error span twice the pixels."""
    frames, holes = _noise_with_box(4, 64, width, slice(20, 40), slice(200, 240), pan=3)
    settings = dataclasses.replace(make_config("fast").propagation, tolerance=4.0, calibrate=False, max_distance=0,
                                   fusion="nearest", self_check=False)
    result = propagate_clip(frames, holes, settings, _FixedFlow(3.0))  # steps off by 6 px
    assert result.reached[holes].any() == reaches


@pytest.mark.parametrize("width,kept", [(480, True), (960, False)])
def test_the_band_of_discarded_flow_is_in_pixels_of_a_480_wide_plate(width, kept):
    """band 4 on a 480-wide plate is 8 on a 960-wide one: flow in a column 7 px from the hole is kept at 480 wide
    and discarded (completed from around it, where it is 0) at 960."""
    frames, holes = _noise_with_box(3, 32, width, slice(10, 20), slice(200, 240))  # x=246 is 7 px from 239
    settings = dataclasses.replace(make_config("fast").propagation, band=4, max_width=960)
    flows = clip_flows(frames, holes, settings, _FixedFlow(6.0, column=246))
    assert (float(flows.forward[0, 15, 246, 0]) > 5.0) == kept


def test_the_stages_around_training_give_the_same_pixels_on_one_thread_and_on_several(tmp_path):
    """Telea runs frame by frame on a pool of threads (engine/parallel.py); the seeded samples are drawn in frame
    order first, so the thread count changes the time taken, never a pixel."""
    from vinpaint.engine.parallel import each_frame

    assert each_frame(lambda t: t * t, range(7)) == [0, 1, 4, 9, 16, 25, 36]  # in order, whatever finishes first
    import os
    from vinpaint.engine.parallel import frame_workers

    saved = os.environ.get("OMP_NUM_THREADS")
    try:
        os.environ["OMP_NUM_THREADS"] = "1"
        assert frame_workers() == 1  # the user's cap on a shared machine holds
        os.environ["OMP_NUM_THREADS"] = "many"
        assert frame_workers() >= 1
    finally:
        os.environ.pop("OMP_NUM_THREADS") if saved is None else os.environ.__setitem__("OMP_NUM_THREADS", saved)
    import time

    started = []

    def slow_then_fail(t: int) -> int:
        started.append(t)
        time.sleep(0.01)  # 400 of these take 2 s on two threads; the failure is seen after a few
        return 1 // (t - 3)

    with pytest.raises(ZeroDivisionError):
        each_frame(slow_then_fail, range(400))
    assert len(started) < 400  # the frames queued behind a failure are dropped
    shown, holes, _ = _panning_clip(frames=10, speed=1, hole_speed=2)
    holes[:, 20:40, 40:60] = True  # wider than any frame shows: a rest for diffusion, the self-check and the model
    config = make_config("tiny", **{"propagation.enabled": True, "propagation.self_check": True,
                                    "propagation.fusion": "copies+diffusion", "propagation.train_below": 0.0})
    before, omp = cv2.getNumThreads(), os.environ.get("OMP_NUM_THREADS")
    results = []
    try:
        for threads in (1, 4):
            cv2.setNumThreads(threads)
            os.environ["OMP_NUM_THREADS"] = str(threads)
            assert frame_workers() == threads  # the pool really is one thread, then several
            r = inpaint(shown, holes, config, workdir=tmp_path / f"threads{threads}")
            results.append((r.frames, r.matte))
    finally:
        cv2.setNumThreads(before)
        os.environ.pop("OMP_NUM_THREADS") if omp is None else os.environ.__setitem__("OMP_NUM_THREADS", omp)
    assert np.array_equal(results[0][0], results[1][0]) and np.array_equal(results[0][1], results[1][1])
    assert (results[0][1][holes] == PROPAGATED).any() and (results[0][1][holes] == GENERATED).any()


def test_a_plate_wider_than_the_flow_is_calibrated_at_the_flow_size():
    """The calibration's Telea fills run at the flow's size (at most 960 wide): the same answer as the clip gives
    at its own size, for a fraction of the time; up to 960 wide it is calibrate_distance itself."""
    from vinpaint.engine.propagate import at_flow_size, calibrate_distance

    def calibrate_at_flow_size(frames, holes, flows):  # as propagate_clip calibrates
        return calibrate_distance(*at_flow_size(frames, holes, flows))

    still, holes, _ = _panning_clip(frames=6, speed=0, hole_speed=3)
    smooth = (cv2.GaussianBlur(still[0], (0, 0), 6.0) * 0.4).astype(np.int16)
    rising = np.stack([np.clip(smooth + 14 * t, 0, 255).astype(np.uint8) for t in range(len(still))])
    flows = neighbour_flows(still, holes, DISFlow("medium"))
    assert calibrate_at_flow_size(still, holes, flows) == calibrate_distance(still, holes, flows)
    for clip, limit in ((still, 0), (rising, 1)):
        big = np.stack([cv2.resize(f, (1008, 672), interpolation=cv2.INTER_CUBIC) for f in clip])
        big_holes = np.stack([cv2.resize(h.astype(np.uint8), (1008, 672), interpolation=cv2.INTER_NEAREST) > 0
                              for h in holes])
        flows = neighbour_flows(big, big_holes, DISFlow("medium"))
        assert flows.forward.shape[2] == 960  # estimated at the reduced size
        assert calibrate_at_flow_size(big, big_holes, flows)[0] == calibrate_distance(big, big_holes, flows)[0] \
            == limit


def test_the_prop_telea_baseline_propagates_as_fast_does():
    """The baseline is the propagation stage's worth without training: every setting that decides the propagated
    pixels is fast's, so a change to fast's propagation reaches the baseline's table too."""
    from vinpaint.evaluation.baselines import PROP_TELEA

    fast = make_config("fast").propagation
    differ = {name for name, value in dataclasses.asdict(PROP_TELEA).items() if getattr(fast, name) != value}
    assert differ <= {"self_check", "train_below", "steady_radius", "steady_still_radius"}
    assert fast.local_errors and PROP_TELEA.local_errors


def test_a_mask_grown_on_its_box_is_the_whole_frames_dilation():
    """grown() dilates only the mask's bounding box plus the radius (a 4K plate's self-check band is a 193-pixel
    disc): the same pixels as OpenCV's dilation of the whole frame, wherever the mask lies."""
    from vinpaint.engine.composite import grown

    rng = np.random.default_rng(5)
    for radius in (1, 3, 12, 40):
        for spot in ((slice(30, 45), slice(60, 90)), (slice(0, 4), slice(0, 7)), (slice(90, 100), slice(150, 160)),
                     (slice(0, 100), slice(70, 72))):
            mask = np.zeros((100, 160), bool)
            mask[spot] = rng.random(mask[spot].shape) < 0.7
            kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
            whole = cv2.dilate(mask.astype(np.uint8), kernel) > 0
            assert np.array_equal(grown(mask, radius), whole), (radius, spot)
    empty = np.zeros((10, 10), bool)
    assert not grown(empty, 5).any() and np.array_equal(grown(whole, 0), whole)


def test_the_fill_never_depends_on_what_the_input_shows_inside_the_hole():
    """The hole holds the object to remove: nothing of it may reach the fill, not even through the calibration's
    and the light measurement's bilinear samples at the hole's edge (an audit, 2026-12-01, saw 72 pixels of the
    fill change between a hole holding the truth and one holding grey)."""
    shown, holes, truth = _panning_clip(frames=12, speed=2, hole_speed=3)
    config = make_config("fast", "dip-vid-flow", **{"propagation.exposure": True, "train.max_steps": 0})
    fills = []
    for inside in (truth, np.full_like(truth, 128), np.random.default_rng(1).integers(0, 256, truth.shape,
                                                                                        dtype=np.uint8)):
        frames = shown.copy()
        frames[holes] = inside[holes]
        fills.append(inpaint(frames, holes, config).frames)
    assert np.array_equal(fills[0], fills[1]) and np.array_equal(fills[0], fills[2])
