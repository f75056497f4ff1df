"""Datasets on disk: manifest format, resume after interruption, refusal to mix configurations, references."""

from __future__ import annotations

import json

import numpy as np
import pytest

from customvid.errors import CustomvidError
from customvid.io import read_image
from customvid.world import CUSTOM_SUBJECTS, ClipSpec, reference_specs, render_clip, sample_spec
from customvid.world import dataset as ds
from customvid.world.dataset import (
    iter_dataset,
    read_manifest,
    read_references,
    write_dataset,
    write_subject_references,
)

SMALL = {"frames": 4, "width": 32, "height": 32}  # keeps the tests fast


def _write(out, n, **kw):
    return write_dataset(kw.pop("split", "train"), n, out, progress=False, **{**SMALL, "format": "npz", **kw})


def _lines(path) -> list[str]:
    return path.read_text().splitlines()


def _files(root) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.startswith(".")}


def test_manifest_records(tmp_path):
    manifest = _write(tmp_path / "d", 3, seed=5)
    assert manifest == tmp_path / "d" / "manifest.jsonl"
    raw = [json.loads(line) for line in _lines(manifest)]
    assert [r["index"] for r in raw] == [0, 1, 2]
    for i, rec in enumerate(raw):
        assert {"video", "prompt", "target_boxes", "subject", "masks", "split", "index", "seed"} <= set(rec)
        assert rec["video"] == f"videos/{i:06d}.npz" and rec["masks"] == f"masks/{i:06d}.npz"
        assert rec["split"] == "train" and rec["seed"] == 5
        spec = sample_spec("train", i, 5, **SMALL)
        assert rec["subject"] == json.loads(json.dumps(spec.to_dict()))
        assert rec["prompt"] == spec.caption
        clip = render_clip(spec)
        assert np.array_equal(np.array(rec["target_boxes"], np.float32), clip.boxes)
        assert ClipSpec.from_dict(rec["subject"]) == spec
    assert json.loads((tmp_path / "d" / "dataset.json").read_text()) == {
        "split": "train", "seed": 5, "frames": 4, "width": 32, "height": 32, "fps": 8.0, "format": "npz"}


def test_iter_dataset_npz_is_lossless(tmp_path):
    _write(tmp_path, 3, seed=1)
    items = list(iter_dataset(tmp_path))
    assert len(items) == 3
    for rec, frames, masks in items:
        clip = render_clip(ClipSpec.from_dict(rec["subject"]))
        assert np.array_equal(frames, clip.frames) and frames.dtype == np.uint8
        assert np.array_equal(masks, clip.masks) and masks.dtype == bool
        with np.load(rec["video"]) as data:
            assert np.array_equal(data["boxes"], clip.boxes) and np.array_equal(data["masks"], clip.masks)


def test_mp4_dataset(tmp_path):
    manifest = write_dataset("trajectories", 2, tmp_path, seed=0, frames=8, progress=False)
    records = read_manifest(manifest)
    assert all(r["video"].endswith(".mp4") and r["video"].startswith(str(tmp_path)) for r in records)
    for rec, frames, masks in iter_dataset(manifest):
        clip = render_clip(ClipSpec.from_dict(rec["subject"]))
        assert frames.shape == clip.frames.shape == (8, 64, 64, 3)
        assert np.abs(frames.astype(int) - clip.frames).mean() < 4  # H.264 is lossy, but close
        assert np.array_equal(masks, clip.masks)


def test_manifest_loads_in_evaluation(tmp_path):
    manifest_mod = pytest.importorskip("customvid.metrics.manifest")
    write_dataset("subjects", 2, tmp_path, frames=4, progress=False)
    loaded = manifest_mod.load_manifest(tmp_path / "manifest.jsonl")
    assert len(loaded) == 2
    assert loaded[0].target_boxes.shape == (4, 4) and loaded[0].subject["motion"]
    assert len(loaded[0].reference_images) == 6  # the subjects split links its reference images


