"""A real `vinpaint serve` subprocess on a loopback port, and small clips for it (shared by the daemon tests)."""
from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

START_TIMEOUT_S = 120.0
"""Generous: the daemon imports torch, and CI machines are shared."""
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
if not DATA.is_dir():
    DATA = Path("/work/shared/data")


class DaemonProcess:
    """`python -m vinpaint serve` with its own store; `address` once it listens."""

    def __init__(self, store: Path, *args: str, bind: str = "tcp://127.0.0.1:*",
                 preexec_fn: Callable[[], None] | None = None) -> None:
        self.store, self.args, self.bind, self.preexec_fn = Path(store), args, bind, preexec_fn
        self.proc: subprocess.Popen | None = None
        self.address = ""
        self.lines: queue.Queue[str] = queue.Queue()
        self.stdout: list[str] = []
        self.stderr_path = self.store.parent / f"{self.store.name}.daemon.log"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "vinpaint", "serve", "--bind", self.bind, "--store", str(self.store),
                "--device", "cpu", *self.args]

    def start(self, expect_ready: bool = True) -> "DaemonProcess":
        env = dict(os.environ, OMP_NUM_THREADS="2", PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(self.command(), stdout=subprocess.PIPE, stderr=open(self.stderr_path, "ab"),
                                     stdin=subprocess.DEVNULL, text=True, env=env, preexec_fn=self.preexec_fn)
        threading.Thread(target=self._pump, daemon=True).start()
        if expect_ready:
            deadline = time.monotonic() + START_TIMEOUT_S
            while not self.address:
                try:
                    line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
                except queue.Empty:
                    self.kill()
                    raise RuntimeError(f"the daemon did not start: {self.log()}") from None
                if line is None:
                    raise RuntimeError(f"the daemon exited at start: {self.log()}")
                m = re.search(r"listening on (\S+)", line)
                if m:
                    self.address = m.group(1)
        return self

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.stdout.append(line)
            self.lines.put(line)
        self.lines.put(None)  # type: ignore[arg-type]

    def log(self) -> str:
        try:
            err = self.stderr_path.read_text()[-3000:]
        except OSError:
            err = ""
        return "".join(self.stdout)[-2000:] + err

    def wait(self, timeout: float = 120.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def terminate(self, timeout: float = 120.0) -> int:
        """SIGTERM and wait: the polite shutdown."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """SIGKILL: the daemon gets no chance to clean up."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)

    def __enter__(self) -> "DaemonProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        try:
            self.terminate(60)
        except subprocess.TimeoutExpired:
            self.kill()


def wait_for(client, job: str, pred, timeout_s: float = 300.0) -> dict:
    """job.status until `pred(status)`; fails on a failed job or after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = client.status(job)
        if pred(status):
            return status
        assert status["state"] != "failed", status.get("error")
        assert time.monotonic() < deadline, status
        time.sleep(0.1)


def worker_pid(store: Path, job: str) -> int | None:
    """The pid of the training process of a job (the daemon writes it beside the job's files)."""
    try:
        return int((Path(store) / "jobs" / job / "worker.pid").read_text())
    except (OSError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


BRIEF_TRAINING = {"train.max_steps": 2, "loss.perceptual": 0.0, "propagation.enabled": False}
"""Overrides for a job that trains in seconds on a CPU: a job's life, not its quality, is what the test needs."""


def synthetic_clip(t: int = 12, h: int = 64, w: int = 64, channels: int = 4, dtype=np.uint8,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A moving smooth pattern with a square hole per frame; alpha (if any) is a gradient to check pass-through."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    phase = rng.random(3).astype(np.float32) * 6.0
    frames = np.empty((t, h, w, channels), np.float32)
    for i in range(t):
        for c in range(3):
            frames[i, ..., c] = 0.5 + 0.4 * np.sin((xx + 2 * i) / (7 + 3 * c) + phase[c]) * np.cos(yy / 11.0)
        if channels == 4:
            frames[i, ..., 3] = (xx + yy) / (h + w)
    masks = np.zeros((t, h, w), bool)
    for i in range(t):
        masks[i, 20:34, 18 + i:32 + i] = True
    if dtype == np.uint8:
        return (frames * 255).round().astype(np.uint8), masks
    if dtype == np.uint16:
        return (frames * 65535).round().astype(np.uint16), masks
    return frames.astype(np.float32), masks


def real_clip(name: str = "tennis", t: int = 12, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """A crop of a real clip from the shared data folder (skips when the folder is absent)."""
    import cv2

    folder = DATA / name
    if not (folder / "frames").is_dir():
        pytest.skip(f"real clip {name} not available at {folder}")
    frames, masks = [], []
    for i in range(t):
        img = cv2.imread(str(folder / "frames" / f"{i:05d}.png"), cv2.IMREAD_COLOR)[..., ::-1]
        mask = cv2.imread(str(folder / "masks" / f"{i:05d}.png"), cv2.IMREAD_GRAYSCALE)
        frames.append(img)
        masks.append(mask > 127)
    frames_a, masks_a = np.stack(frames), np.stack(masks)
    ys, xs = np.nonzero(masks_a.any(0))
    cy, cx = int(ys.mean()), int(xs.mean())
    y0 = min(max(cy - size // 2, 0), frames_a.shape[1] - size)
    x0 = min(max(cx - size // 2, 0), frames_a.shape[2] - size)
    crop = np.ascontiguousarray(frames_a[:, y0:y0 + size, x0:x0 + size])
    mcrop = np.ascontiguousarray(masks_a[:, y0:y0 + size, x0:x0 + size])
    return crop, mcrop


def read_daemon_json(store: Path) -> dict:
    return json.loads((Path(store) / "daemon.json").read_text())
