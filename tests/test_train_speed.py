"""The speed settings of the training step (train.readback_every, batches_per_step, precision, channels_last,
capture, deterministic): each keeps what training promises (same seed same result, roll-back, resume, cancel) or
falls back cleanly. No timing is asserted here: speed lives in bench/.

VINPAINT_TEST_DEVICE=cuda runs these on a GPU (bench/gpu_check.py does); the default is the CPU.
"""
import contextlib
import functools
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from test_engine_e2e import panning_clip
from vinpaint.engine import TrainingCancelled, inpaint, make_config
from vinpaint.engine.devices import native_bf16, resolved_precision
from vinpaint.engine.flow import DISFlow, compute_known_flow
from vinpaint.engine.losses import consistency_loss, gather_warp
from vinpaint.engine.train import (OPTIMIZER_FLAGS, Batch, TrainingData, VideoTrainer, device_settings,
                                   load_checkpoint, load_optimizer_state, make_noise)
from vinpaint.engine.warp import backward_warp
from vinpaint.errors import InputError

DEVICE = os.environ.get("VINPAINT_TEST_DEVICE", "cpu")
QUIET = {"loss.perceptual": 0.0, "propagation.enabled": False}


def run(variant="dip-vid-flow", workdir=None, **settings):
    clip, masks = panning_clip()
    config = make_config("tiny", variant, **{**QUIET, **settings})
    return inpaint(clip, masks, config, workdir=workdir, device=DEVICE)


def trainer_for(variant="dip-vid-flow", workdir=None, **settings):
    clip, masks = panning_clip()
    t, h, w = masks.shape
    work = clip.astype(np.float32) / 255.0
    work[masks] = 0.5
    config = make_config("tiny", variant, **{**QUIET, **settings})
    kf = compute_known_flow((work * 255).round().astype(np.uint8), masks, DISFlow("ultrafast"), 0.5) \
        if config.uses_flow else None
    data = TrainingData(torch.from_numpy(work).permute(0, 3, 1, 2).contiguous(),
                        torch.from_numpy(~masks).float()[:, None], make_noise(t, h, w, 0), kf)
    return VideoTrainer(config, data, None, torch.device(DEVICE), workdir=workdir)


@pytest.mark.parametrize("variant", ["dip-vid-flow", "dip-vid-3dcn"])
def test_reading_losses_back_every_k_steps_changes_nothing(variant):
    every = run(variant, **{"train.max_steps": 10, "train.readback_every": 1})
    batched = run(variant, **{"train.max_steps": 10, "train.readback_every": 4})
    assert np.array_equal(every.generated, batched.generated)
    assert np.array_equal(every.history, batched.history)
    assert [int(s) for s in batched.history[:, 0]] == list(range(1, 11))


def test_a_divergence_found_at_a_late_read_back_rolls_back_exactly_as_one_found_at_once(tmp_path):
    settings = {"train.learning_rate": 1e4, "train.max_steps": 12, "train.updates_per_batch": 4,
                "train.divergence_factor": 1.5}
    at_once = run("dip-vid-flow", workdir=tmp_path / "a", **settings, **{"train.readback_every": 1})
    late = run("dip-vid-flow", workdir=tmp_path / "b", **settings, **{"train.readback_every": 3})

    def rollbacks(path):
        log = (path / "log.txt").read_text()
        return int(log.split(" roll-backs")[0].rsplit(", ", 1)[1])

    assert rollbacks(tmp_path / "a") >= 1
    assert rollbacks(tmp_path / "a") == rollbacks(tmp_path / "b")
    assert np.array_equal(at_once.history, late.history)  # the same steps were kept, with the same losses
    assert np.array_equal(at_once.generated, late.generated)
    assert np.isfinite(late.generated).all()


