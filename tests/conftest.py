"""Shared test settings: keep torch to the CI machine's two cores and make every test's randomness explicit."""
import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")
# Before torch loads (see common/openmp.py): spinning OpenMP waits collapse when daemons and tests share 2 cores.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture(autouse=True, scope="session")
def _torch_threads():
    try:
        import torch
    except ImportError:  # parts that never touch torch still test without it
        yield
        return
    torch.set_num_threads(2)
    yield
