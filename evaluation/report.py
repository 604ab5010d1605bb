"""Turning result rows into the paper-shaped table (markdown), a CSV, and the ordering verdict."""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from vinpaint.evaluation.config import PAPER_ORDER
from vinpaint.files import atomic_write_text

COLUMNS = ["schedule", "method", "clip", "kind", "psnr_raw", "ssim_raw", "psnr", "ssim", "psnr_hole", "ssim_hole",
           "cons_psnr", "cons_ssim", "cons_psnr_raw", "cons_ssim_raw", "fid_raw", "fid", "clock_s", "wall_s",
           "cpu_s", "steps", "note"]
"""CSV columns. *_raw: the raw generated frames (the paper's tables); unsuffixed: composited output."""
NUMERIC = [c for c in COLUMNS if c not in ("schedule", "method", "clip", "kind", "note")]
MEAN_CLIP = "ALL"


def mean_rows(rows: list[dict], kind: str = "composed") -> list[dict]:
    """One row per (schedule, method): the average over clips of each per-video value."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        if r["kind"] == kind:
            groups.setdefault((r["schedule"], r["method"]), []).append(r)
    out = []
    for (schedule, method), rs in groups.items():
        m = {"schedule": schedule, "method": method, "clip": MEAN_CLIP, "kind": kind, "note": f"{len(rs)} clips"}
        for c in NUMERIC:
            vals = np.array([r.get(c, math.nan) for r in rs], dtype=float)
            vals = vals[np.isfinite(vals)]
            m[c] = float(vals.mean()) if vals.size else math.nan
        out.append(m)
    return out


def write_csv(rows: list[dict], path: Path) -> None:
    text = io.StringIO(newline="")
    w = csv.DictWriter(text, fieldnames=COLUMNS, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.4f}" if isinstance(v, float) and math.isfinite(v) else
                        ("" if isinstance(v, float) else v)) for k, v in r.items()})
    atomic_write_text(path, text.getvalue())


def _f(v: float, digits: int = 2) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{v:.{digits}f}"


def _pair(a: float, b: float) -> str:
    return f"{_f(a)} / {_f(b, 3)}"


def table(rows: list[dict], methods: list[str]) -> list[str]:
    """Table 1's shape, one row per method (in the given order)."""
    lines = ["| Method | FID (raw) | Consistency PSNR/SSIM | PSNR/SSIM raw, full frame (paper) | "
             "PSNR/SSIM composited, full frame | PSNR/SSIM in the hole | seconds | steps |",
             "|---|---|---|---|---|---|---|---|"]
    by = {r["method"]: r for r in rows}
    for m in methods:
        if m not in by:
            continue
        r = by[m]
        lines.append(f"| {m} | {_f(r['fid_raw'], 1)} | {_pair(r['cons_psnr'], r['cons_ssim'])} | "
                     f"{_pair(r['psnr_raw'], r['ssim_raw'])} | {_pair(r['psnr'], r['ssim'])} | "
                     f"{_pair(r['psnr_hole'], r['ssim_hole'])} | {_f(r['clock_s'], 0)} | {_f(r['steps'], 0)} |")
    return lines


def quality_vs_seconds(means: list[dict], methods: list[str]) -> list[str]:
    """Every method at every point it was scored, cheapest first: the hole quality a user gets for the seconds
    they give. A method that does not train (a baseline, or propagation that left too little of the hole to
    train on) costs the same whatever the budget: its copies under each schedule fold into one row, so a
    training-free fill is never shown as if it had used the budget."""
    lines = ["| Method | schedules | seconds | CPU s | wall s | steps | PSNR in the hole | SSIM in the hole | "
             "consistency PSNR/SSIM |", "|---|---|---|---|---|---|---|---|---|"]
    for m in methods:
        folded: list[tuple[dict, list[str]]] = []
        for r in sorted((r for r in means if r["method"] == m), key=lambda r: _sort_key(r["clock_s"])):
            same = [f for f in folded if _same_output(f[0], r)]
            (same[0][1].append(r["schedule"]) if same else folded.append((r, [r["schedule"]])))
        for r, schedules in folded:
            lines.append(f"| {m} | {', '.join(schedules)} | {_f(r['clock_s'], 1)} | {_f(r['cpu_s'], 1)} | "
                         f"{_f(r['wall_s'], 1)} | {_f(r['steps'], 0)} | {_f(r['psnr_hole'])} | "
                         f"{_f(r['ssim_hole'], 3)} | {_pair(r['cons_psnr'], r['cons_ssim'])} |")
    return lines