def test_cancel_with_losses_pending_checkpoints_and_resumes_to_the_same_result(tmp_path):
    settings = {"train.max_steps": 8, "train.readback_every": 5}
    reference = run(**settings)
    calls = {"n": 0}

    def stop_after_three():
        calls["n"] += 1
        return calls["n"] > 3

    clip, masks = panning_clip()
    config = make_config("tiny", "dip-vid-flow", **{**QUIET, **settings})
    with pytest.raises(TrainingCancelled, match="stopped at step 3 "):
        inpaint(clip, masks, config, workdir=tmp_path, should_stop=stop_after_three, device=DEVICE)
    seen = []
    resumed = inpaint(clip, masks, config, workdir=tmp_path, progress=seen.append, device=DEVICE)
    assert [e.step for e in seen if e.phase == "train"][0] == 4
    assert np.allclose(resumed.generated, reference.generated, atol=1e-6)
    assert np.array_equal(resumed.history, reference.history)


def test_progress_reports_every_step_once_in_order_whatever_the_read_back_interval():
    clip, masks = panning_clip()
    config = make_config("tiny", "dip-vid", **{**QUIET, "train.max_steps": 9, "train.readback_every": 4})
    seen = []
    inpaint(clip, masks, config, progress=seen.append, device=DEVICE)
    train = [e for e in seen if e.phase == "train"]
    assert [e.step for e in train] == list(range(1, 10))
    assert all(set(e.losses) == {"total", "recon"} and math.isfinite(e.losses["total"]) for e in train)


def test_a_rollback_to_a_snapshot_from_before_the_first_step_equals_a_fresh_optimizer():
    a, b = trainer_for(), trainer_for()
    table = a.tables()[0]
    before = b.state.snapshot()  # no Adam state yet
    for _ in range(2):
        b._eager_step(table, 1.0)
    b.state.restore(before)  # moments and step count zeroed in place, weights and BatchNorm buffers copied back
    for t in (a, b):
        for _ in range(2):
            t._eager_step(table, 1.0)
    for pa, pb in zip(a.model.state_dict().values(), b.model.state_dict().values()):
        assert torch.equal(pa, pb)


def test_several_batches_per_step_average_the_batches_losses():
    trainer = trainer_for(**{"train.batches_per_step": 2})
    trainer.model.eval()  # BatchNorm from running statistics: each frame's output then depends on it alone
    groups = trainer.tables()
    assert len(trainer.groups[0]) == 2 and groups[0]["frames"].numel() == 2 * trainer.n
    single = [trainer_for() for _ in range(1)][0]
    single.model.load_state_dict(trainer.model.state_dict())
    single.model.eval()
    with torch.no_grad():
        both = trainer._loss_vector(groups[0], 1.0)
        each = [single.losses(batch) for batch in trainer.groups[0]]
    for i, term in enumerate(("total", "recon", "flow", "consistency")):
        mean = (float(each[0][term]) + float(each[1][term])) / 2
        assert float(both[[0, 1, 2, 3][i]]) == pytest.approx(mean, rel=1e-4, abs=1e-7), term


def test_several_batches_per_step_train_and_take_fewer_steps():
    one = trainer_for(**{"train.max_steps": 0})
    two = trainer_for(**{"train.max_steps": 0, "train.batches_per_step": 2})
    m = one.config.train.updates_per_batch
    assert two.total == math.ceil(len(one.schedule) / 2) * m
    result = run(**{"train.batches_per_step": 2, "train.max_steps": 6})
    assert result.steps == 6 and np.isfinite(result.generated).all()
    three_d = run("dip-vid-3dcn", **{"train.batches_per_step": 2, "train.max_steps": 4})
    assert np.isfinite(three_d.generated).all()


@pytest.mark.parametrize("settings", [{"train.precision": "bf16"}, {"train.channels_last": True},
                                      {"train.precision": "tf32"}])
def test_precision_and_memory_order_settings_train_close_to_the_default(settings):
    base = trainer_for()
    other = trainer_for(**settings)
    table = base.tables()[0]
    first = [float(t._eager_step(table, 1.0)[0]) for t in (base, other)]
    tolerance = 2e-2 if settings.get("train.precision") == "bf16" else 1e-4
    assert first[1] == pytest.approx(first[0], rel=tolerance)
    result = run(**{"train.max_steps": 4, **settings})
    assert np.isfinite(result.generated).all() and result.steps == 4


