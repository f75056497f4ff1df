"""`customvid generate` and `customvid bench speed` end to end on a tiny saved model."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

import customvid.cli.bench as bench_cli
import customvid.models.components as components_module
from customvid.cli import build_parser, main
from customvid.io import read_image, read_video
from customvid.models import load_components
from customvid.sampling import generate
from customvid.sampling.bench import OURS, PLAIN, format_markdown, run_speed

SMALL_ARGS = ["--steps", "2", "--frames", "2", "--height", "32", "--width", "32"]


@pytest.fixture(scope="module")
def loaded(tiny_model_dir):
    return load_components(tiny_model_dir)


def _expected(loaded, prompt: str, seed: int) -> np.ndarray:
    return generate(
        loaded, prompt, seed=seed, num_frames=2, height=32, width=32, num_inference_steps=2
    ).frames[0]


def test_generate_one_prompt_mp4(tiny_model_dir, tmp_path, capsys):
    out, sheet = tmp_path / "clip.mp4", tmp_path / "sheet.png"
    args = ["generate", "--prompt", "a red circle", "--out", str(out), "--model", str(tiny_model_dir)]
    assert main([*args, *SMALL_ARGS, "--contact-sheet", str(sheet)]) == 0
    video = read_video(out)
    assert video.frames.shape == (2, 32, 32, 3) and video.fps == pytest.approx(4.0)  # fps from customvid.json
    assert read_image(sheet).ndim == 3
    assert capsys.readouterr().out.split() == [str(out), str(sheet)]


def test_generate_prompt_file_numbers_outputs_and_seeds(tiny_model_dir, loaded, tmp_path, capsys):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("# toy prompts\na red circle\n\na blue square moves up\n")
    out = tmp_path / "clip"  # PNG-frame folders: lossless, so frames compare exactly
    args = [
        "generate",
        "--prompt-file",
        str(prompts),
        "--seed",
        "3",
        "--out",
        str(out),
        "--model",
        str(tiny_model_dir),
    ]
    assert main([*args, *SMALL_ARGS, "--batch-size", "2", "--fps", "6"]) == 0
    written = [tmp_path / "clip_000", tmp_path / "clip_001"]
    assert capsys.readouterr().out.split() == [str(p) for p in written]
    first, second = read_video(written[0]), read_video(written[1])
    assert second.fps == pytest.approx(6.0)
    # prompt i uses seed + i, whatever the batch (batched numerics may differ in the last bit)
    for video, prompt, seed in ((first, "a red circle", 3), (second, "a blue square moves up", 4)):
        assert np.abs(video.frames.astype(int) - _expected(loaded, prompt, seed)).max() <= 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--prompt-file", "/nonexistent/prompts.txt"], "cannot read prompt file"),
        (["--prompt", " "], "--prompt is empty"),
        (["--prompt", "x", "--noise", "pink"], "unknown noise 'pink'"),
        (["--prompt", "x", "--out", "clip.avi"], "unsupported video format '.avi'"),
        (["--prompt", "x", "--steps", "0"], "--steps must be >= 1"),
        (["--prompt", "x", "--model", "/nonexistent/model"], "does not exist"),
    ],
)
def test_generate_errors_are_one_line(tmp_path, capsys, extra, message):
    args = ["generate", "--out", str(tmp_path / "clip.mp4"), *extra]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("customvid: error: ") and message in err and err.count("\n") == 1


def test_generate_empty_prompt_file(tmp_path, capsys):
    prompts = tmp_path / "p.txt"
    prompts.write_text("# nothing\n\n")
    assert main(["generate", "--prompt-file", str(prompts), "--out", str(tmp_path / "c.mp4")]) == 2
    assert "has no prompts" in capsys.readouterr().err


def test_generate_without_embedded_model(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(components_module, "EMBEDDED_DIR", tmp_path / "embedded")
    assert main(["generate", "--prompt", "x", "--out", str(tmp_path / "c.mp4")]) == 2
    assert "customvid train-base" in capsys.readouterr().err


def test_generate_prompt_and_prompt_file_are_exclusive(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["generate", "--prompt", "x", "--prompt-file", "p.txt", "--out", "c.mp4"])
    assert info.value.code == 2


def test_run_speed_report(loaded):
    report = run_speed(loaded, num_inference_steps=2, repeats=2, warmup=0, num_frames=2, height=32, width=32)
    assert report.max_abs_diff <= 1  # both loops produce the same video
    for loop in (OURS, PLAIN):
        runs = report.runs[loop]
        assert len(runs) == 2 and all(r["per_step"] == pytest.approx(r["denoise"] / 2) for r in runs)
        assert all(r["total"] >= r["denoise"] > 0 and r["peak_mib"] >= 0 for r in runs)
    table = format_markdown(report)
    assert (
        "| loop | s/clip | s/denoising step |" in table and f"| {OURS} |" in table and f"| {PLAIN} |" in table
    )
    assert "| overhead of ours |" in table


def test_bench_speed_cli(tiny_model_dir, capsys):
    args = [
        "bench",
        "speed",
        "--model",
        str(tiny_model_dir),
        "--repeats",
        "1",
        "--warmup",
        "0",
        "--threads",
        "1",
    ]
    assert main([*args, *SMALL_ARGS]) == 0
    out = capsys.readouterr().out
    assert "overhead of ours" in out and "2 frames 32x32, 2 ddim steps" in out


def test_bench_registry_skips_missing_modules_and_loads_present_ones(monkeypatch):
    registered = []

    def register(subparsers):
        registered.append("demo")
        subparsers.add_parser("demo").set_defaults(func=lambda args: 0)

    monkeypatch.setitem(sys.modules, "fake_bench_module", types.SimpleNamespace(register=register))
    monkeypatch.setitem(bench_cli.BENCH_COMMANDS, "missing", "customvid.no_such_benchmark:register")
    monkeypatch.setitem(bench_cli.BENCH_COMMANDS, "demo", "fake_bench_module")
    args = build_parser().parse_args(["bench", "demo"])
    assert registered == ["demo"] and args.func(args) == 0
