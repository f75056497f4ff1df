"""Training-free box control (Peekaboo-style masked attention + FreeTraj-style noise): the attention
probabilities it leaves, exact equality when off, processor restore, noise shaping, subject tokens, and
end-to-end runs through `generate` on both tiny backbones."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch
from diffusers.models.attention_processor import Attention, AttnProcessor, AttnProcessor2_0

from customvid.adapters.tokens import piece_names
from customvid.errors import CustomvidError
from customvid.sampling import generate
from customvid.sampling.box_control import (
    CONTENT,
    SPECIAL,
    SUBJECT,
    BoxAttnProcessor,
    FreeBoxControl,
    default_subject,
    free_box_control,
    initial_latents,
    latent_rects,
    shape_box_noise,
    token_roles,
)

PROMPT = "a red circle on a black background"
SIZE = (32, 32)  # small_run's video: 8x8 latents with the tiny VAE
# frame 0 in the top-left quarter, frame 1 in the bottom-right one (cell-aligned on 8x8 and 4x4 grids)
BOXES = np.array([[0, 0, 16, 16], [16, 16, 32, 32]], float)


def _probe_attention(dim: int, cross: int | None) -> Attention:
    """One-head attention whose output *is* its attention probabilities: values and output projection are the
    identity, and the keys' sources are one-hot rows (token i = e_i)."""
    torch.manual_seed(0)
    attn = Attention(query_dim=dim, cross_attention_dim=cross, heads=1, dim_head=dim).eval()
    with torch.no_grad():
        attn.to_v.weight.copy_(torch.eye(dim))
        attn.to_out[0].weight.copy_(torch.eye(dim))
        attn.to_out[0].bias.zero_()
        attn.to_q.weight.mul_(8.0)  # peaked logits, so a leak through the mask would show
    return attn


def _inside(grid: tuple[int, int]) -> torch.Tensor:
    """bool [F, h*w] cells inside each frame's box."""
    h, w = grid
    out = torch.zeros(len(BOXES), h, w, dtype=torch.bool)
    for f, (r0, r1, c0, c1) in enumerate(latent_rects(BOXES, SIZE, grid)):
        out[f, r0:r1, c0:c1] = True
    return out.reshape(len(BOXES), -1)


@pytest.mark.parametrize("grid", [(8, 8), (4, 4)])
def test_cross_attention_probabilities_follow_the_boxes(tiny_components, grid):
    ctl = free_box_control(tiny_components, PROMPT, BOXES, video_size=SIZE)
    roles = torch.from_numpy(ctl.roles[0])
    length = len(roles)
    attn = _probe_attention(length, length)
    rows = 2 * len(BOXES)  # guided: [uncond; cond] x 2 frames
    hidden = torch.randn(rows, grid[0] * grid[1], length)
    text = torch.eye(length).expand(rows, length, length)
    attn.set_processor(BoxAttnProcessor(ctl, AttnProcessor2_0(), "cross"))
    ctl.active = True
    with torch.no_grad():
        probs = attn(hidden, encoder_hidden_states=text)
        attn.set_processor(AttnProcessor2_0())
        plain = attn(hidden, encoder_hidden_states=text)
    assert torch.allclose(probs.sum(-1), torch.ones(()), atol=1e-5)
    cond, inside = probs[len(BOXES) :], _inside(grid)
    subject = cond[..., roles == SUBJECT].sum(-1)
    content = cond[..., roles == CONTENT].sum(-1)
    assert subject[~inside].max() < 1e-6 and content[inside].max() < 1e-6
    assert subject[inside].min() > 1e-3 and content[~inside].min() > 1e-3  # the allowed tokens are still read
    assert cond[..., roles == SPECIAL].sum(-1).min() > 1e-4  # special tokens stay visible everywhere
    torch.testing.assert_close(probs[: len(BOXES)], plain[: len(BOXES)])  # uncond rows are untouched


def test_border_cells_see_subject_and_content(tiny_components):
    # a box edge through the middle of a cell (x2 = 18 px on a 4x4 grid of 8 px cells) masks neither there
    boxes = np.array([[0, 0, 18, 16]] * 2, float)
    ctl = free_box_control(tiny_components, PROMPT, boxes, video_size=SIZE)
    hidden = torch.zeros(2, 16, 8)
    text = torch.zeros(2, ctl.roles.shape[1], 8)
    ctl.active = True
    bias = ctl.attention_bias("cross", hidden, text)[0].reshape(4, 4, -1)
    roles = torch.from_numpy(ctl.roles[0])
    assert (bias[0, 2] == 0).all()  # 25% inside: both allowed
    assert (bias[0, 1, roles == CONTENT] < 0).all() and (bias[0, 1, roles != CONTENT] == 0).all()
    assert (bias[3, 3, roles == SUBJECT] < 0).all() and (bias[3, 3, roles != SUBJECT] == 0).all()


