"""The daemon's request handlers without a socket: encoded requests in, encoded replies out, over a real job store
and trainer pool. Each handler gets its request's context as an argument, so replies answer the right request."""
from __future__ import annotations

import numpy as np
import pytest

from vinpaint.engine.devices import device_memory
from vinpaint.host_bridge.daemon_config import LimitsConfig
from vinpaint.host_bridge.handlers import Requests
from vinpaint.host_bridge.pool import TrainerPool, TrainerState
from vinpaint.host_bridge.store import JobStore
from vinpaint.protocol import codec
from vinpaint.protocol.content_hash import clip_hash, item_digest

T, H, W = 5, 32, 48


@pytest.fixture
def requests(tmp_path):
    store = JobStore(tmp_path / "store")
    store.open()
    failures: list[str] = []
    pool = TrainerPool(store, ("cpu",))
    pool.trainers[0].memory = device_memory("cpu")  # as Daemon.start finds it
    handler = Requests(store, pool, LimitsConfig(reserve_bytes=0), failures.append)
    handler.failures = failures
    return handler


def ask(requests: Requests, type_: str, id_: str, body: dict, arrays=()):
    return codec.decode_reply(requests.handle(codec.encode_request(type_, id_, body, arrays)))


def test_a_job_is_opened_uploaded_and_queued_without_a_socket(requests):
    hello = ask(requests, "hello", "h-1", {"client": "handler test"})
    assert (hello.type, hello.re, hello.status) == ("hello", "h-1", "ok")
    assert hello.body["devices"] == ["cpu"] and "tiny" in hello.body["presets"]

    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (H, W, 3), dtype=np.uint8) for _ in range(T)]
    masks = [np.zeros((H, W), np.uint8) for _ in range(T)]
    for m in masks:
        m[8:20, 10:30] = 255
    content = clip_hash(T, H, W, 3, "u1", "u1", [item_digest(f) for f in frames], [item_digest(m) for m in masks])
    opened = ask(requests, "job.open", "o-1", {
        "frames": T, "width": W, "height": H, "channels": 3, "dtype": "u1", "mask_dtype": "u1",
        "content_hash": content, "settings": {"preset": "tiny", "variant": "dip-vid", "seed": 0}})
    assert (opened.re, opened.status, opened.body["created"]) == ("o-1", "ok", True)
    job = opened.body["job"]

    early = ask(requests, "job.start", "s-0", {"job": job})
    assert (early.re, early.status, early.error["code"]) == ("s-0", "error", "incomplete")
    for i in range(T):
        for kind, item in (("frame", frames[i]), ("mask", masks[i][..., None])):
            up = ask(requests, "job.upload", f"u-{kind}-{i}", {"job": job, "kind": kind, "index": i,
                                                             "digest": item_digest(item).hex()}, (item,))
            assert (up.re, up.status, up.body["stored"]) == (f"u-{kind}-{i}", "ok", True)
    started = ask(requests, "job.start", "s-1", {"job": job})
    assert (started.status, started.body["state"], started.body["position"]) == ("ok", "queued", 0)
    status = ask(requests, "job.status", "st-1", {"job": job})
    assert (status.re, status.body["state"], status.body["missing_frames"]) == ("st-1", "queued", 0)
    assert requests.pool.trainers[0].state is TrainerState.IDLE  # handlers queue; only the pool starts training
    cancelled = ask(requests, "job.cancel", "c-1", {"job": job})
    assert cancelled.body["state"] == "cancelled"
    assert requests.failures == []


def test_a_refused_request_names_its_request_and_field(requests):
    bad = ask(requests, "job.open", "o-9", {
        "frames": T, "width": W, "height": H, "channels": 3, "dtype": "u1", "mask_dtype": "u1",
        "content_hash": "0" * 64, "settings": {"preset": "tiny", "overrides": {"mask.dilation": 100000}}})
    assert (bad.type, bad.re, bad.status) == ("job.open", "o-9", "error")
    assert bad.error["code"] == "bad_request" and bad.error["field"] == "body.settings.overrides.mask.dilation"
    missing = ask(requests, "job.status", "st-9", {"job": "f" * 32})
    assert (missing.re, missing.error["code"]) == ("st-9", "not_found")
    garbage = codec.decode_reply(requests.handle([b"\x00not msgpack"]))
    assert garbage.status == "error" and garbage.error["code"] == "malformed"
    assert requests.failures == []


