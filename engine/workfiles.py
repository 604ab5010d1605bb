"""Which entries of a work directory vinpaint writes. `--restart` deletes those and nothing else: a file a user saved
into OUT.work (notes, a render, a copy of the plate) stops the restart with its name instead of going with it."""
from __future__ import annotations

import re
from pathlib import Path

from vinpaint.files import PARTIAL_NAME, remove_partials

from .shot import ATTEMPTS, DONE, EXTRAS, RESULT_ARRAYS, SAVED_ARRAYS

RUN_FILES = frozenset({"run.json", "config.json", "log.txt", "checkpoint.pt", "flow.npz", "propagation.npz",
                       "result.npz"})
"""A run's folder (engine/api.py _Workdir), whole clip or one window of a long shot."""
WINDOW_FILES = RUN_FILES | {DONE, ATTEMPTS, *RESULT_ARRAYS, *SAVED_ARRAYS, *EXTRAS}
"""A long shot's window folder (engine/shot.py): its run, plus its record and result arrays."""
WINDOW_FOLDER = re.compile(r"window_\d{4}")
LEFT_BEHIND = (PARTIAL_NAME,  # vinpaint.files.temp_sibling: a write cut short by a kill
               re.compile(r".+\.damaged\.\d+"))  # a damaged file the daemon set aside (host_bridge/worker.py)


def foreign_entries(workdir: Path, ignore: frozenset[str] = frozenset()) -> list[Path]:
    """The entries of `workdir` (and of its window folders) that vinpaint did not write, sorted; `ignore`: names
    the caller owns at the top (the CLI's lock)."""
    foreign = []
    for entry in sorted(Path(workdir).iterdir()):
        if entry.name in ignore:
            continue
        if WINDOW_FOLDER.fullmatch(entry.name) and entry.is_dir() and not entry.is_symlink():
            foreign += [inner for inner in sorted(entry.iterdir()) if not _ours(inner, WINDOW_FILES)]
        elif not _ours(entry, RUN_FILES):
            foreign.append(entry)
    return foreign


def _ours(entry: Path, names: frozenset[str]) -> bool:
    if entry.is_dir() and not entry.is_symlink():
        return False  # vinpaint writes no folder here but the windows
    return entry.name in names or any(pattern.fullmatch(entry.name) for pattern in LEFT_BEHIND)


def remove_left_behind(workdir: Path, windows: bool = True) -> None:
    """What killed writers left half-written in a run's work directory (temp_sibling's names), and with `windows`
    in its window folders too; for the one process that holds the run. A folder that is not yet a run's (no
    run.json) may be anything a user pointed at: there only the temporaries of a run's own files go."""
    workdir = Path(workdir)
    ours = (workdir / "run.json").is_file()
    remove_partials(workdir, None if ours else set(RUN_FILES))
    if ours and windows:
        for folder in workdir.iterdir():
            if WINDOW_FOLDER.fullmatch(folder.name) and folder.is_dir() and not folder.is_symlink():
                remove_partials(folder)
