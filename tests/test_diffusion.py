"""Per-frame diffusion (engine/diffusion.py): the membrane solves what it claims to, Telea is what it was, and the
biharmonic blend's weight is the clip's own."""
import cv2
import numpy as np
import pytest

from vinpaint.engine import diffusion
from vinpaint.engine.diffusion import (BIHARMONIC_UNKNOWNS, BIHARMONIC_WIDTH, Blend, biharmonic, clip_diffusion,
                                         diffuse, membrane)


def _harmonic_plate(h: int = 120, w: int = 160) -> np.ndarray:
    """float32 [h,w,3] in 0-255: a + b x + c y + d x y per channel, each harmonic (its Laplacian is 0), so the
    membrane through any ring of it is the plate itself."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    x, y = x / w, y / h
    return np.stack([40 + 150 * x + 30 * y, 200 - 120 * y + 80 * x * y, 90 + 60 * x - 50 * y + 90 * x * y], -1)


def _hole(h: int = 120, w: int = 160) -> np.ndarray:
    hole = np.zeros((h, w), bool)
    cv2.ellipse(hole.view(np.uint8), (70, 55), (38, 30), 20, 0, 360, 1, -1)
    return hole


def test_the_membrane_reproduces_a_harmonic_plate_that_telea_does_not():
    plate, hole = _harmonic_plate(), _hole()
    shown = plate.copy()
    shown[hole] = 0.0
    filled = diffuse(shown, hole, "membrane")
    telea = diffuse(np.rint(shown).astype(np.uint8), hole, "telea")
    membrane_err = np.abs(filled - plate)[hole].max()
    telea_err = np.abs(telea - plate)[hole].max()
    assert membrane_err < 3.0, membrane_err  # 8-bit levels, in a 76x60 hole (24 sweeps: near, not exact)
    assert telea_err > 3 * membrane_err, (telea_err, membrane_err)


def test_only_the_hole_changes_and_an_hdr_plate_keeps_its_scale():
    plate, hole = _harmonic_plate() / 255.0 * 40.0, _hole()  # linear light up to 40
    shown = plate.copy()
    shown[hole] = -1.0
    for method, within in (("membrane", 0.02), ("telea", 0.2)):  # of the plate's brightest value
        filled = diffuse(shown, hole, method)
        assert filled.dtype == np.float32
        assert np.array_equal(filled[~hole], shown[~hole])
        assert np.abs(filled - plate)[hole].max() < within * plate.max(), method


def test_a_hole_on_the_frames_edge_and_a_frame_that_is_all_hole():
    plate = _harmonic_plate()
    hole = np.zeros(plate.shape[:2], bool)
    hole[:, 120:] = True  # open to the right edge: nothing holds it there, it only spreads the last known column
    filled = membrane(plate, hole)
    edge = plate[:, 119]
    assert np.isfinite(filled).all()
    assert (filled[:, 120:] >= edge.min(axis=0) - 0.5).all() and (filled[:, 120:] <= edge.max(axis=0) + 0.5).all()
    assert np.abs(filled[:, 120] - edge).max() < 3.0
    assert not membrane(plate, np.ones(plate.shape[:2], bool)).any()


def test_telea_on_eight_bit_frames_is_opencvs_own():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    hole = np.zeros((60, 80), bool)
    hole[20:35, 30:50] = True
    expected = cv2.inpaint(frame, hole.astype(np.uint8) * 255, 5, cv2.INPAINT_TELEA).astype(np.float32)
    assert np.array_equal(diffuse(frame, hole, "telea"), expected)


def test_an_unknown_method_is_refused():
    with pytest.raises(ValueError, match="unknown diffusion"):
        diffuse(np.zeros((8, 8, 3), np.float32), np.ones((8, 8), bool), "poisson")


def _shaded_plate(h: int = 120, w: int = 160) -> np.ndarray:
    """float32 [h,w,3]: smooth shading whose Laplacian is not 0 (x^2 + y^2 terms), which the membrane flattens
    inside a hole and the biharmonic fill carries on."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    x, y = x / w, y / h
    return np.stack([30 + 180 * x * x, 60 + 150 * y * y, 40 + 90 * (x * x + y * y)], -1)


