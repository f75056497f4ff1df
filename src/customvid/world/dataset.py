"""Rendered toy-world datasets on disk: videos, masks and a JSONL manifest, written resumably.

Layout of a dataset folder::

    dataset.json          the configuration (split, seed, frames, width, height, fps, format)
    manifest.jsonl        one record per clip, in index order
    videos/000000.mp4     the clip (or .npz holding frames, masks and boxes losslessly)
    masks/000000.npz      compressed masks (bool [F, H, W]) and boxes (float32 [F, 4])
    references/NAME/...   subjects split only: the custom subjects' reference images

A manifest record is ``{"video", "prompt", "target_boxes", "subject", "masks", "split", "index", "seed"}``
with paths relative to the manifest's folder; ``subject`` is the full attribute record
(``ClipSpec.to_dict()``), so a record re-renders exactly with
``render_clip(ClipSpec.from_dict(record["subject"]))``. Subjects-split records also carry ``subject_name``
and ``reference_images``.

Clip i is a pure function of (split, seed, i) and the geometry, so an interrupted run resumes where it
stopped: each clip's files are written (atomically) before its manifest line is appended, so a manifest line
never exists without its files.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from customvid.errors import CustomvidError
from customvid.io import atomic_write, read_video, write_image, write_json_atomic, write_video
from customvid.world.render import Clip, render_clip
from customvid.world.spec import ClipSpec
from customvid.world.splits import CUSTOM_SUBJECTS, SPLITS, reference_specs, sample_spec

MANIFEST = "manifest.jsonl"
CONFIG = "dataset.json"
REFERENCES = "references.jsonl"
FORMATS = ("mp4", "npz")
LOCK = ".dataset.lock"

__all__ = [
    "CONFIG",
    "FORMATS",
    "MANIFEST",
    "REFERENCES",
    "boxes_to_json",
    "clip_record",
    "dataset_config",
    "iter_dataset",
    "load_frames",
    "load_masks",
    "read_manifest",
    "read_references",
    "write_dataset",
    "write_subject_references",
]


# ------------------------------------------------------------------------------------------------ records


def boxes_to_json(boxes: np.ndarray) -> list:
    """[F, 4] boxes as JSON lists; a NaN row (no subject in that frame) becomes [null, null, null, null]."""
    return [[float(v) for v in row] if np.isfinite(row).all() else [None] * 4 for row in np.asarray(boxes)]


def clip_record(clip: Clip, video: str) -> dict:
    """The core of a manifest record: video path (as given), prompt, per-frame boxes, attribute record."""
    return {
        "video": video,
        "prompt": clip.spec.caption,
        "target_boxes": boxes_to_json(clip.boxes),
        "subject": clip.spec.to_dict(),
    }


def dataset_config(
    split: str,
    seed: int = 0,
    frames: int = 16,
    width: int = 64,
    height: int = 64,
    fps: float = 8.0,
    format: str = "mp4",
) -> dict:
    """The validated configuration of a dataset folder (what must match for a resume)."""
    if split not in SPLITS:
        raise CustomvidError(f"unknown split {split!r}; known splits: {', '.join(SPLITS)}")
    if format not in FORMATS:
        raise CustomvidError(f"unknown dataset format {format!r}; use one of: {', '.join(FORMATS)}")
    if int(frames) < 1:
        raise CustomvidError(f"frames must be >= 1, got {frames}")
    if int(width) < 8 or int(height) < 8:
        raise CustomvidError(f"frame size must be at least 8x8, got {width}x{height}")
    if not (math.isfinite(float(fps)) and float(fps) > 0):
        raise CustomvidError(f"fps must be a positive number, got {fps}")
    return {
        "split": split,
        "seed": int(seed),
        "frames": int(frames),
        "width": int(width),
        "height": int(height),
        "fps": float(fps),
        "format": format,
    }


def _describe(config: dict) -> str:
    c = config
    return (
        f"split={c.get('split')} seed={c.get('seed')} frames={c.get('frames')} "
        f"size={c.get('width')}x{c.get('height')} fps={c.get('fps')} format={c.get('format')}"
    )


def _config_from_record(record: dict) -> dict:
    s = record.get("subject") or {}
    fps = s.get("fps")
    return {
        "split": record.get("split"),
        "seed": record.get("seed"),
        "frames": s.get("frames"),
        "width": s.get("width"),
        "height": s.get("height"),
        "fps": float(fps) if isinstance(fps, int | float) else fps,
        "format": Path(str(record.get("video", ""))).suffix.lstrip("."),
    }


def _clip_paths(index: int, format: str) -> tuple[str, str]:
    return f"videos/{index:06d}.{format}", f"masks/{index:06d}.npz"


def _render(split: str, index: int, config: dict) -> Clip:
    try:
        spec = sample_spec(
            split, index, config["seed"], config["frames"], config["width"], config["height"], config["fps"]
        )
    except ValueError as err:  # e.g. a motion that cannot fit a tiny frame
        raise CustomvidError(f"cannot sample clip {index} of split {split!r}: {err}") from err
    return render_clip(spec)


def _save_npz(path: Path, **arrays) -> None:
    with atomic_write(path) as tmp:
        with open(tmp, "wb") as fh:  # a file object, so numpy does not append another .npz to the name
            np.savez_compressed(fh, **arrays)


def _write_clip_files(out: Path, clip: Clip, index: int, config: dict) -> tuple[str, str]:
    video_rel, masks_rel = _clip_paths(index, config["format"])
    if config["format"] == "npz":
        _save_npz(out / video_rel, frames=clip.frames, masks=clip.masks, boxes=clip.boxes)
    else:
        write_video(out / video_rel, clip.frames, config["fps"])
    _save_npz(out / masks_rel, masks=clip.masks, boxes=clip.boxes)
    return video_rel, masks_rel


def _subject_name(spec: ClipSpec) -> str | None:
    return next((name for name, subj in CUSTOM_SUBJECTS.items() if subj == spec.subject), None)


# ------------------------------------------------------------------------------------------------ manifest


def _read_lines(path: Path) -> tuple[list[str], bool]:
    """Complete lines of a JSONL file and whether the file ended with an unfinished (interrupted) line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return [], False
    except (OSError, UnicodeDecodeError) as err:
        raise CustomvidError(f"cannot read manifest {path}: {err}") from err
    lines = text.split("\n")
    partial = lines.pop() != ""  # text after the last newline was never finished
    return lines, partial


