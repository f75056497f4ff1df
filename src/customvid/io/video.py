"""Video and image files: write/read ``[F,H,W,3]`` uint8 clips as .mp4 (H.264), .gif or a PNG folder.

Formats are chosen by the path: ``.mp4`` -> H.264 via PyAV, ``.gif`` -> Pillow, a path with no suffix
(or an existing directory) -> ``frame_0000.png ...`` plus ``video.json`` holding the fps.
All writes are atomic (see :mod:`customvid.io.atomic`); all user-fixable problems raise
:class:`~customvid.errors.CustomvidError` with a message naming the file and the problem.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from PIL import GifImagePlugin, Image, ImageSequence, UnidentifiedImageError

from customvid.errors import CustomvidError

from .atomic import atomic_write, atomic_write_dir, write_json_atomic

__all__ = [
    "DEFAULT_FPS",
    "VideoData",
    "as_uint8_frames",
    "read_image",
    "read_video",
    "write_image",
    "write_video",
]

PathLike = str | os.PathLike[str]

DEFAULT_FPS = 8.0  # used when a source carries no timing (PNG folder without video.json)
DEFAULT_CRF = 12  # near-visually-lossless: clips are scored by a pixel probe after encoding
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
AV_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi")  # readable through PyAV
_WRITE_FORMATS = ".mp4 (H.264), .gif, or a directory path without suffix (PNG frames)"
_FOLDER_META = "video.json"
_FRAME_RE = re.compile(r"frame_\d+\.png")
_SIZE_TAG = re.compile(r"customvid:size=(\d+)x(\d+)")


@dataclass(frozen=True)
class VideoData:
    """A decoded clip: ``frames`` uint8 ``[F,H,W,3]`` RGB and frames per second."""

    frames: np.ndarray
    fps: float

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def height(self) -> int:
        return int(self.frames.shape[1])

    @property
    def width(self) -> int:
        return int(self.frames.shape[2])


# ---------------------------------------------------------------------------------------------- validation


def as_uint8_frames(frames: Any) -> np.ndarray:
    """Validate ``frames`` as ``[F,H,W,3]`` and return contiguous uint8.

    Accepts uint8, integer arrays within 0..255, and floats in [0,1] (values up to 1/255 outside are
    clipped, anything further is refused rather than silently mangled).
    """
    try:
        arr = np.asarray(frames)
    except ValueError as e:  # ragged list of frames
        raise CustomvidError(f"frames have mismatched shapes; all frames must be the same size ({e})") from e
    if arr.dtype == object:
        raise CustomvidError("frames have mismatched shapes; all frames must be the same size")
    if arr.size == 0:
        raise CustomvidError(f"no frames to write (got an empty array of shape {arr.shape}); need F >= 1")
    if arr.ndim != 4 or arr.shape[-1] != 3:
        channels_first = arr.ndim == 4 and arr.shape[1] == 3
        hint = " - looks channels-first, transpose to [F,H,W,3]" if channels_first else ""
        raise CustomvidError(f"frames must have shape [F,H,W,3] (RGB, channels last); got {arr.shape}{hint}")
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if arr.dtype == np.bool_:
        raise CustomvidError("frames have dtype bool; use uint8 in 0..255 or float in [0,1]")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise CustomvidError("float frames contain NaN or inf")
        lo, hi = float(arr.min()), float(arr.max())
        if lo < -1 / 255 or hi > 1 + 1 / 255:
            raise CustomvidError(
                f"float frames must lie in [0,1]; got range [{lo:.4g}, {hi:.4g}] (rescale [-1,1] or 0..255 data first)"
            )
        return np.rint(np.clip(arr, 0.0, 1.0) * 255.0).astype(np.uint8)
    if np.issubdtype(arr.dtype, np.integer):
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi > 255:
            raise CustomvidError(f"integer frames must lie in 0..255; got range [{lo}, {hi}]")
        return arr.astype(np.uint8)
    raise CustomvidError(f"unsupported frame dtype {arr.dtype}; use uint8 in 0..255 or float in [0,1]")


def _check_fps(fps: float) -> float:
    try:
        value = float(fps)
    except (TypeError, ValueError) as e:
        raise CustomvidError(f"fps must be a number, got {fps!r}") from e
    if not math.isfinite(value) or value <= 0:
        raise CustomvidError(f"fps must be a positive finite number, got {fps!r}")
    return value


def _natural_key(p: Path) -> list[Any]:
    # frame_2.png before frame_10.png; even indices of re.split are str, odd are digit runs.
    return [int(t) if i % 2 else t for i, t in enumerate(re.split(r"(\d+)", p.name))]


# ---------------------------------------------------------------------------------------------- images


def _pil_to_rgb(im: Image.Image) -> np.ndarray:
    if im.mode.startswith("I;16") or im.mode == "I":
        # 16/32-bit greyscale: scale to 8 bits instead of letting convert() clip to white.
        arr = np.asarray(im, dtype=np.float64) / (257.0 if im.mode.startswith("I;16") else 1.0)
        im = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "L")
    # Grey, palette, CMYK, RGBA...: alpha is dropped (the stored colour is kept), not composited.
    return np.array(im.convert("RGB"), dtype=np.uint8)


def read_image(path: PathLike) -> np.ndarray:
    """Read any Pillow-readable image as uint8 RGB ``[H,W,3]``."""
    p = Path(path)
    if not p.exists():
        raise CustomvidError(f"image not found: {p}")
    if p.is_dir():
        raise CustomvidError(f"expected an image file but {p} is a directory")
    try:
        with Image.open(p) as im:
            im.load()  # decode now, inside the try, so truncated files fail here
            return _pil_to_rgb(im)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise CustomvidError(f"cannot read image {p}: unreadable or corrupt ({e})") from e


def write_image(path: PathLike, array: Any) -> Path:
    """Write one RGB image (uint8 or float [0,1], ``[H,W,3]``) atomically; PNG unless the suffix says else."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        supported = ", ".join(IMAGE_SUFFIXES)
        raise CustomvidError(f"unsupported image format {p.suffix!r} for {p}; supported: {supported}")
    arr = np.asarray(array)
    if arr.ndim != 3:
        raise CustomvidError(f"image must have shape [H,W,3]; got {arr.shape}")
    img = as_uint8_frames(arr[None])[0]
    with atomic_write(p) as tmp:
        Image.fromarray(img, "RGB").save(tmp)
    return p


