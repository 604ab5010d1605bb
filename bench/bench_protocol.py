"""Numbers for the daemon's closing note: status latency while a job trains, 1080p float upload and fetch throughput.

    python bench/bench_protocol.py [--frames 8] [--status 500] [--keep-store DIR]

Starts a real `vinpaint serve` on a loopback port with a temporary store, like the tests do, and prints the
numbers; nothing here asserts a speed.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from vinpaint.host_bridge.client import Client
from vinpaint.protocol import codec
from vinpaint.protocol.content_hash import clip_hash, item_digest


def start_daemon(store: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "vinpaint", "serve", "--bind", "tcp://127.0.0.1:*", "--store",
                             str(store), "--device", "cpu", "--quiet"], stdout=subprocess.PIPE, text=True)
    for line in proc.stdout:  # type: ignore[union-attr]
        m = re.search(r"listening on (\S+)", line)
        if m:
            return proc, m.group(1)
    raise RuntimeError("the daemon did not start")


def percentiles(values: list[float]) -> str:
    ms = np.asarray(values) * 1000
    return (f"median {np.median(ms):.2f} ms, p90 {np.percentile(ms, 90):.2f} ms, p99 {np.percentile(ms, 99):.2f} ms,"
            f" max {ms.max():.2f} ms (n={len(ms)})")


def bench_codec(frame: np.ndarray, reps: int = 20) -> None:
    t0 = time.perf_counter()
    for _ in range(reps):
        frames = codec.encode_request("job.upload", "b", {"job": "0" * 32, "kind": "frame", "index": 0}, [frame])
        codec.decode_request(frames).array(0)
    dt = (time.perf_counter() - t0) / reps
    print(f"codec encode+decode of one {frame.shape} {frame.dtype} frame ({frame.nbytes / 1e6:.1f} MB): "
          f"{dt * 1000:.2f} ms (zero-copy: {frame.nbytes / dt / 1e9:.1f} GB/s)")


def bench_upload(client: Client, count: int, channels: int) -> None:
    h, w = 1080, 1920
    rng = np.random.default_rng(0)
    frames = rng.random((count, h, w, channels), dtype=np.float32)
    masks = np.zeros((count, h, w, 1), np.float32)
    masks[:, 400:600, 800:1000] = 1.0
    t0 = time.perf_counter()
    chash = clip_hash(count, h, w, channels, "f4", "f4", [item_digest(f) for f in frames],
                      [item_digest(m) for m in masks])
    hash_s = time.perf_counter() - t0
    settings = {"preset": "tiny", "variant": "dip"}
    job = client.open_job(frames=count, width=w, height=h, channels=channels, dtype="f4", mask_dtype="f4",
                          content_hash=chash, settings=settings)["job"]
    times = []
    for i in range(count):
        t0 = time.perf_counter()
        client.upload(job, "frame", i, frames[i])
        times.append(time.perf_counter() - t0)
    nbytes = frames[0].nbytes
    total = sum(times)
    print(f"upload of {count} 1080p f4 frames with {channels} channels ({nbytes / 1e6:.1f} MB each) over loopback: "
          f"{count * nbytes / total / 1e6:.0f} MB/s = {count / total:.1f} frames/s "
          f"(per frame {percentiles(times)}); includes the client's digest, the daemon's SHA-256, NaN check and "
          f"fsync'd atomic write. Client-side content hash of the clip: {hash_s:.2f} s")
    client.delete(job)


def bench_fetch(client: Client, count: int) -> None:
    """Train a few steps on a 1080p float clip (tiny working size), then time fetching every finished frame."""
    h, w = 1080, 1920
    rng = np.random.default_rng(1)
    frames = rng.random((count, h, w, 4), dtype=np.float32)
    masks = np.zeros((count, h, w), bool)
    masks[:, 400:600, 800:1000] = True
    job = client.submit(frames, masks, preset="tiny", variant="dip-vid",
                        overrides={"train.max_steps": 2, "loss.perceptual": 0.0})
    client.wait(job, poll_s=0.2)
    times = []
    for i in range(count):
        t0 = time.perf_counter()
        got = client.fetch(job, i)
        times.append(time.perf_counter() - t0)
    assert got.shape == (h, w, 4) and got.dtype == np.float32
    total = sum(times)
    print(f"fetch of {count} finished 1080p f4 RGBA frames ({frames[0].nbytes / 1e6:.1f} MB each) over loopback: "
          f"{count * frames[0].nbytes / total / 1e6:.0f} MB/s = {count / total:.1f} frames/s "
          f"(per frame {percentiles(times)}); includes the daemon's read from its store")
    client.delete(job)


def bench_status_while_training(client: Client, count: int) -> None:
    t, h, w = 12, 64, 64
    yy, xx = np.mgrid[0:h, 0:w]
    frames = np.stack([((np.sin((xx + 2 * i) / 7.0) * 0.4 + 0.5)[..., None].repeat(3, -1) * 255).astype(np.uint8)
                       for i in range(t)])
    masks = np.zeros((t, h, w), bool)
    masks[:, 20:34, 20:34] = True
    job = client.submit(frames, masks, preset="tiny", overrides={"train.max_steps": 100000, "train.epochs": 50.0})
    while client.status(job)["phase"] != "train":
        time.sleep(0.05)
    times = []
    for _ in range(count):
        t0 = time.perf_counter()
        status = client.status(job)
        times.append(time.perf_counter() - t0)
    assert status["state"] == "training"
    print(f"job.status round trip while a job trains (step {status['step']}): {percentiles(times)}")
    client.delete(job)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=8, help="1080p float frames to upload")
    parser.add_argument("--status", type=int, default=500, help="status requests to time")
    parser.add_argument("--keep-store", type=Path, default=None)
    args = parser.parse_args()
    store = args.keep_store or Path(tempfile.mkdtemp(prefix="vinpaint-bench-"))
    bench_codec(np.zeros((1080, 1920, 4), np.float32))
    proc, address = start_daemon(store)
    try:
        with Client(address) as client:
            client.hello()
            bench_upload(client, args.frames, 3)
            bench_upload(client, args.frames, 4)
            bench_fetch(client, args.frames)
            bench_status_while_training(client, args.status)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
        if args.keep_store is None:
            shutil.rmtree(store, ignore_errors=True)
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
