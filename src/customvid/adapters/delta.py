"""Full fine-tuning as an adapter: each tuned tensor W of the base gets a trainable delta D, and the model computes
W + w * D (w: the adapter's weight). D starts at zero, so attaching changes nothing; weight 0 and detaching give the
base tensors back bit-exactly; the file holds only the deltas of the tuned tensors.

Built on torch's parametrizations (`torch.nn.utils.parametrize`): the original tensor stays where it was, and
removing the parametrization restores it. One delta adapter per tensor: two full-tuning adapters on the same
layers would have to be removed in the order they were added, so the second is refused with a clear error.
"""

from __future__ import annotations

import torch
from torch.nn.utils import parametrize

from customvid.errors import CustomvidError


class WeightedDelta(torch.nn.Module):
    def __init__(self, like: torch.Tensor):
        super().__init__()
        self.delta = torch.nn.Parameter(torch.zeros_like(like))
        self.scale = 1.0

    def forward(self, original: torch.Tensor) -> torch.Tensor:
        if self.scale == 0.0:
            return original  # exactly the base tensor, and no work
        return original + self.scale * self.delta


def _resolve(model: torch.nn.Module, name: str) -> tuple[torch.nn.Module, str]:
    """The module holding parameter `name` and the attribute, looking through a peft LoRA wrapper (a subject LoRA
    on the same cross-attention K/V wraps the Linear; its base layer holds the weight)."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    module_name, _, attr = name.rpartition(".")
    try:
        module = model.get_submodule(module_name)
    except AttributeError:
        raise CustomvidError(f"this model has no parameter {name!r}") from None
    if isinstance(module, BaseTunerLayer):
        module = module.get_base_layer()
    return module, attr


def add_deltas(model: torch.nn.Module, names: list[str]) -> dict[str, WeightedDelta]:
    """Parametrize each named parameter (`module.attr`) of `model` as original + scale * delta."""
    if not names:
        raise CustomvidError("a full-tuning adapter needs at least one parameter to tune")
    out: dict[str, WeightedDelta] = {}
    try:
        for name in names:
            module, attr = _resolve(model, name)
            if parametrize.is_parametrized(module, attr):
                raise CustomvidError(f"{name} is already tuned by another full-tuning adapter; detach that one first")
            if not isinstance(getattr(module, attr, None), torch.Tensor):
                raise CustomvidError(f"this model has no parameter {name!r}")
            p = WeightedDelta(getattr(module, attr).detach())
            parametrize.register_parametrization(module, attr, p)
            object.__setattr__(p, "target", (module, attr))  # a plain reference, not a registered submodule
            out[name] = p
    except Exception:
        remove_deltas(out)
        raise
    return out


def remove_deltas(deltas: dict[str, WeightedDelta]) -> None:
    """Put the original tensors back (the same Parameter objects, untouched)."""
    for p in deltas.values():
        module, attr = p.target
        if parametrize.is_parametrized(module, attr):
            parametrize.remove_parametrizations(module, attr, leave_parametrized=False)


def set_delta_scale(deltas: dict[str, WeightedDelta], scale: float) -> None:
    for p in deltas.values():
        p.scale = float(scale)


def delta_state_dict(deltas: dict[str, WeightedDelta]) -> dict[str, torch.Tensor]:
    return {name: p.delta.detach().clone().contiguous() for name, p in deltas.items()}


def load_delta_state_dict(deltas: dict[str, WeightedDelta], state: dict[str, torch.Tensor]) -> None:
    odd = sorted(set(state) ^ set(deltas))
    if odd:
        raise CustomvidError(f"tuned tensors do not match this model's layers: {len(odd)} differ (e.g. {odd[0]!r})")
    for name, p in deltas.items():
        if state[name].shape != p.delta.shape:
            raise CustomvidError(f"tuned tensor {name} is {tuple(state[name].shape)}, the model's "
                                 f"{tuple(p.delta.shape)}")
        with torch.no_grad():
            p.delta.copy_(state[name])