def _sort_key(value: float) -> float:
    return value if value is not None and math.isfinite(value) else math.inf


def _same_output(a: dict, b: dict) -> bool:
    """Two schedules of one method that gave the same output (equal steps and scores, NaN equal to NaN)."""
    keys = ("steps", "psnr_hole", "ssim_hole", "cons_psnr", "clock_s")
    return all(a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])) for k in keys)


def ordering(rows: list[dict], metric: str) -> tuple[bool | None, str]:
    """Does DIP < DIP-Vid < DIP-Vid-3DCN < DIP-Vid-Flow hold for `metric` (higher is better)? And the order seen."""
    by = {r["method"]: r.get(metric, math.nan) for r in rows}
    present = [m for m in PAPER_ORDER if m in by and math.isfinite(by[m])]
    if len(present) < 2:
        return None, "not enough of the paper's variants to compare"
    seen = sorted(present, key=lambda m: by[m])
    holds = seen == present
    text = " < ".join(f"{m} ({by[m]:.2f})" for m in seen)
    return holds, text


def markdown(header: list[str], schedules: list[str], means: list[dict], per_video: list[dict],
             real: list[dict], methods: list[str], pictures: list[str]) -> str:
    """The whole results.md."""
    lines = list(header)
    for s in schedules:
        rows = [r for r in means if r["schedule"] == s]
        if not rows:
            continue
        lines += ["", f"## {s}: mean over composed clips", ""] + table(rows, methods)
        for metric, name in (("psnr_hole", "PSNR in the hole"), ("psnr_raw", "raw full-frame PSNR (paper's)"),
                             ("cons_psnr", "consistency PSNR")):
            holds, text = ordering(rows, metric)
            verdict = "n/a" if holds is None else ("holds" if holds else "does NOT hold")
            lines.append(f"- Paper's ordering on {name}: **{verdict}** — {text}")
    if means:
        lines += ["", "## Quality against seconds: mean over composed clips", "",
                  "Each method at each point it was scored, cheapest first. `seconds` is the budget clock (see "
                  "above; a baseline's is its wall time); rows a method reached without training are folded into "
                  "one.", ""] + quality_vs_seconds(means, methods)
    if per_video:
        lines += ["", "## Per video", "",
                  "| schedule | clip | method | PSNR/SSIM raw | PSNR/SSIM composited | PSNR/SSIM hole | "
                  "consistency | seconds | steps | note |", "|---|---|---|---|---|---|---|---|---|---|"]
        for r in per_video:
            lines.append(f"| {r['schedule']} | {r['clip']} | {r['method']} | {_pair(r['psnr_raw'], r['ssim_raw'])} | "
                         f"{_pair(r['psnr'], r['ssim'])} | {_pair(r['psnr_hole'], r['ssim_hole'])} | "
                         f"{_pair(r['cons_psnr'], r['cons_ssim'])} | {_f(r['clock_s'], 0)} | {_f(r['steps'], 0)} | "
                         f"{r.get('note', '')} |")
    if real:
        lines += ["", "## Real masked clips (no ground truth): temporal consistency in the hole", "",
                  "| schedule | clip | method | consistency PSNR/SSIM (composited) | raw | seconds |",
                  "|---|---|---|---|---|---|"]
        for r in real:
            lines.append(f"| {r['schedule']} | {r['clip']} | {r['method']} | {_pair(r['cons_psnr'], r['cons_ssim'])} "
                         f"| {_pair(r['cons_psnr_raw'], r['cons_ssim_raw'])} | {_f(r['clock_s'], 0)} |")
    if pictures:
        lines += ["", "## Pictures", ""] + [f"- [{p}]({p})" for p in pictures]
    return "\n".join(lines) + "\n"
