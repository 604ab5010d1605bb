"""`vinpaint serve`: run the engine daemon that the OpenFX plugin, `vinpaint submit` and scripts talk to."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vinpaint.errors import InputError
from vinpaint.host_bridge.auth import AuthError, make_keys
from vinpaint.host_bridge.daemon import Daemon, DaemonStartError
from vinpaint.host_bridge.daemon_config import (DEFAULT_ADDRESS, AuthConfig, DaemonConfig, LimitsConfig, MiB,
                                                default_store)
from vinpaint.host_bridge.logs import configure_logging


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "serve", help="run the engine daemon (jobs over ZeroMQ, kept on disk)",
        description="Run the vinpaint daemon: it keeps jobs in a store folder, trains one job at a time per "
                    "device and answers clients over ZeroMQ. SIGTERM checkpoints and exits; restarting resumes.")
    p.add_argument("--bind", default=DEFAULT_ADDRESS,
                   help=f"ZeroMQ endpoint (default {DEFAULT_ADDRESS}; use port * for a free one). Anything but "
                        "loopback needs --curve-secret and --curve-allow")
    p.add_argument("--store", type=Path, default=None,
                   help=f"job store folder (default $VINPAINT_STORE or {default_store()})")
    p.add_argument("--device", action="append", default=None, metavar="DEVICE",
                   help="training device, repeatable: cpu, cuda:0, cuda:1 ... (default: every GPU, else cpu)")
    p.add_argument("--curve-secret", type=Path, default=None, metavar="FILE",
                   help="the daemon's secret CurveZMQ key (server.key_secret from --make-keys)")
    p.add_argument("--curve-allow", type=Path, default=None, metavar="DIR",
                   help="folder of client public keys allowed to connect (clients/ from --make-keys)")
    p.add_argument("--make-keys", type=str, default=None, metavar="DIR",
                   help="create a server key pair, a client key pair and the allow-list folder in DIR, then exit")
    p.add_argument("--max-message-mb", type=int, default=256,
                   help="largest frame a client may send, in MiB (ZMQ_MAXMSGSIZE; default 256)")
    p.add_argument("--max-jobs", type=int, default=1000, help="jobs the store may hold (default 1000)")
    p.add_argument("--ray", default=None, metavar="ADDRESS",
                   help="train long shots' windows (more frames than shot.window) as tasks on the Ray cluster at "
                        "ADDRESS, several at once; its nodes must see this store. Needs pip install 'vinpaint[ray]'")
    p.add_argument("--ray-cpus", type=int, default=None, metavar="N",
                   help="with --ray: CPU cores each window asks for on a cluster without GPUs (default 4)")
    p.add_argument("--stream-wait", type=float, default=600.0, metavar="S",
                   help="seconds a job started while its clip still uploads (a client's streaming start) waits "
                        "for the frames of its next window before it fails (default 600)")
    p.add_argument("--quiet", action="store_true", help="log warnings only")
    p.set_defaults(run=run, _mib=MiB)


def run(args: argparse.Namespace) -> int:
    configure_logging(args.quiet)
    if args.make_keys is not None:
        try:
            made = make_keys(args.make_keys)
        except AuthError as exc:
            print(f"vinpaint: error: {exc}", file=sys.stderr)
            return 2
        print(f"server keys: {made['server.key']} (give to clients), {made['server.key_secret']} (keep secret)")
        print(f"client keys: {made['client.key_secret']} (for the client), allow-list folder: {made['clients']}")
        print(f"start with: vinpaint serve --bind tcp://0.0.0.0:5581 --curve-secret {made['server.key_secret']} "
              f"--curve-allow {made['clients']}")
        return 0
    if not 1 <= args.max_message_mb <= 4096:
        print("vinpaint: error: --max-message-mb must be from 1 to 4096 (a 4K float RGBA frame is 127)",
              file=sys.stderr)
        return 2
    if not 1 <= args.max_jobs <= 1_000_000:
        print("vinpaint: error: --max-jobs must be from 1 to 1000000: a store that may hold no job refuses every "
              "one", file=sys.stderr)
        return 2
    config = DaemonConfig(
        bind=args.bind, store=args.store or default_store(), devices=tuple(args.device or ()),
        auth=AuthConfig(server_secret=args.curve_secret, allowed_clients=args.curve_allow),
        limits=LimitsConfig(max_message_bytes=args.max_message_mb * args._mib, max_jobs=args.max_jobs),
        ray=args.ray, stream_wait_s=args.stream_wait,
        **({"ray_cpus": args.ray_cpus} if args.ray_cpus is not None else {}))
    if args.ray_cpus is not None and args.ray is None:
        print("vinpaint: error: --ray-cpus needs --ray ADDRESS", file=sys.stderr)
        return 2
    try:
        config.check()
    except InputError as exc:
        print(f"vinpaint: error: {exc}", file=sys.stderr)
        return 2
    if (args.curve_secret is None) != (args.curve_allow is None):
        print("vinpaint: error: --curve-secret and --curve-allow go together", file=sys.stderr)
        return 2
    daemon = Daemon(config)
    try:
        endpoint = daemon.start()
    except (AuthError, DaemonStartError) as exc:
        print(f"vinpaint: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"vinpaint: error: cannot use the store {config.store}: {exc}", file=sys.stderr)
        return 2
    daemon.install_signal_handlers()
    auth = "CurveZMQ" if config.auth.enabled else "loopback only, no keys"
    print(f"vinpaint daemon listening on {endpoint} (store {config.store}, devices "
          f"{', '.join(t.device for t in daemon.pool.trainers)}, {auth})", flush=True)
    daemon.serve()
    print("vinpaint daemon stopped", flush=True)
    return 0
