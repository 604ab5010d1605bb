"""What checking vinpaint's mark with its digest costs (media/marks.py): a folder of PNG frames and a frame pattern
of EXRs, as a re-run checks them before it may replace them.

    python bench/mark_check.py [--frames 200] [--size 1920x1080] [--keep DIR]

Writes the frames through vinpaint's own sinks (PngFolderSink, PatternSink: half EXR, zip, as an 8-bit source is
written), then times check_replaceable on them: first with this process's cache of checked files empty (every
file read and hashed; the files are in the OS page cache, just written), then again (the cache: one stat per
file), as a run checks before training and again before writing. Also the old check's cost for comparison
(reading 4,096 bytes per PNG; opening each EXR's header). Prints, never asserts.
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def frames(count: int, width: int, height: int):
    """Plate-like frames (smooth gradients, texture and grain), one at a time: a few MB each as PNG, like footage."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    for i in range(count):
        base = 120 + 60 * np.sin(x / 97 + i / 9) * np.cos(y / 71) + 30 * np.sin((x + y) / 13 + i)
        picture = base[..., None] + np.array([10, 0, -10], np.float32) + rng.normal(0, 4, (height, width, 3))
        yield np.clip(picture, 0, 255).astype(np.uint8)


def timed(label: str, count: int, work) -> None:
    start = time.perf_counter()
    work()
    seconds = time.perf_counter() - start
    print(f"  {label:<44} {seconds:7.3f} s  ({1000 * seconds / count:6.2f} ms per frame)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--keep", type=Path, help="write the frames here and keep them (default: a temporary folder)")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))

    from vinpaint.media import marks
    from vinpaint.media.sequences import parse_pattern
    from vinpaint.media.writers import PatternSink, PngFolderSink, check_replaceable

    root = Path(args.keep or tempfile.mkdtemp(prefix="vinpaint-marks-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        kinds = [("PNG folder", root / "clean")]
        try:
            import OpenImageIO  # noqa: F401

            kinds.append(("EXR pattern (half, zip)", root / "exr" / "clean.%04d.exr"))
        except ImportError:
            print("OpenImageIO is not importable here: no EXR numbers")
        for kind, where in kinds:
            start = time.perf_counter()
            if kind == "PNG folder":
                sink = PngFolderSink(where, [f"{i:05d}" for i in range(args.frames)])
                files = [where / f"{i:05d}.png" for i in range(args.frames)]
            else:
                pattern = parse_pattern(str(where))
                sink = PatternSink(pattern, list(range(1, args.frames + 1)), np.dtype(np.uint8))
                files = sink.targets
            for frame in frames(args.frames, width, height):
                sink.write(frame)
            sink.commit()
            written = time.perf_counter() - start
            size = sum(f.stat().st_size for f in files)
            print(f"{kind}: {args.frames} frames at {width}x{height}, {size / 2 ** 20:.0f} MiB "
                  f"({size / len(files) / 2 ** 20:.1f} MiB a frame), written in {written:.1f} s")

            def check() -> None:
                if kind == "PNG folder":
                    check_replaceable(where, folder=True)
                else:
                    for f in files:
                        check_replaceable(f)

            marks._checked.clear()
            timed("check, nothing cached (read + SHA-256)", len(files), check)
            timed("check again (cached: a stat per file)", len(files), check)
            if kind == "PNG folder":
                timed("old check (4,096 bytes per file)", len(files), lambda: [f.open("rb").read(4096) for f in files])
            else:
                from vinpaint.media.imagefiles import is_marked

                timed("old check (OIIO opens each header)", len(files), lambda: [is_marked(f, "x") for f in files])
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
