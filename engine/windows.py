"""Which window of N frames each frame is generated from (the trainer's generate()).

BatchNorm runs on batch statistics at generation as in training, so a frame's output depends on the window it is
generated in. Non-overlapping windows make those statistics jump at every window boundary (the issue-12 audit
measured up to about 9/255 in the hole); the authors' code slides the window by one frame and keeps each frame from
the window centred on it (the first and last N//2 frames from the first and last windows), which is what this does.
"""
from __future__ import annotations


def centred_windows(t_count: int, n: int) -> list[tuple[int, list[int]]]:
    """-> [(start, frames kept from the window start..start+n-1)], every frame kept exactly once, in order.
    A clip shorter than a window is one window of all its frames."""
    n = min(n, t_count)
    last = t_count - n
    out: list[tuple[int, list[int]]] = []
    for start in range(last + 1):
        keep = [start + n // 2]
        if start == 0:
            keep = list(range(0, n // 2 + 1))
        if start == last:
            keep = sorted(set(keep) | set(range(start + n // 2, t_count)))
        out.append((start, keep))
    return out
