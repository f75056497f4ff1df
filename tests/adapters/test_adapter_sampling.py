"""Adapters in the sampling loop: per-step schedules through the callback, several at once, CLI flags."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from customvid.adapters import detach_all, load_adapter
from customvid.adapters.subject_lora import SubjectLora, SubjectLoraConfig
from customvid.cli import main
from customvid.io import read_video
from customvid.models import load_components
from customvid.sampling import generate
from customvid.sampling.schedules import schedule_values, weight_schedule

RUN = dict(num_frames=2, height=32, width=32, num_inference_steps=10, seed=0)


@pytest.fixture
def model(tiny_model_dir):
    return load_components(tiny_model_dir)


def _trained_adapter(components, token, seed):
    adapter = SubjectLora(SubjectLoraConfig(rank=4, alpha=4.0, token=token, class_word="circle"), name=token[1:-1])
    adapter.attach(components)
    with torch.no_grad():
        for p in adapter.trainable_parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(seed + p.numel())) * 0.1)
    return adapter


@pytest.fixture
def saved(model, tmp_path):
    paths = []
    for i, token in enumerate(["<aa>", "<bb>"]):
        adapter = _trained_adapter(model, token, i)
        paths.append(adapter.save(tmp_path / token[1:-1]))
        adapter.detach()
    return paths


def test_schedule_sets_the_weight_of_every_step(model, saved):
    adapter = load_adapter(saved[0], model, schedule="dws")
    seen = []

    def spy(step, t, latents, state):
        seen.append((state[f"adapter_weight/{adapter.name}"], adapter.weight))

    generate(model, "a <aa> circle", adapters=[adapter], callback=spy, **RUN)
    want = schedule_values(weight_schedule("dws"), 10)
    assert [s for s, _ in seen] == want == [0.4] + [0.8] * 9
    assert [w for _, w in seen] == want
    assert adapter.weight == 1.0  # restored after sampling


def test_weight_zero_and_detach_give_the_base_model_exactly(model, saved):
    base = generate(model, "a red circle", **RUN).frames
    adapter = load_adapter(saved[0], model, schedule=0.0)
    assert np.array_equal(generate(model, "a red circle", adapters=[adapter], **RUN).frames, base)
    adapter.set_schedule(1.0)
    assert not np.array_equal(generate(model, "a red circle", adapters=[adapter], **RUN).frames, base)
    adapter.detach()
    assert np.array_equal(generate(model, "a red circle", **RUN).frames, base)


def test_two_adapters_each_with_its_own_weight(model, saved):
    prompt = "a <aa> circle"
    a = load_adapter(saved[0], model, schedule=1.0)
    alone = generate(model, prompt, adapters=[a], **RUN).frames
    b = load_adapter(saved[1], model, schedule=0.0)
    assert np.array_equal(generate(model, prompt, adapters=[a, b], **RUN).frames, alone)
    b.set_schedule("linear:0,1")
    assert not np.array_equal(generate(model, prompt, adapters=[a, b], **RUN).frames, alone)
    a.set_schedule(0.0)
    b.set_schedule(0.0)
    assert np.array_equal(generate(model, "a red circle", adapters=[a, b], **RUN).frames,
                          generate(load_components(model.source), "a red circle", **RUN).frames)
    detach_all(model)
    assert model.adapters == []


def test_generate_cli_with_adapters(tiny_model_dir, saved, tmp_path):
    out = tmp_path / "clip"
    args = ["generate", "--prompt", "a <aa> circle", "--out", str(out), "--model", str(tiny_model_dir),
            "--steps", "3", "--frames", "2", "--height", "32", "--width", "32"]
    assert main([*args, "--adapter", str(saved[0]), "--adapter", str(saved[1]), "--adapter-weight", "dws",
                 "--adapter-weight", "0.5"]) == 0
    frames = read_video(out).frames
    model = load_components(tiny_model_dir)
    a = load_adapter(saved[0], model, schedule="dws")
    b = load_adapter(saved[1], model, schedule=0.5)
    want = generate(model, "a <aa> circle", adapters=[a, b], num_frames=2, height=32, width=32,
                    num_inference_steps=3, seed=0).frames[0]
    assert np.array_equal(frames, want)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--adapter-weight", "0.5"], "--adapter-weight for 0 --adapter"),
        (["--adapter", "nowhere"], "does not exist"),
        (["--adapter", "{a}", "--adapter-weight", "wobble:3"], "unknown schedule"),
    ],
)
def test_generate_cli_adapter_errors(extra, message, tiny_model_dir, saved, tmp_path, capsys):
    extra = [e.format(a=saved[0]) for e in extra]
    args = ["generate", "--prompt", "x", "--out", str(tmp_path / "c.mp4"), "--model", str(tiny_model_dir)]
    assert main([*args, *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "c.mp4").exists()


def test_generate_refuses_to_overwrite(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "clip.mp4"
    out.write_bytes(b"mine")
    args = ["generate", "--prompt", "a red circle", "--out", str(out), "--model", str(tiny_model_dir),
            "--steps", "2", "--frames", "2", "--height", "32", "--width", "32"]
    assert main(args) == 2
    assert "--overwrite" in capsys.readouterr().err and out.read_bytes() == b"mine"
    assert main([*args, "--overwrite"]) == 0
    assert read_video(out).frames.shape == (2, 32, 32, 3)
