"""A daemon's store under faults found by a hostile review (2026-12-01): a store inside another, finished results
removed, a damaged checkpoint, hand-edited records, a pipe among the uploads, and a frame over the message limit. A real `vinpaint serve`, real
msgpack over real ZeroMQ; each test failed before the change it guards."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from daemon_fixtures import DaemonProcess, synthetic_clip, wait_for
from vinpaint.files import temp_sibling
from vinpaint.host_bridge.client import Client, RequestError
from vinpaint.host_bridge.store import STORE_MARK, JobRecord, JobStore

SEED = 3
TRAINED = {"loss.perceptual": 0.0, "propagation.enabled": False}


def serve(store: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vinpaint", "serve", "--bind", "tcp://127.0.0.1:*", "--store",
                           str(store), "--device", "cpu"], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def test_a_store_inside_another_stores_trash_is_refused_and_the_trash_keeps_what_is_not_a_deleted_job(tmp_path):
    """Before: a second daemon's store in the first's trash/ was accepted (it was empty), and the first daemon's
    next start emptied its trash, the second daemon's finished jobs with it."""
    outer = JobStore(tmp_path / "s1")
    outer.open()
    (tmp_path / "s1" / STORE_MARK).write_text('{"store_format": 1}')
    done = serve(tmp_path / "s1" / "trash" / "s2")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "the store " + str(tmp_path / "s1" / "trash" / "s2") + " lies inside the store " + \
        str(tmp_path / "s1") + " of another daemon" in done.stderr
    assert not (tmp_path / "s1" / "trash" / "s2").exists()
    # a folder there that delete() did not make stays; a deleted job goes
    (tmp_path / "s1" / "trash" / "someone").mkdir()
    (tmp_path / "s1" / "trash" / "someone" / "keep.txt").write_text("mine\n")
    (tmp_path / "s1" / "trash" / ("d" * 32 + ".123")).mkdir()
    outer.empty_trash()
    assert sorted(os.listdir(tmp_path / "s1" / "trash")) == ["someone"]


def test_a_finished_job_whose_result_was_removed_writes_it_again_when_started(tmp_path):
    """Before: job.start answered 'done' and the fetch kept failing, for good: the advice ("start the job again")
    did nothing, and submitting again landed on the same job."""
    frames, masks = synthetic_clip(t=6, h=32, w=32, channels=3, seed=2)
    with DaemonProcess(tmp_path / "store") as d, Client(d.address) as c:
        job = c.submit(frames, masks, preset="tiny", seed=SEED, overrides={"train.max_steps": 2, **TRAINED})
        c.wait(job)
        first = c.results(job, 6)
        (d.store / "jobs" / job / "results" / "00003.bin").unlink()
        assert c.start(job)["state"] in ("queued", "training")
        c.wait(job)
        np.testing.assert_array_equal(c.results(job, 6), first)
        assert "result 3 is missing: queued to write the results again" in \
            (d.store / "jobs" / job / "log").read_text()


def test_inputs_removed_by_hand_from_a_finished_job_are_sent_again_by_the_same_submit(tmp_path):
    """A finished job that lost a result and an input frame: job.start names the missing frame, and submitting the
    clip again sends it and writes the results again. Before (a daemon hunt, 2026-12-03): the daemon still counted
    the frame as held, so nothing was sent; once it noticed, the upload was refused ("takes no more uploads"), and
    the fetch's advice to start the job again did nothing. Only job.delete recovered it."""
    frames, masks = synthetic_clip(t=6, h=32, w=32, channels=3, seed=2)
    settings = dict(preset="tiny", seed=SEED, overrides={"train.max_steps": 2, **TRAINED})
    with DaemonProcess(tmp_path / "store") as d, Client(d.address) as c:
        job = c.submit(frames, masks, **settings)
        c.wait(job)
        first = c.results(job, 6)
        folder = d.store / "jobs" / job
        (folder / "results" / "00003.bin").unlink()
        (folder / "inputs" / "frames" / "00002.bin").unlink()
        with pytest.raises(RequestError) as refused:
            c.start(job)
        assert refused.value.code == "incomplete" and "1 frame(s) and 0 mask(s) are not uploaded" in \
            str(refused.value), refused.value
        assert c.submit(frames, masks, **settings) == job
        c.wait(job)
        np.testing.assert_array_equal(c.results(job, 6), first)
        assert (folder / "inputs" / "frames" / "00002.bin").is_file()