def test_the_biharmonic_fill_carries_shading_on_where_the_membrane_flattens_it_at_any_width():
    hole = _hole()
    for plate in (_shaded_plate(), _shaded_plate() / 255.0 * 40.0):  # 8-bit levels, and linear light up to 40
        shown = plate.copy()
        shown[hole] = -1.0
        bent, flat = biharmonic(shown, hole), membrane(shown, hole)
        assert bent.dtype == np.float32 and np.array_equal(bent[~hole], shown[~hole])
        bent_err, flat_err = np.abs(bent - plate)[hole].max(), np.abs(flat - plate)[hole].max()
        assert bent_err < 0.01 * plate.max() and flat_err > 4 * bent_err, (bent_err, flat_err)
    wide = cv2.resize(_shaded_plate(), (3 * BIHARMONIC_WIDTH, 360), interpolation=cv2.INTER_LINEAR)
    wide_hole = cv2.resize(hole.view(np.uint8), (3 * BIHARMONIC_WIDTH, 360), interpolation=cv2.INTER_NEAREST) > 0
    solved = biharmonic(wide, wide_hole)  # solved at BIHARMONIC_WIDTH and brought up
    assert np.array_equal(solved[~wide_hole], wide[~wide_hole])
    assert np.abs(solved - wide)[wide_hole].max() < 0.02 * wide.max()
    large = cv2.resize(_shaded_plate(), (BIHARMONIC_WIDTH, 360), interpolation=cv2.INTER_LINEAR)
    large_hole = np.zeros(large.shape[:2], bool)
    large_hole[40:320, 60:420] = True  # 100800 pixels: the clip's fill is solved smaller, at BIHARMONIC_UNKNOWNS
    scale = clip_diffusion("membrane+biharmonic", np.rint(large)[None].astype(np.uint8), large_hole[None]).solve_scale
    assert scale == pytest.approx(np.sqrt(BIHARMONIC_UNKNOWNS / large_hole.sum()))
    solved = biharmonic(large, large_hole, scale)
    assert np.array_equal(solved[~large_hole], large[~large_hole])
    assert np.abs(solved - large)[large_hole].max() < 0.02 * large.max()


def test_the_blend_weight_is_fitted_on_the_clips_known_pixels(monkeypatch):
    """Shading: the biharmonic fill is right around grown holes, the membrane's weight goes to 0. Noise: any
    extrapolation overshoots, the smooth membrane is nearer on average, its weight is most of the mix."""
    hole = _hole()
    holes = np.stack([np.roll(hole, 4 * t, axis=1) for t in range(6)])
    shaded = np.stack([np.rint(_shaded_plate()).astype(np.uint8)] * 6)
    noise = np.random.default_rng(3).integers(0, 256, shaded.shape, dtype=np.uint8)
    assert clip_diffusion("membrane+biharmonic", shaded, holes).membrane_share < 0.1
    assert clip_diffusion("membrane+biharmonic", noise, holes).membrane_share > 0.6
    grainy = np.clip(np.rint(_shaded_plate() + np.random.default_rng(3).normal(0, 8, shaded.shape)), 0, 255)
    share = clip_diffusion("membrane+biharmonic", grainy.astype(np.uint8), holes).membrane_share
    assert 0.3 < share < diffusion.MEMBRANE_ALONE  # shading under grain: in between
    monkeypatch.setattr(diffusion, "MEMBRANE_ALONE", share - 0.01)  # a share above it is the membrane alone
    assert clip_diffusion("membrane+biharmonic", grainy.astype(np.uint8), holes).membrane_share == 1.0
    assert clip_diffusion("membrane", noise, holes) == "membrane" and clip_diffusion("telea", noise, holes) == "telea"
    frame = noise[0].astype(np.float32)
    mixed = diffuse(frame, hole, Blend(0.25))
    expected = 0.25 * membrane(frame, hole) + 0.75 * biharmonic(frame, hole)
    assert np.allclose(mixed[hole], expected[hole], atol=1e-3) and np.array_equal(mixed[~hole], frame[~hole])
    assert np.array_equal(diffuse(frame, hole, Blend(1.0)), membrane(frame, hole))
    assert np.array_equal(diffuse(frame, hole, "membrane+biharmonic"), membrane(frame, hole))  # not yet resolved