def _resolve(base: Path, value):
    if isinstance(value, str):
        return str((base / value).resolve())
    if isinstance(value, list):
        return [_resolve(base, v) for v in value]
    return value


def read_manifest(path: str | os.PathLike, check_files: bool = True) -> list[dict]:
    """Records of a manifest (a dataset folder, a .jsonl file, or a one-record .json file from
    `customvid world render --record`), with `video`, `masks` and `reference_images` resolved to absolute
    paths.

    An unfinished last line (a write that was interrupted) is ignored; any other bad line is an error.
    With `check_files`, a record whose video or masks file is missing is an error.
    """
    p = Path(path)
    if p.is_dir():
        p = p / MANIFEST
    if not p.is_file():
        raise CustomvidError(f"no manifest at {p}")
    lines, _ = _read_lines(p)  # an interrupted last line is not a record yet
    whole = "\n".join(lines).strip()
    records: list = []
    if whole.startswith(("{", "[")):  # a single (possibly indented) JSON record or list of records
        with contextlib.suppress(json.JSONDecodeError):
            obj = json.loads(whole)
            records = obj if isinstance(obj, list) else [obj]
            lines = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise CustomvidError(f"{p}:{lineno}: not a JSON record ({err.msg})") from err
    base = p.parent
    out = []
    for n, rec in enumerate(records, 1):
        if not isinstance(rec, dict) or not isinstance(rec.get("video"), str):
            raise CustomvidError(f"{p}: record {n} has no 'video' path")
        rec = dict(rec)
        for key in ("video", "masks", "reference_images"):
            if key in rec:
                rec[key] = _resolve(base, rec[key])
        if check_files:
            for key in ("video", "masks"):
                if key in rec and not Path(rec[key]).exists():
                    raise CustomvidError(f"{p}: record {n}: {key} file {rec[key]} does not exist")
        out.append(rec)
    return out


def load_frames(path: str | os.PathLike) -> np.ndarray:
    """uint8 [F, H, W, 3] frames of a dataset video: a lossless .npz, or anything `read_video` reads."""
    p = Path(path)
    if p.suffix.lower() == ".npz":
        try:
            with np.load(p) as data:
                return data["frames"]
        except (OSError, KeyError, ValueError) as err:
            raise CustomvidError(f"cannot read frames from {p}: {err}") from err
    return read_video(p).frames


def load_masks(path: str | os.PathLike) -> np.ndarray:
    """bool [F, H, W] masks from a dataset's masks .npz."""
    try:
        with np.load(path) as data:
            return data["masks"].astype(bool)
    except (OSError, KeyError, ValueError) as err:
        raise CustomvidError(f"cannot read masks from {path}: {err}") from err


