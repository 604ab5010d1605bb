"""How long the OFX node's Train takes to read and upload a clip: 100 frames of 1080p by default.

    python bench/bench_plugin_upload.py [--frames 100] [--size 1920x1080] [--depth float|short|byte]
                                        [--repeat 1] [--json out.json]

Builds the plugin and the OFX host harness (build/plugin-bench), starts a real `vinpaint serve` on a free loopback
port with a temporary store, and presses Train in the harness on a procedural clip served at the given depth
(Nuke hands plugins float images only). Train reads every frame through the host (pack to the wire layout, SHA-256
per frame), opens the job, uploads frames and masks (pipelined), starts the job and returns; the bench then
cancels and deletes the job so no training runs. Prints the phases from the harness's event times. Nothing here
asserts a speed.
"""
from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build" / "plugin-bench"


def build() -> None:
    BUILD.mkdir(parents=True, exist_ok=True)
    if not (BUILD / "CMakeCache.txt").exists():
        subprocess.run(["cmake", "-S", str(ROOT), "-B", str(BUILD), "-DCMAKE_BUILD_TYPE=Release"], check=True,
                       stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", str(BUILD), "-j2", "--target", "ofx_harness"], check=True,
                   stdout=subprocess.DEVNULL)


def start_daemon(store: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "vinpaint", "serve", "--bind", "tcp://127.0.0.1:*", "--store",
                             str(store), "--device", "cpu", "--quiet", "--max-message-mb", "1024"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    info = store / "daemon.json"
    for _ in range(600):
        if info.exists():
            meta = json.loads(info.read_text())
            if meta.get("pid") == proc.pid:
                return proc, meta["endpoint"]
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("the daemon did not start")


def one_train(endpoint: str, frames: int, size: str, depth: str) -> dict:
    w, h = size.split("x")
    cmd = [str(BUILD / "tests" / "ofx_harness" / "ofx_harness"), "--bundle", str(BUILD / "Vinpaint.ofx.bundle"),
           "--synthetic", f"{w}x{h}x{frames}", "--depth", depth, "--daemon", endpoint, "--param", "preset=2",
           "--watchdog", "3600", "--steps", "describe,create,train,cancel,destroy,unload"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    steps = {e["step"]: e for e in events if e.get("event") == "step"}
    train = steps.get("train", {})
    if train.get("status") != "OK":
        raise SystemExit(f"Train failed: {train}\n{done.stdout[-2000:]}")
    starts = [e for e in events if e.get("event") == "progress_start"]
    ends = [e for e in events if e.get("event") == "progress_end"]
    read = next(e for e in starts if "reading" in e["label"])
    upload = next((e for e in starts if "uploading" in e["label"]), None)
    read_end = next(e for e in ends if e["t"] >= read["t"])
    upload_end = next((e for e in ends if upload and e["t"] >= upload["t"]), None)
    bytes_per_frame = int(w) * int(h) * (3 * {"byte": 1, "short": 2, "float": 4}[depth] + 1)
    out = {"frames": frames, "size": size, "depth": depth, "job": train["job"],
           "train_s": train["elapsed_s"],
           "host_image_s": train.get("host_image_s"),  # the harness making images: a real host's decode/cache
           "read_and_hash_s": round(read_end["t"] - read["t"], 3),
           "upload_s": round(upload_end["t"] - upload["t"], 3) if upload_end else None,
           "megabytes": round(frames * bytes_per_frame / 1e6, 1)}
    if out["host_image_s"] is not None:
        out["plugin_read_and_hash_s"] = round(out["read_and_hash_s"] - out["host_image_s"], 3)
    if out["upload_s"]:
        out["upload_MB_per_s"] = round(out["megabytes"] / out["upload_s"], 1)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--depth", default="float", choices=("float", "short", "byte"))
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    build()
    store = Path(tempfile.mkdtemp(prefix="vinpaint-bench-plugin-")) / "store"
    proc, endpoint = start_daemon(store)
    results = []
    try:
        from vinpaint.host_bridge.client import Client
        for _ in range(args.repeat):
            r = one_train(endpoint, args.frames, args.size, args.depth)
            with Client(endpoint) as client:  # no training: this measures the upload only
                client.delete(r["job"])
            results.append(r)
            print(json.dumps(r), flush=True)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(store.parent, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