def test_bf16_training_generates_frames_finer_than_bf16():
    """The heads run in fp32 under autocast: generated frames in bf16 carried 8 bits (276 distinct values on this
    clip), off by a level in 8-bit output and banded in 16-bit and float plates."""
    result = run(**{"train.max_steps": 4, "train.precision": "bf16"})
    values = np.unique(result.generated)
    assert len(values) > 10_000, len(values)
    as_bf16 = torch.from_numpy(values).to(torch.bfloat16).float().numpy()
    assert np.mean(as_bf16 != values) > 0.5  # most are not bf16 numbers


def test_auto_precision_is_bf16_with_channels_last_only_where_the_cpu_multiplies_bf16_and_tf32_on_cuda():
    native = native_bf16("cpu")
    assert resolved_precision("auto", "cpu") == (("bf16", True) if native else ("fp32", False))
    assert resolved_precision("auto", "cuda") == ("tf32", False) and not native_bf16("cuda")
    assert resolved_precision("tf32", "cpu") == ("tf32", False)  # an explicit choice is never overridden
    trainer = trainer_for(**{"train.precision": "auto"})
    expected = torch.bfloat16 if resolved_precision("auto", DEVICE.split(":")[0])[0] == "bf16" else None
    assert trainer.autocast_dtype == expected and trainer.channels_last == (expected is not None)


@pytest.mark.parametrize("capability,refused", [((7, 5), True), ((8, 0), False)])
def test_bf16_on_a_gpu_without_bf16_units_is_refused_before_any_work(monkeypatch, capability, refused):
    """A Turing card (7.5) would emulate bf16 slowly or fail mid-run: train.precision bf16 is refused with the
    card's capability named; an Ampere one (8.0) runs it. Only the capability is asked (no GPU is touched)."""
    from vinpaint.engine import api

    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    config = make_config("tiny", "dip-vid-flow", **{"train.precision": "bf16"})
    if refused:
        with pytest.raises(InputError, match=r"^train\.precision bf16 needs a GPU with bf16 units \(compute "
                                             r"capability 8\.0, Ampere, or newer\); cuda:0 has 7\.5: use tf32 or fp32\.$"):
            api._resolve_precision(config, torch.device("cuda:0"))
    else:
        assert api._resolve_precision(config, torch.device("cuda:0")) == (config, None)


def test_auto_precision_is_resolved_before_the_run_is_saved_and_reused(tmp_path):
    first = run(workdir=tmp_path, **{"train.precision": "auto", "train.max_steps": 3})
    precision, channels_last = resolved_precision("auto", DEVICE.split(":")[0])
    config_text = (tmp_path / "config.json").read_text()
    assert f'"precision": "{precision}"' in config_text and '"auto"' not in config_text
    assert first.config.train.precision == precision and first.config.train.channels_last == channels_last
    assert f"train.precision auto: {precision}" in (tmp_path / "log.txt").read_text()
    again = run(workdir=tmp_path, **{"train.precision": "auto", "train.max_steps": 3})  # the same run: reused
    assert np.array_equal(again.generated, first.generated)
    assert (tmp_path / "log.txt").read_text().count("training dip-vid-flow") == 1


def test_auto_precision_continues_a_run_that_another_kind_of_device_trained(tmp_path):
    """A daemon's job requeued from its GPU to its CPU (or back): 'auto' resolved otherwise there (tf32 on CUDA), and
    taking the run as another one threw its checkpoint and caches away. It continues at the run's own precision."""
    run(workdir=tmp_path, **{"train.precision": "tf32", "train.max_steps": 3})  # as 'auto' on a CUDA GPU saves it
    assert resolved_precision("auto", DEVICE.split(":")[0])[0] != "tf32"
    resumed = run(workdir=tmp_path, **{"train.precision": "auto", "train.max_steps": 6})
    straight = run(**{"train.precision": "tf32", "train.max_steps": 6})
    assert resumed.config.train.precision == "tf32" and resumed.steps == 6
    assert np.array_equal(resumed.generated, straight.generated)  # resumed from step 3, as one run of 6
    log = (tmp_path / "log.txt").read_text()
    assert "as the run in the work directory trained on another device" in log
    assert '"precision": "tf32"' in (tmp_path / "config.json").read_text()


