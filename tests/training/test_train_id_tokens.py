"""`train-subject --method tokens | lora+tokens` (Magic-Me's extended ID tokens) and the photo augmentations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from customvid.adapters import load_adapter, read_adapter
from customvid.cli import main
from customvid.training.subject_data import CLOSE_UP, FAR_AWAY, SubjectImages, augment

FAST = ["--steps", "2", "--prior-clips", "2", "--prior-steps", "2", "--sample-every", "0", "--no-progress"]


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(2):
        image = np.full((64, 64, 3), 40, np.uint8)
        image[20:44, 16 + i : 40 + i] = (200, 30, 30)
        Image.fromarray(image).save(folder / f"p{i}.png")
        mask = np.zeros((64, 64), np.uint8)
        mask[20:44, 16 + i : 40 + i] = 255
        Image.fromarray(mask).save(folder / f"p{i}_mask.png")
    return folder


def _train(tmp_path, photos, model, out, *extra):
    return main(["train-subject", "--images", str(photos), "--token", "<sks>", "--class-word", "circle",
                 "--out", str(tmp_path / out), "--model", str(model), *FAST, *extra])


def test_tokens_train_only_their_rows_and_save_both_layouts(tmp_path, photos, tiny_model_dir, tiny_components):
    assert _train(tmp_path, photos, tiny_model_dir, "tok", "--method", "tokens", "--a1111", "--masked-loss") == 0
    files = read_adapter(tmp_path / "tok")
    assert files.meta["method"] == "tokens" and not files.lora and not files.weights
    rows = files.tokens["<sks>"]
    assert rows.shape == (4, tiny_components.text_encoder.get_input_embeddings().weight.shape[1])
    training = files.meta["training"]
    assert training["loop"]["lr"] == 1e-3 and training["loop"]["batch_size"] == 4  # Magic-Me's defaults
    assert training["prior_weight"] == 0 and training["noise_offset"] == 0.1
    assert not (tmp_path / "tok.run" / "prior.npz").exists()  # a frozen model has no class prior to keep
    # the rows moved away from their start (the class word's row in all four places)
    start = tiny_components.text_encoder.get_input_embeddings().weight[
        tiny_components.tokenizer("circle", add_special_tokens=False)["input_ids"]].mean(0)
    assert not torch.allclose(rows, start.expand_as(rows))
    a1111 = torch.load(tmp_path / "tok" / "sks.pt", weights_only=True)
    assert torch.equal(a1111["string_to_param"]["*"], rows) and a1111["name"] == "sks"
    assert "sks.pt" in files.meta["files"]


def test_lora_plus_tokens_saves_both_parts_in_one_folder(tmp_path, photos, tiny_model_dir, tiny_components):
    assert _train(tmp_path, photos, tiny_model_dir, "both", "--method", "lora+tokens", "--num-tokens", "2") == 0
    files = read_adapter(tmp_path / "both")
    assert files.meta["method"] == "lora+tokens" and files.lora and files.tokens["<sks>"].shape[0] == 2
    components = __import__("dataclasses").replace(tiny_components, adapters=[], token_pieces={})
    adapter = load_adapter(tmp_path / "both", components)
    try:
        assert components.token_pieces == {"<sks>": 2}
        assert torch.equal(__import__("customvid.adapters.tokens", fromlist=["x"]).token_rows(components, "<sks>"),
                           files.tokens["<sks>"])
    finally:
        adapter.detach()
    assert not components.token_pieces


def test_method_defaults():
    from customvid.training.subject import subject_config

    tokens, lora = subject_config("tokens", "circle"), subject_config("lora", "circle")
    assert (tokens.loop.steps, tokens.loop.lr, tokens.loop.batch_size, tokens.prior_weight) == (300, 1e-3, 4, 0.0)
    assert (lora.loop.steps, lora.loop.lr, lora.loop.batch_size, lora.prior_weight) == (400, 2e-3, 2, 1.0)
    assert subject_config("tokens", "circle", loop={"steps": 7, "lr": None}).loop.steps == 7


def test_token_weight_blends_towards_the_class_word(tiny_components):
    import dataclasses

    from customvid.adapters.id_tokens import IdTokens, IdTokensConfig

    components = dataclasses.replace(tiny_components, adapters=[], token_pieces={})
    class_prompt = components.encode_prompt(["a circle circle circle circle circle"])
    adapter = IdTokens(IdTokensConfig(token="<sks>", class_word="circle", init_spread=1.0)).attach(components)
    try:
        assert components.encode_prompt(["a red circle"]).equal(tiny_components.encode_prompt(["a red circle"]))
        full = components.encode_prompt(["a <sks> circle"])
        assert not torch.allclose(full, class_prompt, atol=1e-4)
        adapter.set_weight(0.0)  # weight 0: the tokens read as the class word
        torch.testing.assert_close(components.encode_prompt(["a <sks> circle"]), class_prompt)
        adapter.set_weight(1.0)
        assert components.encode_prompt(["a <sks> circle"]).equal(full)
    finally:
        adapter.detach()


def test_tokens_with_a_class_prior_are_refused(tmp_path, photos, tiny_model_dir, capsys):
    assert _train(tmp_path, photos, tiny_model_dir, "x", "--method", "tokens", "--prior-weight", "1") == 2
    err = capsys.readouterr().err
    assert "leaves the model unchanged" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_augment_flips_rotates_rescales_and_names_the_scale():
    image = np.zeros((64, 64, 3), np.uint8)
    image[10:30, 8:24] = 255
    mask = image[..., 0] > 0
    data = SubjectImages(["a.png"], image[None], mask[None], [None])
    out = augment(data, 12, seed=0)
    assert len(out.images) == 12 and out.names[0] == "a.png" and out.names[1] == "a.png#1"
    assert np.array_equal(out.images[0], image) and out.suffixes[0] == ""
    assert {CLOSE_UP, FAR_AWAY} <= set(out.suffixes)
    for img, m, suffix in zip(out.images[1:], out.masks[1:], out.suffixes[1:], strict=True):
        assert m.any()
        # the mask follows the photo: its pixels are the bright ones
        assert (img[m, 0] > 100).mean() > 0.8
        ratio = m.sum() / mask.sum()
        assert (ratio > 1.3) if suffix == CLOSE_UP else (ratio < 0.7) if suffix == FAR_AWAY else (0.8 < ratio < 1.25)
    assert np.array_equal(augment(data, 12, seed=0).images, out.images)  # seeded
    assert not np.array_equal(augment(data, 12, seed=1).images, out.images)


def test_augmented_training_uses_the_caption_words(tmp_path, photos, tiny_model_dir):
    assert _train(tmp_path, photos, tiny_model_dir, "aug", "--method", "tokens", "--augment") == 0
    training = read_adapter(tmp_path / "aug").meta["training"]
    assert training["augment"] is True and training["augment_variants"] == 8


def test_masks_from_a_segmenter_when_the_photos_have_none(tmp_path, photos, tiny_model_dir, capsys):
    for mask in photos.glob("*_mask.png"):
        mask.unlink()
    assert _train(tmp_path, photos, tiny_model_dir, "seg", "--method", "tokens", "--masked-loss",
                  "--masks", "border") == 0
    assert read_adapter(tmp_path / "seg").meta["training"]["masked_loss"] is True
    assert _train(tmp_path, photos, tiny_model_dir, "plain", "--method", "tokens", "--masked-loss") == 2
    assert "--masked-loss needs masks" in capsys.readouterr().err
    assert _train(tmp_path, photos, tiny_model_dir, "bad", "--method", "tokens", "--masks", "otsu") == 2
    err = capsys.readouterr().err
    assert "unknown segmenter" in err and "Loading weights" not in err  # refused before the model loads