def _open_body(frames: int, content: str, overrides: dict | None = None) -> dict:
    return {"frames": frames, "width": 56, "height": 56, "channels": 3, "dtype": "u1", "mask_dtype": "u1",
            "content_hash": content, "settings": {"preset": "fast", "overrides": overrides or {}}}


def test_a_shot_of_thousands_of_windows_is_planned_by_window_length(requests):
    """Each window length is planned once (a hostile job.open of 9,999 two-frame windows held the daemon's only
    thread for 10-20 s): the sum is the same as planning the windows one by one."""
    from vinpaint.engine import make_config
    from vinpaint.host_bridge import job_settings

    for frames, window, overlap in ((10000, 2, 1), (100, 7, 3), (12, 40, 8)):
        config = make_config("fast", **{"shot.window": window, "shot.overlap": overlap})
        one_by_one = sum(config.planned_steps(len(w)) for w in job_settings.windows(config, frames))
        assert job_settings.planned_steps(config, frames) == one_by_one
    opened = ask(requests, "job.open", "o-w", _open_body(10000, "9" * 64, {"shot.window": 21, "shot.overlap": 20}))
    assert opened.status == "ok" and opened.body["windows"] == 9980, opened.error


def test_job_open_fits_the_window_to_the_plates_size(requests):
    """The daemon fixes shot.window from the plate's size at job.open (shot.window_megapixels), as the CLI does,
    so the windows it reports, trains and saves agree: 70 frames of 56x56 at 0.1 Mpx a window are windows of 31
    frames (0.1e6 / 3136), three of them; without the bound, fast's 100 hold the clip in one."""
    fitted = ask(requests, "job.open", "o-f", _open_body(70, "8" * 64, {"shot.window_megapixels": 0.1}))
    assert fitted.status == "ok" and fitted.body["windows"] == 3, fitted.error
    whole = ask(requests, "job.open", "o-g", _open_body(70, "7" * 64))
    assert whole.status == "ok" and whole.body["windows"] == 1, whole.error
    assert requests.store.jobs[fitted.body["job"]].record.config["shot"]["window"] == 31  # what the trainer reads


def test_a_delete_that_cannot_move_the_folder_keeps_the_job(requests, tmp_path):
    opened = ask(requests, "job.open", "o-d", _open_body(5, "a" * 64))
    job = opened.body["job"]
    trash = requests.store.trash_dir
    trash.rmdir()
    trash.write_text("not a folder")  # the move into the trash fails, as on an unwritable store
    refused = ask(requests, "job.delete", "d-1", {"job": job})
    assert refused.status == "error" and refused.error["code"] == "internal"
    assert ask(requests, "job.status", "s-1", {"job": job}).status == "ok"  # still listed and served
    trash.unlink()
    trash.mkdir()
    assert ask(requests, "job.delete", "d-2", {"job": job}).body["deleted"] is True
    assert ask(requests, "job.status", "s-2", {"job": job}).error["code"] == "not_found"


def test_a_store_removed_under_the_daemon_is_said_and_never_rebuilt(tmp_path):
    import shutil

    from vinpaint.host_bridge.store import mark_store_folder

    root = tmp_path / "store"
    root.mkdir()
    mark_store_folder(root)  # as the daemon does before it opens the store
    store = JobStore(root)
    store.open()
    pool = TrainerPool(store, ("cpu",))
    pool.trainers[0].memory = device_memory("cpu")
    handler = Requests(store, pool, LimitsConfig(reserve_bytes=0), lambda what: None)
    assert ask(handler, "job.open", "o-1", _open_body(5, "b" * 64)).status == "ok"
    shutil.rmtree(root)
    for type_, body in (("job.open", _open_body(5, "c" * 64)), ("job.list", {})):
        reply = ask(handler, type_, "r", body)
        assert reply.status == "error" and "was removed or replaced while it ran" in reply.error["message"]
    assert not root.exists()  # nothing written into the removed folder's place
    assert ask(handler, "hello", "h", {"client": "t"}).status == "ok"  # the daemon still answers


