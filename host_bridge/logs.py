"""The daemon's log: one line per record, and unexpected failures logged with a bounded rate."""
from __future__ import annotations

import logging
import sys
import time
import traceback

log = logging.getLogger("vinpaint.daemon")

LOGGED_FAILURES_PER_MINUTE = 10
"""Tracebacks the daemon logs per minute; beyond that it counts them (a client sending bad requests in a loop
must not fill the disk with logs)."""
MAX_LOGGED_TRACEBACK = 2000
"""Characters of one logged traceback (its end: the frames nearest the failure and the exception)."""


class OneLineFormatter(logging.Formatter):
    """Every log record on exactly one line: newlines and other control characters (in a client's string or a
    traceback) are escaped, so nothing a client sends can forge a log line, and a record is cut at 8 KB."""

    MAX = 8192

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
        return text if len(text) <= self.MAX else text[:self.MAX] + f"... ({len(text) - self.MAX} more chars)"


"\n".encode("unicode_escape")  # loads the codec now: out of file handles, its lazy import failed every log line


def configure_logging(quiet: bool = False) -> None:
    """The daemon's log on stderr, one line per record (OneLineFormatter)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLineFormatter("%(asctime)s vinpaint-daemon %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING if quiet else logging.INFO)


class HelloLog:
    """"hello from <client>" once per client name (the node says hello on every render), at most `per_minute` new
    names a minute and the rest counted: a client saying hello in a loop, or under a new name each time, wrote
    6.5 MB of log a second before (2026-12-02)."""

    def __init__(self, per_minute: int = LOGGED_FAILURES_PER_MINUTE, remembered: int = 256) -> None:
        self.remembered = remembered
        self.seen: dict[str, None] = {}  # insertion order: the oldest name is forgotten first
        self.rate = PerMinute(per_minute, lambda n: log.info("%d more clients said hello in the last minute (not "
                                                             "logged)", n))

    def __call__(self, client: str) -> None:
        if client in self.seen:
            return
        self.seen[client] = None
        if len(self.seen) > self.remembered:
            del self.seen[next(iter(self.seen))]
        if self.rate.allows():
            log.info("hello from %r", client)


class PerMinute:
    """At most `most` log lines a minute; the rest counted, and `said_more(count)` called when the minute is over."""

    def __init__(self, most: int, said_more) -> None:
        self.most, self.said_more = most, said_more
        self.window = 0.0
        self.logged = 0
        self.suppressed = 0

    def allows(self) -> bool:
        now = time.monotonic()
        if now - self.window >= 60.0:
            if self.suppressed:
                self.said_more(self.suppressed)
            self.window, self.logged, self.suppressed = now, 0, 0
        if self.logged >= self.most:
            self.suppressed += 1
            return False
        self.logged += 1
        return True


class FailureLog:
    """Logs unexpected failures with a short traceback, at most `per_minute` a minute; the rest are counted and
    reported in one line when the minute is over."""

    def __init__(self, per_minute: int = LOGGED_FAILURES_PER_MINUTE) -> None:
        self.rate = PerMinute(per_minute, lambda n: log.error("%d more failures in the last minute were not "
                                                              "logged", n))

    def __call__(self, what: str) -> None:
        if not self.rate.allows():
            return
        trace = traceback.format_exc()
        log.error("%s: %s", what, trace if len(trace) <= MAX_LOGGED_TRACEBACK else
                  "..." + trace[-MAX_LOGGED_TRACEBACK:])
