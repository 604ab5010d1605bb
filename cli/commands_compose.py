"""`vinpaint compose`: build a reproducible set of composed clips (background + real object mask, truth known)."""
from __future__ import annotations

import argparse
import os
from dataclasses import asdict
from pathlib import Path

from vinpaint.errors import InputError
from vinpaint.cli.arguments import parse_size
from vinpaint.cli.outputs import check_result_folder, check_writable
from vinpaint.evaluation import compose


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "compose", help="compose background clips with real object masks into clips with known ground truth",
        description="Draw composed clips as the paper's Composed dataset (section 4): each takes a background "
                    "clip (bg/<name>/frames) and the mask sequence of a masked clip, fitted to the working size "
                    "and looped or trimmed. Writes OUT/<clip>/{frames,masks,truth}/ and OUT/manifest.json; the "
                    "same seed, or --manifest, rebuilds the same pixels.")
    p.add_argument("--data", type=Path, required=True, metavar="DIR", help="folder laid out like ../shared/data")
    p.add_argument("--output", "-o", type=Path, required=True, metavar="OUT")
    p.add_argument("--manifest", type=Path, help="rebuild exactly the clips of this manifest.json")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--clips", type=int, default=4, help="number of clips (default %(default)s)")
    p.add_argument("--frames", type=int, default=30, help="frames per clip (default %(default)s)")
    p.add_argument("--size", type=parse_size, default=(256, 128), help="WIDTHxHEIGHT (default 256x128)")
    p.add_argument("--mask-folder", default="masks", help="mask folder of the masked clips (default masks)")
    p.add_argument("--fill", choices=("object", "grey"), default="object",
                   help="what the input shows in the hole: the source clip's object (default) or grey")
    p.add_argument("--backgrounds",
                   help="comma-separated background clips: bg/<name> for a clean one, a masked clip's own name to "
                        "use its frames, object and all (default: every clean one)")
    p.add_argument("--mask-sources", help="comma-separated masked clip names (default: all)")
    p.set_defaults(run=run)


def earlier_set(out: Path) -> bool:
    """`vinpaint compose` wrote `out`: it holds a manifest.json that reads as one, or is a set it was writing."""
    if compose.interrupted_set(out):
        return True
    try:
        compose.load_manifest(out / "manifest.json")
    except InputError:
        return False
    return True


def manifest_config(manifest: dict, path: Path) -> compose.ComposeConfig:
    """The settings a manifest was drawn with, checked as the options are: a manifest may be written by hand, and
    its size is allocated for every clip."""
    try:
        if not isinstance(manifest.get("config"), dict):  # none: build_clip's KeyError (a review found)
            raise TypeError
        cfg = compose.ComposeConfig(**manifest["config"])
        cfg.validate()
    except TypeError:
        raise InputError(f"the manifest {path} holds no readable settings (its \"config\").") from None
    except InputError as err:
        raise InputError(f"the manifest {path} asks for settings the options refuse: {err}") from None
    return cfg


def run(args: argparse.Namespace) -> int:
    data, out = Path(os.path.expanduser(args.data)), Path(os.path.expanduser(args.output))
    if args.manifest:
        manifest = compose.load_manifest(Path(os.path.expanduser(args.manifest)))
        cfg = manifest_config(manifest, args.manifest)
    else:
        cfg = compose.ComposeConfig(
            seed=args.seed, count=args.clips, frames=args.frames, width=args.size[0], height=args.size[1],
            mask_folder=args.mask_folder, fill=args.fill,
            backgrounds=[x.strip() for x in (args.backgrounds or "").split(",") if x.strip()],
            mask_sources=[x.strip() for x in (args.mask_sources or "").split(",") if x.strip()])
        cfg.validate()  # before a pixel is allocated: 65536x65536 ran until the OOM killer
    check_result_folder(out, data, earlier_set, "compose")
    check_writable([out / "manifest.json"])  # under a file or read-only: said before the set is drawn
    if not args.manifest:
        manifest = compose.make_manifest(data, cfg)
    written = compose.write_set(data, manifest, out)
    for d, e in zip(written, manifest["clips"]):
        print(f"{d}: {e['background']} + masks of {e['mask_source']} ({len(e['mask_frames'])} frames, "
              f"hole {100 * e.get('hole_fraction', 0):.1f}%)")
    print(f"manifest: {out / 'manifest.json'} (settings: {asdict(cfg)})")
    return 0
