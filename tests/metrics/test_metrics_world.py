"""Box metrics and world scores on real world renders: `customvid world render --record` output fed straight
to `customvid evaluate`, lossless and after mp4 encoding, with the world probe as the default detector."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import FixedDetector

from customvid.cli import main
from customvid.metrics import EvalRecord, evaluate_records, load_manifest

PROMPTS = [
    "a red square moving left on a black background",
    "a blue star moving diagonally down and right on a gray background",
    "a yellow heart bouncing on a green background",
]


def render_manifest(tmp_path, suffix: str) -> tuple:
    """Render PROMPTS with `customvid world render --record`; the records concatenated are the manifest."""
    lines = []
    for k, prompt in enumerate(PROMPTS):
        out, rec = tmp_path / f"clip{k}{suffix}", tmp_path / f"clip{k}{suffix or '_png'}.json"
        assert (
            main(
                [
                    "world",
                    "render",
                    "--prompt",
                    prompt,
                    "--seed",
                    str(k),
                    "--out",
                    str(out),
                    "--record",
                    str(rec),
                ]
            )
            == 0
        )
        lines.append(rec.read_text().strip())
    manifest = tmp_path / f"manifest{suffix or '_png'}.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest, [json.loads(x) for x in lines]


def test_oracle_boxes_through_the_manifest_give_exactly_1_and_0(tmp_path):
    """The manifest path itself loses nothing: a detector that returns the rendered boxes scores 1.0 / 0.0."""
    manifest, recs = render_manifest(tmp_path, "")
    records = load_manifest(manifest)
    det = FixedDetector(
        {
            r.frames[0].tobytes(): np.array(rec["target_boxes"], dtype=float)
            for r, rec in zip(records, recs, strict=True)
        }
    )
    res = evaluate_records(records, ["miou", "cd"], detector=det).results
    assert res["miou"].per_video == [1.0] * len(PROMPTS)
    assert res["cd"].per_video == [0.0] * len(PROMPTS)


def test_probe_on_lossless_renders_gives_1_and_0(tmp_path):
    manifest, _ = render_manifest(tmp_path, "")
    res = evaluate_records(load_manifest(manifest), ["miou", "cd"]).results
    assert res["miou"].aggregate == pytest.approx(1.0, abs=1e-6)
    assert res["cd"].aggregate == pytest.approx(0.0, abs=1e-6)


def test_probe_on_lossless_and_mp4_renders(tmp_path, capsys):
    for suffix in ("", ".mp4"):
        manifest, _ = render_manifest(tmp_path, suffix)
        out = tmp_path / f"report{suffix}"
        assert main(["evaluate", "--manifest", str(manifest), "--out", str(out), "--quiet"]) == 0
        agg = json.loads((out / "aggregate.json").read_text())["metrics"]
        assert agg["miou"]["value"] >= 0.9, suffix
        assert agg["cd"]["value"] <= 0.01, suffix
        assert agg["trajectory_error"]["value"] <= 0.01, suffix
        for name in ("attr_colour", "attr_shape", "attr_background", "identity_match"):
            assert agg[name]["value"] == 1.0, (suffix, name)
    capsys.readouterr()


def test_probe_box_metrics_degrade_monotonically_under_perturbation(tmp_path):
    manifest, _ = render_manifest(tmp_path, ".mp4")
    records = load_manifest(manifest)
    rng = np.random.default_rng(0)
    directions = rng.normal(size=(len(records), 1, 2))
    directions /= np.linalg.norm(directions, axis=-1, keepdims=True)
    mious, cds = [], []
    for shift in (0.0, 1.5, 3.0, 6.0, 12.0):
        perturbed = []
        for r, d in zip(records, directions, strict=True):
            offset = np.concatenate([d, d], axis=-1)[0] * shift
            perturbed.append(EvalRecord(r.frames, r.prompt, target_boxes=r.target_boxes + offset, id=r.id))
        res = evaluate_records(perturbed, ["miou", "cd"]).results
        mious.append(res["miou"].aggregate)
        cds.append(res["cd"].aggregate)
    assert (np.diff(mious) < 0).all(), mious
    assert (np.diff(cds) > 0).all(), cds


def test_identity_match_against_world_reference_images(tmp_path, capsys):
    """A custom subject's reference images (`customvid world references`) and a clip of that subject."""

    assert (
        main(["world", "references", "--subject", "checkered_diamond", "--out", str(tmp_path / "refs")]) == 0
    )
    refs = sorted((tmp_path / "refs" / "checkered_diamond").glob("ref_0?.png"))
    prompt = "a red and white checkered diamond moving right on a black background"
    assert (
        main(
            [
                "world",
                "render",
                "--prompt",
                prompt,
                "--out",
                str(tmp_path / "v"),
                "--record",
                str(tmp_path / "v.json"),
            ]
        )
        == 0
    )
    rec = json.loads((tmp_path / "v.json").read_text())
    del rec["subject"]  # identity must come from the reference images alone
    rec["reference_images"] = [str(p) for p in refs]
    (tmp_path / "m.jsonl").write_text(json.dumps(rec) + "\n")
    res = evaluate_records(load_manifest(tmp_path / "m.jsonl"), ["identity_match"]).results["identity_match"]
    assert res.skipped_reason is None
    assert res.details["reference_identity"][0]["shape"] == "diamond"
    assert res.per_video == [1.0]
    capsys.readouterr()