def test_an_input_sent_again_that_is_not_the_clips_leaves_a_finished_job_as_it_was(tmp_path):
    """A finished job that lost a result and an input, sent another frame in its place: job.start answers
    hash_mismatch before anything moves (a review, 2026-12-03: the job was first made `cancelled` in memory and its
    results marker removed, so its frames were refused and the next daemon start trained it with the wrong frame)."""
    frames, masks = synthetic_clip(t=6, h=32, w=32, channels=3, seed=2)
    settings = dict(preset="tiny", seed=SEED, overrides={"train.max_steps": 2, **TRAINED})
    with DaemonProcess(tmp_path / "store") as d, Client(d.address) as c:
        job = c.submit(frames, masks, **settings)
        c.wait(job)
        folder = d.store / "jobs" / job
        (folder / "results" / "00003.bin").unlink()
        (folder / "inputs" / "frames" / "00002.bin").unlink()
        c.open_job(frames=6, width=32, height=32, channels=3, dtype="u1", mask_dtype="u1",
                   content_hash=json.loads((folder / "job.json").read_text())["content_hash"],
                   settings={"preset": "tiny", "seed": SEED, "overrides": {"train.max_steps": 2, **TRAINED}})
        assert c.upload(job, "frame", 2, 255 - frames[2])["stored"]
        with pytest.raises(RequestError) as refused:
            c.start(job)
        assert refused.value.code == "hash_mismatch", refused.value
        assert c.status(job)["state"] == "done"
        assert c.fetch(job, 0).shape == (32, 32, 3)  # the frames it has are still served


def test_a_damaged_checkpoint_is_set_aside_and_the_job_trains_again(tmp_path):
    """Before: the job failed for good with the CLI's advice ("delete it or use --restart"), which a daemon user
    cannot follow; a daemon job's work directory is its own."""
    frames, masks = synthetic_clip(t=6, h=32, w=32, channels=3, seed=2)
    with DaemonProcess(tmp_path / "store") as d, Client(d.address) as c:
        job = c.submit(frames, masks, preset="tiny", seed=SEED, overrides={"train.max_steps": 400, **TRAINED})
        wait_for(c, job, lambda s: s["state"] == "training" and s["phase"] == "train" and s["step"] >= 3)
        c.cancel(job)
        log = d.store / "jobs" / job / "log"
        wait_for(c, job, lambda s: s["state"] == "cancelled" and "training stopped" in log.read_text())  # exited
        work = d.store / "jobs" / job / "work"
        assert (work / "checkpoint.pt").is_file(), sorted(p.name for p in work.rglob("*"))
        (work / "checkpoint.pt").write_bytes(b"not a checkpoint")
        left = temp_sibling(work / "checkpoint.pt")  # what a trainer killed while saving one leaves
        c.start(job)
        c.wait(job)  # done, not failed
        aside = list(work.glob("checkpoint.pt.damaged.*"))
        assert len(aside) == 1 and aside[0].read_bytes() == b"not a checkpoint"
        assert (work / "checkpoint.pt").is_file()  # the new training's own
        assert not left.exists()  # removed by the next trainer of the job (before, 2026-12-02: kept for ever)


def new_store(store: Path) -> Path:
    (store / "jobs").mkdir(parents=True)
    (store / STORE_MARK).write_text('{"store_format": 1}')
    return store


def record(job: str, **fields) -> dict:
    data = JobRecord(job=job, content_hash="0" * 64, frames=3, width=8, height=8, channels=3, dtype="u1",
                     mask_dtype="u1", settings={}, config={}, state="queued", queued_at=1.0).to_dict()
    return {**data, **fields}


WRONG_TYPES = [("dtype", "f8"), ("frames", "6"), ("queued_at", "x"), ("created", None), ("references", ["a"]),
               ("progress", {"progress": None})]
OUT_OF_RANGE = [("state", "paused"), ("name", "n" * 300), ("frames", 10**9), ("channels", 2),
                ("content_hash", "not a digest"), ("references", [2, 1]), ("references", [3]),
                ("progress", {"phase": "p" * 65}), ("progress", {"step": 1e30}), ("progress", {"total": 2**63})]


@pytest.mark.parametrize("fields,says", [(WRONG_TYPES, "of the wrong type"), (OUT_OF_RANGE, "out of range")],
                         ids=["wrong type", "out of range"])
