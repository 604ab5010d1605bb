"""The `vinpaint` command: parse arguments into a config, then hand over to the part that does the work.

Each sub-command lives in its own module `vinpaint.commands_<name>` exposing `add_parser(subparsers)` and
`run(args) -> int`, so the parts (engine, daemon, evaluation) stay independent of one another.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from vinpaint import __version__

COMMANDS = ("inpaint", "demo", "serve", "submit", "eval", "compose", "bench")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vinpaint",
        description="Remove objects from video by internal learning (Zhang et al., ICCV 2019).",
    )
    parser.add_argument("--version", action="version", version=f"vinpaint {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"vinpaint.commands_{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"vinpaint.commands_{name}":
                continue  # a part not installed in this build
            raise
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from vinpaint.engine.errors import VinpaintError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.run(args) or 0)
    except VinpaintError as exc:
        print(f"vinpaint: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vinpaint: interrupted; checkpoints are kept, run the same command again to continue", file=sys.stderr)
        return 130
