"""Tiled upscaling: tile layout, seamless feathered blending, seeding, and x2 output on a tiny model."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import customvid.refine.tiled as tiled
from customvid.refine import blend_tiles, tiled_upscale
from customvid.refine import windows as tile_starts  # the same covering rule, for tiles

PROMPT = "a red circle moving right on a blue background"


@pytest.mark.parametrize(("length", "tile", "overlap"), [(128, 64, 16), (100, 32, 8), (64, 64, 16), (40, 64, 16)])
def test_tiles_cover_and_overlap(length, tile, overlap):
    starts = tile_starts(length, tile, overlap)
    assert starts[0] == 0 and starts[-1] == max(0, length - tile)
    assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:], strict=False))


def test_tile_layout_of_a_x2_clip():
    assert tile_starts(128, 64, 16) == [0, 48, 64]


def _cut(image: np.ndarray, tile: int, overlap: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    h, w = image.shape[1:3]
    positions = [(y, x) for y in tile_starts(h, tile, overlap) for x in tile_starts(w, tile, overlap)]
    return np.stack([image[:, y : y + tile, x : x + tile] for y, x in positions]), positions


def test_blending_is_seamless():
    constant = np.full((2, 80, 112, 3), 137, np.uint8)
    tiles, positions = _cut(constant, 32, 8)
    np.testing.assert_array_equal(blend_tiles(tiles, positions, 80, 112, (8, 8)), constant)
    image = np.random.default_rng(0).integers(0, 256, (2, 80, 112, 3), dtype=np.uint8)
    tiles, positions = _cut(image, 32, 8)  # tiles that agree reassemble to the image exactly
    np.testing.assert_array_equal(blend_tiles(tiles, positions, 80, 112, (8, 8)), image)


def test_tiles_are_seeded_in_order_and_a_constant_image_stays_constant(monkeypatch, tiny_components):
    seeds = []

    def identity(components, frames, prompt, strength, seed, **kwargs):
        seeds.append((seed, len(frames)))
        return frames

    monkeypatch.setattr(tiled, "refine_clip", identity)
    constant = np.full((3, 64, 64, 3), 90, np.uint8)
    out = tiled_upscale(tiny_components, constant, PROMPT, seed=5, batch_size=4)
    np.testing.assert_array_equal(out, np.full((3, 128, 128, 3), 90, np.uint8))
    assert seeds == [(5, 4), (9, 4), (13, 1)]  # 3 x 3 tiles of 64 px (overlap 16) over 128 px


def test_output_is_twice_the_size_and_reproducible(tiny_components):
    small = dataclasses.replace(tiny_components, default_frames=2, default_size=(32, 32))
    frames = np.random.default_rng(1).integers(0, 256, (2, 24, 20, 3), dtype=np.uint8)
    a = tiled_upscale(small, frames, PROMPT, num_inference_steps=2, seed=3)
    assert a.shape == (2, 48, 40, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, tiled_upscale(small, frames, PROMPT, num_inference_steps=2, seed=3))
