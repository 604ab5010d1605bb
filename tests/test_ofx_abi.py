"""Our OpenFX declarations (plugin_cpp/include/vinpaint/ofx_abi.h) against an independent source of truth.

The plugin and our host harness both include ofx_abi.h, so a wrong constant there is invisible to every other
test (a misspelled property name shipped that way: hosts built on the OpenFX HostSupport code refused it and
dropped the plugin). Two checks:

- always on: every #define in ofx_abi.h equals the official value recorded in tests/ofx_official_constants.json
  (data written from the official headers);
- with VINPAINT_OFX_SDK=<an OpenFX checkout> in the environment: the CMake ABI check (plugin_cpp/tests/
  ofx_abi_check.cpp) compiles against the official headers, comparing every constant, struct size, member
  offset and function-pointer signature, and fails on a header with a wrong string or a wrong slot type; the
  JSON table is compared with the official headers too, so it cannot drift.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEADER = ROOT / "plugin_cpp" / "include" / "vinpaint" / "ofx_abi.h"
TABLE = ROOT / "tests" / "ofx_official_constants.json"
DEFINE = re.compile(r"^[ \t]*#[ \t]*define[ \t]+(kOfx\w+)[ \t]+(.+?)[ \t]*$", re.M)


def parse_value(text: str) -> str | int:
    """A #define's value as written in an OpenFX header: "string", 12, ((int) 12) or ((int)12)."""
    text = re.split(r"/\*|//", text)[0].strip()
    if m := re.fullmatch(r'"([^"]*)"', text):
        return m.group(1)
    if m := re.fullmatch(r"\(\s*\(\s*int\s*\)\s*(-?\d+)\s*\)|\(\s*(-?\d+)\s*\)|(-?\d+)", text):
        return int(next(g for g in m.groups() if g is not None))
    raise ValueError(f"cannot read the value {text!r}")


def declared(header_text: str) -> dict[str, str | int]:
    out: dict[str, str | int] = {}
    for name, value in DEFINE.findall(header_text):
        v = parse_value(value)
        assert out.get(name, v) == v, f"{name} is defined twice with different values"
        out[name] = v
    return out


def mismatches(header_text: str, official: dict[str, str | int]) -> list[str]:
    problems = []
    for name, value in sorted(declared(header_text).items()):
        if name not in official:
            problems.append(f"{name}: not an official OpenFX constant (or missing from {TABLE.name})")
        elif official[name] != value:
            problems.append(f"{name} is {value!r}; the official value is {official[name]!r}")
    return problems


def official_table() -> dict[str, str | int]:
    return json.loads(TABLE.read_text())["constants"]


# --- always on ---------------------------------------------------------------------------------------------------

def test_every_constant_in_ofx_abi_h_has_its_official_value() -> None:
    ours = declared(HEADER.read_text())
    assert len(ours) >= 150, "the #define pattern no longer finds the header's constants"
    assert mismatches(HEADER.read_text(), official_table()) == []


def test_the_table_catches_the_misspelling_that_once_shipped() -> None:
    """The old header's value for kOfxImageEffectPropSupportsMultipleClipDepths is reported, as is a name the
    official headers do not have."""
    old = HEADER.read_text().replace('"OfxImageEffectPropMultipleClipDepths"',
                                     '"OfxImageEffectPropSupportsMultipleClipDepths"')
    assert old != HEADER.read_text()
    problems = mismatches(old + '\n#define kOfxImageEffectPropMadeUp "OfxImageEffectPropMadeUp"\n', official_table())
    assert problems == [
        "kOfxImageEffectPropMadeUp: not an official OpenFX constant (or missing from ofx_official_constants.json)",
        "kOfxImageEffectPropSupportsMultipleClipDepths is 'OfxImageEffectPropSupportsMultipleClipDepths'; "
        "the official value is 'OfxImageEffectPropMultipleClipDepths'",
    ]


# --- with an official SDK ----------------------------------------------------------------------------------------

