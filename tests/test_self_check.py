"""The self-check (engine/self_check.py): a held-out band of known pixels decides between the model's fill and
Telea diffusion for what no frame sees; the band stays exact in the output and a reused result composes the same."""
from __future__ import annotations

import numpy as np

from vinpaint.engine import inpaint, make_config
from vinpaint.engine.composite import upsampled
from vinpaint.engine.propagate import Propagation, blend_frame, diffusion_fill
from vinpaint.engine.result import GENERATED, PROPAGATED
from vinpaint.engine.self_check import MIN_HIDDEN, held_out_band, judge, scored_band


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


def test_the_model_must_beat_diffusion_by_the_margin():
    shown, holes, _ = _clip(True)
    band = held_out_band(holes, None, holes, 3)
    truth = shown.astype(np.float32) / 255
    near = truth.copy()
    near[band] += 0.02  # about 34 dB on the band: ahead of diffusion on stripes, by a known amount
    plain = judge(shown, holes, None, near, None, band)
    ahead = plain.model_psnr - plain.diffusion_psnr
    assert ahead > 0 and not plain.use_diffusion
    assert judge(shown, holes, None, near, None, band, margin_db=ahead - 0.1).use_diffusion is False
    strict = judge(shown, holes, None, near, None, band, margin_db=ahead + 0.1)
    assert strict.use_diffusion and strict.line().endswith(
        f"the model needs {ahead + 0.1:g} dB more): diffusion fills what no frame sees")
    assert make_config("fast").propagation.check_margin == 1.0


def test_checks_while_training_are_logged_and_leave_the_run_bit_for_bit_as_it_was(tmp_path):
    shown, holes, _ = _clip(True)
    settings = {"train.max_steps": 12, "train.epochs": 20.0, "network.flow_head": True}
    plain = inpaint(shown, holes, _config(**settings))
    looked = inpaint(shown, holes, _config(**settings, **{"propagation.check_every": 3}), workdir=tmp_path / "w")
    assert looked.steps == plain.steps == 12
    assert np.array_equal(looked.generated, plain.generated) and np.array_equal(looked.frames, plain.frames)
    log = (tmp_path / "w" / "log.txt").read_text()
    assert [f"self-check at step {k}:" in log for k in (3, 6, 9)] == [True] * 3 and "at step 12:" not in log


def test_the_blend_weight_is_the_least_squares_one_on_the_band():
    from vinpaint.engine.self_check import blend_share

    # independent errors of equal size: half and half, and the blend halves the squared error (+3 dB)
    assert blend_share(1.0, 1.0, 0.0, 0.0) == 0.5
    # a model twice as wrong in squared error: a third model, two thirds diffusion
    assert abs(blend_share(2.0, 1.0, 0.0, 0.0) - 1 / 3) < 1e-9
    # the margin takes the model's error as that much worse: 3.01 dB doubles its squared error
    assert abs(blend_share(1.0, 1.0, 0.0, 10 * np.log10(2)) - 1 / 3) < 1e-6
    # identical errors: nothing to gain, diffusion (the cheaper fill); a near-perfect model: the model alone
    assert blend_share(1.0, 1.0, 1.0, 0.0) == 0.0
    assert blend_share(1e-6, 1.0, 0.0, 0.0) == 1.0


def test_a_blend_beats_both_fills_on_the_band_when_their_errors_differ():
    shown, holes, _ = _clip(True)
    band = held_out_band(holes, None, holes, 3)
    rng = np.random.default_rng(1)
    truth = shown.astype(np.float32) / 255
    noisy = truth.copy()
    # a model about as wrong as diffusion on stripes, with errors of its own
    plain = judge(shown, holes, None, truth, None, band)
    sigma = 10 ** (-plain.diffusion_psnr / 20)
    noisy[band] += rng.normal(0, sigma, (int(band.sum()), 3)).astype(np.float32)
    verdict = judge(shown, holes, None, noisy, None, band, blend=True)
    assert 0.2 < verdict.model_share < 0.8
    assert verdict.blend_psnr > max(verdict.model_psnr, verdict.diffusion_psnr) + 1.0
    assert "model," in verdict.line() and verdict.line().endswith("diffusion fills what no frame sees")


def test_the_engine_composes_the_blend_and_reuses_it(tmp_path):
    shown, holes, truth = _clip(True)
    config = _config(**{"propagation.enabled": False, "train.max_steps": 4})
    result = inpaint(shown, holes, config, workdir=tmp_path / "work")
    with np.load(tmp_path / "work" / "result.npz", allow_pickle=False) as z:
        share = float(z["model_share"])
    assert 0.0 < share < 1.0  # four steps: a poor model, but not useless on stripes
    line = [n for n in result.notices if n.startswith("self-check")][0]
    assert "blend" in line
    from vinpaint.engine.composite import composite
    from vinpaint.engine.propagate import diffusion_fill
    model_only, _ = composite(shown, result.generated, holes)
    diffusion = diffusion_fill(shown, holes, None)
    expected = share * model_only[holes].astype(np.float32) / 255 + (1 - share) * diffusion[holes]
    assert np.abs(result.frames[holes].astype(np.float32) / 255 - expected).max() <= 1.5 / 255
    assert np.array_equal(result.frames[~holes], shown[~holes])
    again = inpaint(shown, holes, config, workdir=tmp_path / "work")
    assert np.array_equal(again.frames, result.frames)
    picked = inpaint(shown, holes, config.replace(**{"propagation.check_blend": False}))
    assert [n for n in picked.notices if n.startswith("self-check")][0].endswith(
        ("diffusion fills what no frame sees", "the model fills what no frame sees"))


def test_the_check_scores_only_the_band_no_other_frame_shows_when_there_is_enough_of_it():
    holes = np.zeros((4, 60, 80), bool)
    holes[:, 20:40, 30:50] = True
    reached = np.zeros_like(holes)
    band = held_out_band(holes, Propagation(np.zeros(holes.shape + (3,), np.float32), reached,
                                            np.zeros(holes.shape, np.int16)), holes, 12)
    hidden = np.zeros_like(holes)
    hidden[:, :, :40] = True  # say the left half of the band is shown by no other frame
    propagation = Propagation(np.zeros(holes.shape + (3,), np.float32), reached, np.zeros(holes.shape, np.int16),
                              hidden)
    scored, line = scored_band(band, propagation)
    assert np.array_equal(scored, band & hidden) and "no other frame shows" in line
    assert (band & hidden).sum() >= MIN_HIDDEN
    few = np.zeros_like(holes)
    few[0, 18, 30:40] = True  # ten pixels: too few to judge on
    scored, line = scored_band(band, Propagation(propagation.colours, reached, propagation.distance, few))
    assert np.array_equal(scored, band) and "whole band" in line
    scored, line = scored_band(band, Propagation(propagation.colours, reached, propagation.distance))
    assert np.array_equal(scored, band) and line is None  # an older cache: as before
