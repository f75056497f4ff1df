"""The clipseg:PATH segmenter on a tiny random CLIPSeg built offline (no weights can be downloaded, so only the
code path is tested, not mask quality) and its one-line errors."""

import json

import numpy as np
import pytest

from customvid.errors import CustomvidError
from customvid.segmentation import segment

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def tiny_clipseg(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clipseg")
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    vocab.update({t: len(vocab) + i for i, t in enumerate([*letters, *(c + "</w>" for c in letters)])})
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")  # no merges: words tokenize to letters
    tokenizer = transformers.CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    image_processor = transformers.CLIPImageProcessor(size={"shortest_edge": 32},
                                                      crop_size={"height": 32, "width": 32})
    text = dict(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                num_attention_heads=2, max_position_embeddings=32, bos_token_id=0, eos_token_id=1, pad_token_id=1)
    vision = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2, image_size=32,
                  patch_size=8)
    config = transformers.CLIPSegConfig(text_config=text, vision_config=vision, projection_dim=16, reduce_dim=8,
                                        extract_layers=[1], decoder_num_attention_heads=2,
                                        decoder_intermediate_size=16)
    torch.manual_seed(0)
    model_dir = folder / "model"
    transformers.CLIPSegForImageSegmentation(config).save_pretrained(model_dir)
    transformers.CLIPSegProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(model_dir)
    return model_dir


@pytest.mark.parametrize("n", [1, 3])  # a batch of one comes back from CLIPSeg squeezed
def test_clipseg_tiny_model_gives_masks_of_the_images_shape(tiny_clipseg, n):
    images = np.random.default_rng(0).integers(0, 256, (n, 40, 56, 3), dtype=np.uint8)
    masks = segment(images, f"clipseg:{tiny_clipseg}", prompt="diamond")
    assert masks.shape == (n, 40, 56) and masks.dtype == bool
    assert segment(images[0], f"clipseg:{tiny_clipseg}", prompt="diamond").shape == (40, 56)


@pytest.mark.parametrize("make, message", [
    (lambda tmp: f"clipseg:{tmp / 'absent'}", "is not a folder"),
    (lambda tmp: f"clipseg:{tmp}", "no CLIPSeg weights"),
    (lambda tmp: "clipseg", "needs a local model folder"),
    (lambda tmp: "clipseg:", "needs a local model folder"),
])
def test_clipseg_folder_errors_are_one_line(tmp_path, make, message):
    (tmp_path / "config.json").write_text("{}")  # a folder without weights
    with pytest.raises(CustomvidError, match=message) as err:
        segment(np.zeros((1, 16, 16, 3), np.uint8), make(tmp_path), prompt="circle")
    assert "\n" not in str(err.value)


def test_clipseg_needs_a_prompt(tiny_clipseg):
    with pytest.raises(CustomvidError, match="needs a prompt"):
        segment(np.zeros((1, 16, 16, 3), np.uint8), f"clipseg:{tiny_clipseg}")


def test_clipseg_folder_that_is_not_clipseg_is_one_line(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CustomvidError, match="cannot load") as err:
        segment(np.zeros((1, 16, 16, 3), np.uint8), f"clipseg:{tmp_path}", prompt="circle")
    assert "\n" not in str(err.value)
