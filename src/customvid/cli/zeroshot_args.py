"""`generate`'s zero-shot subject and box options: checked before the model loads, applied after."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from customvid.errors import CustomvidError

ZEROSHOT_FOLDER = "zeroshot"  # the trained modules inside a model folder (the embedded model ships them)


def add_zeroshot_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--subject-image", metavar="PNG", help="zero-shot subject from one image (DreamVideo-2)")
    p.add_argument("--subject-mask", metavar="PNG", help="its subject mask (default: segmented automatically)")
    p.add_argument("--boxes", metavar="JSON", help='per-frame subject boxes: {"boxes": [[x1, y1, x2, y2], ...], '
                   '"units": "pixels"} or {"keyframes": {"0": [...], "7": [...]}, "units": "normalized"}')
    p.add_argument("--box-control", default="trained", choices=("trained", "free"),
                   help="trained: the zero-shot motion module; free: training-free masked attention + noise "
                   "shaping, for any checkpoint (default trained)")
    p.add_argument("--box-subject", metavar="WORDS", help="--box-control free: the prompt's words naming the "
                   "subject (default: the words before its motion / background phrase)")
    p.add_argument("--box-guidance", type=float, metavar="SHARE", help="share of the motion module taken out of "
                   "classifier-free guidance's unconditional branch, 0-1 (default: the modules' own, 1: the boxes "
                   "are guided like the prompt)")
    p.add_argument("--zeroshot", metavar="DIR", help="zero-shot modules (default: the model folder's zeroshot/)")


def check_zeroshot_args(args: argparse.Namespace) -> dict:
    """Read what can be read before the model loads: the images, the mask, the boxes file's JSON."""
    from customvid.io import read_image

    given = {}
    if args.subject_mask and not args.subject_image:
        raise CustomvidError("--subject-mask needs --subject-image")
    if args.box_subject and not (args.boxes and args.box_control == "free"):
        raise CustomvidError("--box-subject applies to --boxes with --box-control free")
    if args.box_guidance is not None:
        if not (args.boxes and args.box_control == "trained"):
            raise CustomvidError("--box-guidance applies to --boxes with the trained motion module")
        if not 0.0 <= args.box_guidance <= 1.0:
            raise CustomvidError(f"--box-guidance must be between 0 and 1, got {args.box_guidance}")
    if args.subject_image:
        given["subject"] = read_image(args.subject_image)
        if args.subject_mask:
            mask = read_image(args.subject_mask).mean(axis=-1) > 127
            if mask.shape != given["subject"].shape[:2]:
                raise CustomvidError(f"--subject-mask is {mask.shape[1]}x{mask.shape[0]}, the image "
                                     f"{given['subject'].shape[1]}x{given['subject'].shape[0]}")
            if not mask.any():
                raise CustomvidError(f"--subject-mask {args.subject_mask} is empty (no pixel above 50% grey)")
            given["mask"] = mask
    if args.boxes:
        path = Path(args.boxes)
        try:
            given["boxes_json"] = json.loads(path.read_text(encoding="utf-8"))
        except OSError as err:
            raise CustomvidError(f"cannot read boxes file {path}: {err.strerror or err}") from err
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise CustomvidError(f"{path}: not valid JSON ({err})") from err
    if args.zeroshot and not (Path(args.zeroshot) / "adapter.json").is_file():
        raise CustomvidError(f"--zeroshot {args.zeroshot}: not an adapter folder (no adapter.json)")
    return given


def zeroshot_folder(components, args: argparse.Namespace) -> Path | None:
    if args.zeroshot:
        return Path(args.zeroshot)
    default = Path(components.source) / ZEROSHOT_FOLDER
    return default if (default / "adapter.json").is_file() else None


def apply_zeroshot(components, args: argparse.Namespace, given: dict, num_frames: int, size: tuple[int, int]):
    """Attach what the options ask for; returns (adapters to pass to generate, free box control or None)."""
    from customvid.adapters import load_adapter
    from customvid.io import parse_boxes

    if not given:
        return [], None
    boxes = None
    if "boxes_json" in given:
        boxes = parse_boxes(given["boxes_json"], num_frames, size[1], size[0], source=args.boxes)
    trained = "subject" in given or args.box_control == "trained"
    if not trained:
        return [], ("free", boxes)
    folder = zeroshot_folder(components, args)
    if folder is None:
        hint = " (or --box-control free for boxes alone)" if "subject" not in given else ""
        raise CustomvidError(f"no zero-shot modules for {components.source}: give --zeroshot DIR (trained with "
                             f"customvid train-zeroshot){hint}")
    adapter = load_adapter(folder, components)
    if args.box_guidance is not None:
        adapter.config.box_guidance = args.box_guidance
    subject, mask = given.get("subject"), given.get("mask")
    if subject is not None and mask is None:
        from customvid.segmentation import segment

        mask = segment(subject)
    free = boxes is not None and args.box_control == "free"
    if boxes is not None and not free and not adapter.config.motion:
        raise CustomvidError(f"{folder} has no motion module: use --box-control free for the boxes")
    # With the free control the boxes still mask the reference attention, as in training; the free control moves
    # the subject and the trained motion module sits out.
    adapter.set_condition(subject=subject, subject_mask=mask, boxes=boxes, video_size=size, motion_module=not free)
    return [adapter], ("free", boxes) if free else None