# ---------------------------------------------------------------------------------------------- writing


def _video_kind(p: Path) -> str:
    if p.is_dir():
        return "dir"
    suffix = p.suffix.lower()
    if suffix == "":
        if p.exists():
            raise CustomvidError(f"{p} exists and is not a directory; cannot write PNG frames there")
        return "dir"
    if suffix in (".mp4", ".gif"):
        return suffix[1:]
    raise CustomvidError(f"unsupported video format {p.suffix!r} for {p}; supported: {_WRITE_FORMATS}")


def write_video(path: PathLike, frames: Any, fps: float = 8, *, crf: int = DEFAULT_CRF) -> Path:
    """Write ``frames`` ([F,H,W,3] uint8, or float in [0,1]) to ``path`` atomically; returns the path.

    - ``.mp4``: H.264 (libx264, yuv420p, ``crf``). Odd heights/widths are padded by edge replication to
      even (yuv420p needs it); the true size is stored in the container comment and
      :func:`read_video` crops back to it. Chroma is subsampled 2x2, so colour edges blur slightly.
    - ``.gif``: one exact palette per frame when a frame has <= 256 colours (else median-cut
      quantised), loops forever. Delays are whole centiseconds, so fps is rounded (8 -> 8.33).
    - directory (no suffix / existing dir): ``frame_0000.png ...`` and ``video.json`` (fps). An
      existing directory is replaced only if it holds nothing but such files.
    """
    p = Path(path)
    kind = _video_kind(p)
    arr = as_uint8_frames(frames)  # validate before touching the disk
    fps = _check_fps(fps)
    if kind == "mp4":
        with atomic_write(p) as tmp:
            _write_mp4(tmp, arr, fps, crf)
    elif kind == "gif":
        with atomic_write(p) as tmp:
            _write_gif(tmp, arr, fps)
    else:
        _write_folder(p, arr, fps)
    return p


def _write_mp4(tmp: Path, frames: np.ndarray, fps: float, crf: int) -> None:
    import av  # imported where used: training and PNG/GIF I/O run without PyAV's FFmpeg

    _, h, w, _ = frames.shape
    ph, pw = h + h % 2, w + w % 2
    if (ph, pw) != (h, w):
        frames = np.pad(frames, ((0, 0), (0, ph - h), (0, pw - w), (0, 0)), mode="edge")
    with av.open(str(tmp), mode="w", format="mp4") as container:
        container.metadata["comment"] = f"customvid:size={w}x{h}"
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = pw, ph, "yuv420p"
        stream.options = {"crf": str(int(crf)), "preset": "medium"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())  # flush delayed (B-)frames


