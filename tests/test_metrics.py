"""The paper's metrics against values worked out by hand (identical frames, known offsets, shifts, noise)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from vinpaint.errors import InputError
from vinpaint.evaluation import fid, metrics
from vinpaint.evaluation.metrics import ConsistencyConfig, PSNR_CAP_DB


def textured(h=96, w=128, seed=0, lo=0.2, hi=0.8):
    """Random texture away from 0 and 1 so offsets never clip."""
    return np.random.default_rng(seed).uniform(lo, hi, (h, w, 3))


# --- PSNR ---------------------------------------------------------------------------------------------------------

def test_psnr_identical_is_capped():
    a = textured()
    assert metrics.psnr(a, a) == PSNR_CAP_DB


def test_psnr_constant_offset_float():
    a = textured()
    assert metrics.psnr(a, a + 0.1) == pytest.approx(20.0, abs=1e-9)  # MSE 0.01


def test_psnr_uint8_matches_hand_value():
    a = np.full((8, 8, 3), 100, np.uint8)
    b = np.full((8, 8, 3), 125, np.uint8)
    assert metrics.psnr(a, b) == pytest.approx(20 * math.log10(255 / 25), abs=1e-9)


def test_psnr_hole_and_full_frame():
    a = textured(64, 64)
    b = a.copy()
    hole = np.zeros((64, 64), bool)
    hole[:32, :32] = True  # a quarter of the frame
    b[hole] += 0.1
    assert metrics.psnr(a, b, hole) == pytest.approx(20.0, abs=1e-9)
    assert metrics.psnr(a, b) == pytest.approx(20.0 + 10 * math.log10(4), abs=1e-9)


def test_psnr_known_noise_level():
    a = textured(256, 256)
    noisy = a + np.random.default_rng(1).normal(0.0, 0.05, a.shape)
    assert metrics.psnr(a, noisy) == pytest.approx(-10 * math.log10(0.05 ** 2), abs=0.05)


def test_psnr_empty_hole_is_nan():
    a = textured(16, 16)
    assert math.isnan(metrics.psnr(a, a, np.zeros((16, 16), bool)))


def test_uint16_scale():
    a = np.full((4, 4, 3), 65535, np.uint16)
    assert metrics.to_unit(a).max() == 1.0


def test_shape_mismatch_is_input_error():
    with pytest.raises(InputError):
        metrics.psnr(np.zeros((4, 4, 3)), np.zeros((4, 5, 3)))
    with pytest.raises(InputError):
        metrics.to_unit(np.zeros((2, 2), np.int32))


# --- SSIM ---------------------------------------------------------------------------------------------------------

def test_ssim_identical_is_one():
    a = textured()
    assert metrics.ssim(a, a) == pytest.approx(1.0, abs=1e-12)


def test_ssim_constant_images_luminance_term_only():
    # For flat images the contrast/structure term is C2/C2 = 1, leaving (2 mu_a mu_b + C1) / (mu_a^2 + mu_b^2 + C1).
    c1 = (0.01 * 1.0) ** 2
    expected = (2 * 0.5 * 0.6 + c1) / (0.5 ** 2 + 0.6 ** 2 + c1)
    a = np.full((32, 32, 3), 0.5)
    b = np.full((32, 32, 3), 0.6)
    assert metrics.ssim(a, b) == pytest.approx(expected, abs=1e-9)


def test_ssim_inside_hole_only():
    a = np.full((32, 64, 3), 0.5)
    b = a.copy()
    b[:, 32:] = 0.6
    hole = np.zeros((32, 64), bool)
    hole[:, 40:] = True  # more than the 5-pixel window radius away from the step at column 32
    c1 = 1e-4
    assert metrics.ssim(a, b, hole) == pytest.approx((2 * 0.3 + c1) / (0.61 + c1), abs=1e-9)
    left = np.zeros((32, 64), bool)
    left[:, :24] = True
    assert metrics.ssim(a, b, left) == pytest.approx(1.0, abs=1e-12)


def test_ssim_of_a_small_hole_is_the_whole_frames_map_on_it():
    """The hole's SSIM is taken on its bounding box grown by the window's reach: the same numbers as the
    whole frame's map, wherever the hole lies (inside, on an edge, in a corner, one pixel)."""
    from skimage.metrics import structural_similarity

    a, b = textured(80, 120, seed=1), textured(80, 120, seed=2)
    _, full = structural_similarity(a, b, full=True, data_range=1.0, channel_axis=-1, gaussian_weights=True,
                                    sigma=1.5, use_sample_covariance=False)
    full = full.mean(axis=2)
    for rows, cols in ((slice(30, 41), slice(50, 70)), (slice(0, 6), slice(100, 120)), (slice(79, 80), slice(0, 1)),
                       (slice(40, 41), slice(60, 61)), (slice(0, 80), slice(3, 9))):
        hole = np.zeros((80, 120), bool)
        hole[rows, cols] = True
        hole[rows.start, cols.start] = False if hole.sum() > 1 else True  # not quite a box
        assert metrics.ssim(a, b, hole) == pytest.approx(float(full[hole].mean()), abs=1e-12)
    with pytest.raises(InputError, match="too small"):
        metrics.ssim(a[:6], b[:6], np.ones((6, 120), bool))


def test_video_scores_can_leave_the_whole_frame_out():
    truth = np.stack([textured(32, 32, s) for s in range(2)])
    hole = np.zeros((2, 32, 32), bool)
    hole[:, 4:8, 4:8] = True
    both = metrics.video_scores(truth + 0.1, truth, hole)
    hole_only = metrics.video_scores(truth + 0.1, truth, hole, whole_frame=False)
    assert np.isnan(hole_only.psnr).all() and np.isnan(hole_only.ssim).all()
    assert np.array_equal(hole_only.psnr_hole, both.psnr_hole) and np.array_equal(hole_only.ssim_hole, both.ssim_hole)


