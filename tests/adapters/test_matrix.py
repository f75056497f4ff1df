"""The matrix every adapter method passes (peft style), on both backbones' tiny configs."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from customvid.adapters import get_method, load_adapter, method_names, read_adapter
from customvid.adapters.id_tokens import IdTokensConfig, LoraTokensConfig
from customvid.adapters.motion import MotionConfig
from customvid.adapters.subject_lora import SubjectLoraConfig
from customvid.adapters.zeroshot import ZeroShotConfig
from customvid.errors import CustomvidError
from customvid.models.backbones import unet_forward
from customvid.training.losses import per_sample_loss

# small configs (method, variant) -> config; a method without a case here fails test_every_method_has_a_case
CASES = {
    "lora": lambda: SubjectLoraConfig(rank=4, alpha=4.0, token="<tst>", class_word="circle"),
    "lora/train_token": lambda: SubjectLoraConfig(rank=4, alpha=4.0, token="<tst>", class_word="circle",
                                                  train_token=True),
    "motion": lambda: MotionConfig(token="<tst>"),  # temporal + cross-attention K/V, fully tuned
    "motion/temporal_lora": lambda: MotionConfig(params="temporal", lora_rank=4, token="<tst>"),
    "motion/no_token": lambda: MotionConfig(params="temporal", token=None),
    "motion/kv_lora": lambda: MotionConfig(lora_rank=4, token="<tst>"),  # temporal + K/V as LoRA
    "tokens": lambda: IdTokensConfig(token="<tst>", class_word="circle"),  # 4 rows, starting at the class word
    "tokens/one_row_spread": lambda: IdTokensConfig(token="<tst>", class_word="circle", num_tokens=1, init_spread=1.0),
    "lora+tokens": lambda: LoraTokensConfig(rank=4, alpha=4.0, token="<tst>", class_word="circle"),
    "zeroshot": lambda: ZeroShotConfig(encoder_channels=(8, 8), encoder_heads=2),  # reference + motion module
    "zeroshot/reference_only": lambda: ZeroShotConfig(motion=False, mask_mode="binary"),
    "zeroshot/motion_only": lambda: ZeroShotConfig(reference=False, encoder_channels=(8, 8), encoder_heads=2),
}


def _zeroshot_condition(adapter, components):
    # one subject image and a box per frame for the matrix's batches (2 frames, 8x8 latents: a 32 px video)
    g = torch.Generator().manual_seed(3)
    subject = torch.rand(1, 3, 32, 32, generator=g)
    mask = torch.zeros(1, 32, 32)
    mask[:, 8:24, 8:24] = 1
    adapter.set_condition(subject=subject if adapter.config.reference else None,
                          subject_mask=mask if adapter.config.reference else None,
                          boxes=[[2, 2, 18, 18], [12, 10, 30, 28]], video_size=(32, 32))


# methods whose layers act only under a per-generation condition: set one right after attaching
CONDITIONS = {"zeroshot": _zeroshot_condition}
# full tuning moves every tuned tensor by ~lr in Adam's first step: it needs a full fine-tune's rate, not a LoRA's
LEARNING_RATES = {"motion": 1e-4, "motion/no_token": 1e-4}
PROMPT = "a <tst> circle moving left on a black background"
BACKBONES = ["unet3d", "unet3d_frame_time", "unet_motion"]


def test_every_method_has_a_case():
    assert sorted({case.split("/")[0] for case in CASES}) == method_names()


@pytest.fixture
def model(request, tiny_components, tiny_frame_time_components, tiny_motion_components, fresh_unet):
    base = {"unet3d": tiny_components, "unet3d_frame_time": tiny_frame_time_components,
            "unet_motion": tiny_motion_components}[request.param]
    components = fresh_unet(base)
    components = dataclasses.replace(
        components, text_encoder=__import__("copy").deepcopy(base.text_encoder), adapters=[], token_pieces={}
    )
    return components


def _batch(components, seed=0):
    g = torch.Generator().manual_seed(seed)
    latents = torch.randn(2, 4, 2, 8, 8, generator=g)
    noise = torch.randn(latents.shape, generator=g)
    t = torch.tensor([700, 200])
    return latents, noise, t


def _predict(components, prompt=PROMPT):
    latents, noise, t = _batch(components)
    with torch.no_grad():
        text = components.encode_prompt([prompt] * 2)
        return unet_forward(components.unet, latents, t, text)


def _attach(method, components):
    cls = get_method(method.split("/")[0])
    adapter = cls(CASES[method](), name="test").attach(components)
    adapter.name_in_matrix = method
    if method.split("/")[0] in CONDITIONS:
        CONDITIONS[method.split("/")[0]](adapter, components)
    return adapter


def _train_step(adapter, components, lr=None):
    lr = lr or LEARNING_RATES.get(adapter.name_in_matrix, 1e-2)
    adapter.train()
    opt = torch.optim.AdamW(adapter.trainable_parameters(), lr=lr, weight_decay=0.0)
    latents, noise, t = _batch(components)

    def loss():
        text = components.encode_prompt([PROMPT] * 2)
        return per_sample_loss(components.unet, components.scheduler, latents, text, noise, t).mean()

    before = loss()
    opt.zero_grad()
    before.backward()
    opt.step()
    adapter.train(False)
    with torch.no_grad():
        after = loss()
    return before.item(), after.item()


each_method = pytest.mark.parametrize("method", sorted(CASES))


@each_method
@pytest.mark.parametrize("model", BACKBONES, indirect=True)
def test_zero_initialised_changes_nothing(method, model):
    base_other = _predict(model, "a red circle moving left on a black background")
    adapter = _attach(method, model)
    # the adapter's own prompt before any training, and a prompt without its token, are both unchanged
    assert torch.equal(_predict(model, "a red circle moving left on a black background"), base_other)
    _train_step(adapter, model)
    adapter.set_weight(0.0)
    assert torch.equal(_predict(model, "a red circle moving left on a black background"), base_other)
    adapter.detach()
    assert torch.equal(_predict(model, "a red circle moving left on a black background"), base_other)
    assert not model.adapters


@each_method
@pytest.mark.parametrize("model", BACKBONES, indirect=True)
def test_only_its_parameters_train(method, model):
    unet_before = {k: v.clone() for k, v in model.unet.state_dict().items()}
    text_before = {k: v.clone() for k, v in model.text_encoder.state_dict().items()}
    adapter = _attach(method, model)
    adapter.train()
    trainable = {id(p) for p in adapter.trainable_parameters()}
    assert trainable
    requires = {id(p) for p in [*model.unet.parameters(), *model.text_encoder.parameters()] if p.requires_grad}
    assert requires <= trainable
    _train_step(adapter, model)
    adapter.detach()
    for k, v in model.unet.state_dict().items():
        assert torch.equal(v, unet_before[k]), k
    for k, v in model.text_encoder.state_dict().items():
        assert torch.equal(v, text_before[k]), k


@each_method
@pytest.mark.parametrize("model", BACKBONES, indirect=True)
def test_one_step_lowers_the_loss(method, model):
    adapter = _attach(method, model)
    before, after = _train_step(adapter, model)
    assert after < before


@each_method
@pytest.mark.parametrize("model", BACKBONES, indirect=True)
def test_save_load_round_trip_is_exact(method, model, tmp_path):
    adapter = _attach(method, model)
    _train_step(adapter, model)
    trained = _predict(model)
    adapter.save(tmp_path / "a", extra={"note": "test"})
    adapter.detach()
    loaded = load_adapter(tmp_path / "a", model, schedule="constant:1")
    if method.split("/")[0] in CONDITIONS:
        CONDITIONS[method.split("/")[0]](loaded, model)
    assert torch.equal(_predict(model), trained)
    saved = read_adapter(tmp_path / "a")
    state = loaded._state()
    for k, v in state.get("lora", {}).items():
        assert torch.equal(v, saved.lora["unet." + k])
    for k, v in state.get("weights", {}).items():
        assert torch.equal(v, saved.weights[k])
    for k, v in state.get("tokens", {}).items():
        assert torch.equal(v, saved.tokens[k])
    assert state.get("lora") or state.get("weights") or state.get("tokens")
    assert saved.meta["method"] == method.split("/")[0] and saved.meta["note"] == "test"
    with pytest.raises(CustomvidError, match="exists"):
        loaded.save(tmp_path / "a")


@each_method
@pytest.mark.parametrize("model", BACKBONES, indirect=True)
def test_bad_folders_fail_in_one_line(method, model, tmp_path):
    adapter = _attach(method, model)
    adapter.save(tmp_path / "a")
    adapter.detach()
    with pytest.raises(CustomvidError, match="does not exist"):
        load_adapter(tmp_path / "missing", model)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CustomvidError, match="not an adapter folder"):
        load_adapter(tmp_path / "empty", model)
    meta = json.loads((tmp_path / "a" / "adapter.json").read_text())
    meta["method"] = "nonsense"
    (tmp_path / "a" / "adapter.json").write_text(json.dumps(meta))
    with pytest.raises(CustomvidError, match="unknown adapter method"):
        load_adapter(tmp_path / "a", model)
    assert not model.adapters


@each_method
def test_mismatched_backbone_is_refused(method, tiny_components, tiny_motion_components, fresh_unet, tmp_path):
    three = fresh_unet(tiny_components)
    three = dataclasses.replace(three, adapters=[], token_pieces={})
    adapter = _attach(method, three)
    adapter.save(tmp_path / "a")
    adapter.detach()
    motion = dataclasses.replace(fresh_unet(tiny_motion_components), adapters=[], token_pieces={})
    with pytest.raises(CustomvidError, match="backbone 'unet3d'"):
        load_adapter(tmp_path / "a", motion)
    assert not motion.adapters
