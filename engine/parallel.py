"""A clip's frames worked on side by side, on threads.

OpenCV's Telea fill runs on one core and releases the GIL, and the stages around training call it once or more per
frame at source resolution (the flow's input, how far copies hold, propagation's fusion, the self-check, the
composition): on a 1920x1440 plate that was most of a `fast` run's time outside training. Frames are independent
there, so a pool of threads gives the same pixels in a fraction of the time.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, TypeVar

T = TypeVar("T")

MAX_WORKERS = 8
"""Each worker holds one frame's float temporaries (WORKER_BYTES_PER_PIXEL: about 350 MB at 4K), so even a
many-core machine uses at most this many at once."""

WORKER_BYTES_PER_PIXEL = 48
"""Peak host memory one more worker adds, per pixel of a frame: 38-44 measured for `diffusion_fill` on
1920x1440 (peak RSS with one worker and with two), rounded up. The daemon's memory estimate counts it."""


def frame_workers() -> int:
    """OpenCV's own thread budget (the cores, unless cv2.setNumThreads lowered it), capped at MAX_WORKERS and at
    OMP_NUM_THREADS where the user set it (the usual way to keep a job to its share of a shared machine)."""
    import cv2  # here, so the daemon's request side can read MAX_WORKERS without loading OpenCV

    workers = min(MAX_WORKERS, cv2.getNumThreads())
    try:
        workers = min(workers, int(os.environ.get("OMP_NUM_THREADS", "") or workers))
    except ValueError:  # not a number (OpenMP's own parser would reject it too): no cap from it
        pass
    return max(1, workers)


def pool_memory(frame_pixels: int) -> int:
    """Bytes the pool's workers may hold at once for frames of `frame_pixels` pixels, on this machine's cores
    (what frame_workers() allows before any cap the user sets), without loading OpenCV: for memory estimates."""
    return min(MAX_WORKERS, os.cpu_count() or 1) * frame_pixels * WORKER_BYTES_PER_PIXEL


def each_frame(work: Callable[[int], T], frames: Iterable[int]) -> list[T]:
    """`work(t)` for every t, in order, on up to frame_workers() threads; the first exception is raised once the
    frames already started have finished (the rest never start).

    `work` must touch only frame t's slice of any shared output array."""
    frames = list(frames)
    workers = min(frame_workers(), len(frames))
    if workers <= 1:
        return [work(t) for t in frames]
    pool = ThreadPoolExecutor(workers, thread_name_prefix="vinpaint-frame")
    try:
        return list(pool.map(work, frames))
    finally:  # after a failed frame or Ctrl-C the frames not yet started are dropped, not worked through
        pool.shutdown(wait=True, cancel_futures=True)


def side_by_side(*work: Callable[[], T]) -> list[T]:
    """Independent pieces of work (propagation's two directions in time) on the same pool, results in order."""
    return each_frame(lambda i: work[i](), range(len(work)))
