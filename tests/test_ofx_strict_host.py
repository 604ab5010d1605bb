"""The OFX host harness as a strict host (tests/ofx_harness), without a daemon.

Each rule is shown twice: the real bundle passes it, and a probe plugin (tests/ofx_harness/probe_plugin.cpp) doing
what an earlier vinpaint bundle did is refused or caught. The rules are the ones hosts built on the OpenFX
HostSupport library apply: property sets refuse unknown names (kOfxStatErrUnknown), wrong types
(kOfxStatErrValue) and indices outside the dimension (kOfxStatErrBadIndex); only kOfxStatOK from isIdentity
means "identity"; optional clips that do not ask through GetClipPreferences get the components the host
chooses; a depth the plugin does not declare is never sent; fielded material is rendered as the plugin asks.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from test_plugin_harness import BUILD, Run, build_plugin, harness

pytestmark = pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake is not installed")

NOWHERE = "tcp://127.0.0.1:9"  # nothing listens: these runs never reach a daemon
W, H, T = 48, 32, 3


@pytest.fixture(scope="module", autouse=True)
def built() -> None:
    build_plugin()


def probe(*args: str) -> Run:
    """The probe plugin in the harness; VINPAINT_PROBE in the environment picks what it does wrong."""
    return harness("--bundle", str(BUILD / "HarnessProbe.ofx.bundle"), "--synthetic", f"{W}x{H}x{T}", *args)


def refusals(run: Run) -> list[dict]:
    return [e for e in run.events if e.get("event") == "refused"]


def messages(run: Run) -> list[str]:
    return [e["text"] for e in run.events if e.get("event") == "message"]


# --- property sets -------------------------------------------------------------------------------------------------

def test_the_bundle_sets_and_gets_only_properties_the_host_holds() -> None:
    run = harness("--synthetic", f"{W}x{H}x{T}", "--daemon", NOWHERE, "--param", "output=2",
                  "--steps", "describe,create,render:1,set:output=1,render:2,refresh,destroy,unload")
    assert run.event("summary")["ok"], run.stdout[-3000:]
    d = run.event("describe")
    assert d["status"] == "OK" and d["multiple_clip_depths"] == 0
    assert refusals(run) == []


@pytest.mark.parametrize("mode,status,prop", [
    ("old-clip-depths", "ErrUnknown", "OfxImageEffectPropSupportsMultipleClipDepths"),
    ("wrong-type", "ErrValue", "OfxImageEffectPropSupportsTiles"),
    ("wrong-dimension", "ErrBadIndex", "OfxImageEffectPropSupportsTiles"),
])
def test_describe_fails_on_an_unknown_property_a_wrong_type_or_index(monkeypatch, mode: str, status: str,
                                                                     prop: str) -> None:
    """old-clip-depths is what the bundle did before issue 10: the misspelled name made Describe fail, and hosts
    built on HostSupport dropped the plugin."""
    monkeypatch.setenv("VINPAINT_PROBE", mode)
    run = probe("--steps", "describe")
    assert run.steps["describe"]["status"] == status
    assert [r["property"] for r in refusals(run)] == [prop]
    monkeypatch.delenv("VINPAINT_PROBE")
    assert probe("--steps", "describe").steps["describe"]["status"] == "OK"


# --- statuses ------------------------------------------------------------------------------------------------------

def test_only_ok_from_is_identity_means_identity(monkeypatch) -> None:
    """kOfxStatReplyYes (what the bundle answered before) is not an identity answer: the host renders anyway and
    the harness reports the status as outside the spec."""
    monkeypatch.setenv("VINPAINT_PROBE", "identity-yes")
    run = probe("--steps", "describe,create,render:1")
    assert not run.event("summary")["ok"]
    assert run.event("bad_status")["action"] == "OfxImageEffectActionIsIdentity"
    assert not any(e.get("event") == "identity" for e in run.events)
    assert run.event("render_action")["frame"] == 1
    monkeypatch.delenv("VINPAINT_PROBE")

    real = harness("--synthetic", f"{W}x{H}x{T}", "--daemon", NOWHERE, "--param", "output=1",
                   "--steps", "describe,create,render:1,destroy,unload")
    assert real.event("summary")["ok"], real.stdout[-2000:]
    assert real.event("identity")["clip"] == "Source"
    assert not any(e.get("event") == "render_action" for e in real.events)


def test_stale_no_daemon_error_is_cleared_when_output_becomes_source() -> None:
    run = harness("--synthetic", f"{W}x{H}x{T}", "--daemon", NOWHERE, "--param", "jobId=" + "ab" * 16,
                  "--expect-failure", "render", "--steps", "describe,create,render:1,set:output=1")
    assert "no daemon is reachable" in run.steps["render:1"]["persistent"]
    assert run.steps["set:output=1"]["persistent"] == ""


# --- clip components -------------------------------------------------------------------------------------------------

def test_an_alpha_mask_stays_alpha_with_an_rgb_source(tmp_path: Path) -> None:
    """HostSupport maps an optional clip that did not ask to the most chromatic input's components: the probe
    (no GetClipPreferences, like the bundle before) gets its Alpha mask as RGB. The bundle asks for the Mask's own
    components, so the mask overlay (Mask channel Alpha) works with an RGB source."""
    old = probe("--components", "RGB", "--mask-components", "Alpha", "--steps", "describe,create,render:1")
    assert old.event("clip_preferences")["clips"]["Mask"]["components"] == "OfxImageComponentRGB"
    assert any(m.startswith("probe: Mask OfxImageComponentRGB") for m in messages(old))

    run = harness("--synthetic", f"{W}x{H}x{T}", "--components", "RGB", "--mask-components", "Alpha",
                  "--daemon", NOWHERE, "--param", "output=2", "--out", str(tmp_path),
                  "--steps", "describe,create,render:2,destroy,unload")
    assert run.event("summary")["ok"], run.stdout[-3000:]
    clips = run.event("clip_preferences")["clips"]
    assert clips["Mask"]["components"] == "OfxImageComponentAlpha"
    assert clips["Source"]["components"] == clips["Output"]["components"] == "OfxImageComponentRGB"
    # A mask handed over as RGB (a black-and-white matte file) has no alpha for "Mask channel: Alpha": its
    # luminance is the matte (before, 2026-12-03, every render and Train failed, "set Mask channel to Luminance",
    # which a host without Choice parameters cannot do).
    remapped = harness("--synthetic", f"{W}x{H}x{T}", "--components", "RGB", "--mask-components", "RGB",
                       "--daemon", NOWHERE, "--param", "output=2", "--out", str(tmp_path / "rgb"),
                       "--steps", "describe,create,render:2,destroy,unload")
    assert remapped.steps["render:2"]["status"] == "OK", remapped.steps["render:2"]
    out, src, mask = (np.load(tmp_path / f"{k}_2.npy") for k in ("output", "source", "mask"))
    assert np.array_equal(np.load(tmp_path / "rgb" / "output_2.npy"), out)
    assert mask.shape == (H, W, 1)
    hole = mask[..., 0] > 127
    assert hole.any() and np.array_equal(out[~hole], src[~hole]) and not np.array_equal(out[hole], src[hole])


# --- depths, fields ------------------------------------------------------------------------------------------------

def test_half_float_is_sent_only_to_a_plugin_that_declares_it(monkeypatch, tmp_path: Path) -> None:
    run = harness("--synthetic", f"{W}x{H}x{T}", "--depth", "half", "--daemon", NOWHERE, "--param", "output=2",
                  "--out", str(tmp_path / "real"), "--steps", "describe,create,render:1,destroy,unload")
    assert run.event("summary")["ok"], run.stdout[-3000:]
    assert run.event("depth_mapped") == {**run.event("depth_mapped"), "asked": "OfxBitDepthHalf",
                                         "given": "OfxBitDepthFloat"}
    assert np.load(tmp_path / "real" / "output_1.npy").dtype == np.float32

    monkeypatch.setenv("VINPAINT_PROBE", "half")
    half = probe("--depth", "half", "--out", str(tmp_path / "probe"), "--steps", "describe,create,render:1")
    assert half.event("summary")["ok"], half.stdout[-3000:]
    assert not any(e.get("event") == "depth_mapped" for e in half.events)
    assert any(m.startswith("probe: Source OfxImageComponentRGBA OfxBitDepthHalf") for m in messages(half))
    out, src = np.load(tmp_path / "probe" / "output_1.npy"), np.load(tmp_path / "probe" / "source_1.npy")
    assert out.dtype == np.float16 and np.array_equal(out, src)


@pytest.mark.parametrize("field", ["lower", "upper"])
def test_fielded_material_is_rendered_as_the_plugin_asks(monkeypatch, tmp_path: Path, field: str) -> None:
    """The bundle renders whole frames once (FieldRenderTwiceAlways 0, clips fetched with both fields); a plugin
    that says nothing (the spec's default) is rendered once per field with doubled-line images."""
    args = ["--synthetic", f"{W}x{H}x{T}", "--daemon", NOWHERE, "--param", "output=2", "--origin", "3,-5"]
    fielded = harness(*args, "--field", field, "--out", str(tmp_path / "f"),
                      "--steps", "describe,create,render:2,destroy,unload")
    harness(*args, "--out", str(tmp_path / "p"), "--steps", "describe,create,render:2,destroy,unload")
    assert fielded.event("summary")["ok"], fielded.stdout[-3000:]
    assert fielded.event("describe")["field_render_twice"] == 0
    assert fielded.event("describe")["clips"]["Source"]["field_extraction"] == "OfxFieldBoth"
    assert [e["field"] for e in fielded.events if e.get("event") == "render_action"] == ["OfxFieldBoth"]
    assert np.array_equal(np.load(tmp_path / "f" / "output_2.npy"), np.load(tmp_path / "p" / "output_2.npy"))

    # A host may still render one field at a time (it does when a parameter animates): each render writes only
    # its field's rows, and the two make the same frame.
    split = harness(*args, "--field", field, "--split-fields", "--out", str(tmp_path / "s"),
                    "--steps", "describe,create,render:2,destroy,unload")
    assert split.event("summary")["ok"], split.stdout[-3000:]
    assert len([e for e in split.events if e.get("event") == "render_action"]) == 2
    assert np.array_equal(np.load(tmp_path / "s" / "output_2.npy"), np.load(tmp_path / "p" / "output_2.npy"))

    monkeypatch.setenv("VINPAINT_PROBE", "")
    old = probe("--field", field, "--steps", "describe,create,render:2")
    fields = [e["field"] for e in old.events if e.get("event") == "render_action"]
    first, second = ("OfxFieldLower", "OfxFieldUpper") if field == "lower" else ("OfxFieldUpper", "OfxFieldLower")
    assert fields == [first, second]
    assert any(m == f"probe: Source OfxImageComponentRGBA OfxBitDepthByte {first}" for m in messages(old))


# --- a host that lacks a parameter type ----------------------------------------------------------------------------

def test_a_host_without_string_parameters_still_makes_the_node_with_every_other_parameter() -> None:
    """HostSupport's example host accepts String in paramDefine but makes no String instance, and its instance
    ends at the first parameter it cannot make. The node defines its five Strings last, so every other parameter
    is there, and keeps those five itself: it is made, and an untrained render shows the source (before,
    2026-12-01: CreateInstance refused, so the node could not be used in such a host at all). Training through
    such a host is in test_plugin_harness.py."""
    run = harness("--synthetic", f"{W}x{H}x{T}", "--lack-param-type", "OfxParamTypeString",
                  "--steps", "describe,create,render:1,destroy,unload")
    assert run.event("summary")["ok"], run.stdout[-3000:]
    assert run.steps["create"]["status"] == "OK"
    assert run.steps["render:1"]["status"] == "OK"
    assert "not trained yet" in run.steps["render:1"]["persistent"]
    described = run.event("describe")["params"]
    strings = [name for name, p in described.items() if p["type"] == "OfxParamTypeString"]
    assert sorted(strings) == ["daemonAddress", "engineSettings", "jobCanvas", "jobId", "jobReferences", "status"]
    names = list(described)
    assert min(names.index(n) for n in strings) > max(names.index(n) for n in names if n not in strings
                                                       and described[n]["type"] != "OfxParamTypePage")
    assert refusals(run) == []


def test_the_bundle_works_after_the_scan_unloads_it() -> None:
    """A HostSupport plug-in cache scan runs Load, Describe and Unload, and creating an instance later loads the
    bundle again (seen in a host built on HostSupport: every suite fetched twice). The second life must reach the
    daemon as the first (the ZeroMQ context ended at the first Unload is made again)."""
    run = harness("--synthetic", f"{W}x{H}x{T}", "--daemon", NOWHERE, "--param", "jobId=" + "ab" * 16,
                  "--expect-failure", "render",
                  "--steps", "describe,unload,describe,create,render:1,destroy,unload")
    assert run.steps["create"]["status"] == "OK"
    assert run.steps["render:1"]["status"] == "Failed"
    assert "no daemon is reachable" in run.steps["render:1"]["persistent"]
    assert run.steps["unload"]["status"] == "OK"
    assert run.event("summary")["ok"], run.stdout[-3000:]
    assert refusals(run) == []


@pytest.mark.parametrize("steps", ["describe,create,describe,unload,render:1,destroy,unload",
                                   "describe,create,render:0,unload,create,render:1,destroy,unload"],
                         ids=["a re-scan while the node lives", "a node made after an unload, with no new Load"])
def test_hostsupports_extra_loads_and_unloads_leave_the_node_working(steps: str) -> None:
    """HostSupport's plug-in cache loads, describes and unloads the binary on a handle of its own when a re-scan
    finds the bundle changed, while nodes of it live; and ImageEffectPlugin::unload keeps its handle, so the next
    node it makes after an Unload sends no Load. Before (a hunt, 2026-12-03): every later render, Train and
    destroy answered kOfxStatErrMissingHostFeature, with no message. Now the last Unload alone ends what nodes use,
    and suites are fetched again from the host's pointer."""
    run = harness("--synthetic", f"{W}x{H}x{T}", "--daemon", NOWHERE, "--param", "jobId=" + "ab" * 16,
                  "--expect-failure", "render", "--steps", steps.replace("render:0,", ""))
    assert run.steps["render:1"]["status"] == "Failed", run.stdout[-3000:]
    assert "no daemon is reachable" in run.steps["render:1"]["persistent"]
    assert run.steps["destroy"]["status"] == "OK"
    assert run.event("summary")["ok"], run.stdout[-3000:]
    assert refusals(run) == []


def test_booleans_of_a_host_that_stores_no_values_are_taken_at_their_defaults() -> None:
    """HostSupport's example host refuses every Integer read and answers every Boolean read with true: Invert mask
    read as on, and the node inverted every hole (a hunt, 2026-12-03). A host that cannot give an Integer keeps no
    values, so the node keeps its Booleans at their defaults too, saying so once each on the host's stderr (the
    pixels this changes are checked through a daemon in test_plugin_harness.py, the example-host test)."""
    run = harness("--synthetic", f"{W}x{H}x{T}", "--lack-param-type", "OfxParamTypeString",
                  "--unreadable-param-type", "OfxParamTypeChoice,OfxParamTypeInteger", "--example-host-booleans",
                  "--steps", "describe,create,render:1,destroy,unload")
    assert run.event("summary")["ok"], run.stdout[-3000:]
    for name in ("invertMask", "waitInBatch"):
        assert f"the host cannot give a stored value of the parameter '{name}'" in run.stdout, run.stdout[-3000:]
    assert run.steps["render:1"]["status"] == "OK"
    assert refusals(run) == []


def test_train_writes_back_a_boolean_read_off_its_default_and_keeps_the_default_where_the_host_refuses(
        tmp_path: Path) -> None:
    """A host that gives Integer values but answers every Boolean read with true and refuses every write (the
    example host's Booleans alone): an overlay before Train shows the mask inverted, as read. Pressing Train writes
    the value it read back (InstanceChanged is where the spec allows writes), the host refuses it as a feature it
    lacks, and from then on the node keeps Invert mask at its default: the overlay marks the hole as given."""
    run = harness("--synthetic", f"{W}x{H}x{T}", "--daemon", NOWHERE, "--example-host-booleans", "--param",
                  "output=2", "--out", str(tmp_path / "before"), "--expect-failure", "train",
                  "--steps", f"describe,create,render:2,out:{tmp_path / 'after'},train,render:2,destroy,unload")
    assert run.steps["render:2"]["status"] == "OK", run.stdout[-3000:]
    assert "the host cannot store a value of the parameter 'invertMask'" in run.stdout
    assert "'waitInBatch'" not in run.stdout  # read as true, its default: nothing written
    for when, tinted_in_hole in (("before", False), ("after", True)):
        out, src, mask = (np.load(tmp_path / when / f"{k}_2.npy") for k in ("output", "source", "mask"))
        hole = mask[..., 0] > 127
        assert hole.any() and (~hole).any()
        assert np.array_equal(out[hole], src[hole]) != tinted_in_hole, when
        assert np.array_equal(out[~hole], src[~hole]) == tinted_in_hole, when
    assert refusals(run) == []


def test_a_parameter_value_the_host_cannot_give_is_kept_by_the_node_at_its_default() -> None:
    """HostSupport's example host answers kOfxStatErrMissingHostFeature to paramGetValue and paramSetValue on a
    Choice (and an Integer). The node keeps such a value itself from then on, starting at the parameter's default,
    and says so once on the host's stderr, naming it (before, 2026-12-01: every render failed naming the
    parameter). Here the render goes on to the daemon, which is not there."""
    run = harness("--synthetic", f"{W}x{H}x{T}", "--daemon", NOWHERE, "--param", "jobId=" + "ab" * 16,
                  "--unreadable-param-type", "OfxParamTypeChoice", "--expect-failure", "render",
                  "--steps", "describe,create,render:1,render:2,destroy,unload")
    assert run.steps["create"]["status"] == "OK"
    assert run.steps["render:1"]["status"] == "Failed"
    assert "no daemon is reachable" in run.steps["render:1"]["persistent"]
    notes = [line for line in run.stdout.splitlines() if "the host cannot give the value of the parameter" in line]
    assert notes == ["vinpaint: the host cannot give the value of the parameter 'output': the node keeps its value "
                     "itself, starting at its default"], notes  # once, for two renders
    assert run.steps["unload"]["status"] == "OK"
    assert refusals(run) == []


def test_a_host_like_hostsupports_example_makes_the_node_and_renders_the_source() -> None:
    """No String parameters, and Integer and Choice answering kOfxStatErrMissingHostFeature to get and set, as
    HostSupport's example host: the node is made, an untrained render shows the source, and Refresh (which bumps
    an Integer) works."""
    run = harness("--synthetic", f"{W}x{H}x{T}", "--lack-param-type", "OfxParamTypeString",
                  "--unreadable-param-type", "OfxParamTypeChoice,OfxParamTypeInteger",
                  "--steps", "describe,create,render:1,refresh,destroy,unload")
    assert run.event("summary")["ok"], run.stdout[-3000:]
    assert run.steps["render:1"]["status"] == "OK" and "not trained yet" in run.steps["render:1"]["persistent"]
    assert run.steps["refresh"]["status"] == "OK"
    assert "the parameter 'refreshSerial'" in run.stdout
    assert refusals(run) == []
