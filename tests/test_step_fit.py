"""train.fit_seconds: on a slow machine the step count is lowered once, early, and the config saved with the result
holds the count, so the run can be repeated exactly anywhere."""
from __future__ import annotations

import json
import re

import numpy as np

from vinpaint.engine import inpaint, make_config
from vinpaint.engine.api import AFTER_PER_BEFORE, fingerprint, outside_training
from vinpaint.engine.config import InpaintConfig
from vinpaint.engine.train import FIT_TIMED, FIT_WARMUP, _Run


def _clip():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (12, 64, 128, 3), dtype=np.uint8)
    masks = np.zeros((12, 64, 128), bool)
    masks[:, 20:40, 40:80] = True
    return frames, masks


def _config(**dotted):
    return make_config("tiny", **{"train.max_steps": 60, "propagation.enabled": False, **dotted})


def test_a_slow_machine_trains_fewer_steps_and_the_saved_config_repeats_the_run(tmp_path):
    frames, masks = _clip()
    result = inpaint(frames, masks, _config(**{"train.fit_seconds": 1e-3}), workdir=tmp_path / "a")
    fitted = FIT_WARMUP + FIT_TIMED  # no second is left after the timed steps: training ends there
    assert result.steps == fitted
    line = next(n for n in result.notices if n.startswith("train.fit_seconds"))
    assert f"so {fitted} steps of" in line
    assert line in (tmp_path / "a" / "log.txt").read_text()
    assert result.config.train.max_steps == fitted and result.config.train.fit_seconds == 0.0
    saved = InpaintConfig.from_dict(json.loads((tmp_path / "a" / "config.json").read_text()))
    assert saved.train.max_steps == fitted and saved.train.fit_seconds == 0.0

    again = inpaint(frames, masks, saved, workdir=tmp_path / "b")  # another directory, no fit: the same frames
    assert again.steps == fitted and not any(n.startswith("train.fit_seconds") for n in again.notices)
    assert np.array_equal(again.frames, result.frames)

    reused = inpaint(frames, masks, _config(**{"train.fit_seconds": 1e-3}), workdir=tmp_path / "a")
    assert reused.steps == fitted and reused.config.train.max_steps == fitted  # the cached result, as it ran
    assert np.array_equal(reused.frames, result.frames)


def test_a_fast_machine_keeps_every_step_and_says_nothing(tmp_path):
    frames, masks = _clip()
    result = inpaint(frames, masks, _config(**{"train.fit_seconds": 86400.0}), workdir=tmp_path)
    plain = inpaint(frames, masks, _config(), workdir=None)
    assert result.steps == plain.steps > FIT_WARMUP + FIT_TIMED
    assert not any(n.startswith("train.fit_seconds") for n in result.notices)
    assert np.array_equal(result.frames, plain.frames)


def test_a_resumed_run_keeps_the_count_it_was_fitted_to(tmp_path):
    config = _config(**{"train.fit_seconds": 100.0})
    first = _Run(config, tmp_path, total=200, progress=None, should_stop=None)
    first.fit(step=13, seconds_per_step=2.0)  # 100 s at 2 s a step, some of them gone: under 63 steps
    assert first.fitted and 13 <= first.max_steps < 63 and first.planned == first.max_steps
    first.history = [[13.0, 0.0, 0.0, 0.0, 0.0, 0.0]]
    first.save({"kind": "video", "step": 13})
    resumed = _Run(config, tmp_path, total=200, progress=None, should_stop=None)
    assert not resumed.fitted and resumed.max_steps == 60
    resumed.load()
    assert resumed.fitted and resumed.max_steps == first.max_steps  # not timed again on a resumed run


def test_the_seconds_outside_training_count_against_the_fit():
    """train.fit_seconds bounds the whole run: what flow and propagation took before training, and the estimate for
    what follows it, leave fewer seconds to train in (a large plate spends minutes there)."""
    config = _config(**{"train.fit_seconds": 100.0, "train.max_steps": 1000})
    alone = _Run(config, None, total=2000, progress=None, should_stop=None)
    alone.fit(step=13, seconds_per_step=1.0)
    assert 110 <= alone.max_steps <= 113 and "outside training" not in alone.fit_line
    shared = _Run(config, None, total=2000, progress=None, should_stop=None)
    shared.outside_s = 50.0
    shared.fit(step=13, seconds_per_step=1.0)
    assert 60 <= shared.max_steps <= 63 and "50 s outside training" in shared.fit_line
    late = _Run(config, None, total=2000, progress=None, should_stop=None)
    late.outside_s = 150.0  # nothing left: training ends where the timing did
    late.fit(step=13, seconds_per_step=1.0)
    assert late.max_steps == 13
    assert outside_training(10.0) == 10.0 * (1 + AFTER_PER_BEFORE) and 0 < AFTER_PER_BEFORE < 1


def test_the_fit_is_a_budget_not_a_setting_of_the_result():
    frames, masks = _clip()
    assert fingerprint(frames, masks, _config()) == fingerprint(frames, masks, _config(**{"train.fit_seconds": 5.0}))
    assert json.loads(json.dumps(_config(**{"train.fit_seconds": 5.0}).to_dict()))["train"]["fit_seconds"] == 5.0