# --- per-video accumulation -----------------------------------------------------------------------------------------

def test_video_average_is_mean_of_frame_psnr():
    truth = np.stack([textured(32, 32, s) for s in range(2)])
    out = truth.copy()
    out[0] += 0.1   # 20 dB
    out[1] += 0.01  # 40 dB
    hole = np.ones((2, 32, 32), bool)
    means = metrics.video_scores(out, truth, hole).means()
    assert means["psnr"] == pytest.approx(30.0, abs=1e-9)  # not PSNR of the mean MSE (22.97 dB)
    assert means["psnr_hole"] == pytest.approx(30.0, abs=1e-9)


def test_video_scores_skip_frames_without_hole():
    truth = np.stack([textured(32, 32, s) for s in range(2)])
    out = truth + 0.1
    hole = np.zeros((2, 32, 32), bool)
    hole[1, 4:8, 4:8] = True
    s = metrics.video_scores(out, truth, hole)
    assert math.isnan(s.psnr_hole[0])
    assert s.means()["psnr_hole"] == pytest.approx(20.0, abs=1e-9)


# --- temporal consistency -------------------------------------------------------------------------------------------

def _clip_with_next(next_frame_fn, h=128, w=160):
    f0 = textured(h, w)
    video = np.stack([f0, next_frame_fn(f0)])
    hole = np.zeros((2, h, w), bool)
    hole[:, 50:80, 60:100] = True
    return video, hole


def test_consistency_identical_frames():
    video, hole = _clip_with_next(lambda f: f.copy())
    p, s = metrics.temporal_consistency(video, hole)
    assert p == PSNR_CAP_DB
    assert s == pytest.approx(1.0, abs=1e-6)


def test_consistency_finds_a_known_shift():
    video, hole = _clip_with_next(lambda f: np.roll(f, (7, -12), axis=(0, 1)))
    p, s = metrics.temporal_consistency(video, hole)
    assert p == PSNR_CAP_DB  # the search within +-20 px recovers the exact patch
    assert s == pytest.approx(1.0, abs=1e-6)


def test_consistency_shift_beyond_radius_is_not_found():
    video, hole = _clip_with_next(lambda f: np.roll(f, (0, 25), axis=(0, 1)))
    p, _ = metrics.temporal_consistency(video, hole)
    assert p < 15.0  # uncorrelated texture (variance 0.03 per pixel): about 12 dB


def test_consistency_constant_brightness_step():
    video, hole = _clip_with_next(lambda f: f + 0.1)
    p, _ = metrics.temporal_consistency(video, hole)
    assert p == pytest.approx(20.0, abs=1e-4)  # float32 matching; the zero offset wins (others ~12 dB)


def test_consistency_known_noise_level():
    rng = np.random.default_rng(3)
    video, hole = _clip_with_next(lambda f: f + rng.normal(0, 0.05, f.shape))
    p, _ = metrics.temporal_consistency(video, hole, ConsistencyConfig(patches_per_frame=30))
    assert p == pytest.approx(-10 * math.log10(0.05 ** 2), abs=0.2)


def test_consistency_no_hole_is_nan():
    video, hole = _clip_with_next(lambda f: f.copy())
    p, s = metrics.temporal_consistency(video, np.zeros_like(hole))
    assert math.isnan(p) and math.isnan(s)


def test_consistency_is_reproducible():
    rng = np.random.default_rng(5)
    video = rng.uniform(0, 1, (4, 80, 90, 3))
    hole = np.zeros((4, 80, 90), bool)
    hole[:, 20:60, 20:70] = True
    assert metrics.temporal_consistency(video, hole) == metrics.temporal_consistency(video, hole)


# --- FID ------------------------------------------------------------------------------------------------------------

def test_frechet_distance_hand_values():
    mu = np.array([0.5, -1.0])
    s = np.array([[2.0, 0.3], [0.3, 1.0]])
    assert fid.frechet_distance(mu, s, mu, s) == pytest.approx(0.0, abs=1e-9)
    # Diagonal: |mu1-mu2|^2 + sum (sqrt(a) - sqrt(b))^2 = (1 + 4) + (1-2)^2 + (2-3)^2 = 7
    d = fid.frechet_distance(np.zeros(2), np.diag([1.0, 4.0]), np.array([1.0, 2.0]), np.diag([4.0, 9.0]))
    assert d == pytest.approx(7.0, abs=1e-9)


def test_fid_missing_weights_file_is_input_error(tmp_path):
    with pytest.raises(InputError):
        fid.find_inception(tmp_path / "nope.pt")


def test_fid_with_a_stand_in_torchscript_network(tmp_path):
    torch = pytest.importorskip("torch")

    class Pool(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3))], dim=1)

    path = tmp_path / "stand_in.pt"
    torch.jit.script(Pool()).save(str(path))
    net = fid.InceptionFeatures(fid.find_inception(path))
    frames = np.random.default_rng(0).uniform(0, 1, (6, 16, 16, 3))
    feats = net.features(frames)
    assert feats.shape == (6, 6)
    assert feats[:, :3] == pytest.approx(frames.mean(axis=(1, 2)) * 255.0, rel=1e-5)
    assert net.video_fid(frames, frames) == pytest.approx(0.0, abs=1e-3)
    assert net.video_fid(frames, np.clip(frames + 0.3, 0, 1)) > 1.0


def test_not_torchscript_is_input_error(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a model")
    with pytest.raises(InputError):
        fid.InceptionFeatures(bad)
