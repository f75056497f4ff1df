"""The zero-shot subject + box adapter (DreamVideo-2): reference attention and the mask-guided motion module.

Conditions are set per generation with `set_condition(subject=, subject_mask=, boxes=)`; while set, every UNet
call (sampling, refinement, training) is conditioned through hooks, so callers need no changes:
- reference: the masked-out subject image passes the frozen UNet once, as a one-frame clip at a fixed timestep,
  and each spatial transformer's self-attention input is recorded; in the video pass a forward hook on every
  spatial `attn1` adds `ReferenceAttention(x, recorded) * blended box mask * weight`;
- motion: a UNet pre-hook runs the box encoder and the spatial ControlNet on the call's noisy latents and passes
  their residuals as `down_block_additional_residuals` / `mid_block_additional_residual`.
Rows map to conditions cyclically (row i of a batch of N uses condition i % n), so a guidance batch
[uncond; cond] of n prompts each gets its own condition in both halves; the reference then sits out the
unconditional half (`components.uncond_rows`, set by `generate`) unless `reference_guidance` is off.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from customvid.adapters.base import Adapter
from customvid.adapters.format import AdapterFiles
from customvid.adapters.registry import register
from customvid.adapters.zeroshot.config import ZeroShotConfig
from customvid.adapters.zeroshot.layers import (
    BoxEncoder,
    ReferenceAttention,
    spatial_attention_blocks,
    spatial_controlnet,
)
from customvid.errors import CustomvidError
from customvid.io.boxes import box_masks


def _key(block: str) -> str:
    return block.replace(".", "_")


class ZeroShotModules(nn.Module):
    def __init__(self, components, config: ZeroShotConfig):
        super().__init__()
        unet = components.unet
        self.reference = nn.ModuleDict()
        if config.reference:
            for block in spatial_attention_blocks(unet):
                attn = unet.get_submodule(block + ".attn1")
                self.reference[_key(block)] = ReferenceAttention(attn.to_q.in_features, attn.heads)
        if config.motion:
            self.controlnet = spatial_controlnet(unet)
            self.encoder = BoxEncoder(unet.config.block_out_channels[0], components.vae_scale_factor,
                                      config.encoder_channels, config.encoder_heads)


def _as_images(x: Any, what: str) -> torch.Tensor:
    """uint8/float images [H, W, 3] or [n, H, W, 3] (numpy) or float [n, 3, H, W] in [0, 1] -> float [n, 3, H, W]."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32))
        x = x[None] if x.ndim == 3 else x
        if x.ndim != 4 or x.shape[-1] != 3:
            raise CustomvidError(f"{what} must be [H, W, 3] or [n, H, W, 3], got {list(x.shape)}")
        return x.permute(0, 3, 1, 2)
    if x.ndim != 4 or x.shape[1] != 3:
        raise CustomvidError(f"{what} must be a float tensor [n, 3, H, W], got {list(x.shape)}")
    return x.float()


def crop_to_subject(images: torch.Tensor, masks: torch.Tensor, margin: float) -> torch.Tensor:
    """Square crops [n, 3, s, s] (s: the image's smaller side) around each mask's subject, `margin` x its size on
    every side, zero-padded (the blanked background is 0 too). A small subject then fills the reference, so every
    token the video attends to carries its look instead of mostly blank background."""
    n, _, height, width = images.shape
    side_out = min(height, width)
    out = []
    for img, m in zip(images, masks, strict=True):
        ys, xs = torch.nonzero(m > 0.5, as_tuple=True)
        if not len(ys):
            out.append(F.interpolate(img[None], size=(side_out, side_out), mode="bilinear", antialias=True)[0])
            continue
        y0, y1, x0, x1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
        side = max(1, round(max(y1 - y0, x1 - x0) * (1 + 2 * margin)))
        top, left = (y0 + y1 - side) // 2, (x0 + x1 - side) // 2
        padded = F.pad(img, (side, side, side, side))  # so the window never leaves the image
        window = padded[:, top + side : top + 2 * side, left + side : left + 2 * side]
        out.append(F.interpolate(window[None], size=(side_out, side_out), mode="bilinear", antialias=True)[0])
    return torch.stack(out)


