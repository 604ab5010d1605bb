"""Which torch device a run may use, checked before anything is read or written (the CLI and the daemon)."""
from __future__ import annotations

import os
import re
import subprocess
import sys

from vinpaint.errors import InputError

KINDS = ("cpu", "cuda")
"""Device types vinpaint trains on."""


def check_device(name: str | None) -> str:
    """A device name a user gave ('cpu', 'cuda', 'cuda:1', None for the default) -> its canonical name.

    Raises InputError with one sentence naming the device when this machine cannot train on it. Checks without
    allocating anything on a GPU (a daemon holding a CUDA context for a check would keep its memory)."""
    if name == "cpu":  # nothing to check, and torch (seconds to load) stays unloaded where nothing else needs it
        return "cpu"
    import torch

    if name is None or name == "":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise InputError(f"device {name!r} is not a device name; use cpu, cuda or cuda:N.") from None
    if device.type not in KINDS:
        raise InputError(f"device {name!r} is not supported; vinpaint trains on cpu or cuda (cuda:N).")
    if device.type == "cpu":
        return "cpu"
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        why = "this torch build has no CUDA" if not torch.backends.cuda.is_built() else "no CUDA GPU is visible"
        raise InputError(f"device {name} is not available on this machine ({why}); use --device cpu.")
    index = 0 if device.index is None else device.index
    if not 0 <= index < count:
        raise InputError(f"device {name} is not available: this machine has {count} CUDA GPU(s), "
                         f"cuda:0 to cuda:{count - 1}.")
    return f"cuda:{index}"


_GPU_PROBE = ("import sys, torch; d = torch.device(sys.argv[1]); torch.ones(1, device=d).add_(1).item(); "
              "print(torch.cuda.get_device_properties(d).total_memory)")
"""Run in a child process by device_memory: starting CUDA there leaves no context (and its memory) held in the
daemon for its whole life, and one kernel proves the torch build has code for this GPU (a build without it
fails only at the first kernel, "no kernel image is available")."""


GPU_PROBE_SECONDS = 180
"""Ample for loading torch and starting CUDA on a cold machine (tens of seconds); a hung driver no longer holds
the daemon's start for 10 minutes."""


def device_memory(name: str) -> int:
    """Bytes of memory of a checked device: the machine's RAM for cpu, the GPU's own for cuda:N (asked in a short
    child process, _GPU_PROBE). Raises InputError naming the device when CUDA cannot run a kernel there."""
    if not name.startswith("cuda"):
        return host_memory()
    try:
        proc = subprocess.run([sys.executable, "-c", _GPU_PROBE, name], capture_output=True, text=True,
                              timeout=GPU_PROBE_SECONDS)
    except subprocess.TimeoutExpired:
        raise InputError(f"device {name} cannot be used: starting CUDA on it took over {GPU_PROBE_SECONDS} s "
                         "(a hung driver or GPU?).") from None
    except OSError as exc:
        raise InputError(f"device {name} cannot be used: its check did not start ({exc.strerror}).") from None
    if proc.returncode != 0 or not proc.stdout.split():
        raise InputError(f"device {name} cannot be used: CUDA failed to start ({_failure(proc.stderr)}).")
    return int(proc.stdout.split()[-1])


def usable_device(name: str | None) -> str:
    """check_device, and for a GPU one kernel run in this process (the CLI trains here next): a torch build
    without code for this GPU, or a driver that fails to start, is then one sentence, not a traceback."""
    device = check_device(name)
    if device.startswith("cuda"):
        import torch

        try:
            torch.ones(1, device=device).add_(1).item()
        except RuntimeError as exc:
            raise InputError(f"device {device} cannot be used: CUDA failed to run ({_failure(str(exc))}).") \
                from None
    return device


def _failure(text: str) -> str:
    """The line of a CUDA failure that names it, at most 200 characters: in a child's traceback the last
    exception line ("RuntimeError: CUDA error: ..."; torch's advice lines follow it), else the first line."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    named = [line for line in lines if re.match(r"^[\w.]+(Error|Exception)\b.*:", line)]
    return (named[-1] if named else lines[0] if lines else "no message")[:200]


def host_memory() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 1 << 62  # unknown: no limit from here


def native_bf16(device_type: str) -> bool:
    """Whether this machine's CPU multiplies bf16 in hardware (AMX tiles or AVX512-BF16): there oneDNN's bf16
    convolutions run at about twice the fp32 speed; without them bf16 is emulated and slower than fp32."""
    if device_type != "cpu":
        return False
    import torch

    probes = [getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    try:
        return torch.backends.mkldnn.is_available() and any(probe() for probe in probes if probe is not None)
    except RuntimeError:  # a torch build without the probes' CPU checks
        return False


def resolved_precision(precision: str, device_type: str) -> tuple[str, bool]:
    """train.precision 'auto' -> the precision and memory order this device runs best at, as (precision,
    channels_last); any other value is returned as given, with channels_last False (the caller keeps its own)."""
    if precision != "auto":
        return precision, False
    if device_type == "cuda":  # TensorFloat-32 convolutions: no extra kernels (a launch-bound step stays as fast),
        return "tf32", False   # fp32's range; PyTorch's own default for cuDNN. Pre-Ampere cards ignore the switch
    return ("bf16", True) if native_bf16(device_type) else ("fp32", False)
