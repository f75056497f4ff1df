"""Train the embedded base model from scratch: the VAE on single world frames, then the UNet3D on VAE latents of
world clips. Read top to bottom; every stage resumes exactly from its last checkpoint."""

from __future__ import annotations

import copy
import json
import math
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDPMScheduler, UNet3DConditionModel
from tqdm.auto import tqdm

from customvid.errors import CustomvidError
from customvid.io import write_json_atomic
from customvid.models.temporal_text import FrameTimeUNet3DConditionModel, TextTemporalUNet3DConditionModel
from customvid.models.text import MINILM_MAX_LENGTH, encode_text, load_minilm
from customvid.training.checkpoint import check_run_config, load_checkpoint, save_checkpoint
from customvid.training.data import clip_batch, frames_to_clips, image_batch, render_frames, same_caption_specs
from customvid.training.stable_target import stable_velocity_shift, stable_x0
from customvid.training.timesteps import sample_timesteps


def vae_config(size: int = 64) -> dict:
    # Three blocks = two downsamplings: 64x64x3 frames -> 16x16x4 latents. World frames are flat colours and
    # sharp edges, so a narrow VAE reconstructs them; narrow at full resolution, where a CPU spends most time.
    return dict(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(16, 32, 64),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=size,
    )


def unet_config(channels: tuple[int, ...] = (32, 64, 128), latent_size: int = 16) -> dict:
    # No attention at the top (16x16) resolution: spatial attention there costs most and the sprites are small.
    # Note: in UNet3DConditionModel `attention_head_dim` is the number of heads (a diffusers naming quirk).
    return dict(
        sample_size=latent_size,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock3D",) + ("CrossAttnDownBlock3D",) * (len(channels) - 1),
        up_block_types=("CrossAttnUpBlock3D",) * (len(channels) - 1) + ("UpBlock3D",),
        block_out_channels=tuple(channels),
        layers_per_block=1,
        cross_attention_dim=384,
        attention_head_dim=4,
        norm_num_groups=16,
    )


def scheduler_config() -> dict:
    # v-prediction on a cosine schedule: the cosine schedule reaches (almost) zero SNR at t=T, where an
    # eps-prediction model learns nothing useful (the first trial sampled pure noise); v stays well-defined there.
    return dict(
        num_train_timesteps=1000,
        beta_schedule="squaredcos_cap_v2",
        prediction_type="v_prediction",
        clip_sample=False,
        timestep_spacing="trailing",
    )


@dataclass
class BaseTrainConfig:
    seed: int = 0
    size: int = 64
    frames: int = 8  # base clips: 8 frames over the same 2 s of motion as the world's 16-frame default (4 fps)
    vae_steps: int = 600
    vae_batch: int = 16
    vae_lr: float = 1e-3
    vae_subject_weight: float = 20.0  # the subject covers ~5 % of a frame; unweighted, the VAE learns to blur it
    decoder_steps: int = 3000  # then the decoder alone, encoder frozen (see finetune_decoder)
    decoder_lr: float = 3e-4
    unet_steps: int = 10000
    unet_batch: int = 8
    unet_lr: float = 3e-4
    unet_channels: tuple[int, ...] = (32, 64, 128)
    warmup: int = 200
    caption_dropout: float = 0.1  # empty caption = the unconditional branch of classifier-free guidance
    min_snr_gamma: float = 5.0
    # the diffusion loss inside the (dilated, latent-size) subject mask weighs this much more than outside: the
    # subject is ~5 % of a frame, and where it is in each frame is all the motion there is (DreamVideo-2's idea)
    subject_weight: float = 1.0
    # caption cross-attention in every temporal transformer (customvid.models.temporal_text), trained at text_lr
    temporal_text: bool = False
    # and the frame index in every ResNet block's time embedding (FrameTimeUNet3DConditionModel; implies the above)
    frame_time: bool = False
    text_lr: float = 3e-4
    timestep_bias: float = 1.0  # k of customvid.training.timesteps: 1 uniform, > 1 more high-noise steps
    # stable targets (customvid.training.stable_target): captioned samples drawn at t >= reference_min_t get their
    # v-target from a weighted average over themselves and this many more clips of the same caption (0: off)
    reference_clips: int = 0
    reference_min_t: int = 950
    # "min_snr": min(SNR, g) / (SNR + 1) (Hang et al., v form); "min_snr_v": min(SNR + 1, g) / (SNR + 1), the same
    # cap on easy low-noise steps but full weight on high-noise steps, where a clip's layout and motion are decided
    snr_weighting: str = "min_snr_v"
    ema_decay: float = 0.999
    checkpoint_every: int = 50
    log_every: int = 10
    sample_every: int = 500  # steps between sample sheets written to <run>/samples (0: never)
    threads: int = 0  # 0: all cores
    device: str = "cpu"  # where the UNet trains ("cuda" on a GPU); data is rendered on the CPU either way
    workers: int = 0  # processes rendering batches ahead of the trainer (0: render inline)
    init_from: str | None = None  # model folder whose VAE and UNet start a new run (warm start; VAE not retrained)
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        d = asdict(self)
        d["unet_channels"] = list(self.unet_channels)
        return d

    @classmethod
    def from_run(cls, run_dir: Path) -> BaseTrainConfig:
        """The recipe a run folder was made with (its config.json; keys newer than the run get ADDED_KEYS)."""
        d = {**ADDED_KEYS, **json.loads((Path(run_dir) / "config.json").read_text())}
        d["unet_channels"] = tuple(d["unet_channels"])
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