@register
class ZeroShotAdapter(Adapter):
    method = "zeroshot"
    Config = ZeroShotConfig
    kohya_export = False

    # -- attach / detach ----------------------------------------------------------------------------------
    def _attach(self, components) -> None:
        unet = components.unet
        self.net = ZeroShotModules(components, self.config)
        self.net.to(components.device)
        if components.dtype != torch.float32:
            self.net.to(components.dtype)
        self.net.requires_grad_(False)
        unet.requires_grad_(False)  # the base stays frozen; Adapter.train switches the adapter's own tensors on
        self._hooks = [unet.register_forward_pre_hook(self._unet_pre_hook, with_kwargs=True)]
        for block in spatial_attention_blocks(unet) if self.config.reference else ():
            attn = unet.get_submodule(block + ".attn1")
            self._hooks.append(attn.register_forward_hook(self._attn_hook(block), with_kwargs=True))
        self._mode = "inject"
        self._call: tuple[int, int, int, int] | None = None  # rows, frames, latent h, w of the current UNet call
        self.clear_condition()

    def _detach(self, components) -> None:
        for h in self._hooks:
            h.remove()
        self._hooks = []
        self.clear_condition()

    def _apply_weight(self, weight: float) -> None:
        pass  # read at every call: scales the reference output and the ControlNet residuals

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        if self.components is None:
            raise CustomvidError(f"adapter {self.name!r} is not attached to a model")
        return list(self.net.parameters())

    def parameter_groups(self, controlnet_lr_scale: float = 1.0) -> list[dict]:
        """Optimizer groups: the ControlNet copy at its own rate scale, the layers trained from scratch at 1."""
        copy = list(self.net.controlnet.parameters()) if self.config.motion else []
        ids = {id(p) for p in copy}
        new = [p for p in self.net.parameters() if id(p) not in ids]
        return [g for g in ({"params": new, "lr_scale": 1.0}, {"params": copy, "lr_scale": controlnet_lr_scale})
                if g["params"]]

    def train(self, mode: bool = True) -> Adapter:
        super().train(mode)
        self.net.train(mode)
        return self

    def _state(self) -> dict[str, dict[str, torch.Tensor]]:
        return {"weights": {k: v.detach().cpu() for k, v in self.net.state_dict().items()}}

    def _load_state(self, files: AdapterFiles) -> None:
        expected = self.net.state_dict()
        if set(files.weights) != set(expected):
            missing = sorted(set(expected) - set(files.weights)) or sorted(set(files.weights) - set(expected))
            raise CustomvidError(f"weights.safetensors does not match its config (e.g. {missing[0]})")
        for k, v in files.weights.items():
            if v.shape != expected[k].shape:
                raise CustomvidError(f"weights.safetensors: {k} has shape {list(v.shape)}, expected "
                                     f"{list(expected[k].shape)}")
        self.net.load_state_dict(files.weights)

    # -- conditions -----------------------------------------------------------------------------------------
    def clear_condition(self) -> None:
        self._ref: dict[str, torch.Tensor] = {}
        self._ref_keep: torch.Tensor | None = None
        self._boxes: np.ndarray | None = None  # [n, F, 4] pixels of video_size
        self._box_keep: torch.Tensor | None = None
        self._box_features: torch.Tensor | None = None
        self._motion_module = True  # False: the boxes only mask the reference attention
        self._grids: dict[tuple[int, int], torch.Tensor] = {}
        self.video_size = None

    @property
    def conditioned(self) -> bool:
        return bool(self._ref) or self._boxes is not None

    @torch.no_grad()
    def reference_features(self, subject: Any, subject_mask: Any = None, video_size: tuple[int, int] | None = None
                           ) -> dict[str, torch.Tensor]:
        """The recorded self-attention inputs of the masked-out subject image(s) in every spatial transformer."""
        comps = self.components
        h, w = video_size or comps.default_size
        images = _as_images(subject, "subject image").to(comps.device)
        if subject_mask is not None:
            m = torch.as_tensor(np.asarray(subject_mask, np.float32)) if not torch.is_tensor(subject_mask) \
                else subject_mask.float()
            m = (m[None] if m.ndim == 2 else m).to(images.device)
            if m.shape[0] != images.shape[0] or m.shape[-2:] != images.shape[-2:]:
                raise CustomvidError(f"subject mask {list(m.shape)} does not match the image {list(images.shape)}")
            images = images * m[:, None]  # the background blanked to black (0 in [0, 1]), as the paper's
            if self.config.ref_crop:
                images = crop_to_subject(images, m, self.config.ref_crop)
        images = torch.nn.functional.interpolate(images, size=(h, w), mode="bilinear", antialias=True,
                                                 align_corners=False)
        vae = comps.vae
        latents = vae.encode((images * 2 - 1).to(vae.dtype)).latent_dist.mean * vae.config.scaling_factor
        latents = latents[:, :, None].to(comps.dtype)  # a one-frame clip
        text = comps.encode_prompt([""] * len(latents))
        from customvid.models.backbones import unet_forward

        # the modules were trained on the frozen base model's features: other adapters sit out the reference pass
        # (weight 0 is the base model exactly), so the features do not depend on what else is loaded, or in which order
        others = [(a, a.weight) for a in comps.adapters if a is not self]
        self._mode, recorded = "record", {}
        self._recorded = recorded
        try:
            for a, _ in others:
                a.set_weight(0.0)
            unet_forward(comps.unet, latents, torch.tensor(self.config.ref_timestep, device=comps.device), text)
        finally:
            self._mode = "inject"
            del self._recorded
            for a, w in others:
                a.set_weight(w)
        return recorded

    def set_condition(self, subject: Any = None, subject_mask: Any = None, boxes: Any = None,
                      video_size: tuple[int, int] | None = None, ref_keep: Any = None, box_keep: Any = None,
                      reference: dict[str, torch.Tensor] | None = None, motion_module: bool = True
                      ) -> ZeroShotAdapter:
        """Condition the following UNet calls: subject image(s) (+ masks), per-frame boxes [F, 4] or [n, F, 4] in
        pixels of the video (video_size (H, W), default the model's). Either may be None. ref_keep / box_keep:
        per-condition 0/1 (training's condition dropout). `reference`: precomputed `reference_features`.
        motion_module=False: the trained motion module sits out and the boxes only mask the reference attention
        (where the mask mode masks; read at each call like the mode): the reference beside the training-free box
        control, which moves the subject instead."""
        if self.components is None:
            raise CustomvidError(f"adapter {self.name!r} is not attached to a model")
        self.clear_condition()
        self.video_size = tuple(video_size or self.components.default_size)
        device = self.components.device
        if subject is not None or reference is not None:
            if not self.config.reference:
                raise CustomvidError("this zero-shot adapter has no reference attention (trained with motion only)")
            self._ref = reference if reference is not None else self.reference_features(subject, subject_mask,
                                                                                        self.video_size)
        if boxes is not None:
            if motion_module and not self.config.motion and self.config.outside() is None:
                raise CustomvidError("this zero-shot adapter has neither a motion module nor masked reference "
                                     "attention: boxes have no effect")
            b = np.asarray(boxes, np.float32)
            self._boxes = b[None] if b.ndim == 2 else b
            if self._boxes.ndim != 3 or self._boxes.shape[-1] != 4:
                raise CustomvidError(f"boxes must be [frames, 4] or [n, frames, 4], got {list(b.shape)}")
        self._motion_module = motion_module
        self._ref_keep = None if ref_keep is None else torch.as_tensor(ref_keep, dtype=torch.float32).to(device)
        self._box_keep = None if box_keep is None else torch.as_tensor(box_keep, dtype=torch.float32).to(device)
        return self

    # -- hooks ------------------------------------------------------------------------------------------------
    def _rows(self, rows: int, n: int) -> torch.Tensor:
        if rows % n:
            raise CustomvidError(f"a UNet batch of {rows} clips does not split into the {n} conditions set")
        return torch.arange(rows) % n

    def _mask(self, grid: tuple[int, int]) -> torch.Tensor:
        """Box masks [n, F, h*w] on a layer's grid."""
        if grid not in self._grids:
            masks = np.stack([box_masks(b, self.video_size, grid) for b in self._boxes])
            self._grids[grid] = torch.from_numpy(masks).flatten(2)
        return self._grids[grid]

    def _attn_hook(self, block: str):
        key = _key(block)

        def hook(module, args, kwargs, output):
            x = args[0] if args else kwargs["hidden_states"]
            if self._mode == "record":
                self._recorded[block] = x.detach()
                return None
            if not self._ref or self._call is None or not self.weight:
                return None
            rows, frames, lh, lw = self._call
            ref = self._ref[block]
            n = len(ref)
            cond = self._rows(rows, n).repeat_interleave(frames).to(x.device)  # [rows * frames]
            out = self.net.reference[key](x, ref[cond].to(x.dtype))
            scale = torch.full((len(cond), 1, 1), self.weight, device=x.device, dtype=x.dtype)
            if self._ref_keep is not None:
                scale = scale * self._ref_keep[cond][:, None, None].to(x.dtype)
            uncond = self.components.uncond_rows
            if uncond and self.config.reference_guidance:
                scale[: uncond * frames] = 0
            outside = self.config.outside()
            if self._boxes is not None and outside is not None:
                s = math.sqrt(lh * lw / x.shape[1])
                grid = (round(lh / s), round(lw / s))
                masks = self._mask(grid).to(x.device, x.dtype)
                if masks.shape[0] not in (n, 1) and n != 1:
                    raise CustomvidError(f"{masks.shape[0]} box sequences for {n} subject images")
                box_rows = self._rows(rows, masks.shape[0]).repeat_interleave(frames).to(x.device)
                m = masks[box_rows, torch.arange(rows * frames, device=x.device) % frames]
                scale = scale * (outside + (1 - outside) * m)[..., None]
            return output + scale * out

        return hook

    def _unet_pre_hook(self, unet, args, kwargs):
        sample = args[0] if args else kwargs["sample"]
        if self._mode == "record":
            return None
        rows, _, frames, lh, lw = sample.shape
        self._call = (rows, frames, lh, lw)
        if self._boxes is None or not (self.config.motion and self._motion_module) or not self.weight:
            return None
        if self._boxes.shape[1] != frames:
            raise CustomvidError(f"{self._boxes.shape[1]} boxes per clip for a {frames}-frame video")
        args, kwargs = list(args), dict(kwargs)
        timestep = args[1] if len(args) > 1 else kwargs["timestep"]
        text = args[2] if len(args) > 2 else kwargs["encoder_hidden_states"]
        down, mid = self.controlnet_residuals(sample, timestep, text)
        given = kwargs.get("down_block_additional_residuals")
        if given is not None:  # another control's residuals: both apply
            down = tuple(a + b for a, b in zip(given, down, strict=True))
            mid = kwargs["mid_block_additional_residual"] + mid
        kwargs["down_block_additional_residuals"], kwargs["mid_block_additional_residual"] = down, mid
        return tuple(args), kwargs

    def box_features(self, frames: int) -> torch.Tensor:
        """The box encoder's per-frame features [n*F, C, h, w]; computed once per condition at inference."""
        if self._box_features is not None and not self.training:
            return self._box_features
        param = next(self.net.encoder.parameters())
        masks = torch.from_numpy(np.stack([box_masks(b, self.video_size) for b in self._boxes]))
        feats = self.net.encoder(masks.to(param.device, param.dtype))
        if not self.training:
            self._box_features = feats
        return feats

    def controlnet_residuals(self, sample: torch.Tensor, timestep, text: torch.Tensor):
        rows, c, frames, lh, lw = sample.shape
        n = self._boxes.shape[0]
        feats = self.box_features(frames).unflatten(0, (n, frames))
        cond = self._rows(rows, n).to(sample.device)
        flat = sample.permute(0, 2, 1, 3, 4).reshape(rows * frames, c, lh, lw)
        if text.shape[0] == rows:
            text = text.repeat_interleave(frames, dim=0)
        t = torch.as_tensor(timestep, device=sample.device)
        t = t.expand(rows).repeat_interleave(frames) if t.ndim == 0 or t.numel() == 1 else t.repeat_interleave(frames)
        scale = torch.full((rows,), self.weight, device=sample.device)
        if self._box_keep is not None:
            scale = scale * self._box_keep[cond]
        uncond = self.components.uncond_rows
        if uncond and self.config.box_guidance:
            scale[:uncond] = scale[:uncond] * (1 - self.config.box_guidance)
        scale = scale.repeat_interleave(frames).to(sample.dtype)
        net = self.net.controlnet
        down, mid = net(flat, t, text, controlnet_cond=feats[cond].flatten(0, 1).to(flat.dtype),
                        return_dict=False)
        # per-row scale (diffusers' conditioning_scale is one number)
        return tuple(d * scale[:, None, None, None] for d in down), mid * scale[:, None, None, None]
