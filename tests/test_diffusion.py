"""Per-frame diffusion (engine/diffusion.py): the membrane solves what it claims to, and Telea is what it was."""
import cv2
import numpy as np
import pytest

from vinpaint.engine.diffusion import diffuse, membrane


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