# keys added to the recipe after runs existed, with the value those runs used (their config.json lacks the key)
ADDED_KEYS = {
    "snr_weighting": "min_snr",
    "decoder_steps": 0,
    "decoder_lr": 3e-4,
    "subject_weight": 1.0,
    "temporal_text": False,
    "frame_time": False,
    "text_lr": 3e-4,
    "timestep_bias": 1.0,
    "reference_clips": 0,
    "reference_min_t": 950,
}
# settings that change how a run is driven, not what it learns: they may differ between a run and its resumption
OPERATIONAL = (
    "vae_steps",
    "unet_steps",
    "checkpoint_every",
    "log_every",
    "sample_every",
    "threads",
    "device",
    "workers",
)
# one prompt per kind of thing the model must get right: colour, shape, texture, background and motion
SAMPLE_PROMPTS = (
    "a red circle moving right on a black background",
    "a blue square moving up on a gray background",
    "a yellow striped star moving diagonally down and left on a green background",
    "a white dotted heart spinning on a tiled background",
)


def _lr_at(step: int, base: float, warmup: int, total: int) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))  # cosine to 10 %


def snr_weight(alpha_bar: torch.Tensor, gamma: float, kind: str) -> torch.Tensor:
    """Per-sample weight of the v-prediction MSE. Plain v-MSE equals an x0-MSE weighted by SNR + 1; both forms cap
    the x0 weight at gamma so near-clean steps do not dominate. "min_snr" (Hang et al. 2023) also scales the
    high-noise steps down to ~SNR, nearly zero at the top of a cosine schedule; "min_snr_v" keeps them at 1."""
    snr = alpha_bar / (1 - alpha_bar)
    if kind == "min_snr":
        return torch.clamp(snr, max=gamma) / (snr + 1)
    if kind == "min_snr_v":
        return torch.clamp(snr + 1, max=gamma) / (snr + 1)
    raise CustomvidError(f"unknown snr_weighting {kind!r}; expected min_snr or min_snr_v")


# UNet class -> the train-base flag that builds it (each adds zero-initialised layers to the one before)
UNET_FLAGS = {FrameTimeUNet3DConditionModel: "--frame-time", TextTemporalUNet3DConditionModel: "--temporal-text"}


def unet_class(cfg: BaseTrainConfig) -> type[UNet3DConditionModel]:
    if cfg.frame_time:
        return FrameTimeUNet3DConditionModel
    return TextTemporalUNet3DConditionModel if cfg.temporal_text else UNet3DConditionModel