def test_graph_capture_runs_or_falls_back_with_a_notice_and_the_same_result():
    plain = run(**{"train.max_steps": 6})
    graph = trainer_for(**{"train.max_steps": 6, "train.capture": "graph"})
    if DEVICE == "cpu":
        assert graph.notices and "CUDA" in graph.notices[0]
    captured = run(**{"train.max_steps": 6, "train.capture": "graph"})
    tolerance = 0 if DEVICE == "cpu" else 1e-4  # a replayed graph runs the same kernels; allow for their order
    assert np.allclose(captured.generated, plain.generated, atol=tolerance)


def _fake_cuda(monkeypatch, capture_error: Exception | None):
    """torch.cuda's stream and graph calls as the trainer's capture makes them, on a CPU: a log of the calls, and a
    graph capture that raises `capture_error` (as a driver or an op that cannot be captured does)."""
    log, current = [], []

    class Stream:
        def __init__(self, device=None):
            self.device = device
            log.append(("stream", device, list(current)))

        def wait_stream(self, other):
            pass

    @contextlib.contextmanager
    def device(d):
        current.append(d)
        try:
            yield
        finally:
            current.pop()

    @contextlib.contextmanager
    def graph(g, stream=None, **kwargs):
        log.append(("graph", stream.device if stream is not None else None, list(current)))
        raise capture_error
        yield

    monkeypatch.setattr(torch.cuda, "Stream", Stream)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: Stream(device))
    monkeypatch.setattr(torch.cuda, "stream", lambda s: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "device", device)
    monkeypatch.setattr(torch.cuda, "CUDAGraph", lambda: object())
    monkeypatch.setattr(torch.cuda, "graph", graph)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)
    return log


def test_a_graph_capture_that_fails_leaves_the_trainer_as_it_was_before_it(monkeypatch):
    """The capture trains three warm-up steps first; when the capture then fails, eager training goes on from the
    state before them (not from weights 3 steps on, with Adam's count at 4), so the run is the eager run."""
    eager, graph = trainer_for("dip-vid"), trainer_for("dip-vid")
    graph.graph_mode = True  # what a CUDA device sets
    log = _fake_cuda(monkeypatch, RuntimeError("CUDA error: operation not permitted when stream is capturing"))
    tables = eager.tables()
    for step in range(3):
        want = eager._step(tables[0], 1.0)
        got = graph._step(graph.tables()[0], 1.0)
        assert torch.equal(got, want), step
    assert not graph.graph_mode and "train.capture=graph failed" in graph.notices[-1]
    for a, b in zip(eager.model.state_dict().values(), graph.model.state_dict().values()):
        assert torch.equal(a, b)
    counts = [[float(st["step"]) for st in t.optimizer.state.values()] for t in (eager, graph)]
    assert counts[0] == counts[1] and set(counts[0]) == {3.0}
    # the warm-up and the capture ran with the run's device made current, the capture on a stream made on it
    assert all(entry[2] == [graph.device] for entry in log if entry[0] in ("stream", "graph")), log
    assert ("graph", graph.device, [graph.device]) in log


def test_running_out_of_memory_in_a_capture_or_a_compiled_step_is_not_retried_eagerly(monkeypatch):
    """A capture or a compiled step that runs out of device memory is the user's to hear about (the worker reports
    it as memory): retried eagerly, it would run out again with the graph's pool still held."""
    from vinpaint.errors import out_of_memory

    full = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    assert out_of_memory(full) and out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory"))
    graph = trainer_for("dip-vid")
    graph.graph_mode = True
    _fake_cuda(monkeypatch, full)
    with pytest.raises(torch.OutOfMemoryError):
        graph._step(graph.tables()[0], 1.0)
    assert graph.graph_mode and not any("failed" in n for n in graph.notices)

    compiled = trainer_for("dip-vid")

    def runs_out(table, ramp):
        raise full

    compiled._loss_fn = runs_out
    with pytest.raises(torch.OutOfMemoryError):
        compiled._eager_step(compiled.tables()[0], 1.0)
    compiled._loss_fn = lambda table, ramp: (_ for _ in ()).throw(RuntimeError("inductor cannot build"))
    assert torch.isfinite(compiled._eager_step(compiled.tables()[0], 1.0)).all()  # any other failure: eager
    assert "train.capture=compile failed here (RuntimeError)" in compiled.notices[-1]

    class BackwardFails(torch.autograd.Function):  # torch.compile builds the backward at the first backward()
        @staticmethod
        def forward(ctx, x):
            return x.clone()

        @staticmethod
        def backward(ctx, grad):
            raise RuntimeError("inductor cannot build the backward")

    late = trainer_for("dip-vid")
    late._loss_fn = lambda table, ramp: BackwardFails.apply(late._loss_vector(table, float(ramp)))
    eager = trainer_for("dip-vid")
    table = late.tables()[0]
    assert torch.equal(late._eager_step(table, 1.0), eager._eager_step(eager.tables()[0], 1.0))
    assert late._loss_fn == late._loss_vector and "compile failed here" in late.notices[-1]
    assert all(torch.equal(a, b) for a, b in zip(late.model.parameters(), eager.model.parameters())), \
        "the fallback makes exactly one eager step"


