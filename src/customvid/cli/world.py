"""`customvid world ...`: the toy world's vocabulary, single clips, datasets and reference images."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
from pathlib import Path

from customvid.errors import CustomvidError

SIZE_HELP = "frame size: N (square) or WxH (default 64)"


def register(subparsers) -> None:
    world = subparsers.add_parser(
        "world", help="the procedural toy world: vocabulary, clips, datasets",
        description="The procedural toy world of moving sprites with known ground truth.")
    sub = world.add_subparsers(dest="world_command", metavar="SUBCOMMAND", required=True)

    p = sub.add_parser("vocab", help="print the vocabulary and splits as JSON",
                       description="Print the vocabulary (colours with RGB, shapes, textures, backgrounds, "
                                   "motions with paraphrases, novel words) and the splits as JSON.")
    p.set_defaults(func=cmd_vocab)

    p = sub.add_parser("render", help="render one clip from a prompt or a split index",
                       description="Render one clip from a caption (--prompt) or a split (--split, --index).")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--prompt", help='a caption, e.g. "a red square moving left on a black background"')
    src.add_argument("--split", help="take the clip from this split (with --index)")
    p.add_argument("--index", type=int, default=0, help="clip index within --split (default 0)")
    p.add_argument("--seed", type=int, default=0, help="seed for size, speed and placement (default 0)")
    p.add_argument("--out", required=True, help="video path: .mp4, .gif, or a folder (PNG frames)")
    _geometry_args(p)
    p.add_argument("--record", help="also write the clip's manifest record (JSON) here, for evaluation")
    p.add_argument("--contact-sheet", help="also write all frames tiled into one PNG here")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("dataset", help="render a split into a resumable dataset folder",
                       description="Render clips 0..N-1 of a split into DIR: videos, masks and "
                                   "manifest.jsonl. Re-running the same command resumes an interrupted run.")
    p.add_argument("--split", default="train", help="train, composition, subjects, motions or trajectories")
    p.add_argument("--n", type=int, required=True, help="number of clips")
    p.add_argument("--out", required=True, help="dataset folder")
    p.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    _geometry_args(p)
    p.add_argument("--format", default="mp4", help="mp4 (H.264) or npz (lossless frames + masks + boxes)")
    p.add_argument("--overwrite", action="store_true",
                   help="delete a dataset of another configuration in DIR instead of refusing")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_dataset)

    p = sub.add_parser("references", help="write reference images of the custom subjects",
                       description="Write still reference images (PNG + mask PNG + references.jsonl) of "
                                   "a custom subject, or of all of them, into DIR/NAME/.")
    p.add_argument("--subject", required=True, help="a custom subject name, or all")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--n", type=int, default=6, help="images per subject (default 6)")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument("--size", default="64", help=SIZE_HELP)
    p.add_argument("--overwrite", action="store_true", help="replace existing, different references")
    p.set_defaults(func=cmd_references)


def _geometry_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--frames", type=int, default=16, help="frames per clip (default 16)")
    p.add_argument("--size", default="64", help=SIZE_HELP)
    p.add_argument("--fps", type=float, default=8.0, help="frames per second (default 8)")


# ------------------------------------------------------------------------------------------------ helpers


def parse_size(text: str) -> tuple[int, int]:
    """'64' -> (64, 64); '96x64' -> (96, 64) as (width, height)."""
    m = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+)\s*)?", str(text))
    if not m:
        raise CustomvidError(f"bad --size {text!r}; use N or WxH, e.g. 64 or 96x64")
    w = int(m.group(1))
    h = int(m.group(2)) if m.group(2) else w
    if w < 8 or h < 8:
        raise CustomvidError(f"--size {text!r} is too small; frames must be at least 8x8")
    return w, h


def _check_geometry(frames: int, fps: float) -> None:
    if frames < 1:
        raise CustomvidError(f"--frames must be >= 1, got {frames}")
    if not fps > 0 or fps == float("inf"):
        raise CustomvidError(f"--fps must be a positive number, got {fps}")


def _check_split(split: str) -> None:
    from customvid.world.splits import SPLITS

    if split not in SPLITS:
        raise CustomvidError(f"unknown split {split!r}; known splits: {', '.join(SPLITS)}")


def check_new(path: str, overwrite: bool, what: str = "output") -> Path:
    """Refuse an existing target (an empty folder is fine) unless `overwrite`."""
    p = Path(path)
    if p.exists() and not overwrite and not (p.is_dir() and not any(p.iterdir())):
        raise CustomvidError(f"{what} {p} already exists; pass --overwrite to replace it")
    return p


def ensure_parent(p: Path, what: str = "output") -> None:
    """Create the folder of `p`, or explain in one line why it cannot be written."""
    parent = p.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CustomvidError(f"cannot write {what} {p}: cannot create folder {parent} "
                             f"({err.strerror or err})") from err
    if not os.access(parent, os.W_OK):
        raise CustomvidError(f"cannot write {what} {p}: folder {parent} is not writable")


@contextlib.contextmanager
def writing(what):
    """Turn an OSError while writing `what` into a one-line CustomvidError."""
    try:
        yield
    except OSError as err:
        raise CustomvidError(f"cannot write {what}: {err.strerror or err}") from err


def split_descriptions() -> dict[str, str]:
    """One line per split, taken from the splits module's documentation (the single source of truth)."""
    from customvid.world import splits

    out: dict[str, str] = {}
    current = None
    for line in (splits.__doc__ or "").splitlines():
        m = re.match(r"^- (\w+):\s+(.*)$", line)
        if m:
            current = m.group(1)
            out[current] = m.group(2).strip()
        elif current and line.startswith(" ") and line.strip():
            out[current] += " " + line.strip()
        else:
            current = None
    return {name: out.get(name, "") for name in splits.SPLITS}


