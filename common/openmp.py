"""The OpenMP wait policy (and cuBLAS's workspace), set by the entry points that start torch (the CLI, the
training process).

OpenMP threads that spin while waiting collapse when the CPU is shared (a compositor, a render farm node, a test
run beside a daemon): measured 13 s instead of 0.3 s per step. Sleeping waits cost little when the CPU is free.
It only takes effect before torch loads, so importing a library never changes it; a user's own setting wins.
"""
import os

WAIT_POLICY = "PASSIVE"


def prefer_sleeping_threads() -> None:
    os.environ.setdefault("OMP_WAIT_POLICY", WAIT_POLICY)


def deterministic_cublas() -> None:
    """The cuBLAS workspace deterministic training needs on a GPU. cuBLAS reads it once, when CUDA first loads it
    (RAFT's flow can come before training's deterministic switch), so it is set by the same entry points, as
    early; a user's own setting wins."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