def test_a_checkpoint_resumed_keeps_the_optimizer_flags_the_trainer_built(tmp_path, monkeypatch):
    """A checkpoint written on a CPU (Adam neither fused nor capturable) and resumed where the trainer builds a
    fused, capturable Adam (CUDA with train.capture=graph) keeps fused and capturable: load_state_dict alone
    takes them from the checkpoint, and a graph capture of an Adam that is not capturable fails."""
    # the rule on its own, the other way: a fused, capturable Adam's state into a plain Adam leaves it plain
    params = list(torch.nn.Linear(3, 2).parameters())
    fused = torch.optim.Adam(params, lr=0.01, fused=True, capturable=True)
    sum(p.sum() for p in params).backward()
    fused.step()
    plain = torch.optim.Adam(params, lr=0.01, foreach=False)
    load_optimizer_state(plain, fused.state_dict())
    assert [plain.param_groups[0][k] for k in ("fused", "capturable", "foreach")] == [None, False, False]
    assert all(float(st["step"]) == 1.0 for st in plain.state.values())

    settings = {"train.max_steps": 2, "train.checkpoint_every_s": 86400.0}
    first = trainer_for("dip-vid", workdir=tmp_path, **settings)
    first.train()
    saved = load_checkpoint(tmp_path / "checkpoint.pt")["optimizer"]
    assert not saved["param_groups"][0]["fused"] and not saved["param_groups"][0]["capturable"]

    built = functools.partial(torch.optim.Adam, fused=True, capturable=True)  # fused Adam runs on a CPU too
    monkeypatch.setattr(torch.optim, "Adam", built)
    resumed = trainer_for("dip-vid", workdir=tmp_path, **{**settings, "train.max_steps": 4})
    want = [{k: g[k] for k in OPTIMIZER_FLAGS} for g in resumed.optimizer.param_groups]
    assert want[0]["fused"] and want[0]["capturable"]
    resumed.train()
    assert resumed.steps == 4
    assert [{k: g[k] for k in OPTIMIZER_FLAGS} for g in resumed.optimizer.param_groups] == want
    steps = [st["step"] for st in resumed.optimizer.state.values()]
    assert all(s.dtype == torch.float32 and float(s) == 4.0 for s in steps)


def test_compile_traces_the_step_and_trains_like_eager(monkeypatch):
    """On a CPU, capture=compile falls back to eager (inductor would take minutes per run); the traced step is
    checked here with torch.compile's 'eager' backend, on CUDA with reduce-overhead."""
    plain = run(**{"train.max_steps": 3})
    fallback = trainer_for(**{"train.capture": "compile"})
    if DEVICE == "cpu":
        assert "pays only on CUDA" in fallback.notices[0]
        monkeypatch.setenv("VINPAINT_CPU_COMPILE_BACKEND", "eager")
    compiled = run(**{"train.max_steps": 3, "train.capture": "compile"})
    assert np.isfinite(compiled.generated).all()
    assert np.allclose(compiled.history[:, 1], plain.history[:, 1], rtol=1e-3)