def vocabulary() -> dict:
    from customvid.world import splits, vocab
    from customvid.world.captions import TRAJECTORY_PHRASES

    def rgb(d):
        return {k: list(v) for k, v in d.items()}

    return {
        "colours": rgb(vocab.COLOURS),
        "shapes": list(vocab.SHAPES),
        "textures": list(vocab.TEXTURES),
        "backgrounds": {"plain": rgb(vocab.PLAIN_BACKGROUNDS), "textured": list(vocab.TEXTURED_BACKGROUNDS),
                        "all": list(vocab.BACKGROUNDS)},
        "motions": {m: list(vocab.MOTION_PHRASES[m]) for m in vocab.MOTIONS},
        "novel": {
            "colours": rgb(vocab.NOVEL_COLOURS),
            "shapes": list(vocab.NOVEL_SHAPES),
            "textures": list(vocab.NOVEL_TEXTURES),
            "motions": {m: list(vocab.MOTION_PHRASES[m]) for m in vocab.NOVEL_MOTIONS},
        },
        "rotation_invariant_shapes": sorted(vocab.ROTATION_INVARIANT_SHAPES),
        "caption_templates": list(vocab.CAPTION_TEMPLATES),
        "held_out_pairs": [list(p) for p in sorted(splits.HELD_OUT_PAIRS)],
        "custom_subjects": {
            name: {"shape": s.shape, "colour": s.colour, "texture": s.texture, "colour2": s.colour2,
                   "phrase": s.phrase()}
            for name, s in splits.CUSTOM_SUBJECTS.items()
        },
        "custom_motions": list(splits.CUSTOM_MOTIONS),
        "trajectories": {t: list(TRAJECTORY_PHRASES[t]) for t in splits.TRAJECTORIES},
        "splits": split_descriptions(),
    }


# ------------------------------------------------------------------------------------------------ commands


def cmd_vocab(args) -> int:
    print(json.dumps(vocabulary(), indent=2))
    return 0


def cmd_render(args) -> int:
    from customvid.io import write_contact_sheet, write_text_atomic, write_video
    from customvid.world.dataset import clip_record
    from customvid.world.render import render_clip
    from customvid.world.splits import sample_spec, spec_from_caption

    width, height = parse_size(args.size)
    _check_geometry(args.frames, args.fps)
    targets = {"video": args.out, "record": args.record, "contact sheet": args.contact_sheet}
    given = {what: os.path.abspath(p) for what, p in targets.items() if p}
    if len(set(given.values())) < len(given):
        raise CustomvidError("--out, --record and --contact-sheet must be different paths")
    out = check_new(args.out, args.overwrite, "video")
    if out.suffix.lower() not in ("", ".mp4", ".gif"):
        raise CustomvidError(f"unsupported video format {out.suffix!r} for {out}; use .mp4, .gif or a folder")
    record = check_new(args.record, args.overwrite, "record") if args.record else None
    sheet = check_new(args.contact_sheet, args.overwrite, "contact sheet") if args.contact_sheet else None
    if sheet is not None and sheet.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise CustomvidError(f"contact sheet {sheet} must be a .png or .jpg image")

    try:
        if args.prompt is not None:
            spec = spec_from_caption(args.prompt, args.seed, args.frames, width, height, args.fps)
        else:
            _check_split(args.split)
            if args.index < 0:
                raise CustomvidError(f"--index must be >= 0, got {args.index}")
            spec = sample_spec(args.split, args.index, args.seed, args.frames, width, height, args.fps)
    except ValueError as err:  # e.g. a motion that does not fit a tiny frame
        raise CustomvidError(str(err)) from err
    for path, what in ((out, "video"), (record, "record"), (sheet, "contact sheet")):
        if path is not None:
            ensure_parent(path, what)
    clip = render_clip(spec)

    with writing(out):
        write_video(out, clip.frames, args.fps)
    if sheet is not None:
        with writing(sheet):
            write_contact_sheet(sheet, clip.frames)
    if record is not None:
        rec = clip_record(clip, Path(os.path.relpath(out.resolve(), record.resolve().parent)).as_posix())
        rec["seed"] = args.seed
        if args.split is not None:
            rec.update(split=args.split, index=args.index)
        with writing(record):
            write_text_atomic(record, json.dumps(rec) + "\n")
    print(f"wrote {out} ({spec.frames} frames, {width}x{height}): {spec.caption}")
    return 0


def cmd_dataset(args) -> int:
    from customvid.world.dataset import read_manifest, write_dataset

    width, height = parse_size(args.size)
    _check_geometry(args.frames, args.fps)
    _check_split(args.split)
    if args.n <= 0:
        raise CustomvidError(f"--n must be a positive number of clips, got {args.n}")
    with writing(args.out):
        manifest = write_dataset(args.split, args.n, args.out, seed=args.seed, frames=args.frames,
                                 width=width, height=height, fps=args.fps, format=args.format,
                                 progress=not args.no_progress, overwrite=args.overwrite)
    total = len(read_manifest(manifest, check_files=False))
    print(f"{manifest}: {total} clips of split {args.split!r}")
    return 0


def cmd_references(args) -> int:
    from customvid.world.dataset import write_subject_references

    width, height = parse_size(args.size)
    if args.n <= 0:
        raise CustomvidError(f"--n must be a positive number of images, got {args.n}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CustomvidError(f"{out} exists and is not a folder")
    with writing(args.out):
        written = write_subject_references(out, n=args.n, seed=args.seed, subjects=args.subject, width=width,
                                           height=height, overwrite=args.overwrite)
    for name, images in written.items():
        print(f"{out / name}: {len(images)} reference images of {name}")
    return 0
