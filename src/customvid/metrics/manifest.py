"""The evaluation manifest: JSON Lines, one generated video per line.

Fields of each line (a JSON object):
- video (required): path of the video (.mp4/.gif/... or a folder of frames), relative to the manifest's folder
  unless absolute.
- prompt (required): the text it was generated from (may be "").
- reference_images (optional): list of image paths (relative like `video`): the subject images.
- target_boxes (optional): one [x1, y1, x2, y2] box in pixels per frame; null (or [null, null, null, null])
  for a frame without a target, which the box metrics leave out.
- subject (optional): the world attribute record the video should show (`ClipSpec.to_dict()`).
- id (optional): a name for reports; defaults to the `video` string.
Other keys are ignored. Blank lines are skipped. Errors name the manifest line and the reason.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from customvid.errors import CustomvidError
from customvid.metrics.records import EvalRecord


class ManifestError(CustomvidError):
    def __init__(self, path: Path, line: int | None, reason: str):
        self.path, self.line, self.reason = path, line, reason
        where = f"{path} line {line}" if line is not None else str(path)
        super().__init__(f"{where}: {reason}")


def _resolve(base: Path, value) -> Path:
    p = Path(os.path.expanduser(value))
    return p if p.is_absolute() else base / p


def parse_line(obj, base: Path) -> dict:
    """Validate one decoded line (everything but reading files). Returns the cleaned fields; raises ValueError
    with the reason."""
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    video = obj.get("video")
    if not isinstance(video, str) or not video:
        raise ValueError(
            "missing 'video' (a path relative to the manifest)"
            if video is None
            else "'video' must be a non-empty string path"
        )
    if "prompt" not in obj:
        raise ValueError("missing 'prompt' (use \"\" for none)")
    if not isinstance(obj["prompt"], str):
        raise ValueError("'prompt' must be a string")
    refs = obj.get("reference_images") or []
    if isinstance(refs, str):
        refs = [refs]
    if not isinstance(refs, list) or not all(isinstance(x, str) and x for x in refs):
        raise ValueError("'reference_images' must be a list of image paths")
    boxes = obj.get("target_boxes")
    if boxes is not None:
        if not isinstance(boxes, list) or not boxes:
            raise ValueError(
                "'target_boxes' must be a non-empty list of [x1, y1, x2, y2] boxes, one per frame"
            )
        rows = []
        for i, b in enumerate(boxes):
            if b is None or b == [None] * 4:
                rows.append([math.nan] * 4)
                continue
            if (
                not isinstance(b, list)
                or len(b) != 4
                or not all(
                    isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in b
                )
            ):
                raise ValueError(
                    f"target_boxes[{i}] is not [x1, y1, x2, y2] (four finite numbers) or null: {b!r}"
                )
            if b[2] <= b[0] or b[3] <= b[1]:
                raise ValueError(f"target_boxes[{i}] = {b} needs x2 > x1 and y2 > y1")
            rows.append([float(v) for v in b])
        boxes = np.asarray(rows, dtype=np.float64)
    subject = obj.get("subject")
    if subject is not None and not isinstance(subject, dict):
        raise ValueError("'subject' must be a JSON object (the world attribute record)")
    rid = obj.get("id", video)
    if not isinstance(rid, str | int):
        raise ValueError("'id' must be a string")
    for what, value in [("video", video)] + [("reference image", r) for r in refs]:
        if not _resolve(base, value).exists():
            raise ValueError(f"{what} {value!r} not found (looked at {_resolve(base, value)})")
    return {
        "video": _resolve(base, video),
        "prompt": obj["prompt"],
        "reference_images": [_resolve(base, r) for r in refs],
        "target_boxes": boxes,
        "subject": subject,
        "id": str(rid),
        "source": video,
    }


def read_manifest_lines(path) -> list[tuple[int, dict]]:
    """(line number, validated fields) for every record; checks JSON, fields and that files exist."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(
            path, None, "manifest not found" if not path.exists() else "manifest is not a file"
        )
    base = path.parent
    out = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise ManifestError(path, n, f"malformed JSON: {err.msg} (column {err.colno})") from None
            try:
                out.append((n, parse_line(obj, base)))
            except ValueError as err:
                raise ManifestError(path, n, str(err)) from None
    if not out:
        raise ManifestError(path, None, "manifest has no records")
    return out


def load_record(path: Path, line: int, fields: dict) -> EvalRecord:
    """Read the files of one validated line into an EvalRecord (errors name the line)."""
    from customvid.io import read_image, read_video

    try:
        video = read_video(fields["video"])
    except CustomvidError as err:
        raise ManifestError(path, line, f"cannot read video: {err}") from None
    refs = []
    for r in fields["reference_images"]:
        try:
            refs.append(read_image(r))
        except CustomvidError as err:
            raise ManifestError(path, line, f"cannot read reference image: {err}") from None
    boxes = fields["target_boxes"]
    if boxes is not None and len(boxes) != video.num_frames:
        raise ManifestError(
            path,
            line,
            f"target_boxes has {len(boxes)} boxes but the video has "
            f"{video.num_frames} frames (need one box per frame)",
        )
    return EvalRecord(
        frames=video.frames,
        prompt=fields["prompt"],
        reference_images=refs,
        target_boxes=boxes,
        subject=fields["subject"],
        id=fields["id"],
        fps=float(video.fps),
        source=fields["source"],
    )


def load_manifest(path, progress: bool = False) -> list[EvalRecord]:
    """Validate the whole manifest first (so a bad line N fails before any video is decoded), then read every
    video and reference image."""
    path = Path(path)
    lines = read_manifest_lines(path)
    items = lines
    if progress and len(lines) > 1:
        import sys

        from tqdm import tqdm

        items = tqdm(lines, desc="read videos", file=sys.stderr, leave=False)
    return [load_record(path, n, fields) for n, fields in items]