def _to_palette(frame: np.ndarray) -> Image.Image:
    # Exact palette when possible: Pillow's adaptive quantiser may merge colours even when <= 256 exist.
    h, w, _ = frame.shape
    packed = (frame[..., 0].astype(np.uint32) << 16) | (frame[..., 1].astype(np.uint32) << 8) | frame[..., 2]
    colours, index = np.unique(packed.ravel(), return_inverse=True)
    if len(colours) > 256:
        return Image.fromarray(frame, "RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    im = Image.fromarray(index.reshape(h, w).astype(np.uint8), "P")
    rgb = np.stack([(colours >> 16) & 255, (colours >> 8) & 255, colours & 255], axis=1).astype(np.uint8)
    im.putpalette(rgb.tobytes())
    return im


def _write_gif(tmp: Path, frames: np.ndarray, fps: float) -> None:
    # Pillow's save_all merges consecutive identical frames (changing the frame count), so frames are
    # written one by one through its documented getheader/getdata helpers, each with its own palette.
    duration_ms = max(1, round(100.0 / fps)) * 10
    images = [_to_palette(f) for f in frames]
    header, _ = GifImagePlugin.getheader(images[0], None, {"loop": 0, "duration": duration_ms})
    with open(tmp, "wb") as fh:
        for chunk in header:
            fh.write(chunk)
        for im in images:
            for chunk in GifImagePlugin.getdata(im, (0, 0), duration=duration_ms, include_color_table=True):
                fh.write(chunk)
        fh.write(b";")  # GIF trailer


def _write_folder(p: Path, frames: np.ndarray, fps: float) -> None:
    if p.is_dir():
        foreign = [c.name for c in p.iterdir() if not (_FRAME_RE.fullmatch(c.name) or c.name == _FOLDER_META)]
        if foreign:
            raise CustomvidError(
                f"refusing to replace directory {p}: it holds files that are not video frames "
                f"(e.g. {sorted(foreign)[0]!r})"
            )
    digits = max(4, len(str(len(frames) - 1)))
    with atomic_write_dir(p) as tmp:
        for i, frame in enumerate(frames):
            Image.fromarray(frame, "RGB").save(tmp / f"frame_{i:0{digits}d}.png")
        write_json_atomic(tmp / _FOLDER_META, {"fps": fps, "num_frames": len(frames)})


# ---------------------------------------------------------------------------------------------- reading


def read_video(path: PathLike) -> VideoData:
    """Read a .mp4/.mov/.mkv/.webm/.avi (PyAV), .gif, or a folder of same-size images (natural order)."""
    p = Path(path)
    if not p.exists():
        raise CustomvidError(f"video not found: {p}")
    if p.is_dir():
        frames, fps = _read_folder(p)
    else:
        suffix = p.suffix.lower()
        if suffix == ".gif":
            frames, fps = _read_gif(p)
        elif suffix in AV_SUFFIXES:
            frames, fps = _read_av(p)
        else:
            raise CustomvidError(
                f"unsupported video format {p.suffix!r} for {p}; readable: .gif, {', '.join(AV_SUFFIXES)}, "
                "or a folder of images"
            )
    if not frames:
        raise CustomvidError(f"video {p} contains no frames")
    return VideoData(frames=np.stack(frames), fps=fps)


def _read_av(p: Path) -> tuple[list[np.ndarray], float]:
    import av

    try:
        with av.open(str(p)) as container:
            if not container.streams.video:
                raise CustomvidError(f"cannot read video {p}: it has no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
            tag = _SIZE_TAG.fullmatch(container.metadata.get("comment", ""))
    except (av.FFmpegError, OSError) as e:
        raise CustomvidError(f"cannot read video {p}: unreadable or corrupt ({e})") from e
    if frames and len({f.shape for f in frames}) > 1:
        raise CustomvidError(f"cannot read video {p}: frame size changes mid-stream")
    if tag:  # undo the even-size padding added by write_video
        w, h = int(tag.group(1)), int(tag.group(2))
        if frames and h <= frames[0].shape[0] and w <= frames[0].shape[1]:
            frames = [np.ascontiguousarray(f[:h, :w]) for f in frames]
    return frames, float(rate) if rate else DEFAULT_FPS


def _read_gif(p: Path) -> tuple[list[np.ndarray], float]:
    frames: list[np.ndarray] = []
    durations: list[float] = []
    try:
        with Image.open(p) as im:
            for frame in ImageSequence.Iterator(im):
                frames.append(_pil_to_rgb(frame))  # Pillow composites partial frames for us
                durations.append(float(frame.info.get("duration", 0) or 0))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as e:
        raise CustomvidError(f"cannot read video {p}: unreadable or corrupt GIF ({e})") from e
    positive = [d for d in durations if d > 0]
    return frames, (1000.0 / (sum(positive) / len(positive)) if positive else DEFAULT_FPS)


def _read_folder(p: Path) -> tuple[list[np.ndarray], float]:
    # Hidden files are skipped: they include our own in-flight temp files.
    images = [c for c in p.iterdir() if c.suffix.lower() in IMAGE_SUFFIXES and not c.name.startswith(".")]
    files = sorted((c for c in images if c.is_file()), key=_natural_key)
    if not files:
        raise CustomvidError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in folder {p}")
    frames = [read_image(files[0])]
    for f in files[1:]:
        img = read_image(f)
        if img.shape != frames[0].shape:
            raise CustomvidError(
                f"frame size mismatch in {p}: {f.name} is {img.shape[1]}x{img.shape[0]} "
                f"but {files[0].name} is {frames[0].shape[1]}x{frames[0].shape[0]} (WxH)"
            )
        frames.append(img)
    fps = DEFAULT_FPS
    meta = p / _FOLDER_META
    if meta.is_file():
        try:
            fps = _check_fps(json.loads(meta.read_text(encoding="utf-8"))["fps"])
        except (ValueError, KeyError, TypeError, CustomvidError) as e:
            msg = f"bad {_FOLDER_META} in {p}: expected a positive number under 'fps' ({e})"
            raise CustomvidError(msg) from e
    return frames, fps
