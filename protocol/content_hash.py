"""The clip content hash of SPEC.md section 5, computed from per-item SHA-256 digests.

Built from per-item digests so the daemon can verify a resumable, any-order upload without rereading gigabytes,
and a client can hash frames one at a time as it reads them.
"""
from __future__ import annotations

import hashlib
from typing import Iterable, Mapping, Sequence

import numpy as np

from .codec import wire_array

PREFIX = b"vinpaint-clip-v1\n"


def item_digest(data: bytes | memoryview | np.ndarray) -> bytes:
    """SHA-256 (32 raw bytes) of one buffer exactly as it travels on the wire."""
    if isinstance(data, np.ndarray):
        _, data = wire_array(data)
    return hashlib.sha256(data).digest()


def clip_hash(frames: int, height: int, width: int, channels: int, dtype: str, mask_dtype: str,
              frame_digests: Sequence[bytes], mask_digests: Sequence[bytes],
              reference_digests: Mapping[int, bytes] | None = None) -> str:
    """64 lowercase hex chars over the geometry line and every frame's and mask's digest, in index order; with
    reference frames, then the line "references <i> <j> ...\n" and their digests in ascending index order (without
    any, the bytes are exactly those of a clip without references)."""
    if len(frame_digests) != frames or len(mask_digests) != frames:
        raise ValueError(f"need {frames} frame and mask digests, got {len(frame_digests)} and {len(mask_digests)}")
    references = sorted((reference_digests or {}).items())
    if any(not 0 <= i < frames for i, _ in references):
        raise ValueError(f"reference indices must be from 0 to {frames - 1}")
    h = hashlib.sha256(PREFIX)
    h.update(f"{frames} {height} {width} {channels} {dtype} {mask_dtype}\n".encode("ascii"))
    digests = list(frame_digests) + list(mask_digests) + [d for _, d in references]
    if any(len(d) != 32 for d in digests):
        raise ValueError("each digest must be 32 raw bytes")
    for d in digests[: 2 * frames]:
        h.update(d)
    if references:
        h.update(("references " + " ".join(str(i) for i, _ in references) + "\n").encode("ascii"))
        for d in digests[2 * frames:]:
            h.update(d)
    return h.hexdigest()


def clip_hash_of_arrays(frames: Iterable[np.ndarray], masks: Iterable[np.ndarray], *, frames_count: int,
                        height: int, width: int, channels: int, dtype: str, mask_dtype: str,
                        references: Mapping[int, np.ndarray] | None = None) -> str:
    """Convenience for clients holding the arrays (each frame [H,W,C], each mask [H,W,1] in its wire dtype, each
    reference like a frame)."""
    return clip_hash(frames_count, height, width, channels, dtype, mask_dtype,
                     [item_digest(f) for f in frames], [item_digest(m) for m in masks],
                     {i: item_digest(r) for i, r in (references or {}).items()})
