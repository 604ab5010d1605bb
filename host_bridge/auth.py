"""Who may talk to the daemon: loopback by default, CurveZMQ with a client allow-list for anything else.

CurveZMQ is ZeroMQ's own standard (RFC 26): elliptic-curve (Curve25519) encryption and authentication inside the
ZMTP handshake, keys as small text certificates, allow-listing through the ZAP protocol that pyzmq implements
(zmq.auth). The C++ plugin needs nothing beyond a libzmq built with libsodium and three socket options, and no
password ever crosses the wire (see docs/daemon.md).
"""
from __future__ import annotations

import ipaddress
import os
import shutil
import stat
import struct
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils import z85

from vinpaint.errors import VinpaintError

from .daemon_config import AuthConfig


class AuthError(VinpaintError):
    """Authentication is misconfigured; the message says how to fix it (the CLI prints it as one sentence)."""


def is_local_endpoint(endpoint: str) -> bool:
    """True for endpoints only this machine can reach: ipc://, inproc://, tcp:// on 127.0.0.0/8, ::1, localhost."""
    scheme, sep, rest = endpoint.partition("://")
    if not sep:
        return False
    if scheme in ("ipc", "inproc"):
        return True
    if scheme != "tcp":
        return False
    host, _, _port = rest.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # '*', an interface name or a host name: possibly reachable from elsewhere


def check_bind(endpoint: str, auth: AuthConfig) -> None:
    """Refuse a port ZeroMQ would quietly wrap (tcp://127.0.0.1:99999 listened on 34463, :-1 on 65535), and a
    non-loopback bind without authentication (the daemon runs code on uploaded data)."""
    scheme, _, rest = endpoint.partition("://")
    port = rest.rpartition(":")[2]
    if scheme == "inproc":  # before, accepted: "listening on inproc://x", and no client could ever reach it
        raise AuthError(f"{endpoint} reaches only threads inside the daemon's own process, so no client could "
                        "connect; use tcp://127.0.0.1:PORT or ipc://PATH")
    if scheme == "tcp" and port != "*" and not (port.isdigit() and 0 <= int(port) <= 65535):
        raise AuthError(f"{endpoint} has no valid port: use a number from 1 to 65535, or 0 or * for a free one")
    if not is_local_endpoint(endpoint) and not auth.enabled:
        raise AuthError(
            f"refusing to listen on {endpoint} without authentication: anyone who can reach it could use this "
            "machine's GPU and read the clips. Create keys with `vinpaint serve --make-keys DIR` and start with "
            "--curve-secret DIR/server.key_secret --curve-allow DIR/clients, or bind to tcp://127.0.0.1:PORT")
    if auth.enabled:
        if auth.server_secret is None or not Path(auth.server_secret).is_file():
            why = "is not a file (a folder, a pipe or a device)" if auth.server_secret is not None and \
                os.path.lexists(auth.server_secret) else "does not exist"
            raise AuthError(f"the server key {auth.server_secret} {why}")
        if auth.allowed_clients is None or not Path(auth.allowed_clients).is_dir():
            raise AuthError("CurveZMQ needs --curve-allow DIR: a folder of client public keys (*.key)")
        keys = sorted(Path(auth.allowed_clients).glob("*.key"))
        if not keys:
            raise AuthError(f"{auth.allowed_clients} holds no client public keys (*.key); no client could connect")
        for key in keys:  # pyzmq drops the whole allow-list for one it cannot read: no client could connect
            try:
                public = load_public(key)
            except AuthError as exc:
                raise AuthError(f"{exc}; every *.key in --curve-allow must be a client's public key") from None
            if len(public) != 40:  # Z85 of 32 bytes
                raise AuthError(f"the key {key} holds no CurveZMQ public key; every *.key in --curve-allow must be "
                                "a client's public key")


KEY_FILE_MAX_BYTES = 64 * 1024
"""A certificate is a few hundred bytes; pyzmq reads a key file whole, line by line, so a pipe or a device given
as a key (/dev/zero) hung the command and grew its memory without end."""


