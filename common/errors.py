"""Errors the engine raises on purpose. Their text is shown to users as is: one clear sentence."""
import sys


class VinpaintError(Exception):
    """Base class: anything a user can act on."""


class InputError(VinpaintError):
    """The frames, masks or settings handed in cannot be used (the message names the problem)."""


class OtherRunError(InputError):
    """The work directory holds a run of other frames or settings; each front end says how to start over there.
    `differences`: the settings that differ, as "name=value there" (empty when only the frames or masks do, or
    the directory's settings are unreadable), so a front end can say how to continue it."""

    def __init__(self, message: str, differences: tuple[str, ...] = (), damaged: bool = False) -> None:
        super().__init__(message)
        self.differences = differences
        self.damaged = damaged
        """Its run.json cannot be read: which run it holds is unknown."""

    def __reduce__(self):  # across processes (Ray) with its fields
        return type(self), (str(self), self.differences, self.damaged)


class DamagedWorkFile(InputError):
    """A file in a work directory (checkpoint.pt, result.npz) is damaged, not vinpaint's, or does not fit the run.
    The CLI says so (delete it or --restart); a daemon job sets `path` aside and trains again, since a job's work
    directory is its own."""

    def __init__(self, message: str, path=None) -> None:
        super().__init__(message if message.endswith((".", "?", "!")) else message + ".")  # one whole sentence
        self.path = path

    def __reduce__(self):  # across processes (Ray) with its path
        return type(self), (str(self), self.path)


class CheckpointAhead(InputError):
    """The work directory's checkpoint has trained more steps than these settings plan: its model would not match
    the saved config."""


class TrainingCancelled(VinpaintError):
    """Training stopped on request; a checkpoint was written first, so running again continues."""


CPU_ALLOCATOR_FAILED = "DefaultCPUAllocator: can't allocate memory"
"""How torch's CPU allocator says it could not allocate (a plain RuntimeError, not torch.OutOfMemoryError)."""


def out_of_memory(exc: BaseException) -> bool:
    """MemoryError, torch.OutOfMemoryError (a GPU's allocator; a RuntimeError) or torch's CPU allocator failing: one
    rule for the CLI and the daemon's worker, so each says "out of memory" where the other would have too. torch
    is looked up among the loaded modules, not imported: this module stays importable without it, and an error of
    torch's can only come from a torch already loaded."""
    if isinstance(exc, MemoryError):
        return True
    return device_out_of_memory(exc) or (isinstance(exc, RuntimeError) and CPU_ALLOCATOR_FAILED in str(exc))


DEVICE_FAULTS = ("CUDA error", "CUDNN_STATUS_", "CUBLAS_STATUS_", "cuDNN error", "HIP error")
"""How a GPU's own failure reaches torch as a RuntimeError (torch.AcceleratorError, a RuntimeError, from 2.8)."""


def device_fault(exc: BaseException) -> bool:
    """An accelerator's own error (a launch failure, a device-side assert, a lost device), not its input's: a
    checkpoint being loaded when it happens is not damaged, and must not be set aside as if it were."""
    torch = sys.modules.get("torch")
    kind = getattr(torch, "AcceleratorError", None) if torch is not None else None
    if kind is not None and isinstance(exc, kind):
        return True
    return isinstance(exc, RuntimeError) and any(s in str(exc) for s in DEVICE_FAULTS)


DEVICE_ALLOCATION_FAILED = ("CUDA error: out of memory", "CUDNN_STATUS_ALLOC_FAILED", "CUBLAS_STATUS_ALLOC_FAILED",
                            "cuDNN error: CUDNN_STATUS_NOT_ENOUGH_WORKSPACE")
"""How a GPU's memory running out reaches torch from outside its caching allocator (a CUDA kernel launch, cuDNN or
cuBLAS asking for their workspace): a plain RuntimeError, not torch.OutOfMemoryError."""


def device_out_of_memory(exc: BaseException) -> bool:
    """torch.OutOfMemoryError, or a GPU library that could not allocate (DEVICE_ALLOCATION_FAILED): an
    accelerator's memory ran out (advice then differs from the machine's RAM)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return False
    kinds = tuple(k for k in (getattr(torch, "OutOfMemoryError", None),  # torch >= 2.5
                              getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None)) if k is not None)
    if kinds and isinstance(exc, kinds):
        return True
    return isinstance(exc, RuntimeError) and any(s in str(exc) for s in DEVICE_ALLOCATION_FAILED)
