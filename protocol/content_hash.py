"""The clip content hash of SPEC.md section 5, computed from per-item SHA-256 digests.

Built from per-item digests so the daemon can verify a resumable, any-order upload without rereading gigabytes,
and a client can hash frames one at a time as it reads them.
"""
from __future__ import annotations

import hashlib
from typing import Iterable, Sequence

import numpy as np

from .codec import wire_array

PREFIX = b"vinpaint-clip-v1\n"


def item_digest(data: bytes | memoryview | np.ndarray) -> bytes:
    """SHA-256 (32 raw bytes) of one buffer exactly as it travels on the wire."""
    if isinstance(data, np.ndarray):
        _, data = wire_array(data)
    return hashlib.sha256(data).digest()


def clip_hash(frames: int, height: int, width: int, channels: int, dtype: str, mask_dtype: str,
              frame_digests: Sequence[bytes], mask_digests: Sequence[bytes]) -> str:
    """64 lowercase hex chars over the geometry line and every frame's and mask's digest, in index order."""
    if len(frame_digests) != frames or len(mask_digests) != frames:
        raise ValueError(f"need {frames} frame and mask digests, got {len(frame_digests)} and {len(mask_digests)}")
    h = hashlib.sha256(PREFIX)
    h.update(f"{frames} {height} {width} {channels} {dtype} {mask_dtype}\n".encode("ascii"))
    for d in list(frame_digests) + list(mask_digests):
        if len(d) != 32:
            raise ValueError("each digest must be 32 raw bytes")
        h.update(d)
    return h.hexdigest()


def clip_hash_of_arrays(frames: Iterable[np.ndarray], masks: Iterable[np.ndarray], *, frames_count: int,
                        height: int, width: int, channels: int, dtype: str, mask_dtype: str) -> str:
    """Convenience for clients holding the arrays (each frame [H,W,C], each mask [H,W,1] in its wire dtype)."""
    return clip_hash(frames_count, height, width, channels, dtype, mask_dtype,
                     [item_digest(f) for f in frames], [item_digest(m) for m in masks])
