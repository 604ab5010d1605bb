"""The signals that stop a command as Ctrl-C does, for the CLI's handlers (kept light: no torch, no OpenCV)."""
from __future__ import annotations

import os
import signal


def stop_signals() -> tuple[int, ...]:
    """The signals that stop a run as Ctrl-C does: SIGINT, SIGTERM (a farm stopping the job) and SIGHUP (the
    terminal closed, an ssh session dropped), except where SIGHUP is ignored: a run under `nohup` goes on."""
    ignored = signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
    return (signal.SIGINT, signal.SIGTERM) + (() if ignored else (signal.SIGHUP,))


def away_from_the_terminal() -> None:
    """After SIGHUP the terminal is gone: what the run still says (the checkpoint line) would fail to write and end
    it with another status, so stdout and stderr go nowhere from here (a file they were sent to is kept)."""
    for fd in (1, 2):
        try:
            if os.isatty(fd):
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, fd)
                os.close(null)
        except OSError:
            pass