def test_gather_warp_matches_grid_sample_in_values_and_gradients():
    torch.manual_seed(0)
    image = torch.rand(2, 3, 9, 13, dtype=torch.float64, requires_grad=True)
    flow = (torch.randn(2, 2, 9, 13, dtype=torch.float64) * 3).requires_grad_(True)
    a, valid_a = backward_warp(image, flow, return_valid=True)
    b, valid_b = gather_warp(image, flow)
    assert torch.allclose(a, b, atol=1e-12) and torch.equal(valid_a, valid_b)
    weights = torch.randn_like(a)
    grads_a = torch.autograd.grad((a * weights).sum(), (image, flow))
    grads_b = torch.autograd.grad((b * weights).sum(), (image, flow))
    for ga, gb in zip(grads_a, grads_b):
        assert torch.allclose(ga, gb, atol=1e-10)
    rel = (torch.rand(2, 1, 9, 13) > 0.5).double()
    loss_a = consistency_loss(image, image.flip(0), flow, rel)
    loss_b = consistency_loss(image, image.flip(0), flow, rel, deterministic_warp=True)
    assert float(loss_a) == pytest.approx(float(loss_b), rel=1e-12)


def test_gather_warp_takes_a_nan_flow_as_a_nan_warp_and_gradient_not_an_index_error():
    """A diverging step's NaN flow: grid_sample gives NaN and the step is rolled back; the deterministic warp (what a
    GPU trains with) must do the same, not index out of range (on CUDA a device-side assert that ends the run, and
    the same step fails again on every resume)."""
    image = torch.rand(1, 3, 6, 7, requires_grad=True)
    flow = torch.zeros(1, 2, 6, 7)
    flow[0, 0, 2, 3] = float("nan")
    flow[0, 1, 4, 1] = float("inf")
    flow.requires_grad_(True)
    warped, _ = gather_warp(image, flow)
    assert torch.isnan(warped[0, :, 2, 3]).all() and torch.isfinite(warped[0, :, 0, 0]).all()
    loss = consistency_loss(image, image, flow, torch.ones(1, 1, 6, 7), deterministic_warp=True)
    assert not torch.isfinite(loss)
    loss.backward()  # the range-checked index_add of the backward


def test_deterministic_settings_are_handed_back_after_a_run():
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic,
              torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32)
    config = make_config("tiny", "dip-vid", **{"train.deterministic": True, "train.precision": "tf32"})
    with device_settings(config.train, torch.device(DEVICE)):
        if DEVICE.startswith("cuda"):
            assert torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.deterministic
    after = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic,
             torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32)
    assert before == after


def test_a_process_that_set_tf32_through_torchs_newer_settings_still_runs():
    """torch 2.9+ refuses to read the old TF32 switches once the newer fp32_precision ones disagree with them (a
    host application may set those); a run must neither fail on that nor change them. A fresh process: the
    settings are process-wide."""
    script = textwrap.dedent("""
        import torch
        from vinpaint.engine import make_config
        from vinpaint.engine.train import device_settings
        if not hasattr(torch.backends.cuda.matmul, "fp32_precision"):
            print("no fp32_precision")
            raise SystemExit
        torch.backends.cuda.matmul.fp32_precision = "tf32"
        torch.backends.cudnn.conv.fp32_precision = "ieee"
        with device_settings(make_config("tiny").train, torch.device("cpu")):
            pass
        print(torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    if "no fp32_precision" in done.stdout:
        pytest.skip("this torch has no fp32_precision settings")
    assert done.stdout.split() == ["tf32", "ieee"]


def test_the_same_seed_gives_the_same_result_with_every_speed_setting_on():
    settings = {"train.max_steps": 5, "train.readback_every": 2, "train.channels_last": True,
                "train.batches_per_step": 2, "train.capture": "graph"}
    a, b = run(**settings), run(**settings)
    assert np.array_equal(a.generated, b.generated)


def test_the_old_single_batch_loss_api_still_answers():
    trainer = trainer_for(**{"loss.consistency_warmup": 10})
    with torch.no_grad():
        terms = trainer.losses(Batch(0, 1, 1), 4)
    assert set(terms) == {"total", "recon", "flow", "consistency"}
    rest = terms["recon"] + trainer.config.loss.flow * terms["flow"]
    assert float(terms["total"]) == pytest.approx(float(rest + 0.5 * terms["consistency"]), rel=1e-5)
