"""The `vinpaint` command: parse arguments into a config, then hand over to the part that does the work.

Each sub-command lives in its own module `vinpaint.cli.commands_<name>` exposing `add_parser(subparsers)` and
`run(args) -> int`, so the parts (engine, daemon, evaluation) stay independent of one another.
"""
from __future__ import annotations

import argparse
import errno
import importlib
import os
import signal
import sys
import threading
from pathlib import Path

from vinpaint import __version__
from vinpaint.errors import VinpaintError, device_fault, device_out_of_memory, out_of_memory
from vinpaint.files import PARTIAL_NAME
from vinpaint.openmp import deterministic_cublas, prefer_sleeping_threads
from vinpaint.stopping import away_from_the_terminal, stop_signals

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
            module = importlib.import_module(f"vinpaint.cli.commands_{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"vinpaint.cli.commands_{name}":
                continue  # a part not installed in this build
            raise
        module.add_parser(sub)
    return parser


def print_names_as_on_disk() -> None:
    """A file name that is not UTF-8 (a Latin-1 folder from an old zip or a share) is printed as its bytes, as ls
    prints it: under a strict UTF-8 stdout (an en_US.UTF-8 locale), printing it raised UnicodeEncodeError once the
    run had done its work."""
    for stream in (sys.stdout, sys.stderr):
        if getattr(stream, "errors", None) == "strict" and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="surrogateescape")


def main(argv: list[str] | None = None) -> int:
    argv_given, argv = argv, list(sys.argv[1:] if argv is None else argv)
    if argv_given is None:
        print_names_as_on_disk()
    try:  # loading the commands' modules takes a moment: a Ctrl-C there printed an import's traceback
        deterministic_cublas()
        prefer_sleeping_threads()  # before any command loads torch
        parser = build_parser()
        if argv[:1] == ["inpaint"]:
            from vinpaint.cli.shots import place_ray_flag

            argv = place_ray_flag(argv)
        args = parser.parse_args(argv)
    except KeyboardInterrupt:
        print("vinpaint: interrupted while starting; nothing was done", file=sys.stderr)
        return 130
    previous = None
    if threading.current_thread() is threading.main_thread():
        # like Ctrl-C: partial files and litter are removed (SIGHUP: the terminal closed, an ssh session dropped)
        previous = {sig: signal.signal(sig, _terminate) for sig in stop_signals() if sig != signal.SIGINT}
    as_command = argv_given is None
    try:
        code = _dispatch(parser, args)
    finally:
        for sig, handler in (previous or {}).items():
            signal.signal(sig, handler)
    if code == 130 and as_command and previous is not None:
        # stopped, said so, checkpoint saved: a second Ctrl-C while the interpreter exits would only interrupt an
        # atexit callback (torch's, FFmpeg's) and print its traceback
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    return code


def _dispatch(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if not getattr(args, "run", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.run(args) or 0)
    except VinpaintError as exc:
        print(f"vinpaint: error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        from vinpaint.cli.runs import to_continue  # loaded by every command that trains, so nothing new here

        print(f"vinpaint: interrupted; checkpoints are kept, {to_continue(args)}", file=sys.stderr)
        return 130
    except OSError as exc:  # the machine, not the input: a full disk, a read-only folder, a vanished file
        print(f"vinpaint: error: {describe_os_error(exc, again_without_restart=getattr(args, 'restart', False))}",
              file=sys.stderr)
        return 2
    except (MemoryError, RuntimeError) as exc:
        if device_fault(exc) and not device_out_of_memory(exc):
            from vinpaint.cli.runs import to_continue

            print(f"vinpaint: error: the GPU failed ({one_line(str(exc))[:200]}); checkpoints are kept: check the "
                  f"device (nvidia-smi), then {to_continue(args)}", file=sys.stderr)
            return 2
        if not out_of_memory(exc):
            raise
        if device_out_of_memory(exc):
            print(f"vinpaint: error: the device ran out of memory ({one_line(str(exc))[:200]}); use a smaller "
                  "--work-width or a smaller train.batch_size (with flow.estimator raft, a smaller "
                  "propagation.max_width: RAFT's correlation grows with the flow's width to the fourth power).",
                  file=sys.stderr)
        else:  # the machine's RAM: Python's MemoryError, or torch's CPU allocator (a plain RuntimeError)
            print("vinpaint: error: out of memory; use fewer frames, a smaller --work-width or "
                  "--set train.batch_size=N with a smaller N.", file=sys.stderr)
        return 2


def _terminate(signum, frame) -> None:
    if signum == signal.SIGHUP:
        away_from_the_terminal()
    raise KeyboardInterrupt


def one_line(text: str) -> str:
    """A message on one line: control characters (a newline in a file name ...) escaped."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)




def describe_os_error(exc: OSError, again_without_restart: bool = False) -> str:
    """An environment error as one sentence naming the path (the real output's, not a temporary name).
    `again_without_restart`: the command had --restart, which would throw away the training it kept."""
    name = exc.filename or ""
    if name:
        path = Path(os.fsdecode(name))
        match = PARTIAL_NAME.fullmatch(path.name)  # a temporary of vinpaint/files.py: named as its target
        name = str(path.with_name(match["target"]) if match else path)
    where = f" {one_line(name)}" if name else ""
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        again = "without --restart (which would train again)" if again_without_restart else "again"
        return f"the disk is full (no space left) while writing{where}; free some space and run the same command " \
               f"{again}."
    if exc.errno == errno.EROFS:
        return f"cannot write{where}: the file system is read-only; write it elsewhere (-o for the outputs, " \
               "--work-dir for the work directory)."
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"cannot write or read{where}: permission denied."
    return f"{one_line(reason.rstrip('.'))}{':' + where if where else ''}."
