"""The OFX node in a host built on the official OpenFX HostSupport library, the way users' test hosts are built.

    VINPAINT_OFX_SDK=~/src/openfx python scripts/hostsupport_check.py [--build build/hostsupport-check]
                                                                      [--train-timeout 600] [--keep]

Builds HostSupport from the user's OpenFX checkout with our own host against it (scripts/hostsupport_check/, needs
libexpat1-dev), and the plugin; takes 12 frames of DAVIS tennis (144x80, real masks) from the shared data, or a
procedural clip without it. Then, printing each step's status and seconds:

1. a host lacking String parameters (as HostSupport's example host): the node must still be made and an untrained
   render show the source (and, with the daemon below, Train and a batch render must work through VINPAINT_DAEMON);
2. no daemon at the node's address: interactive and batch renders must fail with "no daemon is reachable" within
   their timeouts (2 s, 10 s), Train the same;
3. a real `vinpaint serve` (temporary store): Train without a Mask input (an opaque Source: every pixel a hole)
   must fail before uploading; Train with the tiny preset, a render while it trains (the source with
   a progress message), wait, then every frame in one sequential batch render; the output must equal the daemon's
   own result frames, differ from the source inside the hole and match it outside; the Filter context and a float
   project (reopened with the saved job) render the same frames.
Exits 1 when a check fails. The timings are the machine's; nothing here is a speed target.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
FRAMES, WIDTH, HEIGHT = 12, 144, 80
PRESET_TINY = "2"  # index of "tiny" in the node's Preset choice


def build(sdk: Path, out: Path) -> tuple[Path, Path]:
    """-> (our HostSupport host, the plugin bundle)."""
    host_build, plugin_build = out / "host", out / "plugin"
    for cmd in (["cmake", "-S", str(ROOT / "scripts" / "hostsupport_check"), "-B", str(host_build),
                 f"-DVINPAINT_OFX_SDK={sdk}", "-DCMAKE_BUILD_TYPE=Release"],
                ["cmake", "--build", str(host_build), "-j2"],
                ["cmake", "-S", str(ROOT), "-B", str(plugin_build), "-DCMAKE_BUILD_TYPE=Release",
                 "-DVINPAINT_BUILD_TESTS=OFF"],
                ["cmake", "--build", str(plugin_build), "-j2", "--target", "vinpaint_ofx"]):
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"build failed: {' '.join(cmd)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return host_build / "hostsupport_host", plugin_build / "Vinpaint.ofx.bundle"


def write_clip(root: Path) -> tuple[np.ndarray, np.ndarray]:
    """FRAMES frames of tennis with their masks as .npy (procedural without the shared data)."""
    (root / "source").mkdir(parents=True)
    (root / "mask").mkdir()
    seq = DATA / "tennis"
    if (seq / "frames").is_dir():
        import cv2
        frames, holes = [], []
        for i in range(FRAMES):
            f = cv2.imread(str(seq / "frames" / f"{i:05d}.png"), cv2.IMREAD_COLOR)[:, :, ::-1]
            m = cv2.imread(str(seq / "masks" / f"{i:05d}.png"), cv2.IMREAD_GRAYSCALE)
            frames.append(cv2.resize(f, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA))
            holes.append(cv2.resize(m, (WIDTH, HEIGHT), interpolation=cv2.INTER_NEAREST) > 127)
        frames, holes = np.ascontiguousarray(np.stack(frames)), np.stack(holes)
        print(f"clip: DAVIS tennis, {FRAMES} frames at {WIDTH}x{HEIGHT}")
    else:
        rng = np.random.default_rng(0)
        frames = rng.integers(0, 256, (FRAMES, HEIGHT, WIDTH, 3), dtype=np.uint8)
        yy, xx = np.mgrid[:HEIGHT, :WIDTH]
        holes = np.stack([(xx - 40 - 4 * t) ** 2 + (yy - 40) ** 2 < 100 for t in range(FRAMES)])
        print(f"clip: procedural ({DATA / 'tennis'} is absent), {FRAMES} frames at {WIDTH}x{HEIGHT}")
    for i in range(FRAMES):
        np.save(root / "source" / f"{i:05d}.npy", frames[i])
        np.save(root / "mask" / f"{i:05d}.npy", holes[i].astype(np.uint8) * 255)
    return frames, holes


class Host:
    def __init__(self, exe: Path, bundle: Path, clip: Path, work: Path):
        self.exe, self.clip, self.work = exe, clip, work
        self.plugins = work / "plugins"  # only our bundle, so the scan finds nothing else
        self.plugins.mkdir()
        (self.plugins / bundle.name).symlink_to(bundle.resolve())

    def run(self, name: str, steps: list[str], *options: str, timeout: float = 900,
            mask: bool = True, env: dict[str, str] | None = None) -> dict[str, dict]:
        out = self.work / name
        masks = ["--mask", str(self.clip / "mask")] if mask else []
        cmd = [str(self.exe), "--source", str(self.clip / "source"), *masks,
               "--out", str(out), *options, "--steps", ";".join(steps)]
        env = dict(os.environ, OFX_PLUGIN_PATH=str(self.plugins), **(env or {}))
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        results: dict[str, dict] = {}
        print(f"\n[{name}]")
        for line in done.stdout.splitlines():
            try:
                step = json.loads(line)
            except json.JSONDecodeError:
                continue
            results[step["step"]] = step
            said = step.get("messages") or step.get("persistent") or step.get("status_param") or ""
            print(f"  {step['step'][:40]:40s} {str(step.get('status', '')):22s} {step.get('seconds', 0):7.3f} s"
                  f"  {said[:110]}")
        if done.returncode != 0 or "exit" not in results:
            print(f"  the host ended with code {done.returncode} before its last step:\n{done.stderr[-2000:]}")
        return results


def start_daemon(store: Path) -> tuple[subprocess.Popen, str]:
    log = open(store.parent / "daemon.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "vinpaint", "serve", "--bind", "tcp://127.0.0.1:*", "--store",
                             str(store), "--device", "cpu"], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            meta = json.loads((store / "daemon.json").read_text())
            if meta.get("pid") == proc.pid:
                return proc, meta["endpoint"]
        except (OSError, json.JSONDecodeError):
            pass
        time.sleep(0.1)
    proc.kill()
    sys.exit(f"the daemon did not start: {(store.parent / 'daemon.log').read_text()[-2000:]}")


def free_endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sdk", default=os.environ.get("VINPAINT_OFX_SDK", ""),
                    help="an OpenFX checkout (default $VINPAINT_OFX_SDK)")
    ap.add_argument("--build", default=str(ROOT / "build" / "hostsupport-check"))
    ap.add_argument("--train-timeout", type=float, default=600)
    ap.add_argument("--keep", action="store_true", help="keep the work folder (outputs, daemon log)")
    args = ap.parse_args()
    sdk = Path(args.sdk).expanduser()
    if not (sdk / "HostSupport" / "src").is_dir():
        print("set VINPAINT_OFX_SDK (or --sdk) to an OpenFX checkout with HostSupport/ "
              "(git clone https://github.com/AcademySoftwareFoundation/openfx)", file=sys.stderr)
        return 2
    if shutil.which("cmake") is None:
        print("cmake is not installed", file=sys.stderr)
        return 2
    exe, bundle = build(sdk, Path(args.build))
    work = Path(tempfile.mkdtemp(prefix="vinpaint-hostsupport-"))
    failures: list[str] = []

    def check(ok: bool, what: str) -> None:
        print(f"  {'ok  ' if ok else 'FAIL'} {what}")
        if not ok:
            failures.append(what)

    try:
        frames, holes = write_clip(work / "clip")
        host = Host(exe, bundle, work / "clip", work)

        r = host.run("host without String parameters", ["create", "render:1", "destroy"],
                     "--lack-param-type", "OfxParamTypeString")
        check(r.get("create", {}).get("status") == "OK" and r.get("render:1", {}).get("status") == "OK"
              and "not trained yet" in r["render:1"].get("persistent", ""),
              "without String parameters the node is made and an untrained render shows the source")
        check("exit" in r, "the host survives")
        r = host.run("host as HostSupport's example", ["create", "render:1", "press:refresh", "destroy"],
                     "--lack-param-type", "OfxParamTypeString", "--stub-params")
        check(r.get("create", {}).get("status") == "OK" and r.get("render:1", {}).get("status") == "OK"
              and r.get("press:refresh", {}).get("status") == "OK",
              "with Integer and Choice answering MissingHostFeature too (the example host's), the node is made, "
              "renders the source and Refresh works: such values are kept by the node at their defaults")

        nowhere = free_endpoint()
        r = host.run("no daemon", ["create", f"set:daemonAddress={nowhere}", "set:jobId=" + "ab" * 16, "render:1",
                                   "render:2", "render-batch:3", "press:train", "destroy"])
        for step, limit in (("render:1", 3.0), ("render-batch:3", 12.0), ("press:train", 3.0)):
            got = r.get(step, {})
            check(got.get("status") == "Failed" and got.get("seconds", 1e9) < limit
                  and "no daemon is reachable" in (got.get("persistent", "") + got.get("messages", "")),
                  f"{step}: fails within {limit:.0f} s saying no daemon is reachable")
        check(r.get("render:2", {}).get("seconds", 1e9) < 0.5, "render:2 right after fails at once")

        proc, endpoint = start_daemon(work / "store")
        try:
            r = host.run("daemon, no Mask input (an opaque Source)", ["create", f"set:daemonAddress={endpoint}",
                                                                       f"set:preset={PRESET_TINY}", "press:train",
                                                                       "destroy"], mask=False)
            got = r.get("press:train", {})
            check(got.get("status") == "Failed" and "uploading" not in got.get("progress", "")
                  and "no Mask input is connected" in got.get("status_param", ""),
                  "Train refuses an all-hole frame before uploading")
            r = host.run("daemon", ["create", f"set:daemonAddress={endpoint}", f"set:preset={PRESET_TINY}",
                                    "press:train", "render:1", f"wait:{args.train_timeout:.0f}",
                                    f"render-seq:1-{FRAMES}", "destroy"], timeout=args.train_timeout + 300)
            check(r.get("press:train", {}).get("status") == "OK", "Train uploads and starts the job")
            check(r.get("render:1", {}).get("status") == "OK", "a render while training shows the source")
            check(r.get(f"wait:{args.train_timeout:.0f}", {}).get("status") == "done", "the job finishes")
            check(r.get(f"render-seq:1-{FRAMES}", {}).get("status") == ",".join(["OK"] * FRAMES),
                  "every frame renders in one sequential batch render")
            from vinpaint.host_bridge.client import Client
            with Client(endpoint) as client:
                job = client.list_jobs()[0]["job"]
                results = [client.fetch(job, i) for i in range(FRAMES)]
            same, inside, outside = 0, [], []
            for i in range(FRAMES):
                path = work / "daemon" / f"seq_{i + 1}.npy"
                if not path.exists():
                    continue
                out = np.load(path)[..., :3]
                same += int(np.array_equal(out, results[i]))
                diff = np.abs(out.astype(int) - frames[i].astype(int)).sum(-1)
                inside.append(diff[holes[i]].mean())
                outside.append(diff[~holes[i]].max())
            check(same == FRAMES, f"{same} of {FRAMES} rendered frames equal the daemon's results")
            check(bool(inside) and min(inside) > 3,
                  f"the hole is inpainted (mean |output - source| inside: {min(inside, default=0):.1f} at least)")
            check(bool(outside) and max(outside) == 0, "pixels outside the hole are the source's")

            # The same clip in the Filter context (the mask in the Source's alpha) finds the finished job; a float
            # project reopened with the saved job renders it converted.
            r = host.run("daemon, Filter context", ["create", f"set:daemonAddress={endpoint}",
                                                    f"set:preset={PRESET_TINY}", "press:train", "render:4",
                                                    "destroy"], "--context", "filter")
            out = work / "daemon, Filter context" / "render_4.npy"
            check(r.get("press:train", {}).get("status") == "OK" and out.exists()
                  and np.array_equal(np.load(out)[..., :3], results[3]),
                  "the Filter context finds the finished job and renders its frame")
            r = host.run("daemon, float project", ["create", f"set:daemonAddress={endpoint}", f"set:jobId={job}",
                                                   "set:jobFirstFrame=1", "render-batch:5", "destroy"],
                         "--depth", "float")
            out = work / "daemon, float project" / "batch_5.npy"
            check(r.get("render-batch:5", {}).get("status") == "OK" and out.exists()
                  and np.array_equal(np.load(out)[..., :3], results[4]),
                  "a float project reopened with the saved job renders its frame")
            # A final render of a node nobody trained: the render trains it (the same clip and preset: the finished
            # job is found by its content) and returns its frame.
            r = host.run("daemon, final render without Train", ["create", f"set:daemonAddress={endpoint}",
                                                                 f"set:preset={PRESET_TINY}", "render-batch:7",
                                                                 "destroy"])
            out = work / "daemon, final render without Train" / "batch_7.npy"
            check(r.get("render-batch:7", {}).get("status") == "OK" and out.exists()
                  and np.array_equal(np.load(out)[..., :3], results[6]),
                  "a final render of a node never trained trains it and renders the job's frame")
            # A host with no String parameters (HostSupport's example host): the address from VINPAINT_DAEMON,
            # the job kept by the node; Train finds the finished job and a batch render gets its frame.
            r = host.run("daemon, host without String parameters",
                         ["create", f"set:preset={PRESET_TINY}", "press:train", "render-batch:6", "destroy"],
                         "--lack-param-type", "OfxParamTypeString", env={"VINPAINT_DAEMON": endpoint})
            out = work / "daemon, host without String parameters" / "batch_6.npy"
            check(r.get("press:train", {}).get("status") == "OK" and out.exists()
                  and np.array_equal(np.load(out)[..., :3], results[5]),
                  "without String parameters Train reaches the daemon in VINPAINT_DAEMON and renders its frame")
            # ... and with Integer and Choice stubbed as well, as the example host has them, and no Train press
            # (the example host only renders): the batch render trains the node (the default preset, fast, a job
            # of its own) and waits for its frame.
            r = host.run("daemon, host as HostSupport's example", ["create", "render-batch:6", "destroy"],
                         "--lack-param-type", "OfxParamTypeString", "--stub-params",
                         env={"VINPAINT_DAEMON": endpoint}, timeout=args.train_timeout + 300)
            out = work / "daemon, host as HostSupport's example" / "batch_6.npy"
            ok = r.get("render-batch:6", {}).get("status") == "OK" and out.exists()
            if ok:
                frame = np.load(out)[..., :3].astype(int)
                diff = np.abs(frame - frames[5].astype(int)).sum(-1)
                ok = diff[~holes[5]].max() == 0 and diff[holes[5]].mean() > 3
            check(ok, "as the example host, a batch render of the untrained node trains it and inpaints the frame "
                      f"({r.get('render-batch:6', {}).get('seconds', 0):.0f} s)")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    finally:
        if args.keep:
            print(f"\nwork folder: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print("\n" + ("all checks passed" if not failures else f"{len(failures)} checks failed"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
