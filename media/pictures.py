"""Pictures written beside a result: a before/after strip of a few frames, and the loss curves of the training.

Both are for people looking at a run, not for measurement; they are 8-bit whatever the source depth.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Mapping, Sequence

import cv2
import numpy as np

from vinpaint.media.writers import to_uint8, write_marked, write_png

HOLE_TINT = np.array([255, 40, 40], np.float32)


def pick_frames(count: int, wanted: int) -> list[int]:
    """`wanted` frame indices spread evenly over a clip of `count`, first and last included."""
    wanted = max(1, min(wanted, count))
    return sorted({int(round(i)) for i in np.linspace(0, count - 1, wanted)})


def _label(tile: np.ndarray, text: str) -> np.ndarray:
    tile = tile.copy()
    scale = max(tile.shape[1] / 640.0, 0.35)
    org = (6, int(18 * scale / 0.5))
    cv2.putText(tile, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(tile, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return tile


def _fit(image: np.ndarray, width: int) -> np.ndarray:
    if image.shape[1] == width:
        return image
    height = max(1, round(image.shape[0] * width / image.shape[1]))
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def before_after_strip(frames: np.ndarray, hole: np.ndarray, result: np.ndarray, truth: np.ndarray | None = None,
                       count: int = 4, tile_width: int = 320) -> np.ndarray:
    """[T,H,W,3] source, bool [T,H,W] hole, [T,H,W,3] result (and ground truth) -> one RGB uint8 image.

    Columns are frames spread over the clip; rows are the source with the hole tinted red, the result and, when
    given, the ground truth.
    """
    tile_width = min(tile_width, frames.shape[2])
    rows: list[list[np.ndarray]] = [[], []] + ([[]] if truth is not None else [])
    for index in pick_frames(len(frames), count):
        before = to_uint8(frames[index]).astype(np.float32)
        tint = hole[index][..., None] * 0.5
        before = (before * (1 - tint) + HOLE_TINT * tint + 0.5).astype(np.uint8)
        rows[0].append(_label(_fit(before, tile_width), f"input {index}"))
        rows[1].append(_label(_fit(to_uint8(result[index]), tile_width), f"result {index}"))
        if truth is not None:
            rows[2].append(_label(_fit(to_uint8(truth[index]), tile_width), f"truth {index}"))
    gap = 4
    lines = []
    for row in rows:
        spaced = []
        for tile in row:
            spaced += [tile, np.full((tile.shape[0], gap, 3), 255, np.uint8)]
        lines += [np.concatenate(spaced[:-1], axis=1), np.full((gap, spaced[0].shape[1] * len(row)
                                                                + gap * (len(row) - 1), 3), 255, np.uint8)]
    return np.concatenate(lines[:-1], axis=0)


def write_before_after(path: Path, frames: np.ndarray, hole: np.ndarray, result: np.ndarray,
                       truth: np.ndarray | None = None, count: int = 4) -> Path:
    """Render `before_after_strip` into a PNG, atomically."""
    write_png(Path(path), before_after_strip(frames, hole, result, truth, count))
    return Path(path)


def loss_curve_png(history: Sequence[tuple[int, Mapping[str, float]]], title: str = "training losses") -> bytes:
    """[(step, {name: value})] -> PNG bytes of one line per loss against the step (log scale when all positive)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # no pyplot: no global state, no display needed
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    names = sorted({name for _, losses in history for name in losses})
    positive = True
    for name in names:
        points = [(step, float(losses[name])) for step, losses in history
                  if name in losses and np.isfinite(losses[name])]
        if not points:
            continue
        steps, values = np.array(points).T
        positive = positive and values.min() > 0
        window = len(values) // 40
        if window < 2:
            axes.plot(steps, values, label=name, linewidth=1.2)
            continue
        # Each step sees another batch, so the raw curve is noisy: draw it faint, and its running mean on top.
        line, = axes.plot(steps, values, linewidth=0.6, alpha=0.25)
        smooth = np.convolve(values, np.ones(window) / window, mode="valid")
        axes.plot(steps[window - 1:], smooth, color=line.get_color(), label=f"{name} (mean of {window})",
                  linewidth=1.4)
    if names and positive:
        axes.set_yscale("log")
    axes.set_xlabel("training step")
    axes.set_ylabel("loss")
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    if names:
        axes.legend(loc="upper right", fontsize="small")
    else:
        axes.text(0.5, 0.5, "no losses recorded", ha="center", va="center", transform=axes.transAxes)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def write_loss_curve(path: Path, history: Sequence[tuple[int, Mapping[str, float]]], title: str = "training losses"
                     ) -> Path:
    """Render `loss_curve_png` into a file, atomically."""
    write_marked(Path(path), loss_curve_png(history, title))
    return Path(path)
