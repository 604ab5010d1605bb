"""Issue 12, item 1 and 2: the authors' behaviour where the paper leaves it open, and a stable generated result.

Small and fast: each test builds a tiny network or a few arrays and checks one rule that could break."""
import numpy as np
import pytest
import torch

from vinpaint.engine import make_config
from vinpaint.engine.averaging import NAME, WeightAverage, attach
from vinpaint.engine.config import PRESETS, VARIANTS
from vinpaint.engine.flow import flow_scales
from vinpaint.engine.losses import consistency_loss
from vinpaint.engine.config import FLOW_OFFSETS
from vinpaint.engine.perceptual import VGG16Features
from vinpaint.engine.train import TrainingData, VideoTrainer, make_noise
from vinpaint.engine.windows import centred_windows


@pytest.mark.parametrize("preset", list(PRESETS))
def test_baselines_are_trained_with_reconstruction_only_and_the_method_keeps_all_four_terms(preset):
    for variant in VARIANTS:
        loss = make_config(preset, variant).loss
        if variant == "dip-vid-flow":
            assert (loss.flow, loss.consistency, loss.perceptual) == (0.1, 1.0, 0.01)
        else:  # C.1-C.3 and the authors' configs: eq. 3 alone
            assert (loss.reconstruction, loss.flow, loss.consistency, loss.perceptual) == (1.0, 0.0, 0.0, 0.0)
    # an explicit setting still wins over the variant's
    assert make_config(preset, "dip-vid", **{"loss.perceptual": 0.02}).loss.perceptual == 0.02


def test_the_paper_preset_is_the_authors_code():
    c = make_config("paper", "dip-vid-3dcn")
    assert (c.network.decoder, c.network.temporal_kernel, c.loss.vgg_input, c.train.ema_decay) == \
        ("authors", 1, "bgr01", 0.0)
    assert make_config("fast").train.ema_decay == 0.99 and make_config("tiny").train.ema_decay == 0.0
    with pytest.raises(Exception, match="network.decoder must be one of authors, vinpaint"):
        make_config("fast", **{"network.decoder": "unet"})
    with pytest.raises(Exception, match="train.ema_decay must be"):
        make_config("fast", **{"train.ema_decay": 1.0})


def test_vgg_gets_bgr_in_0_1_for_the_authors_and_normalised_rgb_otherwise():
    torch.manual_seed(0)
    authors, ours = VGG16Features("bgr01"), VGG16Features("imagenet")
    ours.load_state_dict(authors.state_dict())
    x = torch.rand(1, 3, 16, 16)
    first = authors.features[0]
    expect_authors = torch.relu(first(x.flip(1)))
    expect_ours = torch.relu(first((x - ours.mean) / ours.std))
    got_authors = authors.features[1](first(x.flip(1)))
    assert torch.allclose(authors.features[:2](x.flip(1)), expect_authors)
    assert torch.allclose(got_authors, expect_authors)
    # the taps differ between the two inputs: the setting reaches the network
    assert not torch.allclose(authors(x)[0], ours(x)[0])
    assert torch.allclose(ours.features[:2]((x - ours.mean) / ours.std), expect_ours)
    with pytest.raises(ValueError):
        VGG16Features("rgb255")


def test_flow_is_normalised_per_interval_by_its_largest_component_shared_by_both_directions():
    t, k = 4, len(FLOW_OFFSETS)
    flow = np.zeros((t, k, 2, 3, 5), np.float32)
    exists = np.zeros((t, k), bool)
    plus1, minus1, plus3 = FLOW_OFFSETS.index(1), FLOW_OFFSETS.index(-1), FLOW_OFFSETS.index(3)
    exists[:3, plus1] = exists[1:, minus1] = True
    exists[0, plus3] = True
    flow[0, plus1, 0, 0, 0], flow[0, plus1, 1, 0, 0] = 3.0, 4.0  # magnitude 5, largest component 4
    flow[2, minus1, 1, 1, 1] = -4.5                             # the other direction's largest component
    flow[3, plus1, 0] = 100.0                                   # frame 3 has no +1 neighbour: ignored
    flow[0, plus3, 0, 2, 2] = 0.25                              # under a pixel: the floor of 1
    scale = flow_scales(flow, exists)
    assert scale[plus1] == scale[minus1] == 4.5
    assert scale[plus3] == scale[FLOW_OFFSETS.index(-3)] == 1.0
    assert scale[FLOW_OFFSETS.index(5)] == 1.0  # no such flow at all


def test_consistency_region_leaves_out_known_pixels_whose_known_flow_leaves_the_frame():
    from vinpaint.engine.flow import reliable_flow_mask

    known = torch.ones(1, 1, 6, 8)
    flow = torch.zeros(1, 2, 6, 8)
    flow[:, 0] = 2.0  # the two right columns land outside frame j
    reliable = reliable_flow_mask(known, known, flow)
    assert reliable.all()  # no hole anywhere: eq. 5 has nothing to compare, border band included
    frame_i, frame_j = torch.rand(1, 3, 6, 8), torch.rand(1, 3, 6, 8)
    assert float(consistency_loss(frame_i, frame_j, torch.zeros(1, 2, 6, 8), reliable)) == 0.0


