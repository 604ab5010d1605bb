"""Unit tests of the engine's pieces, each able to fail for the reason it names."""
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vinpaint.engine import InputError, make_config
from vinpaint.engine.config import InpaintConfig, VARIANTS
from vinpaint.engine.composite import composite, dilate_holes, fill_weight
from vinpaint.engine.flow import compute_known_flow, DISFlow, occlusion_check, reliable_flow_mask
from vinpaint.engine.losses import (consistency_loss, flow_loss, known_mask_for_features, perceptual_loss,
                                    reconstruction_loss)
from vinpaint.engine.config import FLOW_OFFSETS
from vinpaint.engine import network
from vinpaint.engine.network import Generator, gather_pad, gather_pad_time, parameter_count
from vinpaint.engine.perceptual import VGG16Features, load_vgg16
from vinpaint.engine.train import batch_schedule, make_noise
from vinpaint.engine.warp import backward_warp


def smooth_texture(h, w, seed=0):
    rng = np.random.default_rng(seed)
    img = rng.random((h // 8 + 2, w // 8 + 2, 3)).astype(np.float32)
    return torch.nn.functional.interpolate(torch.from_numpy(img).permute(2, 0, 1)[None], size=(h, w),
                                           mode="bicubic", align_corners=False).clamp(0, 1)


def test_warp_by_known_flow_reproduces_the_shifted_frame():
    img = smooth_texture(32, 40)
    shifted = torch.roll(img, shifts=(2, 3), dims=(2, 3))  # shifted(x) = img(x - (3, 2))
    flow = torch.zeros(1, 2, 32, 40)
    flow[:, 0], flow[:, 1] = 3.0, 2.0  # frame i = img sampled at x + (3, 2) of frame j = shifted
    warped, valid = backward_warp(shifted, flow, return_valid=True)
    inner = valid[0, 0] > 0
    assert inner.sum() == (32 - 2) * (40 - 3)
    assert torch.allclose(warped[..., inner], img[..., inner], atol=1e-5)
    assert not torch.allclose(shifted[..., inner], img[..., inner], atol=1e-2)


def test_forward_backward_check_marks_a_synthetic_occluder():
    h, w = 24, 24
    f_ij = torch.zeros(1, 2, h, w)
    f_ji = torch.zeros(1, 2, h, w)
    f_ij[:, 0] = 2.0
    f_ji[:, 0] = -2.0
    f_ji[:, :, 8:14, 8:14] = torch.tensor([5.0, 5.0]).view(1, 2, 1, 1)  # an occluder in frame j disagrees
    valid = occlusion_check(f_ij, f_ji)[0, 0]
    assert valid[8:14, 6:12].sum() == 0  # pixels landing on the occluder (x+2 in 8..13) are flagged
    assert valid[0:6, 0:6].all() and valid[16:, 0:10].all()
    assert valid[:, -2:].sum() == 0  # landing outside frame j is not valid either


def test_reliable_flow_mask_hand_computed():
    known_i = torch.ones(1, 1, 4, 6)
    known_i[0, 0, 1, 1] = 0
    known_j = torch.ones(1, 1, 4, 6)
    known_j[0, 0, 2, 4] = 0
    flow = torch.zeros(1, 2, 4, 6)
    flow[:, 0] = 1.0  # i(x, y) corresponds to j(x + 1, y)
    got = reliable_flow_mask(known_i, known_j, flow)[0, 0]
    expected = torch.ones(4, 6)
    expected[1, 1] = 0  # hole in i
    expected[2, 3] = 0  # lands on j's hole at (4, 2)
    # column 5 lands outside j: known there, so reliable (the authors' region is hole_i OR warped hole_j, in
    # bounds; issue 12 (a): it used to count as unreliable, and eq. 5 then compared known pixels in a border band)
    assert torch.equal(got, expected)
    flow[:, 0] = 0.5  # half a pixel: any trace of j's hole counts, as the authors' warp_np(...) > 0
    got = reliable_flow_mask(known_i, known_j, flow)[0, 0]
    assert got[2, 3] == 0 and got[2, 4] == 0 and got[2, 2] == 1 and got[:, 5].all()


def _grad_of(loss_fn, x):
    x = x.clone().requires_grad_(True)
    loss_fn(x).backward()
    return x.grad


def test_reconstruction_loss_has_no_gradient_in_the_hole():
    target = torch.rand(2, 3, 8, 8)
    known = torch.ones(2, 1, 8, 8)
    known[:, :, 2:5, 2:5] = 0
    g = _grad_of(lambda x: reconstruction_loss(x, target, known), torch.rand(2, 3, 8, 8))
    assert torch.all(g[:, :, 2:5, 2:5] == 0)
    assert torch.all(g[:, :, 6:, 6:] != 0)


def test_flow_loss_has_no_gradient_where_unreliable():
    target = torch.rand(1, 2, 8, 8)
    weight = torch.ones(1, 1, 8, 8)
    weight[..., :3, :] = 0
    g = _grad_of(lambda x: flow_loss(x, target, weight), torch.rand(1, 2, 8, 8))
    assert torch.all(g[..., :3, :] == 0) and torch.all(g[..., 3:, :] != 0)


def test_consistency_loss_acts_only_outside_reliable_region_and_not_on_frame_i():
    frame_i = torch.rand(1, 3, 8, 8, requires_grad=True)
    frame_j = torch.rand(1, 3, 8, 8, requires_grad=True)
    flow = torch.zeros(1, 2, 8, 8, requires_grad=True)
    reliable = torch.ones(1, 1, 8, 8)
    reliable[..., 2:4, 2:4] = 0  # the hole: only here may the loss push
    consistency_loss(frame_i, frame_j, flow, reliable).backward()
    assert frame_i.grad is None or torch.all(frame_i.grad == 0)  # frame i is detached
    assert torch.all(frame_j.grad[..., 2:4, 2:4] != 0)
    mask = torch.ones(8, 8, dtype=torch.bool)
    mask[2:4, 2:4] = False
    assert torch.all(frame_j.grad[..., mask] == 0)


def test_consistency_from_known_pixels_only_never_pulls_toward_frame_is_fill():
    frame_i, frame_j = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8, requires_grad=True)
    reliable = torch.ones(1, 1, 8, 8)
    reliable[..., 2:6, 2:6] = 0  # hole of i, or i's pixels whose match in j is hole
    known_i = torch.ones(1, 1, 8, 8)
    known_i[..., 2:4, 2:6] = 0  # the top half of that region is frame i's own hole
    consistency_loss(frame_i, frame_j, torch.zeros(1, 2, 8, 8), reliable, known_i).backward()
    assert torch.all(frame_j.grad[..., 2:4, 2:6] == 0)  # i's fill is no target
    assert torch.all(frame_j.grad[..., 4:6, 2:6] != 0)  # i's known pixels are
    hand = ((frame_j.detach() - frame_i)[..., 4:6, 2:6] ** 2).sum() / frame_i.numel()
    value = consistency_loss(frame_i, frame_j.detach(), torch.zeros(1, 2, 8, 8), reliable, known_i)
    assert float(value) == pytest.approx(float(hand), rel=1e-6)


def test_perceptual_loss_ignores_features_that_saw_the_hole():
    vgg, notice = load_vgg16("random", seed=1)
    assert vgg is not None and "RANDOM" in notice
    known = torch.ones(1, 1, 32, 32)
    known[..., 12:20, 12:20] = 0
    masks = [known_mask_for_features(known, r, s) for r, s in ((2, 1), (6, 2), (18, 4))]
    target = torch.rand(1, 3, 32, 32)
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    with torch.no_grad():
        ft = vgg(target)
    perceptual_loss(vgg(x), ft, masks).backward()
    assert torch.all(x.grad[..., 14:18, 14:18] == 0)  # deep in the hole: no feature sees it
    assert x.grad.abs().sum() > 0
    assert masks[0][0, 0, 16, 16] == 0 and masks[0][0, 0, 0, 0] == 1 and masks[2].shape[-1] == 8


def test_vgg_weights_not_found_switch_the_term_off_but_a_named_file_must_be_one(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("VINPAINT_VGG16_WEIGHTS", raising=False)
    vgg, notice = load_vgg16("")
    assert vgg is None and notice.startswith("perceptual loss off: no VGG16 weights found"), notice
    # before (2026-12-02): a path named in loss.vgg_weights that was missing, a folder or no VGG16 file only turned
    # the term off with a notice, so a typo made another run than the one asked for
    for name in ("nope.pth", ""):
        with pytest.raises(InputError, match=rf"^loss.vgg_weights names {tmp_path / name}, which "
                                             rf"{'does not exist' if name else 'is a folder'}; give the path of"):
            load_vgg16(str(tmp_path / name))
    # torch files that are no state dict, or one of another network's shapes: one sentence, no traceback; the
    # same file found through $VINPAINT_VGG16_WEIGHTS (not named in the setting): the notice
    for name, content, says in (("bad.pth", {"something": torch.zeros(1)}, "no features.0.weight"),
                                ("list.pth", [1, 2], "it holds a list, not a state dict"),
                                ("tensor.pth", torch.zeros(3), "it holds a Tensor, not a state dict"),
                                ("shapes.pth", {f"features.{k}": torch.zeros(1) for k in
                                                VGG16Features().features.state_dict()}, "size mismatch")):
        torch.save(content, tmp_path / name)
        with pytest.raises(InputError) as caught:
            load_vgg16(str(tmp_path / name))
        assert str(caught.value).startswith(f"loss.vgg_weights names {tmp_path / name}, which is not a "
                                            "torchvision VGG16 file (") and says in str(caught.value), caught.value
        monkeypatch.setenv("VINPAINT_VGG16_WEIGHTS", str(tmp_path / name))
        vgg, notice = load_vgg16("")
        assert vgg is None and notice.startswith(f"perceptual loss off: {tmp_path / name} is not a torchvision "
                                                 "VGG16 file (") and says in notice, notice


def test_torchvision_format_weights_load(tmp_path):
    ref, _ = load_vgg16("random", seed=3)
    path = tmp_path / "vgg16.pth"
    torch.save({f"features.{k}": v for k, v in ref.features.state_dict().items()} |
               {"classifier.0.weight": torch.zeros(2, 2)}, path)
    vgg, notice = load_vgg16(str(path))
    assert vgg is not None and str(path) in notice
    x = torch.rand(1, 3, 16, 16)
    assert all(torch.equal(a, b) for a, b in zip(vgg(x), ref(x)))


@pytest.mark.parametrize("decoder", ["authors", "vinpaint"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_variants_build_with_expected_shapes_and_parameter_counts(variant, decoder):
    config = make_config("paper", variant, **{"network.decoder": decoder, "network.temporal_kernel": 3})
    net = Generator(config.network)
    three_d = config.network.kind == "3d"
    noise = torch.rand(1, 1, 5, 64, 128) if three_d else torch.rand(5, 1, 64, 128)
    image, flow = net(noise)
    if three_d:
        assert image.shape == (1, 3, 5, 64, 128)
    else:
        assert image.shape == (5, 3, 64, 128)
    assert float(image.detach().min()) >= 0 and float(image.detach().max()) <= 1
    if variant == "dip-vid-flow":
        assert flow.shape == (5, 2 * len(FLOW_OFFSETS), 64, 128)
    else:
        assert flow is None
    # Hand count for Appendix A (2D): encoder 5x5 convs, 3x3 decoder, 1x1 skips (4 ch), BN (2 params/ch), heads.
    enc = [16, 32, 64, 128, 128, 128]
    kt = 3 if three_d else 1
    count, c_in = 0, 1
    for c in enc:
        count += (c_in * 4 * 1 + 4) + 2 * 4  # skip conv + BN
        count += (c_in * c * 25 * kt + c) + 2 * c + (c * c * 25 * kt + c) + 2 * c
        c_in = c
    for c in reversed(enc):
        if decoder == "authors":  # BN over the concatenation, a 3x3 and a 1x1 convolution (the authors' code)
            count += 2 * (c_in + 4) + ((c_in + 4) * c * 9 * kt + c) + 2 * c + (c * c * kt + c) + 2 * c
        else:
            count += ((c_in + 4) * c * 9 * kt + c) + 2 * c + (c * c * 9 * kt + c) + 2 * c
        c_in = c
    count += 16 * 3 * kt + 3
    if variant == "dip-vid-flow":
        count += 16 * 12 * kt + 12
    assert parameter_count(net) == count
    if variant == "dip-vid-flow":  # the audit's numbers (issue 12 (g))
        assert round(count / 1e6, 2) == (3.07 if decoder == "authors" else 3.51)


@pytest.mark.parametrize("reflect", [True, False])
@pytest.mark.parametrize("shape", [(2, 3, 8, 9), (1, 5, 3, 3), (3, 4, 16, 24), (1, 2, 4, 7), (1, 3, 2, 6),
                                   (1, 2, 3, 5, 6)])
def test_the_gather_padding_equals_f_pad_in_values_and_gradients_to_the_bit(shape, reflect):
    """The authors' padding on a GPU under train.deterministic (reflection_pad2d's CUDA backward is atomic adds):
    the values, the input's gradient and the memory order are F.pad's, bit for bit, on a CPU."""
    h, w = shape[-2:]
    torch.manual_seed(1)
    for p in (1, 2, 3):
        if reflect and not (p < h and p < w):
            continue  # F.pad cannot reflect more than the map holds (the network replicates there)
        for channels_last in (False, True) if len(shape) == 4 else (False,):
            x0 = torch.randn(shape)
            if channels_last:
                x0 = x0.contiguous(memory_format=torch.channels_last)
            a, b = x0.clone().requires_grad_(), x0.clone().requires_grad_()
            lead = shape[:-2]
            grad = torch.randn(*lead, h + 2 * p, w + 2 * p)
            mode = "reflect" if reflect else "replicate"
            if len(shape) == 5:  # as the network pads a 3D map: the frames as channels
                want = F.pad(a.reshape(shape[0], -1, h, w), (p, p, p, p), mode=mode).view(*lead, h + 2 * p, w + 2 * p)
            else:
                want = F.pad(a, (p, p, p, p), mode=mode)
            got = gather_pad(b, p, reflect)
            (want * grad).sum().backward()
            (got * grad).sum().backward()
            assert torch.equal(got, want) and got.stride() == want.stride(), (p, channels_last)
            assert torch.equal(b.grad, a.grad), (p, channels_last)


@pytest.mark.parametrize("shape", [(1, 2, 1, 3, 4), (2, 3, 5, 4, 6), (1, 4, 7, 2, 3)])
def test_the_gather_time_padding_equals_f_pad_in_values_and_gradients_to_the_bit(shape):
    """The authors' replication in time (a 3D head's temporal kernel above 1) on a GPU under train.deterministic,
    where replication_pad3d's backward is atomic adds: values and the input's gradient are F.pad's on a CPU."""
    torch.manual_seed(2)
    for p in (1, 2):
        x0 = torch.randn(shape)
        a, b = x0.clone().requires_grad_(), x0.clone().requires_grad_()
        want = F.pad(a, (0, 0, 0, 0, p, p), mode="replicate")
        got = gather_pad_time(b, p)
        grad = torch.randn(want.shape)
        (want * grad).sum().backward()
        (got * grad).sum().backward()
        assert torch.equal(got, want), p
        assert torch.equal(b.grad, a.grad), p


@pytest.mark.parametrize("variant", ["dip-vid-flow", "dip-vid-3dcn"])
def test_the_authors_network_with_the_gather_padding_trains_as_with_f_pad(variant, monkeypatch):
    """The whole 'authors' network: what the gather paddings (space and time) change on a GPU change nothing in the
    values or the weights' gradients on a CPU."""
    config = make_config("tiny", variant, **{"network.decoder": "authors", "network.temporal_kernel": 3})
    three_d = config.network.kind == "3d"
    noise = torch.rand(1, 1, 3, 64, 128) if three_d else torch.rand(3, 1, 64, 128)

    def run():
        torch.manual_seed(0)
        net = Generator(config.network)
        image, flow = net(noise)
        (image.square().mean() + (flow.square().mean() if flow is not None else 0)).backward()
        return [image.detach()] + [q.grad for q in net.parameters()]

    plain = run()
    monkeypatch.setattr(network, "pad_spatial", gather_pad)
    monkeypatch.setattr(network, "pad_temporal", gather_pad_time)
    gathered = run()
    assert all(torch.equal(u, v) for u, v in zip(plain, gathered))


def test_zero_flow_init_starts_with_no_motion_and_still_learns():
    torch.manual_seed(0)
    lecun = Generator(make_config("paper", "dip-vid-flow").network)
    assert make_config("fast").network.flow_init == "zero"  # the CPU preset's remedy (docs/evaluation.md)
    zero = Generator(make_config("paper", "dip-vid-flow", **{"network.flow_init": "zero"}).network)
    noise = torch.rand(5, 1, 64, 128) * 0.1
    _, random_flow = lecun(noise)
    image, flow = zero(noise)
    assert float(random_flow.detach().abs().mean()) > 0.1  # LeCun: about one normaliser of random motion
    assert torch.count_nonzero(flow) == 0
    (flow - 1.0).pow(2).mean().backward()
    assert float(zero.flow_head.weight.grad.abs().sum()) > 0  # a zero start is not a dead head
    with pytest.raises(InputError, match="network.flow_init must be one of lecun, zero, not 'xavier'"):
        make_config("fast", "dip-vid-flow", **{"network.flow_init": "xavier"})


@pytest.mark.parametrize("key,value,says", [
    ("network.kind", "4d", "network.kind must be one of 2d, 3d"),
    ("train.updates_per_batch", 0, "train.updates_per_batch must be a whole number from 1 to 100000, not 0"),
    ("train.learning_rate", 0, "train.learning_rate must be a finite number above 0"),
    ("loss.consistency", -1.0, "loss.consistency must be a finite number from 0 to"),
    ("loss.consistency_moves_flow", "no", "loss.consistency_moves_flow must be true or false, not 'no'"),
    ("train.intervals", (1, 2), r"train.intervals must be a list of 1 to 3 whole numbers taken from 1, 3, 5"),
    ("train.intervals", (), "train.intervals must be a list"),
    ("train.learning_rate", float("nan"), "train.learning_rate must be a finite number above 0 .*, not NaN"),
    ("train.epochs", float("inf"), "train.epochs must be a finite number .*, not Infinity"),
    ("network.skip_channels", 0, "network.skip_channels must be a whole number from 1 to 256"),
    ("network.encoder_channels", (16, 0), "network.encoder_channels must be a list"),
    ("network.encoder_kernel", 4, "network.encoder_kernel must be an odd whole number"),
    ("mask.dilation", 100000, "mask.dilation must be a whole number from 0 to 512, not 100000"),
    ("resolution.work_width", 65536, "resolution.work_width must be a multiple of 64 from 64 to 2048"),
])
def test_settings_that_cannot_work_are_refused_by_name(key, value, says):
    with pytest.raises(InputError, match=says):
        make_config("fast", "dip-vid-flow", **{key: value})
    bad = make_config("fast", "dip-vid-flow").to_dict()
    section, leaf = key.split(".")
    bad[section][leaf] = list(value) if isinstance(value, tuple) else value
    with pytest.raises(InputError, match=says):  # a saved config.json is checked on loading too
        InpaintConfig.from_dict(bad)


def test_consistency_warmup_ramps_the_weight_linearly():
    from vinpaint.engine.train import Batch, TrainingData, VideoTrainer

    t, h, w = 12, 64, 64
    frames = smooth_texture(h, w, seed=3).repeat(t, 1, 1, 1)
    known = torch.ones(t, 1, h, w)
    known[:, :, 20:40, 20:40] = 0
    u8 = (frames.permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)
    kf = compute_known_flow(u8, known[:, 0].numpy() < 0.5, DISFlow("ultrafast"), 0.5)
    config = make_config("tiny", "dip-vid-flow", **{"loss.consistency_warmup": 10, "loss.perceptual": 0.0})
    trainer = VideoTrainer(config, TrainingData(frames, known, make_noise(t, h, w, 0), kf), None,
                           torch.device("cpu"))
    batch = Batch(0, 1, 1)
    with torch.no_grad():
        for step, share in ((0, 0.1), (4, 0.5), (9, 1.0), (50, 1.0), (-1, 1.0)):
            terms = trainer.losses(batch, step)
            rest = terms["recon"] + config.loss.flow * terms["flow"]
            assert float(terms["consistency"]) > 0
            assert float(terms["total"]) == pytest.approx(float(rest + share * terms["consistency"]), rel=1e-5)


def test_noise_is_uniform_small_and_deterministic_per_seed():
    a, b, c = make_noise(4, 16, 16, 7), make_noise(4, 16, 16, 7), make_noise(4, 16, 16, 8)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == (4, 1, 16, 16) and float(a.min()) >= 0 and float(a.max()) <= 0.1
    assert not torch.equal(a[0], a[1])  # one independent map per frame


def test_schedule_enumerates_every_window_per_epoch():
    config = make_config("paper", "dip-vid-flow", **{"train.epochs": 2.0})
    batches = batch_schedule(30, config)
    per_epoch = (30 - 4) + (30 - 12) + (30 - 20)
    assert len(batches) == 2 * per_epoch
    first = {(b.start, b.interval) for b in batches[:per_epoch]}
    assert len(first) == per_epoch
    assert all(b.start + 4 * b.interval < 30 and b.direction in (1, -1) for b in batches)
    assert batches == batch_schedule(30, config)  # decided by the seed alone
    vid = batch_schedule(30, make_config("paper", "dip-vid"))
    assert len(vid) == 20 * 26 and all(b.interval == 1 and b.direction == 0 for b in vid)


def test_known_flow_recovers_a_global_shift_and_flags_the_hole():
    tex = (smooth_texture(64, 120, seed=2)[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    frames = np.stack([tex[:, 2 * i:2 * i + 96] for i in range(12)])
    holes = np.zeros((12, 64, 96), bool)
    holes[:, 20:36, 40:56] = True
    kf = compute_known_flow(frames, holes, DISFlow("medium"))
    k1 = FLOW_OFFSETS.index(1)
    # frame i+1 is frame i moved left by 2 px: i(x) = (i+1)(x - 2), so F(i, i+1) = (-2, 0)
    reliable = kf.reliable[3, k1, 0] > 0
    fx = kf.flow[3, k1, 0][reliable & (kf.occlusion_valid[3, k1, 0] > 0)]
    assert np.median(fx) == pytest.approx(-2.0, abs=0.3)
    assert kf.reliable[3, k1, 0][20:36, 40:56].sum() == 0
    assert not kf.exists[11, k1] and kf.exists[10, k1]


def test_known_flow_has_no_pair_across_a_cut():
    """Two shots in one clip: flow and consistency terms only between frames of the same shot."""
    shots = [(smooth_texture(64, 120, seed=s)[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8) for s in (2, 5)]
    frames = np.stack([shots[i >= 6][:, 2 * i:2 * i + 96] for i in range(10)])
    holes = np.zeros((10, 64, 96), bool)
    holes[:, 20:36, 40:56] = True
    dis, asked, shown = DISFlow("medium"), [], []

    def estimator(a, b):
        asked.append((a.tobytes(), b.tobytes()))
        return dis(a, b)

    kf = compute_known_flow(frames, holes, estimator, progress=lambda n, total: shown.append((n, total)))
    for i in range(10):
        for ki, off in enumerate(FLOW_OFFSETS):
            inside = 0 <= i + off < 10
            assert kf.exists[i, ki] == (inside and (i >= 6) == (i + off >= 6)), (i, off)
            if inside and not kf.exists[i, ki]:
                assert kf.reliable[i, ki].min() == 1.0  # eq. 5 weighs by 1 - M^f: no consistency across it
    # only the two neighbours across the cut (5->6, 6->5) are estimated there, to find it; longer pairs are not
    assert len(asked) == int(kf.exists.sum()) + 2
    pairs = sum(0 <= i + off < 10 for i in range(10) for off in FLOW_OFFSETS)
    assert shown[-1] == (pairs, pairs) and [n for n, _ in shown] == sorted({n for n, _ in shown})


def test_composite_keeps_every_pixel_outside_the_hole_bit_exact():
    rng = np.random.default_rng(0)
    for dtype, top in ((np.uint8, 255), (np.uint16, 65535)):
        src = rng.integers(0, top, (3, 20, 30, 3), endpoint=True).astype(dtype)
        holes = np.zeros((3, 20, 30), bool)
        holes[:, 5:12, 8:20] = True
        holes = dilate_holes(holes, 2)
        gen = np.full((3, 8, 12, 3), 0.25, np.float32)
        out, matte = composite(src, gen, holes, feather=3)
        assert out.dtype == dtype
        assert np.array_equal(matte > 0, holes)
        assert np.array_equal(out[~holes], src[~holes])
        centre = out[:, 8, 14].astype(np.float64) / top
        assert np.allclose(centre, 0.25, atol=2 / top)
    w = fill_weight(holes[0], 3)
    assert w[~holes[0]].max() == 0 and w.max() == 1


def test_bad_arrays_are_refused_with_one_sentence():
    config = make_config("tiny")
    frames = np.zeros((12, 64, 64, 3), np.uint8)
    masks = np.zeros((12, 64, 64), bool)
    with pytest.raises(InputError, match="mask is empty"):
        from vinpaint.engine import validate
        validate(frames, masks, config)
    masks[:, :10, :10] = True
    with pytest.raises(InputError, match="11 frames but the mask has 12"):
        validate(frames[:11], masks, config)
    validate(frames[:8], masks[:8], config)  # too short for the batches: fitted to it (test_short_clips_...)
    full = masks.copy()
    full[4] = True
    with pytest.raises(InputError, match="covers all of frame 4"):
        validate(frames, full, config)
    with pytest.raises(InputError, match="multiple of 64"):
        validate(frames, masks, config.replace(**{"resolution.work_width": 32}))
    with pytest.raises(InputError, match="unknown setting"):
        config.replace(**{"train.nope": 1})


def test_a_tall_strip_gets_a_bounded_working_height():
    """The working height follows the aspect, but a 4x1000 strip made a 64x16000 network input (18 GB for six
    tiny steps): at most four times the width."""
    from vinpaint.engine.config import region_working_size, working_size

    tiny, fast = make_config("tiny"), make_config("fast")
    assert working_size(1000, 4, tiny) == (512, 128)
    assert region_working_size(1000, 4, tiny) == (256, 64)  # a crop: the width is never enlarged past 64
    assert working_size(4000, 100, fast)[0] == 4 * fast.resolution.work_width
    assert working_size(1280 * 16, 1280 * 9, fast.replace(**{"resolution.work_width": 1280})) == (2304, 1280)
    assert working_size(1920, 1080, fast) == (320, 192)  # a portrait phone video keeps its aspect
    assert working_size(192, 384, make_config("paper")) == (192, 384)


def test_config_round_trips_through_json():
    for variant in VARIANTS:
        config = make_config("fast", variant, **{"train.seed": 5})
        assert InpaintConfig.from_dict(config.to_dict()) == config


def test_short_clips_train_on_the_batches_that_fit():
    config = make_config("fast")  # N=5 at intervals 1, 3, 5: 21 frames for the widest batch
    assert config.fitted(21) == (config, None) and config.fitted(200) == (config, None)
    twelve, notice = config.fitted(12)
    assert twelve.train.intervals == (1,) and twelve.train.batch_size == 5
    assert notice == ("the clip has 12 frames, too few for batches of 5 at interval 5: training on batches of 5 "
                      "at interval 1")
    assert config.fitted(13)[0].train.intervals == (1, 3)
    three, notice = config.fitted(3)
    assert (three.train.batch_size, three.train.intervals) == (3, (1,)) and "batches of 3 at interval 1" in notice
    assert config.fitted(13)[1].endswith("batches of 5 at intervals 1, 3")
    # the image-only variants batch consecutive frames; per-frame DIP has no batches to fit
    assert make_config("fast", "dip-vid").fitted(4)[0].train.batch_size == 4
    dip = make_config("fast", "dip")
    assert dip.fitted(2) == (dip, None)
    # the schedule a short clip plans is the fitted one's, never an empty one
    assert config.planned_steps(12) == twelve.planned_steps(12) > 0
    assert config.planned_batches(12) == 2 * (12 - 4)


def test_dis_flow_on_small_and_short_frames_is_a_flow_not_a_crash():
    """OpenCV's DIS refuses frames under 12 px and its ultrafast and fast presets crash the process on wide, short
    ones (160x24): sides under 32 px are padded. Run in a child, so a crash fails this test, not the suite."""
    code = (
        "import numpy as np\n"
        "from vinpaint.engine.flow import DISFlow\n"
        "rng = np.random.default_rng(0)\n"
        "for preset in ('ultrafast', 'fast', 'medium'):\n"
        "    for h, w in ((24, 160), (28, 1000), (8, 8), (2, 40), (12, 64), (160, 24)):\n"
        "        a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)\n"
        "        flow = DISFlow(preset)(a, np.roll(a, 1, axis=1))\n"
        "        assert flow.shape == (h, w, 2) and np.isfinite(flow).all(), (preset, h, w)\n"
        "print('ok')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", (done.returncode, done.stderr[-2000:])
