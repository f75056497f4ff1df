"""Diffusers-format model folders built from configs with random weights (nothing is downloaded):
ModelScope/ZeroScope-like (UNet3DConditionModel + CLIP) and AnimateDiff-like (SD1.5 folder + MotionAdapter),
tiny for the fast tests and at the published full sizes for the slow structural tests."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import diffusers
import pytest
import torch
from diffusers import AutoencoderKL, MotionAdapter, UNet2DConditionModel, UNet3DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

from customvid.models import tiny

# Published scheduler configs (damo-vilab/text-to-video-ms-1.7b and runwayml/stable-diffusion-v1-5).
MODELSCOPE_SCHEDULER = {
    "_class_name": "DDIMScheduler",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
}
SD15_SCHEDULER = {
    "_class_name": "PNDMScheduler",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
    "clip_sample": False,
}


def _bytes_to_unicode() -> dict[int, str]:
    # GPT-2/CLIP byte-level alphabet: every byte maps to a printable unicode character.
    bs = (
        list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs), strict=True))


def write_clip_tokenizer(folder: Path) -> None:
    """A character-level CLIP BPE tokenizer in the published file layout (vocab.json, merges.txt, configs).

    No merges, so every character is a token: a valid CLIPTokenizer without downloading the 49k vocabulary.
    """
    folder.mkdir(parents=True)
    chars = list(_bytes_to_unicode().values())
    tokens = chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    special = {
        "bos_token": "<|startoftext|>",
        "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>",
    }
    (folder / "special_tokens_map.json").write_text(json.dumps(special), encoding="utf-8")
    config = {"tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "do_lower_case": True, **special}
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")


def clip_text(hidden: int, heads: int, intermediate: int, act: str, layers: int) -> CLIPTextModel:
    config = CLIPTextConfig(
        vocab_size=49408,
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_attention_heads=heads,
        num_hidden_layers=layers,
        max_position_embeddings=77,
        hidden_act=act,
        projection_dim=hidden,
    )
    return CLIPTextModel(config).eval()


def write_pipeline_folder(
    folder: Path,
    pipeline_class: str,
    unet: torch.nn.Module,
    vae: AutoencoderKL,
    text_encoder: CLIPTextModel,
    scheduler_config: dict,
    save_dtype: torch.dtype,
) -> Path:
    """save_pretrained (safetensors) of every component + model_index.json, as DiffusionPipeline would."""
    for name, model in (("unet", unet), ("vae", vae), ("text_encoder", text_encoder)):
        model.to(save_dtype).save_pretrained(folder / name, safe_serialization=True)
    write_clip_tokenizer(folder / "tokenizer")
    (folder / "scheduler").mkdir()
    (folder / "scheduler" / "scheduler_config.json").write_text(
        json.dumps(scheduler_config), encoding="utf-8"
    )
    index = {
        "_class_name": pipeline_class,
        "_diffusers_version": diffusers.__version__,
        "unet": ["diffusers", type(unet).__name__],
        "vae": ["diffusers", "AutoencoderKL"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "scheduler": ["diffusers", scheduler_config["_class_name"]],
    }
    (folder / "model_index.json").write_text(json.dumps(index), encoding="utf-8")
    return folder


def _seeded(build: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return build()


# ---------------------------------------------------------------------------------------------- full size


def modelscope_unet() -> UNet3DConditionModel:
    """damo-vilab/text-to-video-ms-1.7b unet/config.json (ZeroScope v2 uses the same)."""
    return UNet3DConditionModel(
        sample_size=32,
        in_channels=4,
        out_channels=4,
        down_block_types=(
            "CrossAttnDownBlock3D",
            "CrossAttnDownBlock3D",
            "CrossAttnDownBlock3D",
            "DownBlock3D",
        ),
        up_block_types=("UpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D"),
        block_out_channels=(320, 640, 1280, 1280),
        layers_per_block=2,
        downsample_padding=1,
        mid_block_scale_factor=1,
        act_fn="silu",
        norm_num_groups=32,
        norm_eps=1e-5,
        cross_attention_dim=1024,
        attention_head_dim=64,
    )


def sd15_unet() -> UNet2DConditionModel:
    """runwayml/stable-diffusion-v1-5 unet/config.json: the diffusers defaults with 768-wide text."""
    return UNet2DConditionModel(sample_size=64, cross_attention_dim=768)


def sd_vae(sample_size: int) -> AutoencoderKL:
    """The SD1.5 / ModelScope VAE config (83M parameters)."""
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(128, 256, 512, 512),
        layers_per_block=2,
        act_fn="silu",
        latent_channels=4,
        norm_num_groups=32,
        sample_size=sample_size,
        scaling_factor=0.18215,
    )


def animatediff_adapter() -> MotionAdapter:
    """guoyww/animatediff-motion-adapter-v1-5-2 config.json."""
    return MotionAdapter(
        block_out_channels=(320, 640, 1280, 1280),
        motion_layers_per_block=2,
        motion_mid_block_layers_per_block=1,
        motion_num_attention_heads=8,
        motion_norm_num_groups=32,
        motion_max_seq_length=32,
        use_motion_mid_block=True,
    )


# The text encoders keep their published widths but only 1 of their 23 (OpenCLIP ViT-H) / 12 (CLIP ViT-L)
# layers: they are not what these tests check, and full depth would double the build time.
@pytest.fixture(scope="session")
def modelscope_full_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("full")
    yield write_pipeline_folder(
        root / "text-to-video-ms-1.7b",
        "TextToVideoSDPipeline",
        _seeded(modelscope_unet),
        _seeded(lambda: sd_vae(256)),
        _seeded(lambda: clip_text(1024, 16, 4096, "gelu", layers=1)),
        MODELSCOPE_SCHEDULER,
        save_dtype=torch.float16,  # like the published fp16 variant; halves disk and load time
    )
    shutil.rmtree(root)  # ~3 GB; pytest would otherwise keep it with its last three temp folders


@pytest.fixture(scope="session")
def animatediff_full_dirs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    root = tmp_path_factory.mktemp("full")
    sd = write_pipeline_folder(
        root / "stable-diffusion-v1-5",
        "StableDiffusionPipeline",
        _seeded(sd15_unet),
        _seeded(lambda: sd_vae(512)),
        _seeded(lambda: clip_text(768, 12, 3072, "quick_gelu", layers=1)),
        SD15_SCHEDULER,
        save_dtype=torch.float16,
    )
    adapter = root / "animatediff-motion-adapter-v1-5-2"
    _seeded(animatediff_adapter).to(torch.float16).save_pretrained(adapter, safe_serialization=True)
    yield sd, adapter
    shutil.rmtree(root)


# ---------------------------------------------------------------------------------------------- tiny


@pytest.fixture(scope="session")
def tiny_modelscope_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny") / "modelscope"
    return write_pipeline_folder(
        folder,
        "TextToVideoSDPipeline",
        tiny.tiny_unet3d(cross_attention_dim=32),
        tiny.tiny_vae(),
        _seeded(lambda: clip_text(32, 4, 64, "gelu", layers=1)),
        MODELSCOPE_SCHEDULER,
        save_dtype=torch.float32,
    )


@pytest.fixture(scope="session")
def tiny_animatediff_dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("tiny")
    sd = write_pipeline_folder(
        root / "sd",
        "StableDiffusionPipeline",
        tiny.tiny_unet2d(cross_attention_dim=32),
        tiny.tiny_vae(),
        _seeded(lambda: clip_text(32, 4, 64, "quick_gelu", layers=1)),
        SD15_SCHEDULER,
        save_dtype=torch.float32,
    )
    adapter = root / "adapter"
    tiny.tiny_motion_adapter().save_pretrained(adapter, safe_serialization=True)
    return sd, adapter