def test_every_frame_is_generated_from_the_window_centred_on_it():
    assert centred_windows(7, 5) == [(0, [0, 1, 2]), (1, [3]), (2, [4, 5, 6])]
    for t, n in [(12, 5), (5, 5), (3, 5), (9, 4), (4, 1)]:
        kept = [f for _, keep in centred_windows(t, n) for f in keep]
        assert kept == list(range(t))
        for start, keep in centred_windows(t, n):
            assert 0 <= start <= max(t - n, 0) and all(start <= f < start + min(n, t) for f in keep)


def _video_trainer(config, t=7, h=64, w=64):
    torch.manual_seed(0)
    frames = torch.rand(t, 3, h, w)
    known = torch.ones(t, 1, h, w)
    known[:, :, 20:40, 20:40] = 0
    data = TrainingData(frames, known, make_noise(t, h, w, 0))
    return VideoTrainer(config, data, None, torch.device("cpu"))


def test_generate_uses_the_centred_window_so_no_frame_depends_on_where_a_window_boundary_fell():
    config = make_config("tiny", "dip-vid", **{"train.max_steps": 2, "resolution.work_width": 64})
    trainer = _video_trainer(config)
    trainer.train()
    images, _ = trainer.generate()
    with torch.no_grad():
        # frame 3 of 7 with N=3: from the window 2..4
        image, _ = trainer._forward(trainer.res.noise[2:5])
    assert np.allclose(images[3], image[1].permute(1, 2, 0).numpy(), atol=1e-6)
    with torch.no_grad():
        other, _ = trainer._forward(trainer.res.noise[3:6])
    assert not np.allclose(images[3], other[0].permute(1, 2, 0).numpy(), atol=1e-4)  # the window matters


def test_weight_average_follows_its_formula_and_is_in_the_state_dict():
    net = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    average = attach(net, opt, 0.5)
    assert isinstance(average, WeightAverage) and any(k.startswith(NAME + ".") for k in net.state_dict())
    expect = [p.detach().clone() for p in net.parameters()]
    for n in range(1, 6):
        opt.zero_grad()
        net(torch.ones(1, 2)).sum().backward()
        opt.step()
        d = min(0.5, (1 + n) / (10 + n))
        expect = [d * e + (1 - d) * p.detach() for e, p in zip(expect, net.parameters())]
    assert all(torch.allclose(e, s) for e, s in zip(expect, average.shadows()))
    last = [p.detach().clone() for p in net.parameters()]
    with average.applied():
        assert all(torch.equal(p, s) for p, s in zip(net.parameters(), average.shadows()))
    assert all(torch.equal(p, q) for p, q in zip(net.parameters(), last))  # handed back
    assert attach(torch.nn.Linear(2, 1), opt, 0.0) is None


def test_generation_uses_the_averaged_weights():
    config = make_config("tiny", "dip-vid", **{"train.max_steps": 4, "resolution.work_width": 64,
                                                "train.ema_decay": 0.9})
    trainer = _video_trainer(config)
    trainer.train()
    averaged, _ = trainer.generate()
    with torch.no_grad():
        last, _ = trainer._forward(trainer.res.noise[0:3])
    assert not np.allclose(averaged[0], last[0].permute(1, 2, 0).numpy(), atol=1e-4)
    with torch.no_grad(), trainer.average.applied():
        again, _ = trainer._forward(trainer.res.noise[0:3])
    assert np.allclose(averaged[0], again[0].permute(1, 2, 0).numpy(), atol=1e-6)


@pytest.mark.parametrize("profile_name", ["cpu", "gpu"])
def test_the_eval_ablation_rows_compare_what_table_1_compared(profile_name):
    """`vinpaint eval`'s engine rows: the three baselines on eq. 3 alone, the method with all of eq. 2's terms, and
    every row on the same network (only the variant's own changes differ)."""
    from vinpaint.evaluation.config import profile
    from vinpaint.evaluation.runner import EngineJob, own_config

    cfg = profile(profile_name)
    frames, masks = np.zeros((6, 64, 128, 3), np.uint8), np.zeros((6, 64, 128), bool)
    configs = {}
    for spec in cfg.method_specs():
        if spec.kind == "engine" and spec.label == spec.variant:
            job = EngineJob("clip", frames, masks, spec, [], "/nonexistent", cfg.preset)
            configs[spec.variant] = own_config(job)
    assert set(configs) == set(VARIANTS)
    for variant, config in configs.items():
        terms = (config.loss.flow, config.loss.consistency, config.loss.perceptual)
        assert terms == ((0.1, 1.0, 0.01) if variant == "dip-vid-flow" else (0.0, 0.0, 0.0)), variant
        assert config.network.decoder == configs["dip-vid-flow"].network.decoder
        assert config.train.ema_decay == configs["dip-vid-flow"].train.ema_decay


def test_a_rolled_back_batch_is_rolled_out_of_the_weight_average_too():
    config = make_config("tiny", "dip-vid", **{"train.learning_rate": 1e4, "train.max_steps": 12,
                                                "train.updates_per_batch": 4, "train.divergence_factor": 1.5,
                                                "resolution.work_width": 64, "train.ema_decay": 0.9})
    trainer = _video_trainer(config)
    taken = []
    trainer.optimizer.register_step_post_hook(lambda *_: taken.append(1))
    trainer.train()
    assert trainer.run_state.rollbacks >= 1
    # every rolled-back step's update of the average was undone with it: fewer updates than steps taken
    assert float(trainer.average.updates) < len(taken)
    assert all(torch.isfinite(w).all() for w in trainer.average.shadows())
    images, _ = trainer.generate()
    assert np.isfinite(images).all()