def test_submit_saves_the_config_as_the_daemon_ran_it():
    """`vinpaint submit` writes OUT.config.json from the job's last status: a fitted one-window job's step count
    replaces the fit, and one done with 0 steps (no model trained) asks for no model; a long shot (fitted window by
    window) and an unfitted job keep the settings asked for."""
    from vinpaint.cli.commands_submit import ran_as

    fitted = _config(**{"train.fit_seconds": 300.0})
    done = {"state": "done", "step": 17}
    saved = ran_as(fitted, done, frames=12)
    assert saved.train.max_steps == 17 and saved.train.fit_seconds == 0.0
    assert saved.replace(**{"train.max_steps": 60, "train.fit_seconds": 300.0}).to_dict() == fitted.to_dict()
    assert ran_as(fitted, done, frames=fitted.shot.window + 1) is fitted
    assert ran_as(fitted, {"state": "done", "step": 0}, frames=12) is fitted  # without propagation it always trains
    propagated = fitted.replace(**{"propagation.enabled": True})
    none = ran_as(propagated, {"state": "done", "step": 0}, frames=12)
    assert none.propagation.train_below == 1.0 and none.train.fit_seconds == 0.0
    assert none.replace(**{"propagation.train_below": propagated.propagation.train_below,
                           "train.fit_seconds": 300.0}).to_dict() == propagated.to_dict()
    assert ran_as(_config(), done, frames=12).to_dict() == _config().to_dict()


def test_a_clip_that_needs_no_model_is_saved_as_one_that_asks_for_none(tmp_path):
    """Too little unseen (propagation.train_below) trains no model on any machine; the saved config says so in the
    same words as a run whose fit was too short, so both repeat with no fit and give the same frames."""
    frames, masks = _clip()
    masks[:] = False
    for t in range(12):  # a hole that moves over a still scene: every hole pixel is seen in another frame
        masks[t, 20:40, 8 * t:8 * t + 24] = True
    frames[:] = frames[0]
    config = _config(**{"propagation.enabled": True, "train.fit_seconds": 300.0})
    result = inpaint(frames, masks, config, workdir=tmp_path / "a")
    assert result.steps == 0 and any("no training needed" in n for n in result.notices)
    saved = InpaintConfig.from_dict(json.loads((tmp_path / "a" / "config.json").read_text()))
    assert saved == result.config
    assert saved.propagation.train_below == 1.0 and saved.train.fit_seconds == 0.0
    again = inpaint(frames, masks, saved, workdir=tmp_path / "b")
    assert again.steps == 0 and np.array_equal(again.frames, result.frames)
    reused = inpaint(frames, masks, config, workdir=tmp_path / "a")  # the cached result: the same saved settings
    assert reused.config == saved and np.array_equal(reused.frames, result.frames)


def test_too_few_steps_to_fit_train_no_model_and_the_saved_config_repeats_the_run(tmp_path):
    """train.fit_min_steps: a machine that would fit fewer steps stops where it timed them and fills what no frame
    sees from the pixels around it, exactly as a clip that needs no model; nothing of the model reaches the frames."""
    frames, masks = _clip()  # random frames, a hole that never moves: no frame sees behind it
    config = _config(**{"propagation.enabled": True, "train.fit_seconds": 1e-3, "train.fit_min_steps": 50})
    result = inpaint(frames, masks, config, workdir=tmp_path / "a")
    assert result.steps == 0
    line = next(n for n in result.notices if n.startswith("train.fit_seconds"))
    # decided before the known flow by a throwaway trainer (engine/api.py _fit_before_flow), counting the steps it
    # timed as the trainer's own timing did
    assert re.search(rf"only {FIT_WARMUP + FIT_TIMED} of \d+ steps would fit, fewer than train.fit_min_steps 50", line)
    assert not (tmp_path / "a" / "flow.npz").exists() and not (tmp_path / "a" / "checkpoint.pt").exists()
    assert line in (tmp_path / "a" / "log.txt").read_text()
    free = inpaint(frames, masks, _config(**{"propagation.enabled": True, "propagation.train_below": 1.0}))
    assert np.array_equal(result.frames, free.frames) and np.array_equal(result.matte, free.matte)
    assert not np.array_equal(result.frames[masks], frames[masks])  # the hole was filled, not left as it came

    saved = InpaintConfig.from_dict(json.loads((tmp_path / "a" / "config.json").read_text()))
    assert saved == result.config
    assert saved.propagation.train_below == 1.0 and saved.train.fit_seconds == 0.0
    again = inpaint(frames, masks, saved, workdir=tmp_path / "b")  # any machine: no fit, no model, the same frames
    assert again.steps == 0 and not any(n.startswith("train.fit_seconds") for n in again.notices)
    assert np.array_equal(again.frames, result.frames)

    reused = inpaint(frames, masks, config, workdir=tmp_path / "a")  # the cached result, with the same settings
    assert reused.steps == 0 and reused.config == result.config and np.array_equal(reused.frames, result.frames)

    # not the verdict either: asked to train anyway, the same directory trains, timing its own steps
    forced = inpaint(frames, masks, config.replace(**{"train.fit_min_steps": 0}), workdir=tmp_path / "a")
    assert forced.steps == FIT_WARMUP + FIT_TIMED
    assert not np.array_equal(forced.frames, result.frames)