def test_resume_extends(tmp_path):
    _write(tmp_path / "a", 3, seed=2)
    before = _files(tmp_path / "a")
    _write(tmp_path / "a", 6, seed=2)
    _write(tmp_path / "b", 6, seed=2)
    after = _files(tmp_path / "a")
    assert after == _files(tmp_path / "b")  # 3 then 6 == 6 at once, byte for byte
    assert all(after[k] == v for k, v in before.items() if k != "manifest.jsonl")
    assert len(_lines(tmp_path / "a" / "manifest.jsonl")) == 6
    _write(tmp_path / "a", 4, seed=2)  # asking for fewer keeps what is there
    assert _files(tmp_path / "a") == after


def test_resume_after_truncated_manifest(tmp_path):
    full = tmp_path / "full"
    _write(full, 5)
    reference = _files(full)
    part = tmp_path / "part"
    _write(part, 5)
    manifest = part / "manifest.jsonl"
    text = manifest.read_text()
    cut = text.index("\n", text.index("\n") + 1) + 1  # keep two lines ...
    manifest.write_text(text[:cut] + text[cut:cut + 57])  # ... and half of the third: an interrupted append
    assert len(read_manifest(part)) == 2  # readers ignore the unfinished line
    _write(part, 5)
    assert _files(part) == reference


def test_resume_after_missing_files(tmp_path):
    _write(tmp_path / "a", 4)
    reference = _files(tmp_path / "a")
    (tmp_path / "a" / "videos" / "000002.npz").unlink()  # e.g. deleted by hand
    _write(tmp_path / "a", 4)
    assert _files(tmp_path / "a") == reference


def test_interrupted_run_never_leaves_a_line_without_files(tmp_path, monkeypatch):
    real = ds._write_clip_files
    calls = []

    def flaky(out, clip, index, config):
        calls.append(index)
        if index == 3:
            raise KeyboardInterrupt
        return real(out, clip, index, config)

    monkeypatch.setattr(ds, "_write_clip_files", flaky)
    with pytest.raises(KeyboardInterrupt):
        _write(tmp_path / "a", 6)
    records = read_manifest(tmp_path / "a")  # checks every listed file exists
    assert [r["index"] for r in records] == [0, 1, 2]
    monkeypatch.setattr(ds, "_write_clip_files", real)
    _write(tmp_path / "a", 6)
    _write(tmp_path / "b", 6)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")


@pytest.mark.parametrize("change", [{"seed": 1}, {"frames": 5}, {"width": 40}, {"fps": 12.0},
                                    {"format": "mp4"}, {"split": "composition"}])
def test_refuses_to_mix_configurations(tmp_path, change):
    _write(tmp_path, 2)
    before = _files(tmp_path)
    with pytest.raises(CustomvidError, match="already holds a dataset") as info:
        _write(tmp_path, 4, **change)
    assert "\n" not in str(info.value)
    assert _files(tmp_path) == before


def test_refuses_manifest_of_other_configuration_without_config_file(tmp_path):
    _write(tmp_path, 2)
    (tmp_path / "dataset.json").unlink()
    with pytest.raises(CustomvidError, match="already holds a dataset"):
        _write(tmp_path, 3, seed=9)
    _write(tmp_path, 3)  # the same configuration resumes
    assert len(read_manifest(tmp_path)) == 3


def test_overwrite_replaces_other_configuration(tmp_path):
    _write(tmp_path, 3)
    _write(tmp_path, 2, seed=4, overwrite=True)
    records = read_manifest(tmp_path)
    assert [r["seed"] for r in records] == [4, 4]
    assert sorted(p.name for p in (tmp_path / "videos").iterdir()) == ["000000.npz", "000001.npz"]


@pytest.mark.parametrize("kwargs, message", [
    ({"split": "nope"}, "unknown split"),
    ({"n": 0}, "positive"),
    ({"n": -3}, "positive"),
    ({"format": "avi"}, "unknown dataset format"),
    ({"frames": 0}, "frames"),
    ({"width": 4}, "at least 8x8"),
    ({"fps": 0}, "fps"),
])
def test_bad_arguments(tmp_path, kwargs, message):
    args = {"split": "train", "n": 2, "out_dir": tmp_path / "d", "progress": False, **kwargs}
    with pytest.raises(CustomvidError, match=message):
        write_dataset(**args)
    assert not (tmp_path / "d" / "manifest.jsonl").exists()


