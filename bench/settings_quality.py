"""Hole PSNR of several speed settings at the same number of steps, on the procedural sample (its true background
is known), one after another in one process. Prints numbers; asserts nothing. Example:
    python bench/settings_quality.py --size 128x64 --steps 300 --arm fp32: --arm bf16:train.precision=bf16
"""
from __future__ import annotations

import argparse
import json
import time


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="128x64")
    p.add_argument("--frames", type=int, default=25)
    p.add_argument("--preset", default="fast")
    p.add_argument("--variant", default="dip-vid-flow")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--device", default="cpu")
    p.add_argument("--arm", action="append", default=[], metavar="NAME:KEY=VALUE,...")
    a = p.parse_args()
    from vinpaint.engine import inpaint, make_config
    from vinpaint.evaluation.metrics import hole_psnr
    from vinpaint.media.sample import SampleConfig, make_sample

    w, h = (int(v) for v in a.size.lower().split("x"))
    sample = make_sample(SampleConfig(frames=a.frames, width=w * 2, height=h * 2))
    for arm in a.arm or ["default:"]:
        name, _, rest = arm.partition(":")
        settings = {}
        for item in filter(None, rest.split(",")):
            key, _, value = item.partition("=")
            try:
                settings[key] = json.loads(value)
            except ValueError:
                settings[key] = value
        config = make_config(a.preset, a.variant, **{
            "resolution.work_width": w, "resolution.work_height": h, "loss.perceptual": 0.0,
            "propagation.enabled": False, "train.max_steps": a.steps, **settings})
        started = time.monotonic()
        r = inpaint(sample.frames, sample.masks, config, device=a.device)
        print(f"{name:<14} {r.steps} steps, {time.monotonic() - started:.0f} s wall: hole PSNR "
              f"{hole_psnr(r.frames, sample.background, r.hole):.2f} dB, last total loss {r.history[-1, 1]:.5f}",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