def test_without_propagation_the_model_trains_however_few_steps_fit(tmp_path):
    frames, masks = _clip()
    result = inpaint(frames, masks, _config(**{"train.fit_seconds": 1e-3, "train.fit_min_steps": 50}),
                     workdir=tmp_path)
    assert result.steps == FIT_WARMUP + FIT_TIMED
    assert not any("fit_min_steps" in n for n in result.notices)


def test_a_fit_below_the_minimum_stops_at_once_and_is_not_kept_in_the_checkpoint(tmp_path):
    config = _config(**{"train.fit_seconds": 100.0, "train.fit_min_steps": 200, "train.max_steps": 1000})
    run = _Run(config, tmp_path, total=2000, progress=None, should_stop=None)
    run.fit(step=13, seconds_per_step=1.0)  # about 113 steps would fit
    assert run.too_few and run.max_steps == 13 and run.out_of_budget(13)
    assert "fewer than train.fit_min_steps 200" in run.fit_line
    run.history = [[13.0, 0.0, 0.0, 0.0, 0.0, 0.0]]
    run.save({"kind": "video", "step": 13})
    resumed = _Run(config, tmp_path, total=2000, progress=None, should_stop=None)
    resumed.load()
    assert not resumed.fitted and not resumed.too_few  # timed again, and decided again
    enough = _Run(config.replace(**{"train.fit_min_steps": 100}), None, total=2000, progress=None, should_stop=None)
    enough.fit(step=13, seconds_per_step=1.0)
    assert not enough.too_few and 110 <= enough.max_steps <= 113


def test_the_loss_curve_of_a_run_without_a_model_says_why_it_is_empty():
    from vinpaint.cli.outputs import curve_title

    assert curve_title("dip-vid-flow", "fast", 514) == "dip-vid-flow (fast), 514 steps"
    empty = curve_title("dip-vid-flow", "fast", 0, "tcp://127.0.0.1:5555")
    assert "no model trained" in empty and "steps" not in empty and empty.endswith("on tcp://127.0.0.1:5555")


def test_a_run_without_a_model_that_cropped_to_the_hole_is_reused(tmp_path):
    """Too few steps fit after the crop to the hole was chosen: the fill without a model is saved at the whole
    frame's working size (it was saved at the crop's, with no region), and the same run again reuses it instead of
    calling its own result damaged."""

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (12, 64, 512, 3), dtype=np.uint8)
    masks = np.zeros((12, 64, 512), bool)
    masks[:, 10:54, 200:220] = True
    config = make_config("tiny", **{"train.max_steps": 60, "propagation.train_below": 0.0,
                                    "propagation.self_check": False, "train.fit_seconds": 1e-3,
                                    "train.fit_min_steps": 60, "resolution.crop_to_hole": True})
    from vinpaint.engine import working_size

    first = inpaint(frames, masks, config, workdir=tmp_path)
    assert first.steps == 0
    with np.load(tmp_path / "result.npz") as z:
        assert z["generated"].shape == (12, *working_size(64, 512, config), 3)
    said: list[str] = []
    again = inpaint(frames, masks, config, workdir=tmp_path, progress=lambda e: said.append(e.message or ""))
    assert "finished earlier; reusing its result" in said
    assert np.array_equal(again.frames, first.frames)


def test_the_fit_decided_before_the_flow_leaves_nothing_behind_and_costs_the_trainer_nothing(monkeypatch):
    """Where a model may fit, the throwaway trainer that timed the step first (engine/api.py _fit_before_flow) is
    gone before the real one trains (it held its model, optimizer and flow-sized arrays through the whole run), and
    its seconds are not counted as the run's outside training (each of its seconds cost 1.5 seconds of steps)."""
    import gc
    import time

    from vinpaint.engine import api
    from vinpaint.engine.train import VideoTrainer

    seen = {}
    real_train, real_probe = VideoTrainer.train, api._fit_before_flow

    def slow_probe(*args, **kwargs):
        time.sleep(2.0)  # a probe that takes 2 s: none of it may reach the trainer's outside seconds
        return real_probe(*args, **kwargs)

    def train(self):
        seen["alive"] = sum(isinstance(o, VideoTrainer) for o in gc.get_objects())
        seen["outside"] = self.run_state.outside_s
        return real_train(self)

    monkeypatch.setattr(api, "_fit_before_flow", slow_probe)
    monkeypatch.setattr(VideoTrainer, "train", train)
    frames, masks = _clip()
    result = inpaint(frames, masks, _config(**{"propagation.enabled": True, "train.fit_seconds": 600,
                                                "train.fit_min_steps": 5, "train.max_steps": 6}))
    assert result.steps == 6 and seen["alive"] == 1, seen
    assert seen["outside"] < 2.0 * (1 + AFTER_PER_BEFORE) - 0.5, seen  # well under the probe's own 3 s