def test_records_with_a_field_of_the_wrong_type_or_out_of_range_are_skipped_and_the_daemon_serves(tmp_path, fields,
                                                                                                   says):
    """Before: a wrong dtype or frame count stopped the daemon at start with a traceback; a text queued_at made
    every housekeeping pass fail (nothing trained), and a null created failed every job.list. Out of range (a
    hunt found them): a state "paused" or a 300-character name in one job.json broke job.list for the whole store
    (the reply failed its own check), and frames 10**9 held the start for minutes, growing to 18 GB; references
    out of order or past the last frame, a phase over 64 characters or a step past 64 bits, job.status."""
    store = new_store(tmp_path / "store")
    good = "f" * 32
    bad = {f"{i + 1:x}" * 32: (field, value) for i, (field, value) in enumerate(fields)}
    for job, given in ((good, {}), *((job, {field: value}) for job, (field, value) in bad.items())):
        (store / "jobs" / job).mkdir(parents=True)
        (store / "jobs" / job / "job.json").write_text(json.dumps(record(job, **given)))
    with DaemonProcess(store) as d, Client(d.address) as c:
        assert [j["job"] for j in c.list_jobs()] == [good]
        assert c.status(good)["state"] in ("queued", "training", "failed")  # served (it has no uploads to train on)
        for job, (field, value) in bad.items():
            named = field if field != "progress" else f"progress.{next(iter(value))}"
            assert f"skipped job folder {job}: unreadable job.json (its field {named} has a value {says})" in d.log()


def test_a_pipe_among_a_jobs_uploads_does_not_hang_the_start(tmp_path):
    store = new_store(tmp_path / "store")
    job = "c" * 32
    (store / "jobs" / job / "inputs" / "frames").mkdir(parents=True)
    (store / "jobs" / job / "job.json").write_text(json.dumps(record(job, state="uploading")))
    os.mkfifo(store / "jobs" / job / "inputs" / "frames" / "00002.sha256")
    with DaemonProcess(store) as d, Client(d.address) as c:
        assert c.status(job)["missing_frames"] == 3


def test_a_frame_over_the_daemons_message_limit_is_refused_when_the_job_opens(tmp_path):
    """Before: job.open accepted it, the upload was dropped by ZeroMQ's size limit, and `submit` said nothing for
    minutes, then "is vinpaint serve running there?"."""
    from vinpaint.host_bridge.client import RequestError

    frames, masks = synthetic_clip(t=6, h=640, w=640, channels=3, seed=2)  # 1.2 MB a frame
    with DaemonProcess(tmp_path / "store", "--max-message-mb", "1") as d, Client(d.address) as c:
        with pytest.raises(RequestError) as info:
            c.submit(frames, masks, preset="tiny")
        assert info.value.code == "too_large"  # at job.open, before any upload
        assert "one frame is 1.2 MiB, more than the 1 MiB this daemon takes in one message (its --max-message-mb)" \
            in str(info.value)
        assert c.list_jobs() == []