def sdk_include() -> Path:
    sdk = os.environ.get("VINPAINT_OFX_SDK", "")
    if not sdk:
        pytest.skip("set VINPAINT_OFX_SDK to an OpenFX checkout (docs/plugin.md) to run the ABI check")
    for d in (Path(sdk) / "include", Path(sdk)):
        if (d / "ofxCore.h").is_file():
            return d
    pytest.fail(f"VINPAINT_OFX_SDK={sdk} holds no ofxCore.h (nor include/ofxCore.h)")


def test_the_json_table_equals_the_official_headers() -> None:
    include = sdk_include()
    official: dict[str, str] = {}
    for h in sorted(include.glob("ofx*.h")):
        for name, value in DEFINE.findall(h.read_text(errors="replace")):
            official.setdefault(name, value)
    for name, value in official_table().items():
        assert name in official, f"{name} is in {TABLE.name} but not in the official headers"
        assert parse_value(official[name]) == value, name


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake is not installed")
def test_cmake_abi_check_builds_against_the_official_headers(tmp_path: Path) -> None:
    include = sdk_include()
    build = ROOT / "build" / "plugin-abi"
    configure = subprocess.run(["cmake", "-S", str(ROOT), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
                                f"-DVINPAINT_OFX_SDK={include.parent if include.name == 'include' else include}",
                                "-DVINPAINT_BUILD_TESTS=OFF"], capture_output=True, text=True)
    assert configure.returncode == 0, configure.stdout[-3000:] + configure.stderr[-3000:]
    assert "checking ofx_abi.h against the OpenFX headers" in configure.stdout
    done = subprocess.run(["cmake", "--build", str(build), "--target", "vinpaint_ofx_abi_check", "-j2"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


@pytest.mark.skipif(shutil.which("cmake") is None or shutil.which("c++") is None,
                    reason="cmake and a C++ compiler are needed")
@pytest.mark.parametrize("old,new,message", [
    ('"OfxImageEffectPropMultipleClipDepths"', '"OfxImageEffectPropSupportsMultipleClipDepths"',
     "kOfxImageEffectPropSupportsMultipleClipDepths differs from the official header"),
    ("#define kOfxStatReplyDefault ((int)14)", "#define kOfxStatReplyDefault ((int)12)",
     "kOfxStatReplyDefault differs from the official header"),
    ("const char *property, int *count);", "const char *property, unsigned *count);",
     "type of OfxPropertySuiteV1::propGetDimension differs from the official header"),
    ("int (*abort)(OfxImageEffectHandle imageEffect);\n    OfxStatus (*imageMemoryAlloc)",
     "OfxStatus (*imageMemoryAlloc)",
     "offset of OfxImageEffectSuiteV1::imageMemoryAlloc differs from the official header"),
])
def test_the_abi_check_fails_on_a_wrong_declaration(tmp_path: Path, old: str, new: str, message: str) -> None:
    """The same generator and check translation unit as the CMake build, on a copy of ofx_abi.h with one
    mistake: the compile fails and names it."""
    include = sdk_include()
    text = HEADER.read_text()
    assert old in text, old
    bad = tmp_path / "include" / "vinpaint" / "ofx_abi.h"
    bad.parent.mkdir(parents=True)
    bad.write_text(text.replace(old, new))
    gen = tmp_path / "gen"
    gen.mkdir()
    subprocess.run(["cmake", f"-DHEADER={bad}", f"-DLIST={gen / 'ofx_abi_list.inc'}",
                    f"-DUNDEF={gen / 'ofx_abi_undef.inc'}", "-P",
                    str(ROOT / "plugin_cpp" / "tests" / "ofx_abi_list.cmake")], check=True, capture_output=True)
    run = subprocess.run(["c++", "-std=c++17", "-fsyntax-only", f"-I{tmp_path / 'include'}", f"-I{gen}",
                          "-isystem", str(include), str(ROOT / "plugin_cpp" / "tests" / "ofx_abi_check.cpp")],
                         capture_output=True, text=True)
    assert run.returncode != 0
    assert message in run.stderr, run.stderr[-3000:]
