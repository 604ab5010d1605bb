"""`vinpaint bench`: seconds per training step and peak memory of each variant (a benchmark: prints, never asserts)."""
from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict
from pathlib import Path

from vinpaint.cli.arguments import parse_size
from vinpaint.cli.outputs import check_outside_store, check_writable
from vinpaint.errors import InputError
from vinpaint.files import atomic_write_bytes, atomic_write_text
from vinpaint.media import marks


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "bench", help="time a training step and measure peak memory of each variant",
        description="Train each variant for a few steps on the procedural sample clip, each in its own process, "
                    "and print seconds per step, CPU seconds per step and peak memory. Defaults to the paper's "
                    "384x192 working size.")
    p.add_argument("--size", type=parse_size, default=(384, 192), help="working size WIDTHxHEIGHT (default 384x192)")
    p.add_argument("--frames", type=int, default=25)
    p.add_argument("--steps", type=int, default=12, help="timed steps per variant (default %(default)s)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--variants", default="dip,dip-vid,dip-vid-3dcn,dip-vid-flow")
    p.add_argument("--preset", default="paper", choices=("tiny", "fast", "paper"))
    p.add_argument("--vgg-weights", default="random",
                   help="'random' (default: times the perceptual loss without real weights), a path, or ''")
    p.add_argument("--device", default="", help="cpu or cuda (default: cuda when present)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--output", "-o", type=Path, help="also write BENCH.json and BENCH.md here")
    p.set_defaults(run=run)


def check_bench_folder(out: Path) -> None:
    """OUT may hold anything but a bench.json or bench.md that an earlier `vinpaint bench` did not write."""
    if os.path.lexists(out) and not out.is_dir():
        raise InputError(f"output {out} exists and is not a folder.")
    check_outside_store(out)
    check_writable([out / "bench.json"])  # under a file, read-only, a name too long: said before the minutes of timing
    try:
        keys = set(json.loads((out / "bench.json").read_text(encoding="utf-8"))) - {marks.MARK_MEMBER}
        earlier = keys == {"config", "rows"}
    except (OSError, ValueError, TypeError):
        earlier = False
    for name in ("bench.json", "bench.md"):
        if os.path.lexists(out / name) and not earlier:
            raise InputError(f"output {out / name} exists and was not written by vinpaint bench; give another "
                             "--output folder.")
        # sealed when written (since 2026-12-03; before, an edited bench.md was replaced without a word)
        if os.path.lexists(out / name) and marks.sealed_state(out / name) == marks.CHANGED:
            raise InputError(f"output {out / name} was written by vinpaint bench but changed since; give another "
                             "--output folder, or move it away to keep it.")


def run(args: argparse.Namespace) -> int:
    w, h = args.size
    from vinpaint.evaluation.bench import BenchConfig, markdown, run_all  # torch: to run, not to parse

    cfg = BenchConfig(width=w, height=h, frames=args.frames, steps=args.steps, warmup=args.warmup,
                      variants=[v.strip() for v in args.variants.split(",") if v.strip()], preset=args.preset,
                      vgg_weights=args.vgg_weights, device=args.device, threads=args.threads)
    out = Path(os.path.expanduser(args.output)) if args.output else None
    if out is not None:
        check_bench_folder(out)  # before the timing, which takes minutes
    rows = run_all(cfg)
    if out is not None:
        try:  # again: a file of the user's may have been put there during the minutes of timing
            check_bench_folder(out)
        except InputError as err:
            raise InputError(f"{str(err).rstrip('.')} (found after the timing, whose numbers are printed above and "
                             "written nowhere).") from None
        out.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"config": asdict(cfg), "rows": rows}, indent=1) + "\n"
        atomic_write_text(out / "bench.json", marks.mark_json(text.encode("utf-8")).decode("utf-8"))
        text = markdown(rows, cfg, footer=f"<!-- {marks.PLACEHOLDER} -->")
        atomic_write_bytes(out / "bench.md", marks.sealed_bytes(text.encode("utf-8")))
        print(f"wrote {out / 'bench.md'}")
    return 0