def new_unet(cfg: BaseTrainConfig) -> UNet3DConditionModel:
    """The recipe's UNet, randomly initialised (stock, or with the temporal text / frame-time layers)."""
    return unet_class(cfg)(**unet_config(cfg.unet_channels, cfg.size // 4))


def load_init_unet(folder: Path, cfg: BaseTrainConfig) -> UNet3DConditionModel:
    """A shipped model's UNet for a warm start; it gains the (zero-output) layers the recipe adds, never loses any."""
    folder = Path(folder) / "unet"
    name = json.loads((folder / "config.json").read_text()).get("_class_name")
    saved = next((c for c in UNET_FLAGS if c.__name__ == name), UNet3DConditionModel)
    wanted = unet_class(cfg)
    if not issubclass(wanted, saved):
        raise CustomvidError(f"{folder} has {name} layers; warm-start it with {UNET_FLAGS[saved]}")
    init = saved.from_pretrained(folder, use_safetensors=True)
    return init if wanted is saved else wanted.from_unet3d(init)


def subject_loss_weight(masks: torch.Tensor, latent_size: int, weight: float) -> torch.Tensor:
    """[B, F, H, W] pixel masks -> [B, 1, F, h, w] loss weights: `weight` where the latent cell touches the
    subject (a max-pool, then one cell of dilation so the edges count), 1 elsewhere."""
    m = F.adaptive_max_pool2d(masks.float().flatten(0, 1)[:, None], latent_size)
    m = F.max_pool2d(m, 3, stride=1, padding=1)
    return (1 + (weight - 1) * m).unflatten(0, masks.shape[:2]).movedim(2, 1)


def _unet_optimizer(unet: UNet3DConditionModel, cfg: BaseTrainConfig) -> torch.optim.AdamW:
    # the new text-temporal layers start at zero and get their own (higher) rate; the rest fine-tunes gently
    new = {id(p) for p in unet.text_temporal_parameters()} if hasattr(unet, "text_temporal_parameters") else set()
    groups = [
        {"params": [p for p in unet.parameters() if id(p) not in new], "base_lr": cfg.unet_lr},
        {"params": [p for p in unet.parameters() if id(p) in new], "base_lr": cfg.text_lr},
    ]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.unet_lr, weight_decay=1e-2)


def _check_run_config(run_dir: Path, cfg: BaseTrainConfig, write: bool = True) -> None:
    """The run folder's recipe is this one (see `checkpoint.check_run_config`); readers such as --export-only
    pass write=False."""
    check_run_config(run_dir, cfg.to_json(), OPERATIONAL, ADDED_KEYS, write)


def _rng_state(gen: torch.Generator) -> dict:
    # Our own generator drives noise, timesteps and caption dropout; torch's global one drives the dropout layers
    # inside diffusers' temporal convs. Both are saved so that a resumed run continues bit for bit.
    return {"generator": gen.get_state(), "torch_rng": torch.get_rng_state()}


def _restore_rng(gen: torch.Generator, state: dict) -> None:
    gen.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])


class _Log:
    def __init__(self, path: Path):
        self.file = open(path, "a")

    def write(self, **row):
        self.file.write(json.dumps(row) + "\n")
        self.file.flush()


def _reconstruction_loss(recon: torch.Tensor, x: torch.Tensor, mask: torch.Tensor, subject_weight: float):
    # L1 keeps edges sharp; the subject's pixels (dilated to include its edges) weigh more because they are what
    # every later measurement looks at.
    weight = 1 + subject_weight * F.max_pool2d(mask, 5, stride=1, padding=2)
    err = (recon - x).abs() + (recon - x).square()
    return (weight * err).mean() / weight.mean()