def _check_key_file(path: Path) -> None:
    """A key must be a regular file of a key's size (a link to one is fine), refused in one sentence before it is
    read."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise AuthError(f"cannot read the key {path}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise AuthError(f"the key {path} is not a file (a folder, a pipe or a device); give the certificate file "
                        "`vinpaint serve --make-keys DIR` wrote")
    if st.st_size > KEY_FILE_MAX_BYTES:
        raise AuthError(f"the key {path} is {st.st_size} bytes, far more than a CurveZMQ certificate (a few hundred); "
                        "give the certificate file `vinpaint serve --make-keys DIR` wrote")


def load_secret(path: Path) -> tuple[bytes, bytes]:
    """(public, secret) from a zmq.auth secret certificate; AuthError when it has no secret half."""
    _check_key_file(path)
    try:
        public, secret = zmq.auth.load_certificate(str(path))
    except (OSError, ValueError) as exc:
        raise AuthError(f"cannot read the key {path}: {exc}") from None
    if not secret:
        raise AuthError(f"{path} is a public certificate; the secret one ends in .key_secret")
    _check_key(path, public)
    _check_key(path, secret)
    return public, secret


def load_public(path: Path) -> bytes:
    _check_key_file(path)
    try:
        public, _ = zmq.auth.load_certificate(str(path))
    except (OSError, ValueError) as exc:
        raise AuthError(f"cannot read the key {path}: {exc}") from None
    _check_key(path, public)
    return public


def _check_key(path: Path, key: bytes) -> None:
    """A CurveZMQ key is 40 Z85 characters (32 bytes): anything else would only fail later, as ZeroMQ's
    "Invalid argument" when the socket connects."""
    try:
        ok = len(key) == 40 and len(z85.decode(key)) == 32
    except (ValueError, KeyError, TypeError, struct.error):
        ok = False
    if not ok:
        raise AuthError(f"the key {path} holds no CurveZMQ key (40 Z85 characters); make a pair with "
                        "`vinpaint serve --make-keys DIR`")


class ServerAuth:
    """Turns CurveZMQ on for the daemon's socket and runs the ZAP allow-list in a pyzmq thread."""

    def __init__(self, context: zmq.Context, config: AuthConfig) -> None:
        self.config = config
        self.authenticator: ThreadAuthenticator | None = None
        if not config.enabled:
            return
        public, secret = load_secret(Path(config.server_secret))  # type: ignore[arg-type]
        self.public, self.secret = public, secret
        self.authenticator = ThreadAuthenticator(context)
        self.authenticator.start()
        self.authenticator.configure_curve(domain="*", location=str(config.allowed_clients))

    def apply(self, socket: zmq.Socket) -> None:
        if self.authenticator is None:
            return
        socket.curve_secretkey = self.secret
        socket.curve_publickey = self.public
        socket.curve_server = True

    def stop(self) -> None:
        if self.authenticator is not None:
            self.authenticator.stop()
            self.authenticator = None


def apply_client(socket: zmq.Socket, server_public: Path | None, client_secret: Path | None) -> None:
    """Client side of CurveZMQ: the daemon's public key plus this client's key pair."""
    if server_public is None:
        return
    if client_secret is None:
        raise AuthError("a CurveZMQ client needs its own secret key as well as the server's public key")
    public, secret = load_secret(Path(client_secret))
    socket.curve_serverkey = load_public(Path(server_public))
    socket.curve_publickey = public
    socket.curve_secretkey = secret


def make_keys(directory: Path, client_names: tuple[str, ...] = ("client",)) -> dict[str, Path]:
    """A server key pair, client key pairs, and `clients/` holding the clients' public halves (the allow-list)."""
    if not str(directory).strip():  # "" is the current folder to Path: keys strewn where the command ran
        raise AuthError("--make-keys needs a folder to write the keys into, not an empty name")
    directory = Path(directory)
    if os.path.lexists(directory) and not directory.is_dir():
        raise AuthError(f"{directory} is a file; --make-keys writes its keys into a folder: give a new one")
    allowed = directory / "clients"
    if os.path.lexists(allowed) and (allowed.is_symlink() or not allowed.is_dir()):
        raise AuthError(f"{allowed} exists and is not a folder; --make-keys puts the clients' public keys there: "
                        "give a new folder to --make-keys")
    taken = [directory / (name + suffix) for name in ("server", *client_names) for suffix in (".key", ".key_secret")]
    taken += [allowed / f"{name}.key" for name in client_names]  # the allow-list's copies
    for path in taken:  # a key pair in use is never replaced: its clients hold the other half
        if os.path.lexists(path):
            raise AuthError(f"{path} exists; keys are never replaced (clients and servers hold their other halves); "
                            "give a new folder to --make-keys")
    directory.mkdir(parents=True, exist_ok=True)
    allowed.mkdir(exist_ok=True)
    made = {}
    # Secrets are made under umask 077, never readable by others even for a moment (pyzmq writes 0644; a kill
    # before the chmod left one so); the public halves are made readable afterwards.
    old = os.umask(0o077)
    try:
        server_public, server_secret = zmq.auth.create_certificates(str(directory), "server")
        made["server.key"], made["server.key_secret"] = Path(server_public), Path(server_secret)
        for name in client_names:
            public, secret = zmq.auth.create_certificates(str(directory), name)
            made[f"{name}.key"], made[f"{name}.key_secret"] = Path(public), Path(secret)
    finally:
        os.umask(old)
    for name in ("server", *client_names):
        made[f"{name}.key_secret"].chmod(0o600)
        made[f"{name}.key"].chmod(0o644)
    for name in client_names:
        shutil.copy(made[f"{name}.key"], allowed / made[f"{name}.key"].name)
    made["clients"] = allowed
    return made
