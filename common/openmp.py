"""The OpenMP wait policy, set by the entry points that start torch (the CLI, the training process).

OpenMP threads that spin while waiting collapse when the CPU is shared (a compositor, a render farm node, a test
run beside a daemon): measured 13 s instead of 0.3 s per step. Sleeping waits cost little when the CPU is free.
It only takes effect before torch loads, so importing a library never changes it; a user's own setting wins.
"""
import os

WAIT_POLICY = "PASSIVE"


def prefer_sleeping_threads() -> None:
    os.environ.setdefault("OMP_WAIT_POLICY", WAIT_POLICY)