def _vae_stage(stage_dir: Path, cfg: BaseTrainConfig, vae: AutoencoderKL, *, joint: bool, progress: bool, start=None):
    """One resumable VAE stage: `joint` trains encoder and decoder (reconstruction + a tiny KL), otherwise the
    decoder alone on latents of the frozen encoder. `start()` may begin a fresh stage: it loads weights and returns
    the step to go on from (checkpointed at once)."""
    stage_dir.mkdir(parents=True, exist_ok=True)
    steps, lr = (cfg.vae_steps, cfg.vae_lr) if joint else (cfg.decoder_steps, cfg.decoder_lr)
    first_batch = 0 if joint else cfg.vae_steps  # the decoder stage sees frames the joint stage never saw
    device = torch.device(cfg.device)
    vae.to(device).requires_grad_(False)
    params = list(vae.parameters()) if joint else [*vae.decoder.parameters(), *vae.post_quant_conv.parameters()]
    for param in params:
        param.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(cfg.seed + (0 if joint else 2))
    step = 0
    if (resumed := load_checkpoint(stage_dir, {"vae": vae}, opt)) is not None:
        step, state = resumed
        _restore_rng(gen, state)
    elif start is not None:
        step = start()
        save_checkpoint(stage_dir, step, {"vae": vae}, opt, _rng_state(gen))
    log = _Log(stage_dir.parent / f"{stage_dir.name}_log.jsonl")
    bar = tqdm(total=steps, initial=step, desc=stage_dir.name, disable=not progress)
    try:
        while step < steps:
            for g in opt.param_groups:
                g["lr"] = _lr_at(step, lr, cfg.warmup, steps)
            x, mask = (t.to(device) for t in image_batch(first_batch + step, cfg.vae_batch, cfg.seed, cfg.size))
            with torch.set_grad_enabled(joint):
                posterior = vae.encode(x).latent_dist
                # sampled, not the mean: the decoder also learns latents a little off the encoder's
                z = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=gen).to(device)
            rec_loss = _reconstruction_loss(vae.decode(z).sample, x, mask, cfg.vae_subject_weight)
            kl = posterior.kl().mean() / z[0].numel()
            loss = rec_loss + 1e-4 * kl if joint else rec_loss  # the tiny KL only keeps the latent scale put
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            step += 1
            bar.update(1)
            if step % cfg.log_every == 0:
                log.write(step=step, loss=loss.item(), rec=rec_loss.item(), kl=kl.item())
                bar.set_postfix(loss=f"{loss.item():.4f}")
            if step % cfg.checkpoint_every == 0 or step == steps:
                save_checkpoint(stage_dir, step, {"vae": vae}, opt, _rng_state(gen))
    except KeyboardInterrupt:
        save_checkpoint(stage_dir, step, {"vae": vae}, opt, _rng_state(gen))
        raise
    finally:
        bar.close()
    return vae.to("cpu").eval().requires_grad_(False)


def train_vae(run_dir: Path, cfg: BaseTrainConfig, progress: bool = True) -> AutoencoderKL:
    torch.manual_seed(cfg.seed)
    vae = AutoencoderKL(**vae_config(cfg.size))

    def warm_start() -> int:
        # The UNet to continue from learned this VAE's latents, so the VAE comes along untrained.
        init = AutoencoderKL.from_pretrained(Path(cfg.init_from) / "vae", use_safetensors=True)
        vae.load_state_dict(init.state_dict())
        # what the run started from, kept now: the init folder may later be overwritten by this run's export
        record = Path(cfg.init_from) / "customvid.json"
        if record.is_file():
            write_json_atomic(Path(run_dir) / "init_model.json", json.loads(record.read_text()))
        return cfg.vae_steps

    vae = _vae_stage(
        Path(run_dir) / "vae", cfg, vae, joint=True, progress=progress, start=warm_start if cfg.init_from else None
    )
    if cfg.init_from:  # keep the scale the warm-started UNet was trained with
        scale = json.loads((Path(cfg.init_from) / "vae" / "config.json").read_text())["scaling_factor"]
    else:  # latents scaled to unit variance for the diffusion model (as SD's 0.18215 does for its VAE)
        with torch.no_grad():
            x, _ = image_batch(10**6, 256, cfg.seed, cfg.size)
            scale = 1.0 / vae.encode(x).latent_dist.mean.std().item()
    vae.register_to_config(scaling_factor=scale)
    return vae


def finetune_decoder(run_dir: Path, cfg: BaseTrainConfig, vae: AutoencoderKL, progress: bool = True):
    """Second VAE stage: the decoder alone, on latents of the frozen encoder (as Stability's ft-MSE decoders for
    SD). The latents do not change, so a UNet trained on them stays valid: this stage also improves a trained
    model in place (`--init-from MODEL --unet-steps 0`). Measured on the shipped model: the VAE caps what the probe
    can read from generated videos, and 600 joint steps left it at 82 % shape on ground-truth round trips."""
    if cfg.decoder_steps == 0:
        return vae
    return _vae_stage(Path(run_dir) / "decoder", cfg, vae, joint=False, progress=progress)