def test_self_attention_keeps_box_and_rest_apart(tiny_components):
    ctl = free_box_control(tiny_components, PROMPT, BOXES, settings=FreeBoxControl(self_attention=True),
                           video_size=SIZE)
    attn = _probe_attention(64, None)
    hidden = torch.eye(64).expand(len(BOXES), 64, 64)  # cond only (guidance 1): one row per frame
    attn.set_processor(BoxAttnProcessor(ctl, AttnProcessor2_0(), "self"))
    ctl.active = True
    with torch.no_grad():
        probs = attn(hidden)
    inside = _inside((8, 8))
    across = inside[:, :, None] != inside[:, None, :]
    assert probs[across].max() < 1e-6 and probs[~across].sum() > 0
    torch.testing.assert_close(probs.sum(-1), torch.ones(len(BOXES), 64))


@pytest.mark.parametrize("previous", [AttnProcessor2_0, AttnProcessor])
def test_switched_off_equals_the_previous_processor_bit_for_bit(tiny_components, previous):
    ctl = free_box_control(tiny_components, PROMPT, BOXES, video_size=SIZE)
    length = ctl.roles.shape[1]
    attn = _probe_attention(length, length)
    hidden, text = torch.randn(4, 64, length), torch.randn(4, length, length)
    with torch.no_grad():
        attn.set_processor(previous())
        plain = attn(hidden, encoder_hidden_states=text)
        attn.set_processor(BoxAttnProcessor(ctl, previous(), "cross"))
        assert torch.equal(attn(hidden, encoder_hidden_states=text), plain)  # off (the default until a callback)
        ctl.active = True
        masked = attn(hidden, encoder_hidden_states=text)
    assert not torch.allclose(masked, plain)
    # strength 0: the masked path is the plain computation
    ctl0 = free_box_control(tiny_components, PROMPT, BOXES, settings=FreeBoxControl(strength=0.0), video_size=SIZE)
    ctl0.active = True
    attn.set_processor(BoxAttnProcessor(ctl0, previous(), "cross"))
    with torch.no_grad():
        torch.testing.assert_close(attn(hidden, encoder_hidden_states=text), plain, atol=1e-6, rtol=1e-5)


def test_callback_masks_only_the_first_steps(tiny_components, small_run):
    ctl = free_box_control(tiny_components, PROMPT, BOXES, settings=FreeBoxControl(steps_fraction=0.5),
                           video_size=SIZE)
    seen = []

    def spy(step, t, latents, state):
        ctl.callback(step, t, latents, state)
        seen.append(ctl.active)

    generate(tiny_components, PROMPT, callback=spy, output_type="latent", **{**small_run, "num_inference_steps": 4})
    assert seen == [True, True, False, False]
    assert [FreeBoxControl(steps_fraction=f).masked_steps(10) for f in (0, 0.01, 0.44, 1)] == [0, 1, 4, 10]


def test_install_remove_restores_processors_and_output(tiny_components, small_run, fresh_unet):
    components = fresh_unet(tiny_components)
    before = components.unet.attn_processors
    plain = generate(components, PROMPT, output_type="latent", **small_run).latents
    ctl = free_box_control(components, PROMPT, BOXES, settings=FreeBoxControl(self_attention=True), video_size=SIZE)
    with ctl:
        now = components.unet.attn_processors
        changed = {n for n in now if now[n] is not before[n]}
        assert changed == {n + ".processor" for n in ctl.targets()} and len(changed) == 8  # 4 attn1 + 4 attn2
        assert all(isinstance(now[n], BoxAttnProcessor) and now[n].previous is before[n] for n in changed)
        with pytest.raises(CustomvidError):
            ctl.install()
        masked = generate(components, PROMPT, output_type="latent", callback=ctl.callback, **small_run).latents
    after = components.unet.attn_processors
    assert all(after[n] is before[n] for n in before) and not ctl.active
    again = generate(components, PROMPT, output_type="latent", **small_run).latents
    assert torch.equal(again, plain) and not torch.equal(masked, plain)


