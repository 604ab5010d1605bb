"""The engine end to end on tiny clips: it fills holes from other frames, resumes, and survives divergence."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vinpaint.engine import TrainingCancelled, inpaint, make_config
from vinpaint.evaluation.metrics import hole_psnr


def panning_clip(frames=12, h=64, w=128, speed=4, seed=0):
    """A smooth texture sliding left under a fixed hole: what the hole hides now, other frames show."""
    rng = np.random.default_rng(seed)
    coarse = torch.from_numpy(rng.random((3, h // 16 + 2, (w + speed * frames) // 16 + 2)).astype(np.float32))
    tex = F.interpolate(coarse[None], size=(h, w + speed * frames), mode="bicubic", align_corners=False)
    tex = tex[0].clamp(0, 1).permute(1, 2, 0).numpy()
    clip = (np.stack([tex[:, speed * i:speed * i + w] for i in range(frames)]) * 255).round().astype(np.uint8)
    masks = np.zeros((frames, h, w), bool)
    masks[:, 20:40, 50:74] = True
    return clip, masks


TRAINED = {"propagation.enabled": False}
"""Propagation fills this clip's whole hole from other frames (nothing left to train); these tests are about the
training itself."""


@pytest.mark.slow
def test_flow_variant_fills_the_hole_far_better_than_a_trivial_fill():
    clip, masks = panning_clip()
    config = make_config("tiny", "dip-vid-flow", **{"train.max_steps": 200, "train.updates_per_batch": 10,
                                                     "train.epochs": 50.0, "propagation.enabled": False})
    result = inpaint(clip, masks, config)
    trivial = clip.copy()
    for i in range(len(clip)):  # each frame's hole filled with the mean colour of what is known in it
        trivial[i][masks[i]] = clip[i][~masks[i]].mean(0).round().astype(np.uint8)
    ours, base = hole_psnr(result.frames, clip, masks), hole_psnr(trivial, clip, masks)
    assert ours > base + 3.0, (ours, base)  # at least half the squared error of the trivial fill
    assert np.array_equal(result.frames[~masks], clip[~masks])
    assert result.flows.shape == (12, 6, 64, 128, 2)
    # the generated +1 flow in the known area follows the true motion (content moves 4 px left per frame)
    fx = result.flows[2:9, 0, :, :, 0][:, ~masks[0]]
    assert np.median(fx) == pytest.approx(-4.0, abs=1.5)


def test_dip_keeps_its_last_iteration_as_a_snapshot_when_the_run_is_not_a_multiple_of_the_interval():
    clip, masks = panning_clip(frames=2)

    def run(iterations, every):
        config = make_config("tiny", "dip", **{"train.dip_iterations": iterations,
                                               "train.dip_snapshot_every": every, "loss.perceptual": 0.0})
        return inpaint(clip, masks, config)

    both, at_three, at_five = run(5, 3), run(3, 3), run(5, 5)  # snapshots at {3, 5}, {3} and {5}
    losses = both.history[:5, 1]  # frame 0: the loss of the image each iteration snapshots
    assert losses[4] < losses[2], "precondition: iteration 5 is the better snapshot"
    assert np.array_equal(both.generated[0], at_five.generated[0])
    assert not np.array_equal(both.generated[0], at_three.generated[0])


@pytest.mark.parametrize("variant,average", [("dip-vid-flow", 0.0), ("dip", 0.0), ("dip-vid-flow", 0.9)])
def test_interrupted_run_resumes_to_the_same_result(tmp_path, variant, average):
    clip, masks = panning_clip()
    config = make_config("tiny", variant, **{"train.max_steps": 8, "train.ema_decay": average,
                                             "propagation.enabled": False})  # training is what resumes
    reference = inpaint(clip, masks, config)
    calls = {"n": 0}

    def stop_after_three():
        calls["n"] += 1
        return calls["n"] > 3

    with pytest.raises(TrainingCancelled, match="checkpoint saved"):
        inpaint(clip, masks, config, workdir=tmp_path, should_stop=stop_after_three)
    assert (tmp_path / "checkpoint.pt").is_file() and not (tmp_path / "result.npz").exists()
    if average:  # the weight average is in the checkpoint, so the resumed run averages the same steps
        saved = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["model"]
        assert any(k.startswith("weight_average.") for k in saved) and float(saved["weight_average.updates"]) == 3
    seen = []
    resumed = inpaint(clip, masks, config, workdir=tmp_path, progress=lambda e: seen.append(e))
    steps = [e.step for e in seen if e.phase == "train"]
    assert steps[0] == 4  # continued after the 3 steps already taken, not from zero
    assert np.array_equal(resumed.frames, reference.frames)
    assert np.allclose(resumed.generated, reference.generated, atol=1e-6)
    # and a finished run is served from the work dir without training again
    seen.clear()
    again = inpaint(clip, masks, config, workdir=tmp_path, progress=lambda e: seen.append(e))
    assert not [e for e in seen if e.phase == "train"]
    assert np.array_equal(again.frames, reference.frames)


def test_same_seed_same_result_other_seed_other_result():
    clip, masks = panning_clip()
    a = inpaint(clip, masks, make_config("tiny", "dip-vid", **{"train.seed": 1, **TRAINED}))
    b = inpaint(clip, masks, make_config("tiny", "dip-vid", **{"train.seed": 1, **TRAINED}))
    c = inpaint(clip, masks, make_config("tiny", "dip-vid", **{"train.seed": 2, **TRAINED}))
    assert np.array_equal(a.frames, b.frames)
    assert not np.array_equal(a.generated, c.generated)


def test_a_work_dir_of_another_clip_is_refused_not_overwritten(tmp_path):
    clip, masks = panning_clip()
    config = make_config("tiny", "dip-vid")
    inpaint(clip, masks, config, workdir=tmp_path)
    before = (tmp_path / "result.npz").read_bytes()
    from vinpaint.engine import InputError
    with pytest.raises(InputError, match="holds a run of other frames or settings"):
        inpaint(clip[::-1].copy(), masks, config, workdir=tmp_path)
    assert (tmp_path / "result.npz").read_bytes() == before


def test_a_finished_run_is_feathered_again_without_training_and_an_earlier_work_dir_is_taken_over(tmp_path):
    """The feather acts on composition alone: another value composes the cached result again (no training), as a
    fresh run with that value would. A work directory keyed by an earlier version (the feather in its key) is the
    same run and is taken over, not refused."""
    import json

    from vinpaint.engine.api import fingerprint

    clip, masks = panning_clip()
    sharp = make_config("tiny", "dip-vid", **TRAINED)
    soft = make_config("tiny", "dip-vid", **{**TRAINED, "mask.feather": 4})
    first = inpaint(clip, masks, sharp, workdir=tmp_path / "work")
    seen = []
    again = inpaint(clip, masks, soft, workdir=tmp_path / "work", progress=seen.append)
    assert not [e for e in seen if e.phase == "train"]  # before: refused as a run of other settings
    fresh = inpaint(clip, masks, soft, workdir=tmp_path / "fresh")
    assert np.array_equal(again.frames, fresh.frames) and not np.array_equal(again.frames, first.frames)
    assert np.array_equal(again.frames[~masks], clip[~masks])
    run = tmp_path / "fresh" / "run.json"
    run.write_text(json.dumps({"fingerprint": fingerprint(clip, masks, soft, with_feather=True)}))
    seen.clear()
    taken = inpaint(clip, masks, soft, workdir=tmp_path / "fresh", progress=seen.append)
    assert not [e for e in seen if e.phase == "train"] and np.array_equal(taken.frames, fresh.frames)
    assert json.loads(run.read_text())["fingerprint"] == fingerprint(clip, masks, soft)


def test_dip_cut_short_by_its_step_budget_trains_on_under_a_larger_one_as_a_fresh_run(tmp_path):
    """DIP trains frame by frame; a budget that ends inside a frame used to record that frame (and every later
    one) as finished, so the same work directory with a larger budget returned the short run's frames under the
    new step count."""
    clip, masks = panning_clip()
    settings = {**TRAINED, "loss.perceptual": 0.0}
    short = inpaint(clip, masks, make_config("tiny", "dip", **settings, **{"train.max_steps": 6}), workdir=tmp_path)
    longer = make_config("tiny", "dip", **settings, **{"train.max_steps": 30})
    continued = inpaint(clip, masks, longer, workdir=tmp_path)
    fresh = inpaint(clip, masks, longer)
    assert continued.steps == fresh.steps == 30
    assert np.array_equal(continued.frames, fresh.frames) and not np.array_equal(continued.frames, short.frames)


def test_divergence_is_rolled_back_and_the_output_stays_finite(tmp_path):
    clip, masks = panning_clip()
    # An absurd learning rate makes Adam blow up within a few steps: each blow-up must be undone.
    config = make_config("tiny", "dip-vid-flow", **{"train.learning_rate": 1e4, "train.max_steps": 12,
                                                     "train.updates_per_batch": 4, "train.divergence_factor": 1.5,
                                                     **TRAINED})
    result = inpaint(clip, masks, config, workdir=tmp_path)
    log = (tmp_path / "log.txt").read_text()
    rollbacks = int(log.split(" roll-backs")[0].rsplit(", ", 1)[1])
    assert rollbacks >= 1
    assert np.isfinite(result.generated).all()
    assert np.isfinite(result.history[:, 1]).all()


def test_float_and_16_bit_sources_keep_their_dtype_and_their_pixels():
    clip, masks = panning_clip()
    config = make_config("tiny", "dip-vid", **{"mask.dilation": 2, "mask.feather": 2})
    for frames in (clip.astype(np.float32) / 255.0, clip.astype(np.uint16) * 257):
        result = inpaint(frames, masks, config)
        assert result.frames.dtype == frames.dtype
        assert result.hole.sum() > masks.sum()  # dilated
        assert np.array_equal(result.frames[~result.hole], frames[~result.hole])


def test_a_larger_budget_continues_the_same_work_dir(tmp_path):
    clip, masks = panning_clip()
    short = make_config("tiny", "dip-vid-flow", **{"train.max_steps": 3, **TRAINED})
    longer = make_config("tiny", "dip-vid-flow", **{"train.max_steps": 6, **TRAINED})
    inpaint(clip, masks, short, workdir=tmp_path)
    seen = []
    continued = inpaint(clip, masks, longer, workdir=tmp_path, progress=seen.append)
    assert [e.step for e in seen if e.phase == "train"] == [4, 5, 6]
    assert np.allclose(continued.generated, inpaint(clip, masks, longer).generated, atol=1e-6)
