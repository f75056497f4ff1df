"""Motion clips as training data: read (mp4/gif/PNG-frame folders), checked, centre-cropped and resized to the
model's size and sampled to its frame count, each with its caption (`NAME.txt` beside it, or a JSONL manifest of
{"video": path, "caption": text}). Every unusable clip is named in one line before training starts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from customvid.errors import CustomvidError
from customvid.training.subject_data import fit_frame

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".gif"}
FRAME_SAMPLING = ("even", "window")


@dataclass
class MotionClips:
    names: list[str]
    frames: np.ndarray  # uint8 [N, F, H, W, 3] at the model's size and frame count
    captions: list[str]


def frame_indices(n: int, fps: float, frames: int, target_fps: float, sampling: str) -> np.ndarray:
    """Which of a clip's n frames to keep. "even": `frames` spread evenly over the whole clip (any length and fps
    becomes the model's frame count; the motion's speed follows the clip's length). "window": consecutive frames at
    the model's fps from the middle of the clip (the motion keeps its real speed; the clip must be long enough)."""
    if sampling == "even":
        return np.linspace(0, n - 1, frames).round().astype(int)
    if sampling == "window":
        step = fps / target_fps  # source frames per model frame
        span = step * (frames - 1)
        if span > n - 1 + 1e-6:
            raise ValueError(f"{n} frames at {fps:g} fps are shorter than {frames} frames at {target_fps:g} fps")
        start = (n - 1 - span) / 2
        return np.clip(np.round(start + step * np.arange(frames)), 0, n - 1).astype(int)
    raise CustomvidError(f"unknown frame sampling {sampling!r}; known: {', '.join(FRAME_SAMPLING)}")


def _entries(folder: Path, manifest: Path | None) -> list[tuple[Path, str | None]]:
    if manifest is not None:
        if not manifest.is_file():
            raise CustomvidError(f"--manifest {manifest}: no such file")
        out = []
        for i, line in enumerate(manifest.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                video, caption = row["video"], row.get("caption")
            except (json.JSONDecodeError, KeyError, TypeError):
                raise CustomvidError(f"{manifest}:{i}: expected a JSON object with \"video\" and \"caption\"") from None
            path = Path(video) if Path(video).is_absolute() else manifest.parent / video
            out.append((path, caption))
        return out
    if not folder.is_dir():
        raise CustomvidError(f"--videos {folder}: not a folder")
    paths = sorted(p for p in folder.iterdir() if (p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
                   or (p.is_dir() and not p.name.startswith(".")))
    out = []
    for p in paths:
        txt = p.with_suffix(".txt") if p.is_file() else p.with_name(p.name + ".txt")
        out.append((p, txt.read_text(encoding="utf-8").strip() if txt.is_file() else None))
    return out


def load_motion_clips(
    folder: Path | None,
    height: int,
    width: int,
    frames: int,
    target_fps: float,
    sampling: str = "even",
    token: str | None = None,
    manifest: Path | None = None,
    what: str = "--videos",
) -> MotionClips:
    from customvid.io import read_video

    if sampling not in FRAME_SAMPLING:
        raise CustomvidError(f"unknown frame sampling {sampling!r}; known: {', '.join(FRAME_SAMPLING)}")
    entries = _entries(Path(folder) if folder is not None else Path(), Path(manifest) if manifest else None)
    if not entries:
        raise CustomvidError(f"{what} {folder}: no clips (mp4, gif or folders of PNG frames) there")
    names, clips, captions = [], [], []
    for path, caption in entries:
        if not caption:
            raise CustomvidError(f"clip {path} has no caption (write it in {path.stem}.txt beside the clip)")
        if token and token not in caption:
            raise CustomvidError(f"the caption of {path} does not use the token {token}: {caption!r}")
        try:
            video = read_video(path)
        except CustomvidError as err:
            raise CustomvidError(f"clip {path}: {err}") from None
        if len(video.frames) < 2:
            raise CustomvidError(f"clip {path} has {len(video.frames)} frame; a motion needs at least 2")
        try:
            idx = frame_indices(len(video.frames), video.fps, frames, target_fps, sampling)
        except ValueError as err:
            raise CustomvidError(f"clip {path}: {err}; use --frame-sampling even") from None
        clips.append(np.stack([fit_frame(f, height, width, Image.BICUBIC) for f in video.frames[idx]]))
        names.append(path.name)
        captions.append(caption)
    return MotionClips(names, np.stack(clips), captions)
