"""Base-model training: exact resume, checkpoint safety, run-folder guards, export -> load -> generate."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from customvid.cli import main
from customvid.errors import CustomvidError
from customvid.training.base import (
    BaseTrainConfig,
    _check_run_config,
    export_checkpoint,
    finetune_decoder,
    snr_weight,
    train_unet,
    train_vae,
)
from customvid.training.checkpoint import save_checkpoint


def tiny_cfg(**kw) -> BaseTrainConfig:
    base = dict(
        size=32,
        frames=2,
        vae_steps=4,
        vae_batch=2,
        decoder_steps=0,
        unet_steps=4,
        unet_batch=2,
        unet_channels=(16, 32),
        warmup=2,
        checkpoint_every=2,
        log_every=1,
    )
    return BaseTrainConfig(**{**base, **kw})


def weights(path: Path) -> dict:
    return load_file(path)


def test_vae_and_unet_resume_exactly(tmp_path):
    """Also: writing sample sheets and rendering batches in worker processes (only in the split run) change
    nothing in what training does."""
    cfg = tiny_cfg(sample_every=0, decoder_steps=4)
    straight = tmp_path / "straight"
    vae = finetune_decoder(straight, cfg, train_vae(straight, cfg, progress=False), progress=False)
    train_unet(straight, cfg, vae, progress=False)

    split = tmp_path / "split"
    train_vae(split, tiny_cfg(vae_steps=2, decoder_steps=4), progress=False)  # "interrupted" after 2 steps ...
    vae2 = train_vae(split, cfg, progress=False)  # ... and resumed to 4
    finetune_decoder(split, tiny_cfg(decoder_steps=2), vae2, progress=False)
    vae2 = finetune_decoder(split, cfg, vae2, progress=False)
    train_unet(split, tiny_cfg(unet_steps=2, sample_every=1), vae2, progress=False)
    train_unet(split, tiny_cfg(sample_every=3, workers=2), vae2, progress=False)
    assert sorted(p.name for p in (split / "samples").iterdir()) == [
        "step_000001.png",
        "step_000002.png",
        "step_000003.png",
        "step_000004.png",
    ]
    assert not (straight / "samples").exists()

    for name in (
        "vae/checkpoint/vae.safetensors",
        "decoder/checkpoint/vae.safetensors",
        "unet/checkpoint/unet.safetensors",
        "unet/checkpoint/ema.safetensors",
    ):
        a, b = weights(straight / name), weights(split / name)
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), name
    assert vae.config.scaling_factor == vae2.config.scaling_factor


def test_training_lowers_the_vae_loss(tmp_path):
    cfg = tiny_cfg(vae_steps=30, vae_batch=4, checkpoint_every=30, log_every=1, warmup=1)
    train_vae(tmp_path, cfg, progress=False)
    rows = [json.loads(line) for line in (tmp_path / "vae_log.jsonl").read_text().splitlines()]
    first, last = rows[0]["loss"], sum(r["loss"] for r in rows[-5:]) / 5
    assert last < 0.7 * first, (first, last)


def test_run_folder_refuses_other_settings(tmp_path):
    _check_run_config(tmp_path, tiny_cfg())
    _check_run_config(tmp_path, tiny_cfg(unet_steps=99))  # more steps: same recipe, allowed
    with pytest.raises(CustomvidError, match="other settings"):
        _check_run_config(tmp_path, tiny_cfg(unet_lr=1.0))


def test_run_folder_from_before_a_recipe_key_existed_resumes(tmp_path):
    # a run written before `snr_weighting` existed used min-SNR; it resumes with that and refuses the new one
    _check_run_config(tmp_path, tiny_cfg(snr_weighting="min_snr"))
    path = tmp_path / "config.json"
    config = json.loads(path.read_text())
    del config["snr_weighting"]
    path.write_text(json.dumps(config))
    _check_run_config(tmp_path, tiny_cfg(snr_weighting="min_snr"), write=False)
    with pytest.raises(CustomvidError, match="snr_weighting"):
        _check_run_config(tmp_path, tiny_cfg(), write=False)  # the default is now min_snr_v


def test_snr_weightings():
    alpha_bar = torch.tensor([1e-4, 0.2, 0.5, 0.9, 0.999])
    snr = alpha_bar / (1 - alpha_bar)
    hang = snr_weight(alpha_bar, 5.0, "min_snr")
    ours = snr_weight(alpha_bar, 5.0, "min_snr_v")
    assert torch.allclose(hang, torch.minimum(snr, torch.tensor(5.0)) / (snr + 1))
    # high noise (SNR < g - 1): plain v-MSE weight 1; min-SNR gives ~SNR there, nearly nothing at the top
    assert torch.allclose(ours[:3], torch.ones(3)) and hang[0] < 1e-3
    # low noise: both cap the equivalent x0 weight at g
    assert torch.allclose(ours[3:], hang[3:]) and torch.allclose(ours[3:], 5.0 / (snr[3:] + 1))
    with pytest.raises(CustomvidError, match="snr_weighting"):
        snr_weight(alpha_bar, 5.0, "uniform")


def test_decoder_stage_trains_the_decoder_alone(tmp_path):
    cfg = tiny_cfg(decoder_steps=30, vae_batch=4, checkpoint_every=30, warmup=1)
    vae = train_vae(tmp_path, cfg, progress=False)
    before = {k: v.clone() for k, v in vae.state_dict().items()}
    vae = finetune_decoder(tmp_path, cfg, vae, progress=False)
    after = vae.state_dict()
    # the encoder, hence every latent a UNet was trained on, is bit for bit the same; the decoder learned
    kept = [k for k in before if k.startswith(("encoder.", "quant_conv."))]
    tuned = [k for k in before if k.startswith(("decoder.", "post_quant_conv."))]
    assert kept and tuned and len(kept) + len(tuned) == len(before)
    assert all(torch.equal(before[k], after[k]) for k in kept)
    assert all(not torch.equal(before[k], after[k]) for k in tuned if k.endswith("conv_out.weight"))
    rows = [json.loads(line) for line in (tmp_path / "decoder_log.jsonl").read_text().splitlines()]
    assert sum(r["loss"] for r in rows[-5:]) / 5 < sum(r["loss"] for r in rows[:5]) / 5
    assert not any(p.requires_grad for p in vae.parameters())


def test_unet_steps_0_fine_tunes_the_decoder_of_a_model_in_place(tmp_path, capsys):
    # a trained model: the in-place path must keep its UNet and encoder and change only the decoder
    cfg = tiny_cfg(size=64, decoder_steps=0, unet_channels=(32, 64, 128))
    vae = train_vae(tmp_path / "a", cfg, progress=False)
    train_unet(tmp_path / "a", tiny_cfg(size=64, unet_steps=1, unet_channels=(32, 64, 128)), vae, progress=False)
    model = export_checkpoint(tmp_path / "a", cfg, tmp_path / "model")
    argv = ["train-base", "--out", str(tmp_path / "b"), "--init-from", str(model), "--unet-steps", "0"]
    argv += ["--decoder-steps", "3", "--export", str(tmp_path / "tuned"), "--no-progress", "--sample-every", "0"]
    assert main(argv) == 0
    for part, same in (("unet", lambda k: True), ("vae", lambda k: not k.startswith(("decoder.", "post_quant")))):
        a = load_file(model / part / "diffusion_pytorch_model.safetensors")
        b = load_file(tmp_path / "tuned" / part / "diffusion_pytorch_model.safetensors")
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) == same(k) for k in a if k.endswith(("conv_in.weight", "conv_out.weight")))
    # the record of the new model nests the record of the one it started from
    record = json.loads((tmp_path / "tuned" / "customvid.json").read_text())
    assert record["unet_step"] == 0 and record["train_config"]["decoder_steps"] == 3
    assert record["init_model"] == json.loads((model / "customvid.json").read_text())
    assert main(["train-base", "--out", str(tmp_path / "c"), "--unet-steps", "0"]) == 2
    assert "--init-from" in capsys.readouterr().err


def test_interrupted_checkpoint_save_keeps_the_previous_one(tmp_path, monkeypatch):
    module = torch.nn.Linear(2, 2)
    opt = torch.optim.AdamW(module.parameters())
    save_checkpoint(tmp_path, 1, {"m": module}, opt, {})
    before = weights(tmp_path / "checkpoint" / "m.safetensors")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with torch.no_grad():
        module.weight.add_(1)
    with pytest.raises(OSError):
        save_checkpoint(tmp_path, 2, {"m": module}, opt, {})
    after = weights(tmp_path / "checkpoint" / "m.safetensors")
    assert torch.equal(before["weight"], after["weight"])


def test_export_loads_and_generates(tmp_path):
    from customvid.models import load_components
    from customvid.sampling import generate

    cfg = tiny_cfg()
    vae = train_vae(tmp_path / "run", cfg, progress=False)
    train_unet(tmp_path / "run", cfg, vae, progress=False)
    dest = export_checkpoint(tmp_path / "run", cfg, tmp_path / "model")
    comps = load_components(dest)
    assert comps.default_frames == 2 and tuple(comps.default_size) == (32, 32)
    out = generate(comps, ["a red circle moving right on a black background"], num_inference_steps=2)
    assert out.frames.shape == (1, 2, 32, 32, 3)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--unet-channels", "30,64"], "multiples of 16"),
        (["--unet-steps", "-1"], "must be 0 or more"),
        (["--decoder-steps", "-1"], "must be 0 or more"),
        (["--device", "nonsense"], "--device"),
    ],
)
def test_train_base_cli_rejects_bad_arguments(argv, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["train-base", "--out", str(tmp_path), *argv])
    assert exc.value.code != 0
    assert message in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_train_base_on_a_missing_gpu_says_so(capsys, tmp_path):
    code = main(["train-base", "--out", str(tmp_path / "run"), "--device", "cuda"])
    assert code != 0
    assert "no CUDA GPU" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_train_base_refuses_a_second_trainer_on_the_same_folder(tmp_path, capsys):
    import fcntl

    tmp_path.mkdir(exist_ok=True)
    _check_run_config(tmp_path, BaseTrainConfig())
    with open(tmp_path / ".lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        code = main(["train-base", "--out", str(tmp_path)])
    assert code == 2
    assert "already running" in capsys.readouterr().err


def test_warm_start_begins_from_the_given_model(tmp_path):
    cfg = tiny_cfg()
    vae = train_vae(tmp_path / "a", cfg, progress=False)
    train_unet(tmp_path / "a", cfg, vae, progress=False)
    model = export_checkpoint(tmp_path / "a", cfg, tmp_path / "model")
    warm = tiny_cfg(unet_steps=1, init_from=str(model))
    before = load_file(model / "unet" / "diffusion_pytorch_model.safetensors")
    # the VAE comes from the model unchanged (its latents are what the UNet learned), with its scale
    vae_b = train_vae(tmp_path / "b", warm, progress=False)
    stored = load_file(model / "vae" / "diffusion_pytorch_model.safetensors")
    assert all(torch.equal(vae_b.state_dict()[k], stored[k].float()) for k in stored)
    assert vae_b.config.scaling_factor == vae.config.scaling_factor
    assert not (tmp_path / "b" / "vae_log.jsonl").read_text()  # no VAE training step ran
    unet, _, _ = train_unet(tmp_path / "b", warm, vae_b, progress=False)
    after = unet.state_dict()
    # one EMA step away from the initial weights, not from a fresh random init
    drift = max((after[k] - before[k].float()).abs().max().item() for k in before)
    assert drift < 1e-2


def test_export_only_leaves_the_run_folder_untouched(tmp_path, capsys):
    from customvid.training.base import BaseTrainConfig

    run = tmp_path / "run"
    _check_run_config(run, BaseTrainConfig(unet_steps=20000))  # same recipe as the CLI defaults, more steps
    before = (run / "config.json").read_bytes()
    # nothing trained yet: a clear error, no training started, and the run's recipe is not rewritten
    assert main(["train-base", "--out", str(run), "--export-only"]) == 2
    assert "has not finished training" in capsys.readouterr().err
    assert (run / "config.json").read_bytes() == before
    assert not (run / "vae").exists()
    assert main(["train-base", "--out", str(tmp_path / "nothing"), "--export-only"]) == 2
    assert not (tmp_path / "nothing").exists()
    assert "holds no training run" in capsys.readouterr().err


def test_text_temporal_warm_start_resumes_and_exports(tmp_path):
    from customvid.models import load_components
    from customvid.models.temporal_text import FrameTimeUNet3DConditionModel, TextTemporalUNet3DConditionModel

    cfg = tiny_cfg()
    vae = train_vae(tmp_path / "a", cfg, progress=False)
    train_unet(tmp_path / "a", cfg, vae, progress=False)
    model = export_checkpoint(tmp_path / "a", cfg, tmp_path / "model")
    warm = tiny_cfg(unet_steps=4, init_from=str(model), temporal_text=True, subject_weight=4.0, timestep_bias=3.0)
    vae_b = train_vae(tmp_path / "b", warm, progress=False)
    unet, _, _ = train_unet(tmp_path / "b", warm, vae_b, progress=False)
    assert isinstance(unet, TextTemporalUNet3DConditionModel)
    assert any(p.abs().sum() > 0 for n, p in unet.named_parameters() if "text_attn.attn.to_out" in n)
    # resume: 2 steps, then 2 more, equals 4 in one go
    half = tiny_cfg(unet_steps=2, init_from=str(model), temporal_text=True, subject_weight=4.0, timestep_bias=3.0)
    train_unet(tmp_path / "c", half, train_vae(tmp_path / "c", half, progress=False), progress=False)
    resumed, _, _ = train_unet(tmp_path / "c", warm, train_vae(tmp_path / "c", warm, progress=False), progress=False)
    pairs = zip(unet.state_dict().values(), resumed.state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)
    exported = load_components(export_checkpoint(tmp_path / "b", warm, tmp_path / "tt"))
    assert type(exported.unet) is TextTemporalUNet3DConditionModel
    with pytest.raises(CustomvidError, match="--temporal-text"):
        train_unet(tmp_path / "d", tiny_cfg(unet_steps=1, init_from=str(tmp_path / "tt")), vae_b, progress=False)
    # a text-temporal model warm-starts a frame-time run (gaining the zero-output frame layer), not the reverse
    frames_cfg = tiny_cfg(unet_steps=2, init_from=str(tmp_path / "tt"), frame_time=True)
    unet_f, _, _ = train_unet(tmp_path / "e", frames_cfg, train_vae(tmp_path / "e", frames_cfg, progress=False),
                              progress=False)
    assert type(unet_f) is FrameTimeUNet3DConditionModel and unet_f.frame_time.weight.abs().sum() > 0
    export_checkpoint(tmp_path / "e", frames_cfg, tmp_path / "ft")
    # --export-only without the recipe's flags exports the run as it was made
    _check_run_config(tmp_path / "e", frames_cfg)  # what the CLI writes when it starts a run
    assert main(["train-base", "--out", str(tmp_path / "e"), "--export", str(tmp_path / "ft2"), "--export-only"]) == 0
    assert type(load_components(tmp_path / "ft2").unet) is FrameTimeUNet3DConditionModel
    with pytest.raises(CustomvidError, match="--frame-time"):
        train_unet(tmp_path / "f", tiny_cfg(unet_steps=1, init_from=str(tmp_path / "ft"), temporal_text=True), vae_b,
                   progress=False)


def test_stable_targets_change_training_only_where_a_sample_qualifies(tmp_path):
    cfg = tiny_cfg(unet_steps=2, timestep_bias=3.0)
    vae = train_vae(tmp_path / "vae", cfg, progress=False)

    def trained(name: str, **kw):
        unet, _, _ = train_unet(tmp_path / name, tiny_cfg(unet_steps=2, timestep_bias=3.0, **kw), vae, progress=False)
        return unet.state_dict()

    plain = trained("plain")
    nobody = trained("nobody", reference_clips=2, reference_min_t=1000)  # no timestep reaches 1000
    everyone = trained("everyone", reference_clips=2, reference_min_t=0)
    assert all(torch.equal(plain[k], nobody[k]) for k in plain)
    assert any(not torch.equal(plain[k], everyone[k]) for k in plain)
    # references rendered ahead in worker processes (all samples) train exactly as those rendered in the trainer
    # (the chosen samples only), also where only some samples qualify
    for min_t, here in ((0, everyone), (500, trained("some", reference_clips=2, reference_min_t=500))):
        ahead = trained(f"workers{min_t}", reference_clips=2, reference_min_t=min_t, workers=1)
        assert all(torch.equal(here[k], ahead[k]) for k in here)


def test_stop_at_splits_a_run_without_changing_its_schedule(tmp_path):
    cfg = tiny_cfg(unet_steps=6, checkpoint_every=5)
    vae = train_vae(tmp_path / "vae", cfg, progress=False)
    straight, _, _ = train_unet(tmp_path / "straight", cfg, vae, progress=False)
    # sample sheets change nothing in training (test above); the stop step gets one like the last step does
    stopping = tiny_cfg(unet_steps=6, checkpoint_every=5, sample_every=100)
    _, _, step = train_unet(tmp_path / "split", stopping, vae, progress=False, stop_at=4)  # checkpoints at 4, not 5
    assert step == 4 and json.loads((tmp_path / "split/unet/checkpoint/step.json").read_text())["step"] == 4
    assert [p.name for p in (tmp_path / "split/samples").iterdir()] == ["step_000004.png"]
    split, _, step = train_unet(tmp_path / "split", cfg, vae, progress=False)
    assert step == 6
    assert all(torch.equal(a, b) for a, b in zip(straight.state_dict().values(), split.state_dict().values(),
                                                 strict=True))
    # what it replaces: a shorter --unet-steps first gives another learning-rate curve, so other weights
    train_unet(tmp_path / "short", tiny_cfg(unet_steps=4, checkpoint_every=5), vae, progress=False)
    other, _, _ = train_unet(tmp_path / "short", cfg, vae, progress=False)
    assert any(not torch.equal(a, b) for a, b in zip(straight.state_dict().values(), other.state_dict().values(),
                                                     strict=True))
    lrs = [json.loads(line)["lr"] for line in (tmp_path / "split/unet_log.jsonl").read_text().splitlines()]
    assert lrs == [json.loads(line)["lr"] for line in (tmp_path / "straight/unet_log.jsonl").read_text().splitlines()]
