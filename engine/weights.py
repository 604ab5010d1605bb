"""Weights files named in a setting (loss.vgg_weights, flow.raft_weights). Left empty, vinpaint looks in the usual
places and runs without the network when none is there, saying so in one line; a file the user named must be
there, or the run would quietly be another than the one asked for (a typo in a path turned the term off)."""
from __future__ import annotations

import os
from pathlib import Path

from vinpaint.errors import InputError


def check_named_file(setting: str, configured: str, what: str) -> None:
    """InputError unless `configured` (the value of `setting`) is empty, 'random' (tests) or names a file."""
    if not configured or configured == "random":
        return
    path = Path(os.path.expanduser(configured))  # Path's raises for ~unknown-user
    try:
        found = "a file" if path.is_file() else "a folder" if path.is_dir() else \
            "something else" if path.exists() else None
    except OSError:  # a name too long for the file system, or one we may not look at
        found = None
    if found != "a file":
        state = {"a folder": "is a folder", "something else": "is not a regular file (a device or a pipe)"}.get(
            found, "does not exist")
        raise InputError(f"{setting} names {configured}, which {state}; give the path of a {what} file, or leave "
                         f"{setting} empty to run without one where none is found")