def test_out_dir_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(CustomvidError, match="not a directory"):
        _write(tmp_path / "f", 2)
    with pytest.raises(CustomvidError, match="cannot create"):
        _write(tmp_path / "f" / "sub", 2)


def test_read_manifest_errors(tmp_path):
    with pytest.raises(CustomvidError, match="no manifest"):
        read_manifest(tmp_path)
    bad = tmp_path / "m.jsonl"
    bad.write_text('{"video": "a.mp4"}\nnot json\n')
    with pytest.raises(CustomvidError, match=r"m.jsonl:2"):
        read_manifest(bad, check_files=False)
    bad.write_text('{"video": "a.mp4", "prompt": ""}\n')
    with pytest.raises(CustomvidError, match="does not exist"):
        read_manifest(bad)
    assert read_manifest(bad, check_files=False)[0]["video"] == str((tmp_path / "a.mp4").resolve())


def test_subject_references(tmp_path):
    written = write_subject_references(tmp_path, n=3, seed=2)
    assert set(written) == set(CUSTOM_SUBJECTS)
    for name in CUSTOM_SUBJECTS:
        records = read_references(tmp_path / name)
        specs = reference_specs(name, 3, 2)
        assert len(records) == 3
        assert [str(p.resolve()) for p in written[name]] == [r["image"] for r in records]
        for rec, spec in zip(records, specs, strict=True):
            clip = render_clip(spec)
            assert rec["subject_name"] == name and ClipSpec.from_dict(rec["subject"]) == spec
            assert rec["prompt"] == spec.caption
            assert np.array_equal(read_image(rec["image"]), clip.frames[0])
            assert np.array_equal(read_image(rec["mask"])[..., 0] > 127, clip.masks[0])
            assert np.array_equal(np.float32(rec["box"]), clip.boxes[0])
    before = _files(tmp_path)
    write_subject_references(tmp_path, n=3, seed=2)  # identical again: a no-op
    assert _files(tmp_path) == before
    with pytest.raises(CustomvidError, match="--overwrite"):
        write_subject_references(tmp_path, n=4, seed=2, subjects="teal_ring")
    write_subject_references(tmp_path, n=4, seed=2, subjects="teal_ring", overwrite=True)
    assert len(read_references(tmp_path / "teal_ring")) == 4
    with pytest.raises(CustomvidError, match="unknown custom subject"):
        write_subject_references(tmp_path, subjects="blob")


def test_subjects_dataset_links_references(tmp_path):
    write_dataset("subjects", 4, tmp_path, frames=2, format="npz", progress=False)
    records = read_manifest(tmp_path)
    assert [r["subject_name"] for r in records] == list(CUSTOM_SUBJECTS)  # index i -> subject i % 4
    for rec in records:
        assert len(rec["reference_images"]) == 6
        assert all(f"references/{rec['subject_name']}/ref_" in p for p in rec["reference_images"])
    # resuming reuses the references written the first time
    write_dataset("subjects", 5, tmp_path, frames=2, format="npz", progress=False)
    assert len(read_manifest(tmp_path)) == 5


def test_refuses_a_foreign_manifest(tmp_path):
    foreign = '{"video": "mine.mp4", "prompt": "hello"}\n'
    (tmp_path / "manifest.jsonl").write_text(foreign)
    with pytest.raises(CustomvidError, match="already holds a dataset"):
        _write(tmp_path, 2)
    (tmp_path / "manifest.jsonl").write_text("some notes\n")
    with pytest.raises(CustomvidError, match="not a world dataset manifest"):
        _write(tmp_path, 2)
    assert (tmp_path / "manifest.jsonl").read_text() == "some notes\n"


def test_two_writers_do_not_interleave(tmp_path):
    with ds._locked(tmp_path):
        with pytest.raises(CustomvidError, match="another process is writing"):
            _write(tmp_path, 2)
    _write(tmp_path, 2)
    assert len(read_manifest(tmp_path)) == 2
