"""Which finished job a new job of the same clip may start from (host_bridge/siblings.py): only one whose
training, carried on or composed again, gives the pixels of a fresh run with the new settings."""
from __future__ import annotations

import os

import numpy as np
import pytest

from vinpaint.engine.config import make_config
from vinpaint.host_bridge import job_settings, siblings
from vinpaint.host_bridge.store import JobRecord, JobStore
from vinpaint.protocol.content_hash import clip_hash, item_digest

T, H, W = 6, 16, 16
BASE = {"train.seed": 3, "loss.perceptual": 0.0, "train.fit_seconds": 0.0}


@pytest.fixture
def store(tmp_path):
    store = JobStore(tmp_path / "store")
    store.open()
    return store


def _clip(seed: int):
    rng = np.random.default_rng(seed)
    frames = [rng.integers(0, 255, (H, W, 3), np.uint8) for _ in range(T)]
    masks = [np.zeros((H, W, 1), np.uint8) for _ in range(T)]
    return frames, masks, clip_hash(T, H, W, 3, "u1", "u1", [item_digest(f) for f in frames],
                                    [item_digest(m) for m in masks])


def _job(store, config, clip, state="uploading", step=0, uploaded=True, work=b""):
    frames, masks, content = clip
    rec = JobRecord(job=job_settings.job_id(content, config), content_hash=content, frames=T, width=W, height=H,
                    channels=3, dtype="u1", mask_dtype="u1", settings={}, config=config.to_dict(), state=state)
    rec.progress.step = step
    job = store.create(rec)
    if uploaded:
        for i in range(T):
            job.store_item("frame", i, memoryview(frames[i]).cast("B"), item_digest(frames[i]))
            job.store_item("mask", i, memoryview(masks[i]).cast("B"), item_digest(masks[i]))
    if work:
        (job.workdir / "checkpoint.pt").write_bytes(work)
        (job.workdir / "log.txt").write_text("trained\n")
        (job.workdir / ".checkpoint.pt.x.partial").write_bytes(b"half")
    return job


def _picked(store, old, new, state="done", step=4, busy=False, clip=None, uploaded=True):
    clip = clip or _clip(0)
    sibling = _job(store, old, _clip(0), state, step, uploaded)
    job = _job(store, new, clip, uploaded=False)
    got = siblings.find_sibling(list(store.jobs.values()), job, new, busy=lambda job_id: busy)
    return got is sibling


def test_a_new_feather_or_steady_fill_takes_the_finished_job(store):
    old = make_config("tiny", "dip-vid-flow", **BASE)
    assert _picked(store, old, make_config("tiny", "dip-vid-flow", **BASE, **{"mask.feather": 3}))
    store.jobs.clear()
    assert _picked(store, old, make_config("tiny", "dip-vid-flow", **BASE, **{"propagation.steady_radius": 2}),
                   state="cancelled")


@pytest.mark.parametrize("variant", ["dip-vid-flow", "dip"])
def test_a_larger_step_budget_takes_a_finished_job_it_can_train_on_from(store, variant):
    old = make_config("tiny", variant, **BASE, **{"train.max_steps": 4})
    assert _picked(store, old, make_config("tiny", variant, **BASE, **{"train.max_steps": 8}))


@pytest.mark.parametrize("old,new,state,step,why", [
    ({"train.max_steps": 4}, {"train.max_steps": 8, "train.seed": 4}, "done", 4, "another seed trains otherwise"),
    ({"train.max_seconds": 5.0}, {"train.max_seconds": 9.0}, "done", 6, "dip: a time budget is split per frame"),
    ({"train.fit_seconds": 4.0}, {"train.fit_seconds": 12.0}, "done", 13, "the checkpoint keeps its fitted count"),
    ({}, {"train.max_steps": 100}, "cancelled", 0, "a cancelled job's step is not its checkpoint's"),
    ({"train.max_steps": 8}, {"train.max_steps": 4}, "done", 8, "a checkpoint past the new plan is refused"),
])
def test_a_budget_change_where_training_on_would_not_give_a_fresh_runs_pixels_starts_alone(store, old, new, state,
                                                                                            step, why):
    variant = "dip" if "dip:" in why else "dip-vid-flow"
    older = make_config("tiny", variant, **{**BASE, **old})
    newer = make_config("tiny", variant, **{**BASE, **new})
    assert not _picked(store, older, newer, state=state, step=step), why


def test_a_sibling_still_training_another_clip_or_a_partial_upload_is_not_taken(store):
    old = make_config("tiny", "dip-vid-flow", **BASE)
    new = make_config("tiny", "dip-vid-flow", **BASE, **{"mask.feather": 3})
    assert not _picked(store, old, new, busy=True)  # cancelled, but its training process is still stopping
    store.jobs.clear()
    assert not _picked(store, old, new, clip=_clip(1))
    store.jobs.clear()
    assert not _picked(store, old, new, uploaded=False)
    store.jobs.clear()
    assert not _picked(store, old, new, state="failed")


def test_seeding_links_the_uploads_and_binaries_copies_the_logs_and_leaves_temporary_files(store):
    clip = _clip(0)
    old = make_config("tiny", "dip-vid-flow", **BASE)
    new = make_config("tiny", "dip-vid-flow", **BASE, **{"mask.feather": 3})
    sibling = _job(store, old, clip, "done", 4, work=b"model")
    job = _job(store, new, clip, uploaded=False)
    assert siblings.seed(list(store.jobs.values()), job, new) is sibling
    assert job.complete_inputs() and job.hash_state() == "ok"
    assert os.path.samefile(job.item_path("frame", 0), sibling.item_path("frame", 0))
    assert os.path.samefile(job.workdir / "checkpoint.pt", sibling.workdir / "checkpoint.pt")
    assert not os.path.samefile(job.workdir / "log.txt", sibling.workdir / "log.txt")  # appended to: a copy
    assert not (job.workdir / ".checkpoint.pt.x.partial").exists()