def test_masking_off_through_generate_is_bit_for_bit(tiny_components, small_run, fresh_unet):
    components = fresh_unet(tiny_components)
    plain = generate(components, PROMPT, output_type="latent", **small_run).latents
    ctl = free_box_control(components, PROMPT, BOXES, settings=FreeBoxControl(steps_fraction=0.0), video_size=SIZE)
    with ctl:
        off = generate(components, PROMPT, output_type="latent", callback=ctl.callback, **small_run).latents
    assert torch.equal(off, plain)


def test_shape_noise_moves_the_first_frame_patch():
    torch.manual_seed(0)
    latents = torch.randn(2, 4, 3, 8, 8)
    size = (32, 32)
    same = np.array([[0, 0, 12, 12], [8, 8, 20, 20], [20, 16, 32, 28]], float)  # 3x3 cells each
    grow = np.array([[0, 0, 8, 8], [0, 0, 16, 16], [8, 8, 32, 32]], float)  # 2x2 -> 4x4 -> 6x6 cells
    out = shape_box_noise(latents, [same, grow], size, mix=1.0)
    assert torch.equal(out, shape_box_noise(latents, [same, grow], size, mix=1.0))  # deterministic
    assert torch.equal(out[:, :, 0], latents[:, :, 0])
    patch = latents[0, :, 0, 0:3, 0:3]
    assert torch.equal(out[0, :, 1, 2:5, 2:5], patch) and torch.equal(out[0, :, 2, 4:7, 5:8], patch)
    inside = torch.zeros(8, 8, dtype=torch.bool)
    inside[2:5, 2:5] = True
    assert torch.equal(out[0, :, 1][:, ~inside], latents[0, :, 1][:, ~inside])  # outside the box: untouched
    small = latents[1, :, 0, 0:2, 0:2]
    assert torch.equal(out[1, :, 1, 0:4, 0:4], small.repeat_interleave(2, -1).repeat_interleave(2, -2))
    assert torch.equal(out[1, :, 2, 2:8, 2:8], small.repeat_interleave(3, -1).repeat_interleave(3, -2))
    assert torch.equal(shape_box_noise(latents, [same, grow], size, mix=0.0), latents)


def test_shape_noise_mix_keeps_unit_variance():
    torch.manual_seed(1)
    latents = torch.randn(16, 4, 6, 32, 32)
    boxes = np.array([[8 * f, 16, 8 * f + 64, 80] for f in range(6)], float)  # 16x16-cell box moving right
    out = shape_box_noise(latents, [boxes] * 16, (128, 128), mix=0.6)
    src = out[:, :, 0, 4:20, 0:16].flatten()
    moved = torch.stack([out[:, :, f, 4:20, 2 * f : 2 * f + 16].flatten() for f in range(1, 6)])
    assert abs(moved.std().item() - 1) < 0.02 and abs(moved.mean().item()) < 0.02
    # frame 0 is the shared noise itself: corr sqrt(0.6); two shaped frames share 0.6 of their variance
    assert np.allclose([np.corrcoef(src, m)[0, 1] for m in moved], 0.6**0.5, atol=0.02)
    assert np.allclose([np.corrcoef(moved[0], m)[0, 1] for m in moved[1:]], 0.6, atol=0.02)


def test_initial_latents_are_what_generate_draws(tiny_components, small_run):
    start = initial_latents(tiny_components, 2, seed=5, num_frames=2, height=32, width=32)
    assert start.shape == (2, 4, 2, 8, 8)
    a = generate(tiny_components, [PROMPT, "a blue square"], seed=5, output_type="latent", **small_run)
    b = generate(tiny_components, [PROMPT, "a blue square"], latents=start, output_type="latent", **small_run)
    assert torch.equal(a.latents, b.latents)


def test_default_subject_rule():
    assert default_subject("a red circle moving right on a black background") == "red circle"
    assert default_subject("on a black background, a red circle moving right") == "red circle"
    assert default_subject("An old man doing yoga at the beach") == "old man"
    assert default_subject("a <sks> dog in the park") == "<sks> dog"
    assert default_subject("the golden ring, close-up") == "golden ring"
    with pytest.raises(CustomvidError):
        default_subject("moving on a black background")


def _names(components, prompt, roles, role):
    ids = components.tokenizer(prompt, padding="max_length", max_length=len(roles), truncation=True)["input_ids"]
    return [t for t, r in zip(components.tokenizer.convert_ids_to_tokens(ids), roles, strict=True) if r == role]


