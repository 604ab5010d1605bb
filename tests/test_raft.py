"""RAFT (engine/raft.py): torchvision's checkpoints load strictly, the estimator plugs into the flow seam, and a
missing or wrong weights file is a notice or one sentence, never a traceback.

No trained weights exist on this machine, so nothing here claims the flow is *good*: random weights give random
flow. What is checked is the layout (against torchvision's published key names, shapes and parameter counts,
written down below as facts), the plumbing, and the correlation lookup, whose answer does not depend on weights."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from vinpaint.engine.config import make_config
from vinpaint.errors import InputError
from vinpaint.engine.flow import DISFlow, make_estimator
from vinpaint.engine.propagate import neighbour_flows
from vinpaint.engine.raft import RAFT, CorrelationPyramid, RAFTFlow, load_raft, raft_from_state

# Facts about torchvision's raft_large / raft_small (torchvision/models/optical_flow/raft.py and the weights'
# metadata, "num_params"): how many state_dict entries, how many parameters, and a sample of names and shapes.
TORCHVISION = {
    "large": (169, 5_257_536, {
        "feature_encoder.convnormrelu.0.weight": (64, 3, 7, 7),
        "feature_encoder.layer3.0.downsample.0.bias": (128,),
        "context_encoder.layer1.0.convnormrelu2.1.running_mean": (64,),
        "context_encoder.conv.weight": (256, 128, 1, 1),
        "update_block.motion_encoder.convcorr1.0.weight": (256, 324, 1, 1),
        "update_block.motion_encoder.conv.0.weight": (126, 256, 3, 3),
        "update_block.recurrent_block.convgru1.convz.weight": (128, 384, 1, 5),
        "update_block.recurrent_block.convgru2.convq.weight": (128, 384, 5, 1),
        "update_block.flow_head.conv2.weight": (2, 256, 3, 3),
        "mask_predictor.conv.weight": (576, 256, 1, 1),
    }),
    "small": (106, 990_162, {
        "feature_encoder.convnormrelu.0.weight": (32, 3, 7, 7),
        "feature_encoder.layer2.1.convnormrelu2.0.bias": (16,),
        "context_encoder.layer1.0.convnormrelu3.0.weight": (32, 8, 1, 1),
        "context_encoder.conv.weight": (160, 96, 1, 1),
        "update_block.motion_encoder.convcorr1.0.weight": (96, 196, 1, 1),
        "update_block.motion_encoder.conv.0.weight": (80, 128, 3, 3),
        "update_block.recurrent_block.convgru1.convq.weight": (96, 242, 3, 3),
        "update_block.flow_head.conv1.weight": (128, 96, 3, 3),
    }),
}


@pytest.fixture(autouse=True)
def _no_weights_anywhere(monkeypatch, tmp_path):
    """No $VINPAINT_RAFT_WEIGHTS and an empty torch hub cache, so only what a test hands in is found."""
    monkeypatch.delenv("VINPAINT_RAFT_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))


def _random_checkpoint(path, size: str = "small", seed: int = 0):
    """A torchvision-format file (a plain state_dict) with random weights and running statistics."""
    torch.manual_seed(seed)
    state = RAFT(size).state_dict()
    for name, value in state.items():
        if value.is_floating_point():
            value.copy_(torch.rand_like(value) + 0.5 if "running_var" in name else torch.randn_like(value) * 0.05)
    torch.save(state, path)
    return state


@pytest.mark.parametrize("size", ["large", "small"])
def test_layout_matches_torchvision(size):
    entries, params, sample = TORCHVISION[size]
    net = RAFT(size)
    state = net.state_dict()
    assert len(state) == entries
    assert sum(p.numel() for p in net.parameters()) == params
    for name, shape in sample.items():
        assert tuple(state[name].shape) == shape, name
    assert ("mask_predictor.conv.weight" in state) == (size == "large")


def test_random_checkpoint_loads_strictly_and_gives_finite_flow(tmp_path):
    path = tmp_path / "raft_small_random.pth"
    saved = _random_checkpoint(path)
    notices = []
    estimator = make_estimator("raft", "medium", str(path), 3, notices.append)
    assert isinstance(estimator, RAFTFlow) and estimator.iterations == 3
    assert notices == [f"flow: RAFT (small) weights from {path}"]
    for name, value in estimator.net.state_dict().items():
        assert torch.equal(value, saved[name]), name
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (45, 61, 3), dtype=np.uint8)  # not multiples of 8: padded and cropped back
    b = np.roll(a, 2, axis=1)
    flow = estimator(a, b)
    assert flow.shape == (45, 61, 2) and flow.dtype == np.float32
    assert np.isfinite(flow).all() and np.abs(flow).max() > 0


def test_large_checkpoint_loads_by_its_keys(tmp_path):
    path = tmp_path / "raft_large_random.pth"
    _random_checkpoint(path, "large")
    net, notice = load_raft(str(path))
    assert net is not None and net.size == "large" and "large" in notice


def test_environment_variable_and_hub_cache_are_looked_in(tmp_path, monkeypatch):
    hub = tmp_path / "torch_home" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    _random_checkpoint(hub / "raft_small_C_T_V2-01064c6d.pth")
    net, notice = load_raft("")
    assert net is not None and str(hub) in notice
    other = tmp_path / "mine.pth"
    _random_checkpoint(other, seed=1)
    monkeypatch.setenv("VINPAINT_RAFT_WEIGHTS", str(other))
    net, notice = load_raft("")
    assert notice.endswith(str(other))


def test_random_raft_plugs_into_propagation(tmp_path):
    """propagate.py takes any FlowEstimator: RAFT's flows come back completed, at the frames' size."""
    path = tmp_path / "raft_small_random.pth"
    _random_checkpoint(path)
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (3, 40, 56, 3), dtype=np.uint8)
    holes = np.zeros((3, 40, 56), bool)
    holes[:, 10:20, 20:30] = True
    flows = neighbour_flows(frames, holes, make_estimator("raft", raft_weights=str(path), raft_iterations=2))
    assert flows.forward.shape == (2, 40, 56, 2) and np.isfinite(flows.forward.astype(np.float32)).all()


def test_correlation_lookup_finds_a_known_shift():
    """Frame 2's features are frame 1's moved by (+2, -1): looked up at x + (2, -1), the centre of the window holds
    |f|^2 / sqrt(C), and with the lookup at x, the offset channel (dx=2, dy=-1) does, x offsets being the slower
    index as in torchvision's channel order (which its checkpoints' motion encoder was trained on)."""
    torch.manual_seed(0)
    f1 = torch.randn(1, 8, 12, 16)
    f2 = torch.roll(f1, shifts=(-1, 2), dims=(2, 3))  # content at (x, y) in frame 1 is at (x + 2, y - 1) in frame 2
    radius = 3
    pyramid = CorrelationPyramid(f1, f2, levels=2, radius=radius)
    ys, xs = torch.meshgrid(torch.arange(12.0), torch.arange(16.0), indexing="ij")
    coords = torch.stack([xs, ys])[None]
    side = 2 * radius + 1
    inner = (slice(None), slice(2, 10), slice(2, 12))  # away from the wrap-around
    expected = (f1 * f1).sum(1)[0] / 8 ** 0.5
    shifted = pyramid.lookup(coords + torch.tensor([2.0, -1.0]).view(1, 2, 1, 1))
    centre = radius * side + radius
    assert torch.allclose(shifted[0, centre][inner[1:]], expected[inner[1:]], atol=1e-5)
    at_x = pyramid.lookup(coords)
    channel = (2 + radius) * side + (-1 + radius)
    assert torch.allclose(at_x[0, channel][inner[1:]], expected[inner[1:]], atol=1e-5)
    assert at_x.shape == (1, 2 * side * side, 12, 16)


def test_no_weights_means_dis_and_one_notice():
    notices = []
    estimator = make_estimator("raft", "ultrafast", "", 12, notices.append)
    assert isinstance(estimator, DISFlow)
    assert len(notices) == 1 and "no RAFT weights found" in notices[0] and notices[0].endswith("using DIS")
    # a file the setting names must be there (before, 2026-12-02: "not found; using DIS", another run than asked)
    with pytest.raises(InputError, match=r"^flow.raft_weights names /no/such/raft.pth, which does not exist"):
        make_estimator("raft", "medium", "/no/such/raft.pth", 12, notices.append)
    with pytest.raises(InputError, match="which does not exist"):
        load_raft("x" * 4096)  # a name too long for the file system


class _Planted:
    def __reduce__(self):
        return (print, ("a planted pickle ran",))


@pytest.mark.parametrize("kind", ["garbage", "pickle", "vgg", "tensor", "wrong_shape", "extra_key"])
def test_a_file_that_is_not_raft_is_one_sentence_and_kept(tmp_path, kind, capsys):
    path = tmp_path / f"{kind}.pth"
    if kind == "garbage":
        path.write_bytes(b"\x00not a checkpoint" * 50)
    elif kind == "pickle":
        path.write_bytes(pickle.dumps(_Planted(), protocol=2))
    elif kind == "vgg":
        torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, path)
    elif kind == "tensor":
        torch.save(torch.zeros(3), path)
    else:
        state = RAFT("small").state_dict()
        if kind == "wrong_shape":
            state["context_encoder.conv.weight"] = torch.zeros(161, 96, 1, 1)
        else:
            state["update_block.extra.weight"] = torch.zeros(1)
        torch.save(state, path)
    before = path.read_bytes()
    with pytest.raises(InputError) as caught:
        make_estimator("raft", raft_weights=str(path))
    message = str(caught.value)
    assert str(path) in message and "\n" not in message and "RAFT" in message
    assert {"vgg": "no feature_encoder", "wrong_shape": "context_encoder.conv.weight of shape (161, 96, 1, 1)",
            "extra_key": "unexpected update_block.extra.weight"}.get(kind, "") in message
    assert path.read_bytes() == before
    assert "planted" not in capsys.readouterr().out


def test_cli_refuses_a_bad_weights_file_before_any_work(tmp_path, capsys):
    from vinpaint.media.sample import SampleConfig, make_sample
    from vinpaint.media.writers import write_png_sequence, write_video
    from vinpaint.cli.main import main

    sample = make_sample(SampleConfig(frames=12, width=96, height=64, seed=2))
    write_video(tmp_path / "clip.mkv", sample.frames, 24)
    write_png_sequence(tmp_path / "masks", np.where(sample.masks, 255, 0).astype(np.uint8))
    bad = tmp_path / "raft.pth"
    bad.write_bytes(b"PK\x03\x04 truncated")
    before = sorted(p.name for p in tmp_path.iterdir())
    code = main(["inpaint", str(tmp_path / "clip.mkv"), "--mask", str(tmp_path / "masks"), "-o",
                 str(tmp_path / "out.mkv"), "--preset", "tiny", "--quiet", "--set", "flow.estimator=raft",
                 "--set", f"flow.raft_weights={bad}"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("vinpaint: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and str(bad) in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before and bad.read_bytes() == b"PK\x03\x04 truncated"


def test_dis_stays_the_default_everywhere():
    for preset in ("paper", "fast", "tiny"):
        assert make_config(preset).flow.estimator == "dis"


def test_matches_torchvision_when_it_is_installed():
    """Where torchvision is present (it is no dependency of ours), the same random weights give the same flow."""
    optical_flow = pytest.importorskip("torchvision.models.optical_flow")
    torch.manual_seed(0)
    reference = optical_flow.raft_small().eval()
    ours = raft_from_state(reference.state_dict(), "torchvision")
    a = torch.rand(1, 3, 128, 160) * 2 - 1
    b = torch.roll(a, (3, 5), (2, 3))
    with torch.no_grad():
        expected = reference(a, b, num_flow_updates=4)[-1]
    assert torch.allclose(ours(a, b, 4), expected, atol=1e-4)


@pytest.mark.parametrize("setting", [["--set", "loss.vgg_weights={}", "--set", "loss.perceptual=0.01"],
                                     ["--set", "flow.estimator=raft", "--set", "flow.raft_weights={}"]])
def test_a_weights_file_named_in_a_setting_that_is_not_there_is_refused_by_check(tmp_path, capsys, setting):
    """Before: --check passed and the run went on without the network (a notice, or nothing under --quiet)."""
    from vinpaint.media.sample import SampleConfig, make_sample
    from vinpaint.media.writers import write_png_sequence, write_video
    from vinpaint.cli.main import main

    sample = make_sample(SampleConfig(frames=12, width=96, height=64, seed=2))
    write_video(tmp_path / "clip.mkv", sample.frames, 24)
    write_png_sequence(tmp_path / "masks", np.where(sample.masks, 255, 0).astype(np.uint8))
    for missing, state in ((tmp_path / "typo.pth", "does not exist"), (tmp_path / "masks", "is a folder")):
        code = main(["inpaint", str(tmp_path / "clip.mkv"), "--mask", str(tmp_path / "masks"), "-o",
                     str(tmp_path / "out.mkv"), "--preset", "tiny", "--quiet", "--check",
                     *[part.format(missing) for part in setting]])
        err = capsys.readouterr().err
        name = next(part for part in setting if "{}" in part).split("=")[0]
        assert code == 2 and err.count("\n") == 1 and err.startswith(
            f"vinpaint: error: {name} names {missing}, which {state}; give the path of a torchvision "
            f"{'VGG16' if 'vgg' in name else 'RAFT'} ("), err
        assert not (tmp_path / "out.mkv").exists()
    if "vgg" in setting[1]:  # a file that is there but not VGG16's: refused by --check too, before any work
        torch.save({"something": torch.zeros(1)}, tmp_path / "other.pth")
        code = main(["inpaint", str(tmp_path / "clip.mkv"), "--mask", str(tmp_path / "masks"), "-o",
                     str(tmp_path / "out.mkv"), "--preset", "tiny", "--quiet", "--check",
                     *[part.format(tmp_path / "other.pth") for part in setting]])
        err = capsys.readouterr().err
        assert code == 2 and "which is not a torchvision VGG16 file (no features.0.weight)" in err, err