def test_a_record_that_cannot_be_written_is_retried_after_the_flush_period_and_logged_once(requests, caplog):
    opened = ask(requests, "job.open", "o-r", _open_body(5, "d" * 64))
    job = requests.store.get(opened.body["job"])
    (job.root / "job.json").unlink()
    (job.root / "job.json").mkdir()  # the record cannot be replaced: as a full disk, every write fails
    pool = requests.pool
    with caplog.at_level("ERROR"):
        pool.save(job)
        for _ in range(50):
            job.dirty_progress = True
            pool.flush_progress()  # the daemon's loop, ten times a second
    said = [r for r in caplog.records if "cannot write the record" in r.getMessage()]
    assert len(said) == 1 and job.dirty_progress


def test_windows_too_short_for_the_batches_are_refused_before_the_upload(requests):
    """`vinpaint inpaint` refused this at once; `submit` uploaded the whole clip, trained, and then failed."""
    body = _open_body(16, "e" * 64, {"shot.window": 6, "shot.overlap": 2})
    body["settings"]["preset"] = "tiny"
    refused = ask(requests, "job.open", "o-s", body)
    assert refused.status == "error" and refused.error["code"] == "bad_request"
    assert "shot.window is 6 frames but batches of" in refused.error["message"]
    assert requests.store.jobs == {}


def test_a_list_setting_travels_as_its_json_text(requests):
    """`submit --set train.intervals=[1]` was refused in protocol terms ("must be an int, float, bool or str, not
    array"); the client now sends a list as its JSON text and the daemon reads it back."""
    from vinpaint.host_bridge import job_settings

    opened = ask(requests, "job.open", "o-l", _open_body(16, "f" * 64, {"train.intervals": "[1]"}))
    assert opened.status == "ok", opened.error
    record = requests.store.get(opened.body["job"]).record
    assert job_settings.resolve(record.settings, {}).train.intervals in ([1], (1,))
    refused = ask(requests, "job.open", "o-m", _open_body(16, "0" * 64, {"train.intervals": "[1"}))
    assert refused.status == "error" and "takes a list, sent as its JSON text" in refused.error["message"]


def test_a_deleted_job_on_a_ray_daemon_is_kept_from_its_id_while_its_tasks_stop(tmp_path, monkeypatch):
    """Ray's workers are no children of the killed training process and stop a moment after it: for that time a
    job.open of the id waits, and what they wrote under jobs/<id>/ is removed afterwards."""
    import subprocess
    import time

    from vinpaint.host_bridge import pool as pool_module

    monkeypatch.setattr(pool_module, "RAY_SETTLE_S", 0.5)
    store = JobStore(tmp_path / "store")
    store.open()
    pool = TrainerPool(store, ("cpu",), ray="ray://cluster:10001")
    pool.trainers[0].memory = device_memory("cpu")
    requests = Requests(store, pool, LimitsConfig(reserve_bytes=0), lambda what: None)
    body = _open_body(5, "b" * 64)
    job = ask(requests, "job.open", "o-1", body).body["job"]
    trainer = pool.trainers[0]  # as spawn() leaves it: a real process, in its own session
    trainer.state, trainer.job_id = TrainerState.TRAINING, job
    trainer.proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    assert ask(requests, "job.delete", "d-1", {"job": job}).body["deleted"] is True
    assert trainer.proc is None and trainer.state is TrainerState.IDLE  # killed, waited for, reaped
    (store.jobs_dir / job / "work").mkdir(parents=True)  # a window task's late write
    again = ask(requests, "job.open", "o-2", body)
    assert again.status == "error" and again.error["code"] == "busy", again
    time.sleep(0.6)
    pool.reap()
    assert not (store.jobs_dir / job).exists()
    assert ask(requests, "job.open", "o-3", body).body["created"] is True