def test_a_client_key_without_the_servers_key_is_one_sentence(tmp_path, capsys):
    """Before: `--client-key` alone was ignored without a word, and the user waited through three timeouts for
    "is vinpaint serve running there?"."""
    from vinpaint.cli.main import main
    from vinpaint.media.writers import write_png_sequence, write_video

    frames, masks = synthetic_clip(t=4, h=32, w=32, channels=3, seed=2)
    write_video(tmp_path / "clip.mkv", frames, 24)
    write_png_sequence(tmp_path / "masks", np.where(masks, 255, 0).astype(np.uint8))
    (tmp_path / "client.key_secret").write_text("not read\n")
    code = main(["submit", str(tmp_path / "clip.mkv"), "--mask", str(tmp_path / "masks"), "-o",
                 str(tmp_path / "o.mkv"), "--server", "tcp://127.0.0.1:9", "--client-key",
                 str(tmp_path / "client.key_secret")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    assert "needs --server-key (the daemon's public key): a client key alone is not used" in err


def test_a_key_file_without_a_curve_key_is_one_sentence_naming_it(tmp_path):
    """Before: a key file whose public-key line was not a CurveZMQ key was taken, and the connection failed with
    ZeroMQ's "Invalid argument"."""
    from vinpaint.host_bridge.auth import AuthError, apply_client, make_keys

    made = make_keys(tmp_path / "keys")
    bad = tmp_path / "server.key"
    bad.write_text('metadata\ncurve\n    public-key = "abc"\n')
    import zmq

    with zmq.Context() as context, context.socket(zmq.DEALER) as socket:
        with pytest.raises(AuthError, match=r"^the key \S+server\.key holds no CurveZMQ key \(40 Z85 characters\)"):
            apply_client(socket, bad, made["client.key_secret"])
        apply_client(socket, made["server.key"], made["client.key_secret"])  # a real pair is taken


@pytest.mark.parametrize("kind", ["fifo", "device", "folder", "huge"])
def test_a_key_that_is_not_a_certificate_file_is_refused_before_it_is_read(tmp_path, kind):
    """Before: `vinpaint submit --server-key /dev/zero` grew to 12.8 GB in 23 s and ignored SIGTERM; a named pipe
    hung it for ever (pyzmq reads a key file whole, line by line)."""
    import threading

    import zmq

    from vinpaint.host_bridge.auth import AuthError, apply_client, make_keys

    made = make_keys(tmp_path / "keys")
    if kind == "fifo":
        bad = tmp_path / "fifo.key"
        os.mkfifo(bad)
    elif kind == "device":
        bad = Path("/dev/zero")
    elif kind == "folder":
        bad = tmp_path / "keys"
    else:
        bad = tmp_path / "huge.key"
        bad.write_bytes(b"#" * (1 << 20))
    outcome: list = []

    def attempt() -> None:
        with zmq.Context() as context, context.socket(zmq.DEALER) as socket:
            try:
                apply_client(socket, bad, made["client.key_secret"])
                outcome.append("taken")
            except AuthError as exc:
                outcome.append(str(exc))

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(20)
    if worker.is_alive() and kind == "fifo":
        with open(bad, "wb"):  # lets the hung reader see the end of the pipe, so the test process can exit
            pass
    assert outcome, f"reading the key {bad} hung"
    assert outcome[0].startswith(f"the key {bad} "), outcome


def test_named_pipes_put_in_a_jobs_folder_do_not_hold_the_daemon(tmp_path):
    """Before (a hunt found it): a named pipe in place of a job's result, history or log froze the whole daemon
    (opening a pipe waits for its other end): no request was answered after, and SIGTERM did not stop it."""
    import signal
    import time

    from vinpaint.host_bridge.client import RequestError

    frames, masks = synthetic_clip(t=6, h=32, w=32, channels=3, seed=2)
    with DaemonProcess(tmp_path / "store") as d, Client(d.address) as c:
        job = c.submit(frames, masks, preset="tiny", seed=SEED, overrides={"train.max_steps": 2, **TRAINED})
        c.wait(job)
        folder = d.store / "jobs" / job
        for name in ("results/00001.bin", "results/history.f4", "log"):
            (folder / name).unlink()
            os.mkfifo(folder / name)
        for ask in (lambda: c.fetch(job, 1), lambda: c.history(job)):  # answered, without what is not a file
            with pytest.raises(RequestError):
                ask()
        c.cancel(job)  # logs a line
        assert c.hello()["features"]  # still answering
        started = time.monotonic()
        d.proc.send_signal(signal.SIGTERM)
        assert d.proc.wait(60) == 0 and time.monotonic() - started < 60


def test_named_pipes_at_the_daemons_own_records_do_not_hold_its_start(tmp_path):
    """daemon.json (read at every start since the removed-lock check) and a job's worker.pid (read when a killed
    daemon's trainer may still hold the job's lock) as named pipes: the start waited for ever (a review found it)."""
    store = new_store(tmp_path / "store")
    os.mkfifo(store / "daemon.json")
    job = "b" * 32
    (store / "jobs" / job).mkdir(parents=True)
    (store / "jobs" / job / "job.json").write_text(json.dumps(record(job, state="training")))
    (store / "jobs" / job / "worker.lock").write_text("")
    os.mkfifo(store / "jobs" / job / "worker.pid")
    holder = subprocess.Popen(["flock", str(store / "jobs" / job / "worker.lock"), "sleep", "60"])
    try:
        with DaemonProcess(store) as d, Client(d.address) as c:  # DaemonProcess gives up after its start timeout
            assert c.hello()["features"]
    finally:
        holder.kill()
        holder.wait()
