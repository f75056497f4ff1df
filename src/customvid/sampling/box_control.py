"""Training-free box-trajectory control for any video UNet: masked attention plus shaped initial noise.

Two published ideas, combined, for checkpoints that have no trained box module:

- Peekaboo (Jain et al. 2024, "Peekaboo: Interactive Video Generation via Masked-Diffusion"): during the first
  denoising steps, where the layout is decided, the spatial cross-attention is masked so that latent pixels
  outside frame f's box cannot read the subject's words and pixels inside it cannot read the other content words
  (special tokens stay visible to all, so no softmax row is ever empty). Optionally the spatial self-attention is
  masked too (box pixels attend box pixels, the rest attends the rest). Peekaboo also masks the temporal
  attention; that is not done here.
- FreeTraj (Qiu et al. 2024, "FreeTraj: Tuning-Free Trajectory Control in Video Diffusion Models"): the initial
  noise inside each frame's box is a copy of the first frame's box noise, so the same noise patch travels along
  the trajectory and the content the model grows from it tends to travel with it.

Usage (see `generate`):

    ctl = free_box_control(components, prompts, boxes)
    with ctl:
        out = generate(components, prompts, callback=ctl.callback, latents=ctl.shape_noise(start), ...)

where `start` is e.g. ``initial_latents(components, len(prompts), seed, ...)`` (the noise `generate` would draw).
By default only the cross-attention is masked (`FreeBoxControl` says why); `shape_noise` then returns a copy.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import Attention, AttnProcessor, AttnProcessor2_0

from customvid.errors import CustomvidError
from customvid.io.boxes import box_masks
from customvid.models.backbones import SPATIAL_BLOCK, backbone_spec, find_modules
from customvid.models.components import Components
from customvid.sampling.noise import noise_sampler
from customvid.sampling.pipeline import _generators, latent_shape

__all__ = [
    "CONTENT",
    "SPECIAL",
    "SUBJECT",
    "BoxAttnProcessor",
    "BoxControl",
    "FreeBoxControl",
    "default_subject",
    "free_box_control",
    "initial_latents",
    "latent_rects",
    "roles_summary",
    "shape_box_noise",
    "token_roles",
]

# Token roles in a prompt's (padded) token sequence.
SPECIAL, SUBJECT, CONTENT = 0, 1, 2


@dataclass(frozen=True)
class FreeBoxControl:
    """Settings of the training-free box control. The defaults come from a development sweep on the embedded model
    (8 frames of 64 px, one 20 px box moving left to right, 8 seeds, 20 DDIM steps, mIoU of the world probe's
    boxes; its script was not kept, so its numbers are indicative only); `customvid bench zeroshot` measures the
    defaults on the held-out box paths (BENCHMARKS.md, "Zero-shot").

    steps_fraction: masking is on for the first round(fraction * steps) steps (at least one when > 0). Layout is
        fixed early (high noise); late steps only refine detail, where a hard mask would leave seams at the box
        border on a real model. In the sweep 0.3 / 0.5 / 0.8 read about the same, so the middle of the
        Peekaboo-like 0.4-0.6 range is kept and the detail steps stay free.
    noise_mix: share of the variance of the in-box noise that is the travelling first-frame patch (FreeTraj),
        sqrt(a) * shared + sqrt(1 - a) * fresh (unit variance); 0 leaves the noise alone. Default 0 because in the
        sweep it lowered mIoU beside the masked cross-attention. Worth trying on large pretrained models, where
        FreeTraj measured it.
    strength: the logit bias put on masked pairs. 1e4 makes the mask hard (exp(-1e4) is 0 in any float type,
        and -1e4 is representable in fp16); a few units give a soft push instead.
    cross_attention: mask the spatial cross-attention (Peekaboo's main mask).
    self_attention: also mask the spatial self-attention (box attends box, rest attends rest). Off: in the sweep
        it lowered mIoU (the subject gets cut off from the context that shapes it).
    """

    steps_fraction: float = 0.5
    noise_mix: float = 0.0
    strength: float = 1e4
    cross_attention: bool = True
    self_attention: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.steps_fraction <= 1.0:
            raise CustomvidError(f"steps_fraction must be in [0, 1], got {self.steps_fraction}")
        if not 0.0 <= self.noise_mix <= 1.0:
            raise CustomvidError(f"noise_mix must be in [0, 1], got {self.noise_mix}")
        if not (math.isfinite(self.strength) and self.strength >= 0):
            raise CustomvidError(f"strength must be a finite number >= 0, got {self.strength}")

    def masked_steps(self, num_steps: int) -> int:
        """How many of `num_steps` denoising steps run masked."""
        if self.steps_fraction <= 0:
            return 0
        return min(num_steps, max(1, round(self.steps_fraction * num_steps)))


# ------------------------------------------------------------------------------------------------ subject tokens

ARTICLES = frozenset({"a", "an", "the", "some"})
# Words that end the subject phrase: prepositions and conjunctions (where the background or a second clause
# starts), directions and common motion verbs. Words ending in "ing" (moving, running, bouncing) also do,
# except a few nouns.
STOP_WORDS = frozenset(
    "on in at over under across through along near with from to into onto by beside against above below behind "
    "around toward towards inside outside between among within and or while then that which who is are was "
    "not doing left right up down moves slides runs walks jumps flies swims rolls falls rises bounces turns "
    "spins drifts goes heads dances floats grows shrinks stays rests zooms hops".split()
)
ING_NOUNS = frozenset(
    "ring king wing sing thing string spring swing sling building painting ceiling pudding wedding earring "
    "duckling sibling viking dumpling stocking morning evening clothing icing".split()
)
_STRIP = ".!?:;\"'()[]{}"


def _is_stop(word: str) -> bool:
    w = word.lower()
    return w in STOP_WORDS or (w.endswith("ing") and len(w) >= 5 and w not in ING_NOUNS and not w.startswith("<"))


def default_subject(prompt: str) -> str:
    """The subject words of a prompt when none are given: in the first clause (split at commas) that has any,
    the words before the first motion/background word (a preposition such as " on "/" in "/" at ", a direction,
    a motion verb or an "-ing" word such as " moving "/" doing "), minus articles.

    "a red circle moving right on a black background" -> "red circle"; "on a black background, a <sks> dog
    running" -> "<sks> dog". A heuristic: pass `subject=` to be exact.
    """
    for clause in re.split(r"[,;]", prompt):
        words = []
        for raw in clause.split():
            word = raw.strip(_STRIP)
            if not word:
                continue
            if _is_stop(word):
                break
            if word.lower() not in ARTICLES:
                words.append(word)
        if words:
            return " ".join(words)
    raise CustomvidError(f"cannot tell the subject of the prompt {prompt!r}; pass subject='words of the subject'")


def _expand(components: Components, text: str) -> str:
    if not components.token_pieces:
        return text
    from customvid.adapters.tokens import expand_prompt

    return expand_prompt(text, components.token_pieces)


def _find(seq: Sequence[int], sub: Sequence[int]) -> list[int]:
    """Start indices of every occurrence of `sub` in `seq`."""
    n = len(sub)
    return [i for i in range(len(seq) - n + 1) if n and list(seq[i : i + n]) == list(sub)]


def token_roles(components: Components, prompt: str, subject: str | None = None) -> np.ndarray:
    """int8 [max_length] role of each token of `prompt` as `Components.encode_prompt` tokenises it: SPECIAL
    (BOS/EOS/CLS/SEP/padding), SUBJECT (the tokens of `subject`, default `default_subject(prompt)`) or CONTENT
    (every other token). Multi-row identifier tokens ("<sks>" -> "<sks>_0 ... <sks>_3") count as all their rows.

    The subject phrase is looked up as a whole (every occurrence); if it does not occur as one piece, each of its
    words must occur on its own. A prompt of special tokens only (the usual empty negative prompt) has no subject
    and is all SPECIAL.
    """
    tok = components.tokenizer
    batch = tok([_expand(components, prompt)], padding="max_length", max_length=components.max_length, truncation=True)
    ids = list(batch["input_ids"][0])
    attend = list(batch["attention_mask"][0]) if "attention_mask" in batch else [1] * len(ids)
    # [UNK] stands for a real word; padding is found by the attention mask (some CLIP tokenizers pad with "!")
    special = set(tok.all_special_ids) - {tok.unk_token_id}
    is_special = [i in special or not a for i, a in zip(ids, attend, strict=True)]
    roles = np.where(is_special, SPECIAL, CONTENT).astype(np.int8)
    if not (roles == CONTENT).any():
        return roles
    words = default_subject(prompt) if subject is None else subject
    content_ids = [i if r == CONTENT else -1 for i, r in zip(ids, roles, strict=True)]  # never match specials

    def locate(text: str) -> list[int]:
        sub = tok(_expand(components, text), add_special_tokens=False)["input_ids"]
        return [k for start in _find(content_ids, sub) for k in range(start, start + len(sub))]

    hits = locate(words)
    if not hits:
        for word in words.split():
            found = locate(word)
            if not found:
                raise CustomvidError(f"subject word {word!r} is not in the prompt {prompt!r} (or is cut off there)")
            hits += found
    roles[hits] = SUBJECT
    return roles


# --------------------------------------------------------------------------------------------------- box geometry


def _check_boxes(boxes: Any, video_size: tuple[int, int], what: str) -> np.ndarray:
    b = np.asarray(boxes, np.float64)
    if b.ndim != 2 or b.shape[1] != 4 or not len(b):
        raise CustomvidError(f"{what} must have shape [frames, 4] (x1, y1, x2, y2 px), got {list(b.shape)}")
    if not np.isfinite(b).all() or (b[:, 2] <= b[:, 0]).any() or (b[:, 3] <= b[:, 1]).any():
        raise CustomvidError(f"{what} must be finite with x2 > x1 and y2 > y1")
    height, width = video_size
    if (b[:, :2] >= [width, height]).any() or (b[:, 2:] <= 0).any():
        raise CustomvidError(f"{what}: a box lies entirely outside the {width}x{height} px video")
    return b


def latent_rects(boxes: np.ndarray, video_size: tuple[int, int], grid: tuple[int, int]) -> np.ndarray:
    """int [F, 4] cell rectangles (r0, r1, c0, c1; end exclusive) of pixel boxes on a (h, w) grid: edges rounded
    to the nearest cell edge, clipped to the grid, at least one cell each way (a box never vanishes)."""
    (height, width), (h, w) = video_size, grid
    b = np.asarray(boxes, np.float64)
    r0 = np.clip(np.round(b[:, 1] * h / height), 0, h - 1)
    c0 = np.clip(np.round(b[:, 0] * w / width), 0, w - 1)
    r1 = np.clip(np.maximum(np.round(b[:, 3] * h / height), r0 + 1), 1, h)
    c1 = np.clip(np.maximum(np.round(b[:, 2] * w / width), c0 + 1), 1, w)
    return np.stack([r0, r1, c0, c1], axis=1).astype(int)


def shape_box_noise(
    latents: torch.Tensor, boxes: Sequence[np.ndarray], video_size: tuple[int, int], mix: float = 1.0
) -> torch.Tensor:
    """FreeTraj-style noise: a copy of `latents` [B, C, F, h, w] whose frame-f box region is
    sqrt(mix) * (frame 0's box noise, resized to frame f's box) + sqrt(1 - mix) * (frame f's own noise there).

    Outside the boxes, and frame 0, stay as they were. Resizing is nearest-neighbour: every value stays an exact
    draw, so unit variance holds elementwise (bilinear would average draws and shrink it). The fresh part is the
    input's own noise, so the result is a deterministic function of the (seeded) input.
    """
    if latents.ndim != 5:
        raise CustomvidError(f"latents must be [B, C, F, h, w], got {list(latents.shape)}")
    b, _, frames, h, w = latents.shape
    if len(boxes) != b:
        raise CustomvidError(f"got boxes for {len(boxes)} samples, latents hold {b}")
    for sample_boxes in boxes:  # checked whatever the mix: a wrong run fails the same way with shaping off
        if len(sample_boxes) != frames:
            raise CustomvidError(f"{len(sample_boxes)} boxes for latents of {frames} frames")
    out = latents.clone()
    if mix <= 0:
        return out
    shared, fresh = math.sqrt(mix), math.sqrt(max(0.0, 1.0 - mix))
    for i, sample_boxes in enumerate(boxes):
        rects = latent_rects(sample_boxes, video_size, (h, w))
        r0, r1, c0, c1 = rects[0]
        patch = latents[i : i + 1, :, 0, r0:r1, c0:c1]  # [1, C, ph, pw]
        for f in range(1, frames):
            t0, t1, u0, u1 = rects[f]
            moved = F.interpolate(patch.float(), size=(t1 - t0, u1 - u0), mode="nearest").to(latents.dtype)[0]
            own = latents[i, :, f, t0:t1, u0:u1]
            out[i, :, f, t0:t1, u0:u1] = moved if mix >= 1 else shared * moved + fresh * own
    return out


def initial_latents(
    components: Components,
    batch: int,
    seed: int | Sequence[int] | None = 0,
    num_frames: int | None = None,
    height: int | None = None,
    width: int | None = None,
    noise: str = "iid",
) -> torch.Tensor:
    """The initial noise `generate` draws for these arguments (same seeds, same sampler), to shape before the
    call: ``generate(..., latents=initial_latents(...))`` equals ``generate(..., seed=seed)``."""
    shape = latent_shape(components, batch, num_frames, height, width)
    sampler = noise_sampler(noise)
    gens = _generators(seed, None, batch)
    return torch.cat([sampler((1, *shape[1:]), g, components.dtype, components.device) for g in gens])


# ------------------------------------------------------------------------------------------------- the processor

_PLAIN = (AttnProcessor2_0, AttnProcessor)


class BoxAttnProcessor(AttnProcessor2_0):
    """Runs `previous` unchanged while its control is off; while it is on, adds the control's logit bias
    (cross- or self-attention, by `kind`) to the attention. Plain previous processors are replaced by an SDPA call
    with a head-broadcast bias [N, 1, Lq, Lk] (no per-head copy); any other processor gets the bias as its
    `attention_mask` (added to one already given), which processors that honour masks apply."""

    def __init__(self, control: BoxControl, previous: Any, kind: str):
        super().__init__()
        if kind not in ("cross", "self"):
            raise CustomvidError(f"kind must be 'cross' or 'self', got {kind!r}")
        self.control, self.previous, self.kind = control, previous, kind

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> torch.Tensor:
        bias = None
        if self.control.active and hidden_states.ndim == 3:
            bias = self.control.attention_bias(self.kind, hidden_states, encoder_hidden_states)
        if bias is None:
            return self.previous(attn, hidden_states, encoder_hidden_states, attention_mask, temb, *args, **kwargs)
        if type(self.previous) not in _PLAIN:
            if attention_mask is not None:  # e.g. a padding bias [N, 1, Lk]: broadcasts over the queries
                bias = bias + attention_mask
            return self.previous(attn, hidden_states, encoder_hidden_states, bias, temb, *args, **kwargs)
        return self._masked(attn, hidden_states, encoder_hidden_states, attention_mask, temb, bias)

    @staticmethod
    def _masked(
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None,
        attention_mask: torch.Tensor | None,
        temb: torch.Tensor | None,
        bias: torch.Tensor,
    ) -> torch.Tensor:
        # AttnProcessor2_0's computation (3-D hidden states) with `bias` [N, Lq, Lk] added to the logits.
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        batch = hidden_states.shape[0]
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        mask = bias[:, None].to(hidden_states.dtype)
        if attention_mask is not None:
            prepared = attn.prepare_attention_mask(attention_mask, context.shape[1], batch)
            mask = mask + prepared.view(batch, attn.heads, -1, prepared.shape[-1])
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        query = attn.to_q(hidden_states)
        if encoder_hidden_states is None:
            encoder_hidden_states = hidden_states
        elif attn.norm_cross:
            encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
        key, value = attn.to_k(encoder_hidden_states), attn.to_v(encoder_hidden_states)
        head_dim = key.shape[-1] // attn.heads
        query = query.view(batch, -1, attn.heads, head_dim).transpose(1, 2)
        key = key.view(batch, -1, attn.heads, head_dim).transpose(1, 2)
        value = value.view(batch, -1, attn.heads, head_dim).transpose(1, 2)
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)
        out = F.scaled_dot_product_attention(query, key, value, attn_mask=mask, dropout_p=0.0, is_causal=False)
        out = out.transpose(1, 2).reshape(batch, -1, attn.heads * head_dim).to(query.dtype)
        out = attn.to_out[1](attn.to_out[0](out))
        if attn.residual_connection:
            out = out + residual
        return out / attn.rescale_output_factor


# --------------------------------------------------------------------------------------------------- the control

CROSS_ATTENTION = SPATIAL_BLOCK + r"\.attn2"
SELF_ATTENTION = SPATIAL_BLOCK + r"\.attn1"


class BoxControl:
    """Box masks, token roles and switch state of one controlled `generate` run (built by `free_box_control`).

    `callback` turns the masking on for the first `settings.masked_steps(n)` steps and off afterwards;
    `shape_noise` shapes the initial noise; `install`/`remove` (or `with ctl:`) put the masking processors on the
    spatial attention layers of `components.unet` and restore the exact previous processor objects.
    """

    def __init__(
        self,
        components: Components,
        prompts: Sequence[str],
        boxes: Sequence[np.ndarray],
        roles: np.ndarray,
        video_size: tuple[int, int],
        settings: FreeBoxControl,
    ):
        self.components, self.prompts, self.boxes = components, list(prompts), list(boxes)
        self.roles, self.video_size, self.settings = roles, video_size, settings
        self.num_frames = len(self.boxes[0])
        factor = components.vae_scale_factor
        self.latent_size = (video_size[0] // factor, video_size[1] // factor)
        self.active = False
        self._saved: dict[str, Any] = {}
        self._cache: dict[tuple, torch.Tensor] = {}

    # -- switching
    def callback(self, step: int, t: torch.Tensor, latents: torch.Tensor, state: dict[str, Any]) -> None:
        """A `generate` callback: masking on for the first masked steps of the run, off for the rest."""
        expected = (len(self.prompts), self.num_frames, *self.latent_size)
        got = (latents.shape[0], *latents.shape[2:])
        if got != expected:
            raise CustomvidError(
                f"box control was built for {expected[0]} prompts x {expected[1]} frames of {self.video_size[0]}x"
                f"{self.video_size[1]} px (latents {list(expected)}), the run has latents {list(latents.shape)}"
            )
        self.active = step < self.settings.masked_steps(int(state["num_steps"]))

    def shape_noise(self, latents: torch.Tensor) -> torch.Tensor:
        """FreeTraj-shaped copy of initial noise [B, C, F, h, w] (`shape_box_noise` with the settings' mix)."""
        if tuple(latents.shape[3:]) != self.latent_size:
            raise CustomvidError(f"latents {list(latents.shape)} do not match a {self.video_size} px video")
        return shape_box_noise(latents, self.boxes, self.video_size, self.settings.noise_mix)

    # -- processors
    def targets(self) -> dict[str, str]:
        """Attention module name -> 'cross' | 'self': the layers this control masks."""
        unet = self.components.unet
        backbone_spec(unet)
        out = {}
        if self.settings.cross_attention:
            out.update(dict.fromkeys(find_modules(unet, CROSS_ATTENTION, (Attention,)), "cross"))
        if self.settings.self_attention:
            out.update(dict.fromkeys(find_modules(unet, SELF_ATTENTION, (Attention,)), "self"))
        return out

    def install(self) -> BoxControl:
        if self._saved:
            raise CustomvidError("this box control is already installed")
        modules = dict(self.components.unet.named_modules())
        for name, kind in self.targets().items():
            module = modules[name]
            self._saved[name] = module.processor
            module.set_processor(BoxAttnProcessor(self, module.processor, kind))
        self.active = False  # the callback switches it on
        return self

    def remove(self) -> None:
        modules = dict(self.components.unet.named_modules())
        for name, previous in self._saved.items():
            modules[name].set_processor(previous)
        self._saved = {}
        self.active = False

    def __enter__(self) -> BoxControl:
        return self.install()

    def __exit__(self, *exc: Any) -> None:
        self.remove()

    # -- masks
    def _grid(self, tokens: int) -> tuple[int, int]:
        # Each down block halves the latent with a stride-2 conv (padding 1): ceil(h / 2).
        h, w = self.latent_size
        while h * w > tokens and (h > 1 or w > 1):
            h, w = -(-h // 2), -(-w // 2)
        if h * w != tokens:
            raise CustomvidError(f"an attention layer sees {tokens} pixels: no level of the {self.latent_size} latent")
        return h, w

    def _branches(self, n: int) -> int:
        """0 when the batch is cond only, else the number of leading uncond rows ([uncond; cond] guidance)."""
        rows = len(self.prompts) * self.num_frames
        if n == rows:
            return 0
        if n == 2 * rows:
            return rows
        raise CustomvidError(
            f"an attention layer got {n} rows; box control expects {rows} ({len(self.prompts)} prompts x "
            f"{self.num_frames} frames) or twice that with guidance"
        )

    def box_fraction(self, grid: tuple[int, int], device: torch.device) -> torch.Tensor:
        """float [B*F, h*w] area fraction of each cell inside its frame's box, on a layer's grid."""
        key = ("fraction", grid, device)
        if key not in self._cache:
            masks = np.concatenate([box_masks(b, self.video_size, grid) for b in self.boxes])
            self._cache[key] = torch.from_numpy(masks.reshape(len(masks), -1)).to(device)
        return self._cache[key]

    def attention_bias(
        self, kind: str, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None
    ) -> torch.Tensor | None:
        """The logit bias [N, Lq, Lk] for one attention call (None: nothing to mask).

        Cross: with m a cell's box fraction, subject tokens are masked where m == 0 (no overlap: a box smaller
        than a coarse layer's cell still gets its cells) and content tokens where m >= 0.5 (mostly inside), so a
        border cell sees both and no cell sees only special tokens. The uncond branch stays unmasked: its
        (negative) prompt has no subject. Self: cells with m >= 0.5 and the rest attend only their own side, in
        both branches (the layout is the same latent).
        """
        n, tokens = hidden_states.shape[:2]
        lead = self._branches(n)
        m = self.box_fraction(self._grid(tokens), hidden_states.device)
        s = self.settings.strength
        inside = (m >= 0.5).to(hidden_states.dtype)
        if kind == "self":
            side = inside[:, :, None] != inside[:, None, :]
            bias = side.to(hidden_states.dtype) * -s
            return torch.cat([bias, bias]) if lead else bias
        if encoder_hidden_states is None:
            return None
        length = encoder_hidden_states.shape[1]
        if self.roles.shape[1] != length:
            raise CustomvidError(f"text states have {length} tokens, the prompts have {self.roles.shape[1]}")
        roles = torch.from_numpy(self.roles).to(hidden_states.device).repeat_interleave(self.num_frames, dim=0)
        subject = (roles == SUBJECT).to(hidden_states.dtype)
        content = (roles == CONTENT).to(hidden_states.dtype)
        outside = (m == 0).to(hidden_states.dtype)
        bias = -s * (outside[:, :, None] * subject[:, None, :] + inside[:, :, None] * content[:, None, :])
        return torch.cat([torch.zeros_like(bias), bias]) if lead else bias


def free_box_control(
    components: Components,
    prompts: str | Sequence[str],
    boxes: np.ndarray | Sequence[np.ndarray],
    subject: str | Sequence[str | None] | None = None,
    settings: FreeBoxControl | None = None,
    video_size: tuple[int, int] | None = None,
) -> BoxControl:
    """A training-free box control for `generate` on `components` (see the module doc for how to wire it).

    boxes: float [F, 4] x1, y1, x2, y2 in the video's pixels for every prompt, or a list of them, one per prompt.
    subject: the subject's words in the prompt (one for all prompts or one per prompt); None: `default_subject`.
    video_size: (height, width) of the video the boxes are in; default the model's default size.
    """
    prompt_list = [prompts] if isinstance(prompts, str) else list(prompts)
    if not prompt_list or not all(isinstance(p, str) for p in prompt_list):
        raise CustomvidError("prompts must be a string or a non-empty list of strings")
    settings = settings or FreeBoxControl()
    video_size = tuple(video_size or components.default_size)
    is_one = isinstance(boxes, np.ndarray) and boxes.ndim == 2
    per_prompt = [boxes] * len(prompt_list) if is_one else list(boxes)
    if len(per_prompt) != len(prompt_list):
        raise CustomvidError(f"got {len(per_prompt)} box sequences for {len(prompt_list)} prompts")
    checked = [_check_boxes(b, video_size, f"boxes of prompt {i}") for i, b in enumerate(per_prompt)]
    if len({len(b) for b in checked}) != 1:
        raise CustomvidError(f"every prompt needs the same number of boxes, got {[len(b) for b in checked]}")
    subjects = [subject] * len(prompt_list) if subject is None or isinstance(subject, str) else list(subject)
    if len(subjects) != len(prompt_list):
        raise CustomvidError(f"got {len(subjects)} subjects for {len(prompt_list)} prompts")
    roles = np.stack([token_roles(components, p, s) for p, s in zip(prompt_list, subjects, strict=True)])
    return BoxControl(components, prompt_list, checked, roles, video_size, settings)


def roles_summary(components: Components, prompt: str, roles: np.ndarray) -> Mapping[str, list[str]]:
    """{'subject': [...], 'content': [...]} token strings of a prompt's roles (for logs and debugging)."""
    tok = components.tokenizer
    ids = tok([_expand(components, prompt)], padding="max_length", max_length=len(roles), truncation=True)
    names = tok.convert_ids_to_tokens(list(ids["input_ids"][0]))
    return {
        "subject": [t for t, r in zip(names, roles, strict=True) if r == SUBJECT],
        "content": [t for t, r in zip(names, roles, strict=True) if r == CONTENT],
    }
