"""Video/image I/O: round-trips per format, atomicity, and every user-facing error path."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import customvid.io.video as video_mod
from customvid.errors import CustomvidError
from customvid.io import read_image, read_video, write_image, write_video


def _clip(f: int = 8, h: int = 64, w: int = 64) -> np.ndarray:
    """Smooth gradient background plus a moving block: what the toy world renders."""
    yy, xx = np.mgrid[0:h, 0:w]
    bg = np.stack([xx * 255 // max(w - 1, 1), yy * 255 // max(h - 1, 1), np.full_like(xx, 90)], -1)
    frames = np.repeat(bg[None].astype(np.uint8), f, axis=0)
    for i in range(f):
        frames[i, h // 4 : h // 2, 2 * i : 2 * i + w // 3] = (220, 60, 40)
    return frames


def _blocky(f: int = 5, h: int = 6, w: int = 7) -> np.ndarray:
    """Few exact colours, so lossless formats must round-trip bit for bit."""
    rng = np.random.default_rng(0)
    palette = rng.integers(0, 256, size=(12, 3), dtype=np.uint8)
    return palette[rng.integers(0, 12, size=(f, h, w))]


def _mae(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


# ---------------------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("fps", [8, 12.5])
def test_mp4_roundtrip(tmp_path: Path, fps: float) -> None:
    frames = _clip()
    out = write_video(tmp_path / "clip.mp4", frames, fps=fps)
    v = read_video(out)
    assert v.frames.shape == frames.shape and v.frames.dtype == np.uint8
    assert v.fps == pytest.approx(fps)
    assert _mae(v.frames, frames) < 6
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]


def test_mp4_odd_size_is_padded_then_cropped_back(tmp_path: Path) -> None:
    frames = _clip(f=3, h=33, w=47)
    v = read_video(write_video(tmp_path / "odd.mp4", frames))
    assert v.frames.shape == (3, 33, 47, 3)
    assert _mae(v.frames, frames) < 6


def test_mp4_single_frame_and_float_input(tmp_path: Path) -> None:
    frames = _clip(f=1).astype(np.float32) / 255
    v = read_video(write_video(tmp_path / "one.mp4", frames, fps=10))
    assert v.num_frames == 1 and v.fps == pytest.approx(10)
    assert _mae(v.frames, np.rint(frames * 255).astype(np.uint8)) < 6


def test_gif_roundtrip_exact_keeps_duplicate_frames_and_loops(tmp_path: Path) -> None:
    frames = _blocky(f=5)
    frames[2] = frames[1]  # Pillow's save_all would merge this; the frame count must survive
    out = write_video(tmp_path / "clip.gif", frames, fps=8)
    v = read_video(out)
    assert v.frames.shape == frames.shape
    assert (v.frames == frames).all()
    assert v.fps == pytest.approx(8, rel=0.05)  # delays are whole centiseconds: 120 ms -> 8.33 fps
    with Image.open(out) as im:
        assert im.info["loop"] == 0 and im.n_frames == 5


def test_gif_with_many_colours_is_quantised_but_close(tmp_path: Path) -> None:
    frames = _clip(f=3)  # gradient: > 256 colours per frame
    v = read_video(write_video(tmp_path / "g.gif", frames, fps=4))
    assert v.frames.shape == frames.shape and v.fps == pytest.approx(4)
    assert _mae(v.frames, frames) < 10


def test_folder_roundtrip_exact_with_fps(tmp_path: Path) -> None:
    frames = _blocky(f=12)
    out = write_video(tmp_path / "frames", frames, fps=6)
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"frame_{i:04d}.png" for i in range(12)] + ["video.json"]
    v = read_video(out)
    assert (v.frames == frames).all() and v.fps == 6


def test_folder_overwrite_replaces_old_frames_but_refuses_foreign_dirs(tmp_path: Path) -> None:
    out = tmp_path / "frames"
    write_video(out, _blocky(f=6))
    write_video(out, _blocky(f=2))  # shorter clip: stale frame_0002.. must be gone
    assert read_video(out).num_frames == 2
    (out / "notes.txt").write_text("mine")
    with pytest.raises(CustomvidError, match="notes.txt"):
        write_video(out, _blocky(f=3))
    assert (out / "notes.txt").read_text() == "mine" and read_video(out).num_frames == 2


def test_folder_read_natural_order_default_fps_and_rgb_conversion(tmp_path: Path) -> None:
    d = tmp_path / "imgs"
    d.mkdir()
    Image.fromarray(np.full((4, 4), 10, np.uint8), "L").save(d / "f_10.png")
    Image.fromarray(np.full((4, 4, 4), 20, np.uint8), "RGBA").save(d / "f_2.png")
    Image.fromarray(np.full((4, 4, 3), 30, np.uint8)).save(d / "f_1.jpg")
    (d / "readme.txt").write_text("ignored")
    v = read_video(d)
    assert v.frames.shape == (3, 4, 4, 3) and v.fps == video_mod.DEFAULT_FPS
    assert [int(v.frames[i, 0, 0, 0]) for i in (1, 2)] == [20, 10]  # f_2 before f_10
    assert abs(int(v.frames[0, 0, 0, 0]) - 30) <= 2  # jpeg


def test_image_roundtrip_and_mode_conversion(tmp_path: Path) -> None:
    img = _blocky(f=1)[0]
    out = write_image(tmp_path / "deep" / "x.png", img)
    assert (read_image(out) == img).all()
    Image.fromarray(np.full((3, 5), 77, np.uint8), "L").save(tmp_path / "g.png")
    assert read_image(tmp_path / "g.png").shape == (3, 5, 3)
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., :3] = 200
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    assert (read_image(tmp_path / "a.png") == 200).all()
    Image.fromarray(np.full((2, 2), 65535, np.uint16)).save(tmp_path / "i16.png")
    assert (read_image(tmp_path / "i16.png") == 255).all()


# ---------------------------------------------------------------------------------------------- atomicity


@pytest.mark.parametrize("name", ["clip.mp4", "clip.gif"])
def test_bad_frames_leave_existing_target_untouched(tmp_path: Path, name: str) -> None:
    target = tmp_path / name
    write_video(target, _clip(f=2))
    before = target.read_bytes()
    with pytest.raises(CustomvidError):
        write_video(target, np.zeros((2, 8, 8), np.uint8))
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_failure_midway_through_encoding_leaves_no_trace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "clip.mp4"
    write_video(target, _clip(f=2))
    before = target.read_bytes()

    def half_write(tmp: Path, *args: object) -> None:
        tmp.write_bytes(before[: len(before) // 2])
        raise OSError("disk full")

    monkeypatch.setattr(video_mod, "_write_mp4", half_write)
    with pytest.raises(OSError, match="disk full"):
        write_video(target, _clip(f=4))
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]


def test_folder_write_failure_keeps_old_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "frames"
    frames = _blocky(f=3)
    write_video(out, frames)
    real_fromarray = Image.fromarray
    calls = {"n": 0}

    def flaky(*args: object, **kw: object) -> Image.Image:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        return real_fromarray(*args, **kw)

    monkeypatch.setattr(video_mod.Image, "fromarray", flaky)
    with pytest.raises(OSError):
        write_video(out, _blocky(f=5))
    monkeypatch.undo()
    assert (read_video(out).frames == frames).all()
    assert [p.name for p in tmp_path.iterdir()] == ["frames"]


# ---------------------------------------------------------------------------------------------- errors


def test_read_missing_paths(tmp_path: Path) -> None:
    with pytest.raises(CustomvidError, match="video not found"):
        read_video(tmp_path / "nope.mp4")
    with pytest.raises(CustomvidError, match="image not found"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(CustomvidError, match="is a directory"):
        read_image(tmp_path)


def test_read_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(CustomvidError, match="no image files"):
        read_video(tmp_path / "empty")


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("bad.mp4", b"\x00\x00\x00\x18ftypisom" + b"garbage" * 50),
        ("bad.gif", b"GIF89a" + b"\x01" * 20),
        ("empty.mp4", b""),
        ("bad.png", b"not a png"),
    ],
)
def test_read_corrupt_files(tmp_path: Path, name: str, data: bytes) -> None:
    (tmp_path / name).write_bytes(data)
    with pytest.raises(CustomvidError, match="unreadable or corrupt"):
        read_image(tmp_path / name) if name.endswith(".png") else read_video(tmp_path / name)


def test_read_truncated_mp4(tmp_path: Path) -> None:
    data = write_video(tmp_path / "ok.mp4", _clip(f=4)).read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 3])
    with pytest.raises(CustomvidError, match=r"cut\.mp4"):
        read_video(tmp_path / "cut.mp4")


def test_read_folder_with_mismatched_sizes_names_the_file(tmp_path: Path) -> None:
    d = tmp_path / "mixed"
    d.mkdir()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(d / "frame_0000.png")
    Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(d / "frame_0001.png")
    with pytest.raises(CustomvidError, match=r"size mismatch.*frame_0001\.png is 6x4"):
        read_video(d)


def test_read_folder_with_bad_meta(tmp_path: Path) -> None:
    out = write_video(tmp_path / "f", _blocky(f=2))
    (out / "video.json").write_text(json.dumps({"fps": -3}))
    with pytest.raises(CustomvidError, match="video.json"):
        read_video(out)


@pytest.mark.parametrize(
    ("frames", "match"),
    [
        (np.zeros((2, 8, 8), np.uint8), r"shape \[F,H,W,3\]"),
        (np.zeros((2, 3, 8, 8), np.uint8), "channels-first"),
        (np.zeros((0, 8, 8, 3), np.uint8), "no frames"),
        ([], "no frames"),
        ([np.zeros((8, 8, 3), np.uint8), np.zeros((4, 8, 3), np.uint8)], "mismatched shapes"),
        (np.zeros((2, 8, 8, 3), bool), "bool"),
        (np.zeros((2, 8, 8, 3), np.complex64), "unsupported frame dtype"),
        (np.full((2, 8, 8, 3), 200.0), r"float frames must lie in \[0,1\]"),
        (np.full((2, 8, 8, 3), np.nan), "NaN"),
        (np.full((2, 8, 8, 3), 300, np.int32), "0..255"),
    ],
)
def test_write_rejects_bad_frames(tmp_path: Path, frames: object, match: str) -> None:
    with pytest.raises(CustomvidError, match=match):
        write_video(tmp_path / "x.mp4", frames)
    assert list(tmp_path.iterdir()) == []


def test_write_rejects_unknown_suffix_bad_fps_and_bad_image(tmp_path: Path) -> None:
    frames = _clip(f=2)
    with pytest.raises(CustomvidError, match=r"unsupported video format '\.avi'.*\.mp4.*\.gif.*directory"):
        write_video(tmp_path / "x.avi", frames)
    with pytest.raises(CustomvidError, match="fps must be a positive"):
        write_video(tmp_path / "x.mp4", frames, fps=0)
    with pytest.raises(CustomvidError, match="unsupported image format"):
        write_image(tmp_path / "x.tga", frames[0])
    with pytest.raises(CustomvidError, match=r"\[H,W,3\]"):
        write_image(tmp_path / "x.png", frames)
    (tmp_path / "plainfile").write_text("x")
    with pytest.raises(CustomvidError, match="not a directory"):
        write_video(tmp_path / "plainfile", frames)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plainfile"]


def test_read_rejects_unknown_suffix(tmp_path: Path) -> None:
    (tmp_path / "x.xyz").write_bytes(b"1")
    with pytest.raises(CustomvidError, match=r"unsupported video format '\.xyz'"):
        read_video(tmp_path / "x.xyz")