def test_token_roles(tiny_components):
    roles = token_roles(tiny_components, PROMPT)
    assert len(roles) == tiny_components.max_length
    assert _names(tiny_components, PROMPT, roles, SUBJECT) == ["red", "circle"]
    assert _names(tiny_components, PROMPT, roles, CONTENT) == ["a", "on", "a", "black", "background"]
    assert (roles == SPECIAL).sum() == len(roles) - 7  # [CLS], [SEP] and padding
    assert (token_roles(tiny_components, "") == SPECIAL).all()  # the empty negative prompt: nothing to mask
    # the phrase wins over loose words: only the subject's "red", not the background's
    two = "a red circle on a red background"
    assert _names(tiny_components, two, token_roles(tiny_components, two, "red circle"), SUBJECT) == ["red", "circle"]
    loose = token_roles(tiny_components, "a red big circle on black", "red circle")
    assert _names(tiny_components, "a red big circle on black", loose, SUBJECT) == ["red", "circle"]
    with pytest.raises(CustomvidError, match="'square'"):
        token_roles(tiny_components, PROMPT, "square")


def test_token_roles_count_every_row_of_an_identifier(tiny_components):
    tokenizer = copy.deepcopy(tiny_components.tokenizer)
    tokenizer.add_tokens(piece_names("<sks>", 4))
    components = dataclasses.replace(tiny_components, tokenizer=tokenizer, token_pieces={"<sks>": 4})
    prompt = "a <sks> dog running in the park"
    roles = token_roles(components, prompt)
    expanded = "a <sks>_0 <sks>_1 <sks>_2 <sks>_3 dog running in the park"
    assert _names(components, expanded, roles, SUBJECT) == [*piece_names("<sks>", 4), "dog"]
    assert _names(components, expanded, token_roles(components, prompt, "<sks>"), SUBJECT) == piece_names("<sks>", 4)


def test_bad_input_is_a_one_line_error(tiny_components, small_run):
    with pytest.raises(CustomvidError, match="same number of boxes"):
        free_box_control(tiny_components, ["a", "b"], [BOXES, BOXES[:1]], subject="x")
    with pytest.raises(CustomvidError, match=r"\[frames, 4\]"):
        free_box_control(tiny_components, PROMPT, BOXES[:, :3])
    with pytest.raises(CustomvidError, match="outside"):
        free_box_control(tiny_components, PROMPT, BOXES + 100, video_size=SIZE)
    with pytest.raises(CustomvidError, match="'dog'"):
        free_box_control(tiny_components, PROMPT, BOXES, subject="dog")
    ctl = free_box_control(tiny_components, PROMPT, BOXES, video_size=SIZE)
    with pytest.raises(CustomvidError, match="frames"):  # 2 boxes, a 3-frame run
        generate(tiny_components, PROMPT, callback=ctl.callback, **{**small_run, "num_frames": 3})
    with pytest.raises(CustomvidError, match="3 frames"):
        ctl.shape_noise(torch.randn(1, 4, 3, 8, 8))
    with pytest.raises(CustomvidError):
        FreeBoxControl(steps_fraction=1.5)


@pytest.mark.parametrize("fixture", ["tiny_components", "tiny_motion_components"])
@pytest.mark.parametrize("guidance", [7.5, 1.0])
def test_end_to_end_through_generate(request, fresh_unet, small_run, fixture, guidance):
    components = fresh_unet(request.getfixturevalue(fixture))
    prompts = [PROMPT, "a blue square moving left on a white background"]
    boxes = [BOXES, BOXES[::-1].copy()]
    run = {**small_run, "guidance_scale": guidance, "output_type": "pt"}
    plain = generate(components, prompts, seed=3, **run)
    settings = FreeBoxControl(self_attention=True, noise_mix=0.5)
    ctl = free_box_control(components, prompts, boxes, settings=settings, video_size=SIZE)
    calls = []
    bias = ctl.attention_bias
    ctl.attention_bias = lambda *a: calls.append(a[1].shape[0]) or bias(*a)
    start = initial_latents(components, 2, seed=3, num_frames=2, height=32, width=32)
    assert not torch.equal(ctl.shape_noise(start), start)
    with ctl:
        out = generate(components, prompts, callback=ctl.callback, latents=ctl.shape_noise(start), **run)
    assert out.frames.shape == plain.frames.shape and torch.isfinite(out.frames).all()
    assert not torch.allclose(out.frames, plain.frames)
    rows = 2 * 2 * (2 if guidance != 1 else 1)  # prompts x frames (x 2 with guidance)
    assert len(calls) == 8 and set(calls) == {rows}  # step 0 only (steps_fraction 0.5 of 2), 4 attn1 + 4 attn2
    assert all(not isinstance(p, BoxAttnProcessor) for p in components.unet.attn_processors.values())