@torch.no_grad()
def encode_clips(vae: AutoencoderKL, clips: torch.Tensor) -> torch.Tensor:
    """[B, 3, F, H, W] pixels -> [B, 4, F, h, w] scaled latents (posterior mean: deterministic targets)."""
    b, _, f, _, _ = clips.shape
    frames = clips.movedim(2, 1).flatten(0, 1)
    z = vae.encode(frames).latent_dist.mean * vae.config.scaling_factor
    return z.unflatten(0, (b, f)).movedim(1, 2)


class _StepBatches(torch.utils.data.Dataset):
    """Batch i of a run is clip_batch(i): a pure function of the step, so worker processes can render ahead
    without changing what the trainer sees."""

    def __init__(self, start: int, cfg: BaseTrainConfig):
        self.start, self.cfg = start, cfg

    def __len__(self) -> int:
        return max(0, self.cfg.unet_steps - self.start)

    def __getitem__(self, i: int):
        c, step = self.cfg, self.start + i
        refs = None
        if c.reference_clips and c.workers:
            # Which samples need stable targets depends on t, drawn in the trainer; workers render every sample's
            # references (uint8, cheap to pass) so the trainer's step does not wait on rendering. Without workers
            # the trainer renders only the ones it needs; both give the same clips.
            refs = torch.stack([_reference_frames(step, j, c) for j in range(c.unet_batch)])
        return (*clip_batch(step, c.unet_batch, c.seed, c.frames, c.size), refs)


def _reference_frames(step: int, j: int, cfg: BaseTrainConfig) -> torch.Tensor:
    """uint8 [reference_clips, F, H, W, 3]: the stable-target references of sample j of step's batch."""
    specs = same_caption_specs(step, j, cfg.unet_batch, cfg.seed, cfg.frames, cfg.size, cfg.reference_clips)
    return render_frames(specs)


def _init_worker(_worker_id: int) -> None:
    torch.set_num_threads(1)  # rendering is numpy; torch threads per worker would only oversubscribe the cores
    # Ctrl-C / SIGTERM reach the whole process group; the trainer must outlive its workers long enough to save
    # its checkpoint, and it shuts them down itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _batches(start: int, cfg: BaseTrainConfig):
    data = _StepBatches(start, cfg)
    if cfg.workers == 0:
        return (data[i] for i in range(len(data)))
    # own generator: a DataLoader otherwise seeds its workers from torch's global RNG, which drives dropout
    loader = torch.utils.data.DataLoader(
        data,
        batch_size=None,
        num_workers=cfg.workers,
        prefetch_factor=2 if cfg.reference_clips else 4,  # references: ~2x a batch's shared memory per batch
        worker_init_fn=_init_worker,
        generator=torch.Generator().manual_seed(0),
    )
    return iter(loader)


def _stable_targets(target, noisy, latents, t, dropped, step, cfg: BaseTrainConfig, vae, alphas_cumprod, rendered):
    """The batch's v-targets, those of its noisiest captioned samples replaced by stable targets (an uncaptioned
    sample's reference set would be the whole world, so it keeps its own target). `rendered`: every sample's
    reference frames from the workers, or None to render the chosen ones here."""
    chosen = [j for j in range(len(t)) if int(t[j]) >= cfg.reference_min_t and not bool(dropped[j])]
    if not chosen:
        return target
    n = cfg.reference_clips
    if rendered is None:
        rendered = {j: _reference_frames(step, j, cfg) for j in chosen}
    clips = frames_to_clips(torch.cat([rendered[j] for j in chosen]))
    refs = encode_clips(vae, clips.to(latents.device)).unflatten(0, (len(chosen), n))
    target = target.clone()
    for k, j in enumerate(chosen):
        a = alphas_cumprod[t[j]]
        target[j] += stable_velocity_shift(latents[j], stable_x0(noisy[j], latents[j], refs[k], a), a)
    return target