def iter_dataset(path: str | os.PathLike, masks: bool = True) -> Iterator[tuple[dict, np.ndarray, np.ndarray | None]]:
    """(record, frames uint8 [F, H, W, 3], masks bool [F, H, W] or None) for every clip of a manifest."""
    for record in read_manifest(path):
        frames = load_frames(record["video"])
        m = load_masks(record["masks"]) if masks and record.get("masks") else None
        yield record, frames, m


# ------------------------------------------------------------------------------------------------ writing


@contextlib.contextmanager
def _locked(out: Path):
    """An exclusive lock on the dataset folder, so two writers never interleave manifest lines."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with open(out / LOCK, "a") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            raise CustomvidError(f"another process is writing the dataset in {out}") from err
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _valid_prefix(out: Path, lines: list[str], config: dict) -> list[str]:
    """The leading manifest lines that are complete, in order, of this configuration and have their files."""
    keep = []
    for i, line in enumerate(lines):
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            break
        if not isinstance(rec, dict) or rec.get("index") != i:
            break
        if rec.get("split") != config["split"] or rec.get("seed") != config["seed"]:
            raise CustomvidError(
                f"{out / MANIFEST} holds clips of another configuration "
                f"({_describe(_config_from_record(rec))}); asked for {_describe(config)}"
            )
        if not all(isinstance(rec.get(k), str) and (out / rec[k]).is_file() for k in ("video", "masks")):
            break
        keep.append(line)
    return keep


def _remove_dataset(out: Path) -> None:
    """Delete what an earlier write_dataset put in `out` (its manifest's files, manifest, config)."""
    lines, _ = _read_lines(out / MANIFEST)
    for line in lines:
        with contextlib.suppress(json.JSONDecodeError, TypeError, AttributeError):
            rec = json.loads(line)
            for key in ("video", "masks"):
                if isinstance(rec.get(key), str) and not Path(rec[key]).is_absolute():
                    (out / rec[key]).unlink(missing_ok=True)
    for name in (MANIFEST, CONFIG):
        (out / name).unlink(missing_ok=True)


def _append_line(path: Path, line: str) -> None:
    data = (line + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)  # one write of a whole line: a reader never sees half of it unless the disk fails
        os.fsync(fd)
    finally:
        os.close(fd)


def write_dataset(
    split: str,
    n: int,
    out_dir: str | os.PathLike,
    seed: int = 0,
    frames: int = 16,
    width: int = 64,
    height: int = 64,
    fps: float = 8.0,
    format: str = "mp4",
    progress: bool = True,
    overwrite: bool = False,
) -> Path:
    """Render clips 0..n-1 of `split` into `out_dir` (layout in the module docstring); returns the manifest.

    Resumes a partial dataset of the same configuration (and extends a smaller one); refuses to mix with a
    dataset of another configuration unless `overwrite`, which deletes the old dataset's files first.
    """
    config = dataset_config(split, seed, frames, width, height, fps, format)
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n <= 0:
        raise CustomvidError(f"number of clips must be a positive integer, got {n!r}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise CustomvidError(f"{out} exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CustomvidError(f"cannot create dataset folder {out}: {err.strerror or err}") from err
    if not os.access(out, os.W_OK):
        raise CustomvidError(f"dataset folder {out} is not writable")
    manifest = out / MANIFEST
    with _locked(out):
        if overwrite:
            _remove_dataset(out)
        _check_config(out, config)
        lines, partial = _read_lines(manifest)
        keep = _valid_prefix(out, lines, config)
        if partial or len(keep) != len(lines) or not manifest.exists():
            with atomic_write(manifest) as tmp:  # drop an interrupted line (and anything after a broken one)
                tmp.write_text("".join(line + "\n" for line in keep), encoding="utf-8")
        if not (out / CONFIG).exists():
            write_json_atomic(out / CONFIG, config)
        start = len(keep)
        references = None
        if split == "subjects" and start < n:
            references = write_subject_references(
                out / "references", seed=seed, width=width, height=height, overwrite=overwrite
            )
        if start and start < n and progress:
            print(f"resuming {out} at clip {start} of {n}", file=sys.stderr)
        bar = tqdm(
            total=n, initial=min(start, n), desc=f"world {split}", unit="clip", disable=not progress, dynamic_ncols=True
        )
        with bar:
            for index in range(start, n):
                clip = _render(split, index, config)
                video_rel, masks_rel = _write_clip_files(out, clip, index, config)
                record = clip_record(clip, video_rel)
                record.update(masks=masks_rel, split=split, index=index, seed=config["seed"])
                name = _subject_name(clip.spec)
                if references is not None and name in references:
                    record["subject_name"] = name
                    record["reference_images"] = [p.relative_to(out).as_posix() for p in references[name]]
                _append_line(manifest, json.dumps(record, separators=(",", ":")))
                bar.update(1)
    return manifest


def _check_config(out: Path, config: dict) -> None:
    existing = None
    cfg_path = out / CONFIG
    if cfg_path.exists():
        try:
            existing = json.loads(cfg_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise CustomvidError(
                f"unreadable dataset config {cfg_path} ({err}); pass --overwrite to start over"
            ) from err
    else:
        lines, _ = _read_lines(out / MANIFEST)
        if lines:
            try:
                first = json.loads(lines[0])
            except json.JSONDecodeError:
                first = None
            if not isinstance(first, dict):
                raise CustomvidError(
                    f"{out / MANIFEST} is not a world dataset manifest; use another folder or --overwrite"
                )
            existing = _config_from_record(first)
    if existing is not None and existing != config:
        raise CustomvidError(
            f"{out} already holds a dataset with {_describe(existing)}, "
            f"not {_describe(config)}; use another folder or --overwrite"
        )


# ------------------------------------------------------------------------------------------------ references


def _reference_records(name: str, n: int, seed: int, width: int, height: int) -> list[tuple[dict, Clip]]:
    out = []
    for k, spec in enumerate(reference_specs(name, n, seed, width, height)):
        clip = render_clip(spec)
        record = {
            "image": f"ref_{k:02d}.png",
            "mask": f"ref_{k:02d}_mask.png",
            "box": boxes_to_json(clip.boxes)[0],
            "prompt": spec.caption,
            "subject_name": name,
            "subject": spec.to_dict(),
            "index": k,
            "seed": int(seed),
        }
        out.append((record, clip))
    return out


def write_subject_references(
    out_dir: str | os.PathLike,
    n: int = 6,
    seed: int = 0,
    subjects=None,
    width: int = 64,
    height: int = 64,
    overwrite: bool = False,
) -> dict[str, list[Path]]:
    """Reference images of custom subjects: `out_dir/NAME/ref_KK.png`, `ref_KK_mask.png` and
    `references.jsonl` (one record per image: image, mask, box, prompt, subject_name, subject attribute
    record, index, seed), from `splits.reference_specs`.

    `subjects`: a name, a list of names, or None for all CUSTOM_SUBJECTS. Rewriting identical references is a
    no-op; different ones (other n, seed or size) are refused unless `overwrite`.
    Returns {name: [paths of its reference images]}.
    """
    if subjects is None or subjects == "all":
        names = list(CUSTOM_SUBJECTS)
    else:
        names = [subjects] if isinstance(subjects, str) else list(subjects)
    for name in names:
        if name not in CUSTOM_SUBJECTS:
            raise CustomvidError(f"unknown custom subject {name!r}; known: {', '.join(CUSTOM_SUBJECTS)}, or all")
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n <= 0:
        raise CustomvidError(f"number of reference images must be a positive integer, got {n!r}")
    if int(width) < 8 or int(height) < 8:
        raise CustomvidError(f"image size must be at least 8x8, got {width}x{height}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise CustomvidError(f"{out} exists and is not a directory")
    result: dict[str, list[Path]] = {}
    for name in names:
        folder = out / name
        entries = _reference_records(name, n, seed, width, height)
        lines = [json.dumps(rec, separators=(",", ":")) for rec, _ in entries]
        jsonl = folder / REFERENCES
        images = [folder / rec["image"] for rec, _ in entries]
        if jsonl.exists() and not overwrite:
            old, _ = _read_lines(jsonl)
            if old == lines and all(
                (folder / r["image"]).is_file() and (folder / r["mask"]).is_file() for r, _ in entries
            ):
                result[name] = images
                continue
            raise CustomvidError(f"{jsonl} exists with other references; pass --overwrite to replace them")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise CustomvidError(f"cannot create {folder}: {err.strerror or err}") from err
        for rec, clip in entries:
            write_image(folder / rec["image"], clip.frames[0])
            with atomic_write(folder / rec["mask"]) as tmp:
                Image.fromarray(clip.masks[0].astype(np.uint8) * 255, "L").save(tmp)
        with atomic_write(jsonl) as tmp:
            tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        result[name] = images
    return result


def read_references(path: str | os.PathLike) -> list[dict]:
    """Records of a subject's references.jsonl (or its folder), `image` and `mask` as absolute paths."""
    p = Path(path)
    if p.is_dir():
        p = p / REFERENCES
    if not p.is_file():
        raise CustomvidError(f"no reference list at {p}")
    lines, _ = _read_lines(p)
    out = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as err:
            raise CustomvidError(f"{p}:{lineno}: not a JSON record ({err.msg})") from err
        rec["image"] = _resolve(p.parent, rec["image"])
        rec["mask"] = _resolve(p.parent, rec["mask"])
        out.append(rec)
    return out
