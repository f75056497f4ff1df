"""`customvid bench refine` end to end on the tiny model (numbers meaningless, code path real), and its parts."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import customvid.models
from customvid.benchmarks.refine import (
    CONDITIONS,
    bench_specs,
    format_markdown,
    psnr,
    run_refine_bench,
    sharpness,
)
from customvid.cli import main
from customvid.models import load_components
from customvid.world import render_clip


@pytest.fixture(scope="module")
def small(tiny_model_dir):
    return dataclasses.replace(load_components(tiny_model_dir), default_frames=2, default_size=(32, 32))


def test_specs_draw_the_subject_small(tiny_components):
    specs = bench_specs(tiny_components, 4, "teal_ring")
    assert all(s.subject.shape == "ring" and s.frames == 8 and s.width == 64 for s in specs)
    for spec in specs:
        boxes = render_clip(spec).boxes
        assert (boxes[:, 2:] - boxes[:, :2]).max() <= 16  # pixel extents: the 14 px sprite, rounded out


def test_psnr_and_sharpness():
    a = np.zeros((1, 4, 4, 3), np.uint8)
    everywhere = np.ones((1, 4, 4), bool)
    assert psnr(a, a, everywhere) == 100.0 and np.isnan(psnr(a, a, ~everywhere))
    assert psnr(a, a + 1, everywhere) == pytest.approx(48.13, abs=0.01)
    edge = np.zeros((1, 8, 8, 3), np.uint8)
    edge[:, :, 4:] = 255
    assert sharpness(edge) > sharpness(a) == 0


@pytest.mark.parametrize("source", ["render", "generate"])
def test_bench_runs_on_the_tiny_model(small, source):
    result = run_refine_bench(small, n_clips=1, source=source, steps=2, progress=False)
    assert set(result["summary"]) == set(CONDITIONS)
    row = result["rows"][0]
    assert {"before", "bicubic", "tiled", "sharpness_tiled", "psnr_down_tiled"} <= set(row)
    if "region_skipped" not in row:  # a random model's clip may show no subject to refine
        # untouched outside the crop (NaN: a random model's "subject" can fill the frame, leaving no outside)
        assert row["psnr_outside"] == 100.0 or np.isnan(row["psnr_outside"])
    assert "| region: after |" in format_markdown(result)
    json.dumps(result)


def test_cli_checks_before_the_model_loads(monkeypatch, capsys):
    monkeypatch.setattr(customvid.models, "load_components", lambda *a, **k: pytest.fail("the model was loaded"))
    assert main(["bench", "refine", "--subject", "unicorn"]) == 2
    assert main(["bench", "refine", "--prompt", "a {colour} thing"]) == 2
    assert main(["bench", "refine", "--tiled-strength", "0"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3 and all(line.startswith("customvid: error: ") for line in err)
