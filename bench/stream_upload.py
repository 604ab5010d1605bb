"""Streaming a long shot to the daemon (issue 14): how much sooner the first result frame and the whole job come
back when the job starts before its upload is complete (`job.start` with `stream`) than when it starts after.

A real daemon on loopback (tests/daemon_fixtures.py starts `vinpaint serve` with its own store), a 27-frame
synthetic shot cut into 3 windows (`tiny`, 30 steps per window, propagation off so every window trains), and the
upload held to one item per --delay seconds, as over a slow link. Seconds are wall time from the submit; asserts
nothing.

    python bench/stream_upload.py [--delay 0.3] [--runs 2]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from daemon_fixtures import DaemonProcess, synthetic_clip  # noqa: E402  (tests/daemon_fixtures.py)

from vinpaint.host_bridge.client import Client  # noqa: E402

SHOT = {"loss.perceptual": 0.0, "propagation.enabled": False, "shot.window": 11, "shot.overlap": 3,
        "train.max_steps": 30}


def one_run(stream: bool, delay: float) -> dict:
    frames, masks = synthetic_clip(t=27, h=48, w=64, channels=3, seed=1)
    marks: dict = {}
    with tempfile.TemporaryDirectory() as tmp, DaemonProcess(Path(tmp) / "store") as daemon:
        def watch() -> None:
            with Client(daemon.address) as watcher:
                while not watcher.list_jobs():
                    time.sleep(0.05)
                job = watcher.list_jobs()[0]["job"]
                while True:
                    status = watcher.status(job)
                    if "first" not in marks and status["frames_done"] > 0:
                        marks["first"] = time.monotonic() - start
                    if status["state"] in ("done", "failed"):
                        marks["done"], marks["state"] = time.monotonic() - start, status["state"]
                        return
                    time.sleep(0.05)

        start = time.monotonic()
        thread = threading.Thread(target=watch)
        thread.start()
        with Client(daemon.address) as client:
            client.submit(frames, masks, preset="tiny", overrides=SHOT, stream=stream,
                          on_upload=lambda n, total: time.sleep(delay))
            marks["uploaded"] = time.monotonic() - start
        thread.join()
    return marks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=0.3, help="seconds held after each uploaded item")
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    print("| run | start | upload s | first frame s | done s | state |")
    print("|---|---|---|---|---|---|")
    for run in range(1, args.runs + 1):
        for stream in (True, False):
            m = one_run(stream, args.delay)
            print(f"| {run} | {'streaming' if stream else 'after the upload'} | {m['uploaded']:.1f} | "
                  f"{m.get('first', float('nan')):.1f} | {m['done']:.1f} | {m['state']} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
