"""`vinpaint eval`: the paper's section 4 on real footage: composed clips, every variant, baselines, one table."""
from __future__ import annotations

import argparse
import os
import json
from pathlib import Path

from vinpaint.cli.arguments import add_set_arguments, parse_setting, parse_size
from vinpaint.errors import InputError
from vinpaint.files import PARTIAL_NAME
from vinpaint.cli.outputs import check_result_folder, check_writable
from vinpaint.evaluation import compose
from vinpaint.evaluation.config import profile, split_methods


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated seconds (e.g. 300,900), not {text!r}") from None


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "eval", help="evaluate every variant and baseline on composed clips with ground truth (paper section 4)",
        description="Compose background clips with real object masks (ground truth known), run the paper's four "
                    "variants and OpenCV's Telea/Navier-Stokes inpainting at the same working size, and write "
                    "OUT/results.md and OUT/results.csv (Table 1's shape) with pictures. Re-running the same "
                    "command continues where it stopped.")
    p.add_argument("--data", type=Path, required=True, metavar="DIR",
                   help="folder laid out like ../shared/data (bg/<name>/frames, <name>/frames + masks) or DAVIS")
    p.add_argument("--output", "-o", type=Path, required=True, metavar="OUT")
    p.add_argument("--profile", choices=("tiny", "cpu", "gpu"), default="cpu",
                   help="sizes for the machine: tiny (tests, seconds), cpu (2 cores, under 30 min), gpu (paper size)")
    p.add_argument("--composed", type=Path, metavar="SET",
                   help="use a composed set written by `vinpaint compose` instead of drawing one from --data")
    p.add_argument("--clips", type=int, help="number of composed clips")
    p.add_argument("--frames", type=int, help="frames per composed clip")
    p.add_argument("--size", type=parse_size, help="working size WIDTHxHEIGHT, multiples of 64 (e.g. 384x192)")
    p.add_argument("--seed", type=int, help="seed of the composition (the engine's seed is --engine-seed)")
    p.add_argument("--backgrounds",
                   help="comma-separated background clips: bg/<name> for a clean one, a masked clip's own name to "
                        "use its frames, object and all (default: every clean one)")
    p.add_argument("--mask-sources", help="comma-separated masked clip names to take masks from (default: all)")
    p.add_argument("--methods", help="comma-separated: dip,dip-vid,dip-vid-3dcn,dip-vid-flow,telea,ns,prop-telea "
                                     "(propagation, Telea for the rest, no training), or "
                                     "LABEL=VARIANT:key=value;key=value for a variant with engine overrides")
    p.add_argument("--preset", choices=("tiny", "fast", "paper"), help="engine preset for the own schedule")
    p.add_argument("--budgets", type=_floats, help="equal budgets in seconds, e.g. 300,900 ('' for none)")
    p.add_argument("--clock", choices=("auto", "cpu", "wall"),
                   help="what a budget counts (default auto: CPU seconds on a CPU, wall seconds on a GPU; see docs)")
    p.add_argument("--device", help="where the engine methods train: cpu, cuda or cuda:N (default: the first GPU, "
                                    "else the CPU)")
    p.add_argument("--no-own-schedule", action="store_true", help="evaluate at the budgets only")
    p.add_argument("--no-dip-budgets", action="store_true", help="run DIP at its own schedule only")
    p.add_argument("--real-clips", help="comma-separated masked clips without truth to score for consistency")
    p.add_argument("--real-frames", type=int, help="frames taken from each real clip")
    p.add_argument("--real-methods", help="comma-separated labels of the methods run on the real clips "
                                          "(default: the profile's; 'all' for every method)")
    add_set_arguments(p)  # for every variant
    p.add_argument("--jobs", type=int, default=1, help="training runs in parallel (default 1)")
    p.add_argument("--threads", type=int, help="torch threads per run (default 1 with the cpu clock)")
    p.add_argument("--inception", help="TorchScript Inception weights for FID (default: $VINPAINT_INCEPTION)")
    p.add_argument("--no-pictures", action="store_true")
    p.set_defaults(run=run)