def train_unet(run_dir: Path, cfg: BaseTrainConfig, vae: AutoencoderKL, progress: bool = True,
               stop_at: int | None = None):
    """Train (or resume) the UNet to cfg.unet_steps, or only to `stop_at` on the same schedule."""
    run_dir = Path(run_dir) / "unet"
    run_dir.mkdir(parents=True, exist_ok=True)
    device = torch.device(cfg.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(cfg.seed)
    unet = new_unet(cfg)
    ema = copy.deepcopy(unet).requires_grad_(False)
    unet.to(device), ema.to(device), vae.to(device)
    scheduler = DDPMScheduler(**scheduler_config())
    tokenizer, text_encoder = load_minilm()
    text_encoder.to(device)
    opt = _unet_optimizer(unet, cfg)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    step = 0
    if (resumed := load_checkpoint(run_dir, {"unet": unet, "ema": ema}, opt)) is not None:
        step, state = resumed
        _restore_rng(gen, state)
    elif cfg.init_from:
        # Warm start (a new run, not an exact resume): both copies start from a shipped model's UNet, e.g. the
        # committed embedded model when the run folder that produced it is gone.
        init = load_init_unet(Path(cfg.init_from), cfg)
        unet.load_state_dict(init.state_dict())
        ema.load_state_dict(init.state_dict())
        save_checkpoint(run_dir, step, {"unet": unet, "ema": ema}, opt, _rng_state(gen))  # exportable at once
    log = _Log(Path(run_dir).parent / "unet_log.jsonl")
    alphas_cumprod = scheduler.alphas_cumprod.to(device)
    bar = tqdm(total=cfg.unet_steps, initial=step, desc="unet", disable=not progress)
    t0 = time.time()
    batches = _batches(step, cfg)
    try:
        end = min(cfg.unet_steps, stop_at) if stop_at else cfg.unet_steps
        while step < end:
            for g in opt.param_groups:
                g["lr"] = _lr_at(step, g["base_lr"], cfg.warmup, cfg.unet_steps)
            lr = opt.param_groups[0]["lr"]
            clips, captions, masks, rendered_refs = next(batches)
            latents = encode_clips(vae, clips.to(device))
            # caption dropout decided by the saved generator, so resumed runs drop the same captions
            drop = torch.rand(len(captions), generator=gen) < cfg.caption_dropout
            captions = ["" if d else c for c, d in zip(captions, drop.tolist(), strict=True)]
            text = encode_text(tokenizer, text_encoder, captions, MINILM_MAX_LENGTH)

            # drawn on the CPU generator whatever the device: the same run draws the same noise everywhere
            noise = torch.randn(latents.shape, generator=gen).to(device)
            t = sample_timesteps(len(latents), scheduler.config.num_train_timesteps, gen, cfg.timestep_bias)
            t = t.to(device)
            noisy = scheduler.add_noise(latents, noise, t)
            target = scheduler.get_velocity(latents, noise, t)
            if cfg.reference_clips:
                target = _stable_targets(target, noisy, latents, t, drop, step, cfg, vae, alphas_cumprod, rendered_refs)
            pred = unet(noisy, t, encoder_hidden_states=text).sample

            weight = snr_weight(alphas_cumprod[t], cfg.min_snr_gamma, cfg.snr_weighting)
            err = F.mse_loss(pred, target, reduction="none")
            if cfg.subject_weight != 1.0:  # normalised by the mean weight: the loss scale (and lr) stay put
                w = subject_loss_weight(masks.to(device), latents.shape[-1], cfg.subject_weight)
                err = err * w / w.mean(dim=(1, 2, 3, 4), keepdim=True)
            per_sample = err.mean(dim=(1, 2, 3, 4))
            loss = (weight * per_sample).mean()

            opt.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
            opt.step()
            # EMA with warm-up: early on the average follows the fast-changing weights closely
            decay = min(cfg.ema_decay, (1 + step) / (10 + step))
            with torch.no_grad():
                torch._foreach_lerp_(list(ema.parameters()), list(unet.parameters()), 1 - decay)
            step += 1
            bar.update(1)
            if step % cfg.log_every == 0:
                elapsed = time.time() - t0
                log.write(
                    step=step,
                    loss=loss.item(),
                    mse=per_sample.mean().item(),
                    lr=lr,
                    grad_norm=float(grad_norm),
                    sec=elapsed,
                )
                bar.set_postfix(loss=f"{loss.item():.4f}")
            if step % cfg.checkpoint_every == 0 or step == end:
                save_checkpoint(run_dir, step, {"unet": unet, "ema": ema}, opt, _rng_state(gen))
            if cfg.sample_every and (step % cfg.sample_every == 0 or step == end):
                sheet = run_dir.parent / "samples" / f"step_{step:06d}.png"
                write_samples(sheet, ema, vae, scheduler, (tokenizer, text_encoder), cfg.frames, cfg.size)
    except KeyboardInterrupt:
        save_checkpoint(run_dir, step, {"unet": unet, "ema": ema}, opt, _rng_state(gen))
        raise
    finally:
        bar.close()
    vae.to("cpu")
    return ema.eval().to("cpu"), scheduler, step


def write_samples(
    path: Path,
    unet: UNet3DConditionModel,
    vae: AutoencoderKL,
    scheduler,
    minilm,
    frames: int,
    size: int,
    steps: int = 20,
) -> Path:
    """A sheet of SAMPLE_PROMPTS (one row each, frames left to right) sampled from `unet`, seed 0, for watching a
    run. Torch's global RNG is left as it was, so writing samples never changes what training does next."""
    from customvid.io import contact_sheet, write_image
    from customvid.models.components import embedded_components
    from customvid.sampling import generate

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = unet.training
    with torch.random.fork_rng():
        components = embedded_components(
            unet.eval(), vae, scheduler, frames=frames, height=size, width=size, minilm=minilm
        )
        video = generate(components, list(SAMPLE_PROMPTS), num_inference_steps=steps, seed=0).frames
    unet.train(was_training)
    return write_image(path, contact_sheet(video.reshape(-1, *video.shape[2:]), cols=video.shape[1], scale=2))


def export_embedded(
    dest: Path | None,
    unet: UNet3DConditionModel,
    vae: AutoencoderKL,
    scheduler,
    cfg: BaseTrainConfig,
    step: int,
    run_dir: Path | None = None,
) -> Path:
    """Write the diffusers-style model folder that `customvid` loads by default (safetensors + configs). A warm
    started run's record nests the record of the model it started from, so the chain of runs stays readable."""
    from customvid.models.components import embedded_components, save_embedded

    components = embedded_components(unet, vae, scheduler, frames=cfg.frames, height=cfg.size, width=cfg.size, fps=4.0)
    # float16 storage: half the bytes in git; sampling loads it back as float32 (relative error ~1e-3)
    extra = {"train_config": cfg.to_json(), "unet_step": step}
    if run_dir is not None and (init := Path(run_dir) / "init_model.json").is_file():
        extra["init_model"] = json.loads(init.read_text())
    return save_embedded(components, dest, extra=extra, storage_dtype=torch.float16)


def export_checkpoint(run_dir: Path, cfg: BaseTrainConfig, dest: Path | None) -> Path:
    """Export the EMA UNet of the latest checkpoint (training may still be going on) with the trained VAE."""
    for stage, name, steps in (("vae", "VAE", cfg.vae_steps), ("decoder", "decoder stage", cfg.decoder_steps)):
        done = Path(run_dir) / stage / "checkpoint" / "step.json"
        if steps and (not done.is_file() or json.loads(done.read_text())["step"] < steps):
            raise CustomvidError(f"the {name} in {run_dir} has not finished training; nothing to export yet")
    # finished stages: each loads its checkpoint and trains nothing
    vae = finetune_decoder(run_dir, cfg, train_vae(run_dir, cfg, progress=False), progress=False)
    unet = new_unet(cfg)
    ema = copy.deepcopy(unet)
    opt = _unet_optimizer(unet, cfg)
    resumed = load_checkpoint(Path(run_dir) / "unet", {"unet": unet, "ema": ema}, opt)
    if resumed is None:
        raise CustomvidError(f"no UNet checkpoint in {run_dir}/unet yet")
    return export_embedded(dest, ema.eval(), vae, DDPMScheduler(**scheduler_config()), cfg, resumed[0], run_dir)
