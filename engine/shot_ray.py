"""A long shot's windows as Ray tasks: several windows train at once, one per GPU (or per few CPU cores), on this
machine with a Ray started for the job or on an existing Ray cluster. Ray retries a window whose worker or node was
lost; the window then continues from its checkpoint, and a window that finished is never trained again (its
folder's done.json, engine/shot.py).

Ray is optional (`pip install 'vinpaint[ray]'`): this is the only module that imports it, and only when asked to.
Every worker reads and writes the shot's work directory, so on a cluster that directory must be on storage every
node sees (NFS, a shared volume)."""
from __future__ import annotations

import os
from typing import Iterator

from vinpaint.errors import InputError, TrainingCancelled, VinpaintError
from .shot import DEFAULT_CLUSTER_CPUS, Window, WindowJob, run_window

RETRIES = 3
"""Times Ray starts a window again after its worker process or node died."""


def _ray():
    try:
        import ray
    except ImportError:
        raise InputError("--ray needs Ray, which is not installed; install it with pip install 'vinpaint[ray]'") \
            from None
    return ray


def _train(job: WindowJob, device: str | None, threads: int | None) -> dict:
    """The task body: the same run_window as the serial path, so both give the same frames."""
    return run_window(job, device, threads)


def gpu_task(nodes: list[tuple[float, float]], threads: int | None) -> tuple[dict, int]:
    """(CPUs, GPUs) of each live node -> (a GPU window's Ray resources, its threads): one GPU and the cores a GPU
    of the leanest GPU node has, so every GPU node can run its windows (a share of the whole cluster's cores, with
    a CPU-only head node, asked more than any GPU node has, and the windows waited for ever). Ray sets a task's
    OMP_NUM_THREADS to its CPUs, which also caps the window's frame workers (engine/parallel.py): with one CPU a
    task, flow, propagation and composition ran on one thread beside an idle GPU."""
    shares = [int(cpus) // int(gpus) for cpus, gpus in nodes if gpus >= 1]
    share = max(1, min(shares)) if shares else 1
    return {"num_gpus": 1, "num_cpus": share}, threads or share


class RayRunner:
    """Windows as Ray tasks. `address` None: a local Ray started for the job with `workers` slots (GPUs on a CUDA
    machine, else processes of `os.cpu_count() // workers` threads each); an address: that cluster, each window
    asking for one GPU when the cluster has any, else `cpus_per_window` cores."""

    def __init__(self, address: str | None = None, workers: int | None = None, device: str | None = None,
                 cpus_per_window: int = DEFAULT_CLUSTER_CPUS, threads: int | None = None, should_stop=None):
        ray = self.ray = _ray()
        self.started_here = False
        if workers is not None and workers < 1:
            raise InputError(f"--ray-workers must be at least 1, not {workers}")
        if not ray.is_initialized():
            try:
                if address:
                    ray.init(address=address, log_to_driver=False, logging_level="ERROR")
                else:
                    gpus = _local_gpus(device)
                    # With GPUs, every core is offered: each GPU window takes its share for its CPU stages.
                    slots = (os.cpu_count() or 1) if gpus else workers or max(1, (os.cpu_count() or 2) // 2)
                    ray.init(num_cpus=slots, num_gpus=gpus, include_dashboard=False, log_to_driver=False,
                             logging_level="ERROR")
            except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
                where = f"the Ray cluster at {address}" if address else "a local Ray"
                hint = ""
                if address and os.environ.get("RAY_AUTH_MODE", "") != "token":
                    hint = ("; if the cluster uses token authentication (`ray start` turns it on from Ray 2.59), "
                            "set RAY_AUTH_MODE=token here, with the cluster's token in ~/.ray/auth_token or "
                            "RAY_AUTH_TOKEN")
                raise InputError(f"cannot start or reach {where}: {_first_line(exc)}{hint}") from None
            self.started_here = True
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0)) if device != "cpu" else 0
        if gpus:
            nodes = [(n["Resources"].get("CPU", 0), n["Resources"].get("GPU", 0))
                     for n in ray.nodes() if n.get("Alive")]
            options, self.threads = gpu_task(nodes, threads)
            capacity, self.device = gpus, "cuda"
        elif address:
            cpus = max(1, min(cpus_per_window, int(resources.get("CPU", 1))))
            options, capacity, self.device = {"num_cpus": cpus}, max(1, int(resources.get("CPU", 1)) // cpus), "cpu"
            self.threads = threads or cpus
        else:
            slots = max(1, int(resources.get("CPU", 1)))
            options, capacity, self.device = {"num_cpus": 1}, slots, "cpu"
            self.threads = threads or max(1, (os.cpu_count() or 1) // slots)
        self.capacity = min(workers, capacity) if workers and gpus else workers or capacity  # a window a GPU
        self.task = ray.remote(max_retries=RETRIES, retry_exceptions=False, **options)(_train)
        self.pending: dict = {}
        self.early: list[tuple[Window, dict]] = []
        """Windows that finished while submit() waited for a free slot, reported by the next finished()."""
        self.should_stop = should_stop or (lambda: False)

    def submit(self, job: WindowJob) -> None:
        """Queue a window; waits first while every slot is busy, so only the windows in flight are held."""
        while len(self.pending) >= self.capacity:
            self._wait(True, self.early)
        self.pending[self.task.remote(job, self.device, self.threads)] = job.window

    def finished(self, block: bool) -> Iterator[tuple[Window, dict]]:
        early, self.early = self.early, []
        yield from early
        if self.pending and not (early and block):
            out: list = []
            self._wait(block, out)
            yield from out

    def _wait(self, block: bool, into: list) -> None:
        while True:
            ready, _ = self.ray.wait(list(self.pending), num_returns=1, timeout=0.5 if block else 0)
            if ready or not block:
                break
            if self.should_stop():
                raise TrainingCancelled("stopped; finished windows are kept")
        for ref in ready:
            window = self.pending.pop(ref)
            into.append((window, self._result(ref, window)))

    def _result(self, ref, window: Window) -> dict:
        try:
            return self.ray.get(ref)
        except self.ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, VinpaintError):  # with its fields (a damaged file's path, a setting's name)
                raise cause from None
            raise VinpaintError(f"window {window.index + 1} (frames {window.start}-{window.stop - 1}) failed: "
                                f"{_first_line(cause or exc)}; finished windows are kept, run again to continue") \
                from None
        except getattr(self.ray.exceptions, "UnserializableException", ()) as exc:  # an error Ray cannot carry
            raise VinpaintError(f"window {window.index + 1} (frames {window.start}-{window.stop - 1}) failed: "
                                f"{_first_line(exc)}; finished windows are kept, run again to continue") from None
        except (self.ray.exceptions.WorkerCrashedError, self.ray.exceptions.NodeDiedError,
                self.ray.exceptions.ObjectLostError) as exc:
            raise VinpaintError(f"window {window.index + 1} was lost {RETRIES + 1} times ({type(exc).__name__}); "
                                "finished windows are kept, run again to continue") from None

    def close(self) -> None:
        for ref in list(self.pending):
            self.ray.cancel(ref, force=True)
        self.pending.clear()
        if self.started_here:
            self.ray.shutdown()


def _local_gpus(device: str | None) -> int:
    if device == "cpu":
        return 0
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[-1] if text else type(exc).__name__)[:200]
