"""The pictures a reviewer looks at: before/after/truth strips, the paper's Figure 5 temporal slices, Figure 8 style
flow maps, and PSNR against wall-clock time. All take numpy frames and return or write RGB uint8 images.
"""
from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from vinpaint.engine.flowviz import flow_magnitude_scale, flow_to_rgb

from vinpaint.evaluation.dataset import imwrite
from vinpaint.evaluation.metrics import to_unit

LABEL_HEIGHT = 16


def to_u8(frames: np.ndarray) -> np.ndarray:
    """Any supported dtype -> uint8 (rounded), for drawing."""
    return (np.clip(to_unit(frames), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def outline(frame: np.ndarray, hole: np.ndarray, color=(255, 40, 40)) -> np.ndarray:
    """A copy of frame [H,W,3] uint8 with the hole's border drawn, as the paper's red curves."""
    out = np.ascontiguousarray(to_u8(frame))
    contours, _ = cv2.findContours(hole.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(out, contours, -1, color, 1)
    return out


def label(image: np.ndarray, text: str) -> np.ndarray:
    """image [H,W,3] uint8 with a white caption band above it."""
    band = np.full((LABEL_HEIGHT, image.shape[1], 3), 255, np.uint8)
    cv2.putText(band, text, (2, LABEL_HEIGHT - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([band, image], axis=0)


def grid(rows: list[list[np.ndarray]], gap: int = 2) -> np.ndarray:
    """Tile equally sized images (rows of columns) with white gaps."""
    h = max(im.shape[0] for r in rows for im in r)
    w = max(im.shape[1] for r in rows for im in r)
    ncol = max(len(r) for r in rows)
    canvas = np.full((len(rows) * (h + gap) - gap, ncol * (w + gap) - gap, 3), 255, np.uint8)
    for i, r in enumerate(rows):
        for j, im in enumerate(r):
            canvas[i * (h + gap):i * (h + gap) + im.shape[0], j * (w + gap):j * (w + gap) + im.shape[1]] = im
    return canvas


def strip(inputs: np.ndarray, hole: np.ndarray, outputs: dict[str, np.ndarray], truth: np.ndarray | None,
          indices: list[int]) -> np.ndarray:
    """Before / after (one column per method) / truth for the given frames, one row per frame."""
    rows = []
    for k, i in enumerate(indices):
        cells = [outline(inputs[i], hole[i])]
        names = ["input"]
        for name, frames in outputs.items():
            cells.append(to_u8(frames[i]))
            names.append(name)
        if truth is not None:
            cells.append(to_u8(truth[i]))
            names.append("truth")
        rows.append([label(c, f"{n} t={i}") if k == 0 else label(c, f"t={i}") for c, n in zip(cells, names)])
    return grid(rows)


def slice_row(hole: np.ndarray) -> int:
    """The pixel row that crosses the most hole pixels over the whole clip: the most telling Figure 5 slice."""
    return int(np.argmax(hole.sum(axis=(0, 2))))


def temporal_slices(inputs: np.ndarray, hole: np.ndarray, outputs: dict[str, np.ndarray],
                    truth: np.ndarray | None, row: int | None = None) -> np.ndarray:
    """Figure 5: one pixel row stacked over all frames (time goes down), per method side by side."""
    y = slice_row(hole) if row is None else row
    t = hole.shape[0]
    stretch = max(1, int(np.ceil(64 / t)))  # short clips: repeat rows so time is visible
    marked = to_u8(inputs[:, y]).copy()
    marked[hole[:, y]] = (marked[hole[:, y]] // 2 + np.array([127, 0, 0], np.uint8))
    cells = [("input (hole red)", marked)]
    cells += [(n, to_u8(f[:, y])) for n, f in outputs.items()]
    if truth is not None:
        cells.append(("truth", to_u8(truth[:, y])))
    return grid([[label(np.repeat(im, stretch, axis=0), n) for n, im in cells]])


def flow_maps(frames: np.ndarray, hole: np.ndarray, flows: np.ndarray, indices: list[int],
              known: np.ndarray | None = None) -> np.ndarray:
    """Figure 8 style: generated frame (hole outlined) and its generated flow, optionally the estimated flow.

    frames [T,h,w,3], hole [T,h,w], flows/known [T,h,w,2] (one range, e.g. forward i->i+1); one shared colour scale.
    """
    scale = flow_magnitude_scale(flows[indices])
    if known is not None:
        scale = max(scale, flow_magnitude_scale(known[indices]))
    rows = []
    for i in indices:
        h = hole[i] if hole.shape[1:] == frames.shape[1:3] else cv2.resize(
            hole[i].astype(np.uint8), frames.shape[2:0:-1], interpolation=cv2.INTER_NEAREST) > 0
        cells = [label(outline(frames[i], h), f"generated t={i}"),
                 label(outline(flow_to_rgb(flows[i], scale), h, (0, 0, 0)), "generated flow t->t+1")]
        if known is not None:
            cells.append(label(outline(flow_to_rgb(known[i], scale), h, (0, 0, 0)), "estimated flow (masked input)"))
        rows.append(cells)
    return grid(rows)


def flow_progress(stages: list[tuple[str, np.ndarray, np.ndarray]], hole: np.ndarray, index: int,
                  known: np.ndarray | None = None) -> np.ndarray:
    """Figure 8: one frame as training progresses. stages: (label, generated [T,h,w,3], flow [T,h,w,2]) in order;
    each row shows the generated frame (hole outlined) and its flow t->t+1, all on one colour scale."""
    scale = max(flow_magnitude_scale(f[index]) for _, _, f in stages)
    if known is not None:
        scale = max(scale, flow_magnitude_scale(known[index]))
    rows = []
    for name, frames, flows in stages:
        rows.append([label(outline(frames[index], hole[index]), f"{name}: frame {index}"),
                     label(outline(flow_to_rgb(flows[index], scale), hole[index], (0, 0, 0)), "generated flow")])
    if known is not None:
        blank = np.full_like(rows[0][0], 255)
        rows.append([blank, label(outline(flow_to_rgb(known[index], scale), hole[index], (0, 0, 0)),
                                  "estimated on masked input")])
    return grid(rows)


def save(path: Path, image: np.ndarray) -> None:
    """Write an RGB uint8 picture as PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not imwrite(path, cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):  # a picture is no result: said, not fatal
        print(f"vinpaint: warning: cannot write the picture {path}", file=sys.stderr)


def psnr_vs_time(curves: dict[str, list[tuple[float, float]]], path: Path, title: str,
                 flat: dict[str, float] | None = None, xlabel: str = "training seconds") -> None:
    """Plot hole PSNR against training seconds per method; `flat` draws instant baselines as horizontal lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    for name, pts in curves.items():
        pts = sorted(p for p in pts if np.isfinite(p[1]))
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=name)
    for k, (name, value) in enumerate((flat or {}).items()):
        if np.isfinite(value):
            ax.axhline(value, linestyle=("--", ":", "-.")[k % 3], linewidth=1, color="grey", label=f"{name} (instant)")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("PSNR in the hole (dB)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
