"""The self-check (engine/self_check.py): a held-out band of known pixels decides between the model's fill and
Telea diffusion for what no frame sees; the band stays exact in the output and a reused result composes the same."""
from __future__ import annotations

import numpy as np

from vinpaint.engine import inpaint, make_config
from vinpaint.engine.composite import upsampled
from vinpaint.engine.propagate import Propagation, blend_frame, diffusion_fill
from vinpaint.engine.result import GENERATED, PROPAGATED
from vinpaint.engine.self_check import CatchUp, Verdict, held_out_band, judge


def _clip(texture: bool, frames: int = 6, h: int = 64, w: int = 64):
    """A static clip with a square hole no frame sees: a flat colour (Telea is exact) or stripes Telea cannot
    continue -> (shown uint8, holes bool, truth uint8)."""
    truth = np.full((frames, h, w, 3), (90, 140, 200), np.uint8)
    if texture:
        stripes = ((np.arange(w) // 3) % 2 * 160 + 40).astype(np.uint8)
        truth[:] = stripes[None, None, :, None]
    holes = np.zeros((frames, h, w), bool)
    holes[:, 24:40, 24:40] = True
    shown = truth.copy()
    shown[holes] = (255, 0, 255)
    return shown, holes, truth


def _config(**extra):
    return make_config("tiny", "dip-vid", **{"resolution.work_width": 64, "propagation.self_check": True,
                                             "propagation.check_band": 3, **extra})


def test_the_band_is_known_pixels_next_to_the_unseen_hole():
    _, holes, _ = _clip(False)
    reached = np.zeros_like(holes)
    reached[:, 24:40, 24:28] = True  # propagation filled the hole's left edge
    propagation = Propagation(np.zeros(holes.shape + (3,), np.float32), reached, np.zeros(holes.shape, np.int16))
    train_holes = holes & ~reached
    band = held_out_band(holes, propagation, train_holes, 3)
    assert not (band & train_holes).any()
    assert band[:, 24:40, 25:28].all()  # propagated pixels next to the unseen part are known to training
    assert band[:, 24:40, 40:43].all() and not band[:, 24:40, 44:].any()
    assert not band[:, :, :20].any()


def test_flat_background_chooses_diffusion_keeps_the_band_exact_and_reuses_identically(tmp_path, monkeypatch):
    import vinpaint.engine.api as api

    seen = []

    def recording(images, known, *rest):  # the real TrainingData, with its known-pixel mask kept for the test
        seen.append(known.numpy()[:, 0] > 0)
        return real(images, known, *rest)

    real = api.TrainingData
    monkeypatch.setattr(api, "TrainingData", recording)
    shown, holes, truth = _clip(False)
    config = _config()
    result = inpaint(shown, holes, config, workdir=tmp_path / "work")
    # the band (3 px around the 16-px square, at 64 px working = source size) is hidden from training
    assert len(seen) == 1 and not seen[0][:, 22:42, 22:42].any() and seen[0][:, 18:20, 18:46].all()
    line = [n for n in result.notices if n.startswith("self-check")]
    assert len(line) == 1 and line[0].endswith("diffusion fills what no frame sees"), result.notices
    assert result.steps > 0
    band = held_out_band(holes, None, holes, 3)
    assert band.any() and not (band & holes).any()
    assert np.array_equal(result.frames[~holes], shown[~holes])  # the held-out band is kept bit-exact
    assert np.abs(result.frames[holes].astype(int) - truth[holes].astype(int)).max() <= 1  # Telea is exact here
    with np.load(tmp_path / "work" / "result.npz", allow_pickle=False) as z:
        assert bool(z["diffusion"])
    again = inpaint(shown, holes, config, workdir=tmp_path / "work")
    assert np.array_equal(again.frames, result.frames) and np.array_equal(again.matte, result.matte)
    assert '"self_check": true' in (tmp_path / "work" / "config.json").read_text()


def test_the_choice_is_the_argmax_of_scores_computed_on_the_band():
    shown, holes, _ = _clip(True)
    band = held_out_band(holes, None, holes, 3)
    rng = np.random.default_rng(0)
    truth = shown.astype(np.float32) / 255
    # a generation equal to the truth on the band beats diffusion, which cannot continue stripes
    exact = truth.copy()
    verdict = judge(shown, holes, None, exact, None, band)
    assert verdict.pixels == int(band.sum()) and verdict.model_psnr == float("inf")
    assert not verdict.use_diffusion and verdict.frames_diffusion_wins == 0
    # noise on the band only (not in the hole) is what the model is scored on: it loses to diffusion
    noisy = exact.copy()
    noisy[band] = rng.random((int(band.sum()), 3)).astype(np.float32)
    worse = judge(shown, holes, None, noisy, None, band)
    assert worse.diffusion_psnr == verdict.diffusion_psnr
    assert worse.model_psnr < worse.diffusion_psnr and worse.use_diffusion
    # the scores are the argmax either way: a stripes-aware generation wins on stripes
    assert judge(shown, holes, None, upsampled(exact[0], (64, 64))[None].repeat(6, 0), None, band).model_psnr > \
        verdict.diffusion_psnr


def test_the_seam_never_pulls_the_generation_into_propagated_pixels():
    hole = np.zeros((32, 32), bool)
    hole[8:24, 8:24] = True
    reached = hole.copy()
    reached[12:20, 12:20] = False
    colours = np.full((32, 32, 3), 0.25, np.float32)
    fill = np.ones((32, 32, 3), np.float32)  # a bad generation
    diffused = np.full((32, 32, 3), 0.3, np.float32)
    out, matte = blend_frame(fill, colours, reached, hole, 3, diffused)
    assert np.array_equal(out[reached], colours[reached])
    assert (matte[reached] == PROPAGATED).all() and (matte[hole & ~reached] == GENERATED).all()
    assert np.allclose(out[12, 12:20], out[12, 12:20].clip(0.3, 1.0))  # ramps from diffusion to the fill
    assert out[12, 12, 0] < 0.7 and out[15, 15, 0] > 0.6


def test_diffusion_fill_without_propagation_is_telea_on_the_whole_hole():
    shown, holes, truth = _clip(False)
    fill = diffusion_fill(shown, holes, None)
    assert np.abs(fill[holes] * 255 - truth[holes]).max() <= 1


def test_without_propagation_the_check_is_against_plain_telea():
    shown, holes, truth = _clip(False)
    result = inpaint(shown, holes, _config(**{"propagation.enabled": False}))
    assert any(n.startswith("self-check") and n.endswith("diffusion fills what no frame sees") for n in result.notices)
    assert (result.matte[holes] == GENERATED).all()
    assert np.abs(result.frames[holes].astype(int) - truth[holes].astype(int)).max() <= 1


def _verdict(model: float, diffusion: float) -> Verdict:
    return Verdict(model, diffusion, 100, 0, 1)


def test_catch_up_stops_only_a_model_that_trails_and_closes_too_slowly():
    # needs two checks for a trend, whatever the first gap
    assert not CatchUp(1000, 1.0).hopeless(100, _verdict(10.0, 30.0))
    # trailing by 4 dB, closing 0.5 dB per 100 steps: 2 dB at most by step 700 -> stop
    stuck = CatchUp(700, 1.0)
    assert not stuck.hopeless(100, _verdict(14.5, 19.0)) and stuck.hopeless(200, _verdict(15.0, 19.0))
    assert "trails diffusion by 4.00 dB" in stuck.line() and "by step 700" in stuck.line()
    # the same gap closing 1 dB per 100 steps catches up by step 700 -> go on
    closing = CatchUp(700, 1.0)
    assert not closing.hopeless(100, _verdict(14.0, 19.0)) and not closing.hopeless(200, _verdict(15.0, 19.0))
    # within the margin, no trend is needed to go on; a model ahead is never stopped
    near = CatchUp(10_000, 1.0)
    assert not near.hopeless(100, _verdict(18.0, 19.0)) and not near.hopeless(200, _verdict(18.0, 19.0))
    ahead = CatchUp(10_000, 0.0)
    assert not ahead.hopeless(100, _verdict(21.0, 19.0)) and not ahead.hopeless(200, _verdict(21.0, 19.0))
    # an exact diffusion (infinite PSNR) is a number to trail, not a NaN that never stops
    exact = CatchUp(10_000, 1.0)
    assert not exact.hopeless(100, _verdict(30.0, float("inf"))) and exact.hopeless(200, _verdict(30.5, float("inf")))
    # no check at or after the last planned step stops anything
    late = CatchUp(200, 1.0)
    assert not late.hopeless(100, _verdict(10.0, 19.0)) and not late.hopeless(200, _verdict(10.0, 19.0))


def test_a_model_that_cannot_catch_up_stops_early_and_the_output_is_the_same(tmp_path):
    shown, holes, truth = _clip(False)  # flat: diffusion is exact, the model cannot win
    settings = {"train.max_steps": 40, "train.epochs": 50.0}
    full = inpaint(shown, holes, _config(**settings))
    checked = inpaint(shown, holes, _config(**settings, **{"propagation.check_every": 4}), workdir=tmp_path / "w")
    assert full.steps == 40 and checked.steps == 8, (full.steps, checked.steps)
    assert any("would not catch up by step 40" in n for n in checked.notices), checked.notices
    log = (tmp_path / "w" / "log.txt").read_text()
    assert log.count("self-check at step") >= 2 and "at step 8:" in log
    # the output is diffusion's in both: what the early stop saved was only time
    assert np.array_equal(checked.frames, full.frames) and np.array_equal(checked.matte, full.matte)


def test_checks_that_never_stop_leave_the_run_bit_for_bit_as_it_was():
    shown, holes, _ = _clip(True)
    settings = {"train.max_steps": 12, "train.epochs": 20.0, "network.flow_head": True}
    plain = inpaint(shown, holes, _config(**settings))
    looked = inpaint(shown, holes, _config(**settings, **{"propagation.check_every": 3,
                                                           "propagation.check_margin": 100.0}))
    assert looked.steps == plain.steps == 12
    assert np.array_equal(looked.generated, plain.generated) and np.array_equal(looked.frames, plain.frames)