def build_eval_config(args: argparse.Namespace):
    cfg = profile(args.profile)
    c = cfg.compose
    if args.clips is not None:
        c.count = args.clips
    if args.frames is not None:
        c.frames = args.frames
    if args.size is not None:
        c.width, c.height = args.size
    if args.seed is not None:
        c.seed = args.seed
    if args.backgrounds:
        c.backgrounds = [x.strip() for x in args.backgrounds.split(",") if x.strip()]
    if args.mask_sources:
        c.mask_sources = [x.strip() for x in args.mask_sources.split(",") if x.strip()]
    if args.methods:
        cfg.methods = split_methods(args.methods)
    if args.preset:
        cfg.preset = args.preset
    if args.budgets is not None:
        cfg.budgets = args.budgets
    if args.clock:
        cfg.clock = args.clock
    cfg.own_schedule = not args.no_own_schedule
    if args.no_dip_budgets:
        cfg.dip_budgets = False
    if args.real_clips is not None:
        cfg.real_clips = [x.strip() for x in args.real_clips.split(",") if x.strip()]
    if args.real_frames is not None:
        cfg.real_frames = args.real_frames
    if args.real_methods is not None:
        chosen = split_methods(args.real_methods)
        labels = [m.label for m in cfg.method_specs()]
        unknown = [m for m in chosen if m not in labels]
        if unknown and chosen != ["all"]:
            raise InputError(f"--real-methods names {', '.join(unknown)}, not among the methods "
                             f"({', '.join(labels)})")
        cfg.real_methods = [] if chosen == ["all"] else chosen
    for item in args.set:
        key, value = parse_setting(item)
        cfg.overrides[key] = value
    if args.device:
        cfg.device = args.device
    if args.threads is not None:
        cfg.threads = args.threads
    if args.inception:
        cfg.inception = args.inception
    if args.no_pictures:
        cfg.pictures = False
    if args.jobs < 1:
        raise InputError(f"--jobs must be at least 1, not {args.jobs}.")
    cfg.validate()
    return cfg


def earlier_evaluation(out: Path) -> bool:
    """An evaluation wrote `out`: its config.json is an EvalConfig's (its core fields, so a folder of an earlier
    version, with a field since added or removed, still counts), or it has none (yet) but holds nothing but an
    evaluation's files, its composed set among them. A damaged config.json there is said as such: before, it was
    taken for a stranger's folder, and the evaluation could never be continued."""
    config = out / "config.json"
    try:
        saved = json.loads(config.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return _holds_an_evaluation(out)
    except ValueError:  # empty, cut short, not JSON or not UTF-8
        if _holds_an_evaluation(out):
            raise InputError(f"{config} is damaged (empty or not JSON), so the evaluation in {out} cannot be told; "
                             "delete that file to continue it with the same command (it is written again), or give "
                             "a new -o.") from None
        return False
    except OSError:
        return False
    return isinstance(saved, dict) and {"profile", "preset", "methods", "compose", "budgets"} <= set(saved)


EVALUATION_ENTRIES = frozenset({"config.json", "composed", "composed_set.json", "runs", "pictures", "results.csv",
                                "results.md"})
"""What `vinpaint eval` writes in OUT (evaluation/evaluate.py)."""


def _holds_an_evaluation(out: Path) -> bool:
    """OUT holds an evaluation's files alone (and what a kill left half-written), its composed set among them: the
    set is composed (or recorded) first and config.json written after, so a run cut short has no config.json."""
    try:
        names = {entry.name for entry in out.iterdir()}
    except OSError:
        return False
    if any(name not in EVALUATION_ENTRIES and not PARTIAL_NAME.fullmatch(name) for name in names):
        return False
    try:
        compose.load_manifest(out / "composed" / "manifest.json")
        return True
    except InputError:
        pass
    try:
        recorded = json.loads((out / "composed_set.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(recorded, dict) and {"manifest", "digests"} <= set(recorded)


def run(args: argparse.Namespace) -> int:
    cfg = build_eval_config(args)
    out = Path(os.path.expanduser(args.output))
    check_result_folder(out, Path(os.path.expanduser(args.data)), earlier_evaluation, "eval")
    check_writable([out / "config.json"])  # under a file or read-only: said before torch loads
    from vinpaint.evaluation.evaluate import evaluate  # torch and the engine: loaded to run, not to parse

    evaluate(Path(os.path.expanduser(args.data)), out, cfg, workers=args.jobs,
             composed=Path(os.path.expanduser(args.composed)) if args.composed else None)
    return 0
