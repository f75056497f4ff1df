"""`customvid evaluate` end to end on a tiny manifest."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from conftest import square_video

from customvid.cli import main
from customvid.io import write_image, write_video


@pytest.fixture
def manifest(tmp_path):
    moving, boxes = square_video(6, 32, box=(4, 4, 12, 12), step=(3, 2), colour=(230, 40, 40))
    still, _ = square_video(6, 32, box=(10, 10, 18, 18), step=(0, 0), colour=(60, 110, 255))
    write_video(tmp_path / "gen" / "moving", moving, fps=8)
    write_video(tmp_path / "gen" / "still.gif", still, fps=8)
    write_image(tmp_path / "ref.png", moving[0, 4:12, 4:12])
    lines = [
        {
            "video": "gen/moving",
            "prompt": "a red square moving right",
            "reference_images": ["ref.png"],
            "target_boxes": boxes.tolist(),
            "subject": {"colour": "red", "shape": "square"},
        },
        {"video": "gen/still.gif", "prompt": "a blue square staying still"},
    ]
    path = tmp_path / "generated.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def test_evaluate_without_backbones_skips_with_message(manifest, tmp_path, capsys):
    out = tmp_path / "report"
    rc = main(["evaluate", "--manifest", str(manifest), "--out", str(out), "--detector", "none"])
    assert rc == 0
    captured = capsys.readouterr()
    assert "skipped clip_t: no CLIP checkpoint given" in captured.err
    assert "skipped dino_i: no DINO checkpoint given" in captured.err
    agg = json.loads((out / "aggregate.json").read_text())
    assert agg["n_videos"] == 2
    assert (
        agg["metrics"]["clip_t"]["value"] is None and "--clip" in agg["metrics"]["clip_t"]["skipped_reason"]
    )
    assert agg["metrics"]["dynamic_degree"]["value"] == 0.5
    per = json.loads((out / "per_video.json").read_text())
    assert [p["video"] for p in per] == ["gen/moving", "gen/still.gif"]
    assert per[0]["metrics"]["dynamic_degree"] == 1.0 and per[1]["metrics"]["dynamic_degree"] == 0.0
    assert per[0]["metrics"]["clip_t"] is None
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "skipped: no CLIP checkpoint given" in html
    assert not re.search(r"""(src|href)=["'](?!data:|#)""", html)  # self-contained: no external files


def test_evaluate_with_backbones_and_detector(
    manifest, tmp_path, tiny_clip_dir, tiny_vit_dir, fake_probe, capsys
):
    out = tmp_path / "report"
    rc = main(
        [
            "evaluate",
            "--manifest",
            str(manifest),
            "--out",
            str(out),
            "--clip",
            str(tiny_clip_dir),
            "--dino",
            str(tiny_vit_dir),
            "--batch-size",
            "4",
            "--quiet",
        ]
    )
    assert rc == 0
    stdout = capsys.readouterr().out
    assert re.search(r"^miou\s+1\.0000", stdout, re.M) and re.search(r"^cd\s+0\.0000", stdout, re.M)
    agg = json.loads((out / "aggregate.json").read_text())["metrics"]
    for name in (
        "clip_t",
        "clip_i",
        "dino_i",
        "r_clip",
        "r_dino",
        "temporal_consistency",
        "subject_consistency",
    ):
        assert agg[name]["skipped_reason"] is None and -1 <= agg[name]["value"] <= 1, name
    assert agg["miou"]["value"] == 1.0 and agg["miou"]["n"] == 1
    assert agg["cd"]["value"] == 0.0
    assert agg["trajectory_error"]["value"] == 0.0
    assert agg["attr_colour"]["value"] is not None  # the fake probe reads nothing: 0.0, not skipped
    per = json.loads((out / "per_video.json").read_text())
    assert np.allclose(
        per[0]["detected_boxes"], json.loads(manifest.read_text().splitlines()[0])["target_boxes"]
    )
    html = (out / "report.html").read_text()
    assert html.count("<svg") >= 2  # trajectory plot + attribute bars
    assert "World attribute accuracy" in html


def test_evaluate_errors_are_one_line(manifest, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(manifest.read_text() + '{"video": "gen/moving", "prompt": \n')
    assert main(["evaluate", "--manifest", str(bad), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("customvid: error: ") and "bad.jsonl line 3: malformed JSON" in err
    assert (
        main(
            ["evaluate", "--manifest", str(manifest), "--out", str(tmp_path / "r"), "--metrics", "clip_t,zz"]
        )
        == 2
    )
    assert "unknown metric 'zz'" in capsys.readouterr().err
    assert (
        main(
            [
                "evaluate",
                "--manifest",
                str(manifest),
                "--out",
                str(tmp_path / "r"),
                "--clip",
                str(tmp_path / "nowhere"),
                "--metrics",
                "clip_t",
                "--quiet",
            ]
        )
        == 2
    )
    assert "does not exist" in capsys.readouterr().err


def test_list_metrics(capsys):
    assert main(["evaluate", "--list-metrics"]) == 0
    out = capsys.readouterr().out
    assert "clip_t" in out and "trajectory_error" in out
