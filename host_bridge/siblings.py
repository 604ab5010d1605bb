"""A new job that differs from a finished one only in how long to train or how the result is composed.

A compositor who changes the node's Feather (or an Engine Settings line such as `propagation.steady_radius`, or a
larger `train.max_steps`) and presses Train opens a new job: its settings hash to a new id. Its clip is the one
the daemon already holds, and so is everything it would compute before composing: the flow, the propagation, the
training. Here the new job takes both from that sibling: its uploaded items are hard-linked (nothing is sent again)
and its work directory is seeded from the sibling's, so the engine composes again at once (a composition change)
or trains on from the sibling's checkpoint (a larger budget). The engine's own fingerprint still decides: a work
directory it does not recognise as the same run is set aside and the job trains from scratch (worker.py).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable

from vinpaint.engine.config import BUDGET_SETTINGS, InpaintConfig

from . import job_settings
from .store import KINDS, Job

REUSABLE_STATES = ("done", "cancelled")
"""States of a sibling whose work directory can be at rest (one whose training process is still stopping is
skipped: it may yet write a checkpoint)."""

LINKED_SUFFIXES = (".npz", ".npy", ".pt", ".bin")
"""Files the engine and the store only ever replace whole (atomic writes): shared as hard links. Where the file
system refuses links they are not copied (a long shot's caches are gigabytes, and the daemon has one thread):
the job then starts without a sibling. Anything else (logs appended to, small JSON) is copied."""


def _budget(config: InpaintConfig) -> list:
    """The budget settings (BUDGET_SETTINGS but the checkpoint interval, which decides nothing a run gives)."""
    return [getattr(config.train, name) for name in BUDGET_SETTINGS if name != "checkpoint_every_s"]


def find_sibling(jobs: list[Job], job: Job, config: InpaintConfig,
                 busy: Callable[[str], bool] = lambda job_id: False) -> Job | None:
    """The job to seed `job` from: the same clip (content hash, references) uploaded whole and verified, at rest
    (not `busy`: no training process), with the same training identity. Its budget must be the same (a change of
    composition alone: the result is composed again), or, to train on from its checkpoint, a step budget changed
    where training on gives the pixels of a fresh run: a finished job of one window, trained no further than this
    job plans, under the same time budget (dip splits a time budget between frames) and with no step count fitted
    to a machine's speed (a checkpoint keeps its fitted count). Done jobs first, then the furthest trained."""
    rec = job.record
    identity = config.training_identity()
    planned = job_settings.planned_steps(config, rec.frames)
    candidates = []
    for other in jobs:
        o = other.record
        if other is job or o.content_hash != rec.content_hash or o.references != rec.references \
                or o.state not in REUSABLE_STATES or busy(other.id) or not other.workdir.is_dir():
            continue
        try:
            theirs = InpaintConfig.from_dict(o.config)
        except Exception:  # a record from another version that no longer loads: not a sibling
            continue
        if theirs.training_identity() != identity or theirs.shot != config.shot:
            continue
        if _budget(theirs) != _budget(config):
            trains_on = (o.state == "done" and rec.frames <= config.shot.window
                         and theirs.train.max_seconds == config.train.max_seconds
                         and theirs.train.fit_seconds == 0 and config.train.fit_seconds == 0
                         and o.progress.step <= planned)
            if not trains_on:
                continue
        if not other.complete_inputs() or other.hash_state() != "ok":
            continue
        candidates.append(other)
    if not candidates:
        return None
    return max(candidates, key=lambda j: (j.record.state == "done", j.record.progress.step, j.record.updated))


def _share(source: Path, target: Path) -> None:
    """A hard link where the file is only ever replaced whole (OSError where links fail), else a copy."""
    if source.suffix in LINKED_SUFFIXES:
        os.link(source, target)
    else:
        shutil.copy2(source, target)


def link_inputs(source: Job, target: Job) -> None:
    """The sibling's uploaded items (and their digests) into `target`, a job just created (its input folders
    empty); what it holds is then the sibling's, already verified, so nothing is read back."""
    for kind in KINDS:
        for index in sorted(source.have[kind]):
            for suffix in (".bin", ".sha256"):
                _share(source.item_path(kind, index, suffix), target.item_path(kind, index, suffix))
    target.take_items(source)


def seed_workdir(source: Job, target: Job) -> None:
    """The sibling's work directory, file by file, into `target`'s (new and empty). Lock files and temporary
    files of an interrupted write stay behind."""
    for root, _dirs, files in os.walk(source.workdir):
        there = target.workdir / Path(root).relative_to(source.workdir)
        there.mkdir(parents=True, exist_ok=True)
        for name in files:
            if name != "LOCK" and not name.startswith("."):
                _share(Path(root) / name, there / name)


def seed(jobs: list[Job], job: Job, config: InpaintConfig,
         busy: Callable[[str], bool] = lambda job_id: False) -> Job | None:
    """Seed a just-created `job` from a sibling, when there is one; returns the sibling. A failure part-way leaves
    the job as if there were none (the items linked are checked by digest, its work directory is emptied)."""
    sibling = find_sibling(jobs, job, config, busy)
    if sibling is None:
        return None
    try:
        link_inputs(sibling, job)
        seed_workdir(sibling, job)
    except OSError:
        shutil.rmtree(job.workdir, ignore_errors=True)
        job.workdir.mkdir(parents=True, exist_ok=True)
        job.scan_items()
        return None
    return sibling
