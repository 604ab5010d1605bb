"""Typed settings of the daemon and of the client: one dataclass per concern."""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

from vinpaint.engine.config import Int, Num, setting
from vinpaint.engine.shot import DEFAULT_CLUSTER_CPUS
from vinpaint.errors import InputError

DEFAULT_PORT = 5581
DEFAULT_ADDRESS = f"tcp://127.0.0.1:{DEFAULT_PORT}"
MiB = 1024 * 1024
OPTIONS = {"stream_wait_s": "--stream-wait", "ray_cpus": "--ray-cpus"}
"""The `vinpaint serve` option of each DaemonConfig field that declares a range, for its error sentence."""


def default_store() -> Path:
    """$VINPAINT_STORE, else $XDG_DATA_HOME/vinpaint/jobs (~/.local/share/vinpaint/jobs)."""
    if os.environ.get("VINPAINT_STORE"):
        return Path(os.environ["VINPAINT_STORE"])
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "vinpaint" / "jobs"


@dataclass
class AuthConfig:
    """CurveZMQ: the daemon's key pair and the folder of client public keys allowed in."""

    server_secret: Path | None = None
    """The daemon's secret certificate (zmq.auth format, written by `vinpaint serve --make-keys DIR`)."""
    allowed_clients: Path | None = None
    """Folder of client public certificates (*.key); only these clients complete the handshake."""

    @property
    def enabled(self) -> bool:
        return self.server_secret is not None


@dataclass
class LimitsConfig:
    """What one message or one job may be; reported to clients in the `hello` reply."""

    max_message_bytes: int = 256 * MiB
    """Largest frame accepted (ZMQ_MAXMSGSIZE): a 4K float RGBA frame is 133 MB. Larger peers are dropped."""
    max_header_bytes: int = 64 * 1024
    max_frames: int = 10000
    max_width: int = 8192
    max_height: int = 8192
    max_jobs: int = 1000
    """Jobs kept in the store at once; `job.open` beyond this answers `busy` (delete finished jobs)."""
    max_queued: int = 256
    max_train_steps: int = 20_000_000
    """Most training steps one job may plan (the paper's schedule on 1000 frames is about 6 million); a job over
    it is refused at `job.open`, so no request can hold a device for ever."""
    reserve_bytes: int = 512 * MiB
    """Free disk the daemon keeps untouched; a job whose inputs and results would eat into it is refused."""


@dataclass
class DaemonConfig:
    """Everything `vinpaint serve` decides."""

    bind: str = DEFAULT_ADDRESS
    """ZeroMQ endpoint of the ROUTER socket; non-loopback addresses need `auth`."""
    store: Path = field(default_factory=default_store)
    """Job store: one folder per job with its inputs, config, checkpoints, results and log."""
    devices: tuple[str, ...] = ()
    """Training devices, one job at a time on each ('cpu', 'cuda:0', ...); empty: every GPU CUDA starts on, else
    cpu."""
    auth: AuthConfig = field(default_factory=AuthConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    stop_grace_s: float = 60.0
    """How long a training process gets to write its checkpoint after SIGTERM before it is killed."""
    progress_flush_s: float = 2.0
    """How often live progress is written to the job record (state changes are written at once)."""
    ray: str | None = None
    """Address of a Ray cluster that trains long shots' windows several at once; None: one after another on the
    job's device."""
    ray_cpus: int = setting(DEFAULT_CLUSTER_CPUS, Int(1, 4096))
    """CPU cores each window asks for on a Ray cluster without GPUs (`vinpaint serve --ray-cpus`)."""
    stream_wait_s: float = setting(600.0, Num(0.0, 86400.0, above=True))
    """How long the training of a streaming job (`job.start` with `stream`) waits for the items of its next window
    before it fails, naming the frames (`vinpaint serve --stream-wait`)."""

    def check(self) -> None:
        """Every field that declares a range (`setting(default, Limit)`) checked against it; InputError names its
        command-line option."""
        for f in dataclasses.fields(self):
            limit = f.metadata.get("limit")
            if limit is None:
                continue
            try:
                setattr(self, f.name, limit.clean(f.name, getattr(self, f.name)))
            except InputError:
                raise InputError(f"{OPTIONS.get(f.name, f.name)} must be {limit.what}, not "
                                 f"{getattr(self, f.name)!r}") from None


@dataclass
class ClientConfig:
    """How the Python client reaches a daemon."""

    address: str = DEFAULT_ADDRESS
    timeout_s: float = 10.0
    """Reply timeout for control messages."""
    transfer_timeout_s: float = 60.0
    """Reply timeout for uploads and fetches, plus 1 s per 10 MB."""
    retries: int = 2
    """Times a timed-out request is re-sent on a fresh socket (every v1 request is safe to resend)."""
    server_public_key: Path | None = None
    """The daemon's public certificate: turns CurveZMQ on."""
    client_secret_key: Path | None = None
    """This client's secret certificate (its public half must be on the daemon's allow-list)."""
