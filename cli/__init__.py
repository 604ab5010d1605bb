"""vinpaint: video inpainting by internal learning, as a library, a daemon and an OpenFX node."""
import os as _os

# OpenMP threads that spin while waiting collapse when the CPU is shared (a compositor, a render farm node, a
# test run beside a daemon): measured 13 s instead of 0.3 s per step. Sleeping waits cost little when the CPU is
# free. Set before torch loads; a user's own setting wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
