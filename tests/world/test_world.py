"""The toy world: every vocabulary combination renders correctly, clips are deterministic, splits are
disjoint as documented, captions round-trip, specs round-trip through JSON, paths stay inside the frame."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from customvid.errors import CustomvidError
from customvid.world import (
    CUSTOM_MOTIONS,
    CUSTOM_SUBJECTS,
    HELD_OUT_PAIRS,
    SPLITS,
    TRAJECTORIES,
    ClipSpec,
    Subject,
    make_caption,
    parse_caption,
    reference_specs,
    render_clip,
    sample_spec,
    spec_from_caption,
    vocab,
)
from customvid.world.captions import ALL_PHRASES
from customvid.world.render import absolute_path
from customvid.world.shapes import OUTLINES
from customvid.world.splits import TRAIN_PAIRS, build_spec

ALL_COLOUR_NAMES = list(vocab.ALL_COLOURS)


def _second_colour(colour: str, k: int = 0) -> str:
    others = [c for c in ALL_COLOUR_NAMES if c != colour]
    return others[k % len(others)]


def _subject(colour: str, shape: str, texture: str, k: int = 0) -> Subject:
    colour2 = _second_colour(colour, k) if texture in vocab.NOVEL_TEXTURES else None
    return Subject(shape, colour, texture, colour2)


def check_clip(clip, *, colour_tol: int = 3) -> None:
    """Shape/dtype, non-empty masks strictly inside the frame, boxes = mask extent, subject colour visible."""
    spec = clip.spec
    f, h, w = spec.frames, spec.height, spec.width
    assert clip.frames.shape == (f, h, w, 3) and clip.frames.dtype == np.uint8
    assert clip.masks.shape == (f, h, w) and clip.masks.dtype == bool
    assert clip.boxes.shape == (f, 4) and clip.boxes.dtype == np.float32
    rgb = np.array(vocab.colour_rgb(spec.subject.colour))
    for k in range(f):
        mask = clip.masks[k]
        assert mask.any(), f"frame {k}: empty mask for {spec.caption}"
        # inside the frame: the sprite never touches the border (1 px margin)
        assert not (mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any()), spec.caption
        ys, xs = np.nonzero(mask)
        extent = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)
        box = clip.boxes[k]
        assert np.isfinite(box).all()
        assert 0 <= box[0] < box[2] <= w and 0 <= box[1] < box[3] <= h
        assert np.array_equal(box, extent), (spec.caption, k, box, extent)
        near = np.abs(clip.frames[k].astype(int) - rgb).max(axis=-1) <= colour_tol
        if mask.sum() >= 30:  # a few-pixel textured sprite may have no pixel of pure subject colour
            assert near.any(), f"frame {k}: colour {spec.subject.colour} not visible in {spec.caption}"
        assert (near & mask).sum() >= near.sum() * 0.9, "the subject colour appears outside the subject"


# ---------------------------------------------------------------------------------------------- vocabulary


def test_every_base_combination_renders():
    """All base colours x shapes x textures x backgrounds (735 stills)."""
    combos = itertools.product(vocab.COLOURS, vocab.SHAPES, vocab.TEXTURES, vocab.BACKGROUNDS)
    for i, (colour, shape, texture, bg) in enumerate(combos):
        spec = build_spec(Subject(shape, colour, texture), "still", bg, np.random.default_rng(i), frames=1)
        check_clip(render_clip(spec))


def test_every_full_vocabulary_combination_renders():
    """Novel words too: every (colour, shape, texture) of the full vocabulary, and every shape on every
    background (backgrounds cycle through the triples)."""
    triples = list(itertools.product(ALL_COLOUR_NAMES, vocab.ALL_SHAPES, vocab.ALL_TEXTURES))
    for i, (colour, shape, texture) in enumerate(triples):
        bg = vocab.BACKGROUNDS[i % len(vocab.BACKGROUNDS)]
        subject = _subject(colour, shape, texture, i)
        check_clip(render_clip(build_spec(subject, "still", bg, np.random.default_rng(i), frames=1)))
    for i, (shape, bg) in enumerate(itertools.product(vocab.NOVEL_SHAPES, vocab.BACKGROUNDS)):
        subject = _subject("teal", shape, vocab.ALL_TEXTURES[i % len(vocab.ALL_TEXTURES)], i)
        check_clip(render_clip(build_spec(subject, "still", bg, np.random.default_rng(i), frames=1)))


@pytest.mark.parametrize("motion", [*vocab.MOTIONS, *vocab.NOVEL_MOTIONS, *TRAJECTORIES])
def test_every_motion_renders(motion):
    rng = np.random.default_rng(7)
    shapes = [s for s in vocab.ALL_SHAPES if not (motion == "spin" and s in vocab.ROTATION_INVARIANT_SHAPES)]
    for k in range(2):
        subject = _subject(ALL_COLOUR_NAMES[k * 3 % 8], shapes[(k * 4 + len(motion)) % len(shapes)],
                           vocab.ALL_TEXTURES[(k + len(motion)) % 6], k)
        spec = build_spec(subject, motion, vocab.BACKGROUNDS[k * 2 + 1], rng)
        clip = render_clip(spec)
        check_clip(clip)
        assert parse_caption(spec.caption)["motion"] == motion
        if motion != "still":
            assert any(not np.array_equal(clip.frames[0], f) for f in clip.frames), f"{motion} does not move"


def test_motions_move_the_way_they_say():
    rng = np.random.default_rng(3)
    subject = Subject("square", "white")
    for motion, (dx, dy) in vocab.DIRECTIONS.items():
        clip = render_clip(build_spec(subject, motion, "black", rng))
        c0 = (clip.boxes[0, :2] + clip.boxes[0, 2:]) / 2
        c1 = (clip.boxes[-1, :2] + clip.boxes[-1, 2:]) / 2
        move = c1 - c0
        assert np.sign(np.round(move, 3)).tolist() == [dx, dy], (motion, move)
    area = lambda b: (b[2] - b[0]) * (b[3] - b[1])  # noqa: E731
    grow = render_clip(build_spec(subject, "grow", "black", rng))
    assert area(grow.boxes[-1]) > 2 * area(grow.boxes[0])
    shrink = render_clip(build_spec(subject, "shrink", "black", rng))
    assert area(shrink.boxes[0]) > 2 * area(shrink.boxes[-1])
    still = render_clip(build_spec(subject, "still", "black", rng))
    assert np.array_equal(still.frames[0], still.frames[-1])


def test_odd_geometry_renders():
    for split, (frames, width, height) in zip(SPLITS, [(1, 64, 64), (5, 96, 64), (24, 48, 80), (9, 32, 32),
                                                      (16, 128, 96)], strict=True):
        for i in range(3):
            clip = render_clip(sample_spec(split, i, 5, frames, width, height))
            check_clip(clip, colour_tol=8 if min(width, height) < 48 else 3)


# ---------------------------------------------------------------------------------------------- determinism


def _digest(clip) -> str:
    h = hashlib.sha256()
    for a in (clip.frames, clip.masks, clip.boxes):
        h.update(a.tobytes())
    return h.hexdigest()


@pytest.mark.parametrize("split", SPLITS)
def test_determinism(split):
    a = render_clip(sample_spec(split, 3, seed=11))
    b = render_clip(sample_spec(split, 3, seed=11))
    assert a.frames.tobytes() == b.frames.tobytes()
    assert a.masks.tobytes() == b.masks.tobytes() and a.boxes.tobytes() == b.boxes.tobytes()
    assert a.spec == b.spec
    assert _digest(render_clip(sample_spec(split, 4, seed=11))) != _digest(a)
    assert _digest(render_clip(sample_spec(split, 3, seed=12))) != _digest(a)


def test_determinism_across_processes_and_hash_seeds():
    code = ("import hashlib; from customvid.world import render_clip, sample_spec; "
            "c = render_clip(sample_spec('train', 5, seed=3)); "
            "print(hashlib.sha256(c.frames.tobytes() + c.masks.tobytes() + c.boxes.tobytes()).hexdigest())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONHASHSEED": "12345"})
    assert out.stdout.strip() == _digest(render_clip(sample_spec("train", 5, seed=3)))


def test_specs_are_stable_forever():
    """Clip i of a split is the same everywhere, forever: a change here changes every dataset ever written."""
    h = hashlib.sha256()
    for split in SPLITS:
        for i in range(3):
            h.update(json.dumps(sample_spec(split, i, 0).to_dict(), sort_keys=True).encode())
    assert h.hexdigest() == "4a7b4c4f39a5f95dad9ac32b3c8d0bc49b84d9eb64d6da153e9c39e46f060f08", (
        "sample_spec output changed: if intended, update this fingerprint and say so (old datasets differ)")


def test_unknown_split():
    with pytest.raises(ValueError, match="unknown split"):
        sample_spec("nope", 0)


# ---------------------------------------------------------------------------------------------- splits


def _samples(split: str, n: int) -> list[ClipSpec]:
    return [sample_spec(split, i, seed=0) for i in range(n)]


def test_train_split_holds_out_what_it_should():
    specs = _samples("train", 2000)
    pairs = {(s.subject.colour, s.subject.shape) for s in specs}
    assert not pairs & HELD_OUT_PAIRS
    assert pairs == set(TRAIN_PAIRS)
    assert {s.subject.colour for s in specs} == set(vocab.COLOURS)  # every base colour ...
    assert {s.subject.shape for s in specs} == set(vocab.SHAPES)  # ... and shape appears in train
    assert {s.subject.texture for s in specs} == set(vocab.TEXTURES)
    assert {s.background for s in specs} == set(vocab.BACKGROUNDS)
    assert {s.motion for s in specs} == set(vocab.MOTIONS)
    assert all(s.subject.colour2 is None for s in specs)
    novel = set(vocab.NOVEL_COLOURS) | set(vocab.NOVEL_SHAPES) | set(vocab.NOVEL_TEXTURES)
    novel |= set(vocab.NOVEL_MOTIONS) | set(TRAJECTORIES)
    used = {w for s in specs for w in (s.subject.colour, s.subject.shape, s.subject.texture, s.motion)}
    assert not used & novel
    assert not any(s.subject in CUSTOM_SUBJECTS.values() for s in specs)
    for colour, shape in HELD_OUT_PAIRS:  # each held-out colour and shape is seen, just never together
        assert colour in {s.subject.colour for s in specs} and shape in {s.subject.shape for s in specs}


def test_composition_split_is_only_held_out_pairs():
    specs = _samples("composition", 300)
    assert {(s.subject.colour, s.subject.shape) for s in specs} == HELD_OUT_PAIRS
    assert {s.motion for s in specs} <= set(vocab.MOTIONS)
    assert {s.subject.texture for s in specs} <= set(vocab.TEXTURES)


def test_subjects_split_is_only_custom_subjects():
    specs = _samples("subjects", 200)
    assert {s.subject for s in specs} == set(CUSTOM_SUBJECTS.values())
    assert {s.motion for s in specs} <= set(vocab.MOTIONS)
    assert not any(s.motion == "spin" and s.subject.shape in vocab.ROTATION_INVARIANT_SHAPES for s in specs)


def test_motions_and_trajectories_splits():
    motions = _samples("motions", 200)
    assert {s.motion for s in motions} == set(CUSTOM_MOTIONS) == set(vocab.NOVEL_MOTIONS)
    trajectories = _samples("trajectories", 200)
    assert {s.motion for s in trajectories} == set(TRAJECTORIES)
    for s in motions + trajectories:  # performed by train subjects
        assert (s.subject.colour, s.subject.shape) in set(TRAIN_PAIRS)
        assert s.subject.texture in vocab.TEXTURES


def test_reference_specs():
    for name, subject in CUSTOM_SUBJECTS.items():
        specs = reference_specs(name, n=6, seed=0)
        assert len(specs) == 6 and all(s.subject == subject and s.frames == 1 for s in specs)
        assert len({(s.size, s.offset) for s in specs}) == 6  # varied sizes / positions
        assert specs == reference_specs(name, n=6, seed=0)
        assert specs != reference_specs(name, n=6, seed=1)
        for s in specs:
            check_clip(render_clip(s))


# ---------------------------------------------------------------------------------------------- captions


CAPTION_SUBJECTS = [
    Subject("star", "red", "striped"),
    Subject("circle", "orange", "solid"),  # "an orange circle"
    Subject("diamond", "red", "checkered", "white"),  # two-colour novel texture
    Subject("ring", "teal"),  # novel colour and shape
    Subject("heart", "white", "dotted"),
]


def test_captions_round_trip_every_paraphrase_and_template():
    n = 0
    backgrounds = itertools.cycle(vocab.BACKGROUNDS)  # every background many times, with every subject
    for motion, phrases in ALL_PHRASES.items():
        for phrase in phrases:
            for template, subject in itertools.product(vocab.CAPTION_TEMPLATES, CAPTION_SUBJECTS):
                if motion == "spin" and subject.shape in vocab.ROTATION_INVARIANT_SHAPES:
                    continue
                bg = next(backgrounds)
                article = "an" if subject.phrase()[0] in "aeiou" else "a"
                words = f"{article} {subject.phrase()}"
                caption = template.format(subject=words, motion=phrase, background=bg)
                parsed = parse_caption(caption)
                assert parsed == {"subject": subject, "motion": motion, "background": bg}, caption
                n += 1
            assert parse_caption(f"A RED SQUARE {phrase.upper()}, BLACK BACKGROUND")["motion"] == motion
    assert n > 500


def test_generated_captions_round_trip():
    for split in SPLITS:
        for spec in _samples(split, 60):
            parsed = parse_caption(spec.caption)
            assert parsed == {"subject": spec.subject, "motion": spec.motion, "background": spec.background}
    subject = Subject("square", "blue", "striped")
    assert make_caption(subject, "left", "black") == "a blue striped square moving left on a black background"


def test_spec_from_caption():
    spec = spec_from_caption("an orange dotted triangle moving in a spiral, gradient background", seed=4)
    assert spec.subject == Subject("triangle", "orange", "dotted")
    assert spec.motion == "spiral" and spec.background == "gradient"
    assert spec.caption.startswith("an orange")
    assert spec == spec_from_caption(spec.caption, seed=4)
    assert spec != spec_from_caption(spec.caption, seed=5)
    check_clip(render_clip(spec))


@pytest.mark.parametrize("caption, message", [
    ("a red square moving left", "no background"),
    ("a red square moving left on a purple background", "no background"),
    ("a square moving left on a black background", "no subject"),
    ("a pink square moving left on a black background", "no subject"),
    ("a red blob moving left on a black background", "no subject"),
    ("a red square on a black background", "no motion"),
    ("a red square dancing on a black background", "no motion"),
    ("a red checkered square moving left on a black background", "needs two colours"),
    ("a red circle spinning on a black background", "looks the same"),
    ("", "no background"),
])
def test_parse_errors_name_the_missing_part(caption, message):
    with pytest.raises(CustomvidError, match=message) as info:
        parse_caption(caption)
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------------------------------------- specs


def test_spec_dict_round_trip_rerenders_identically():
    specs = [sample_spec(split, i, 2) for split in SPLITS for i in range(2)]
    specs += reference_specs("teal_ring", 2)
    for spec in specs:
        d = json.loads(json.dumps(spec.to_dict()))
        assert {"shape", "colour", "texture", "colour2", "background", "motion", "size", "offset", "params",
                "frames", "width", "height", "fps", "caption"} <= set(d)
        back = ClipSpec.from_dict(d)
        assert back == spec
        assert back.to_dict() == d
        assert _digest(render_clip(back)) == _digest(render_clip(spec))


def test_spec_validation():
    with pytest.raises(ValueError, match="unknown shape"):
        Subject("blob", "red")
    with pytest.raises(ValueError, match="needs colour2"):
        Subject("diamond", "red", "checkered")
    with pytest.raises(ValueError, match="takes no colour2"):
        Subject("diamond", "red", "solid", "white")
    with pytest.raises(ValueError, match="unknown background"):
        ClipSpec(Subject("square", "red"), "pink", "left", 10.0, (30.0, 30.0))


# ---------------------------------------------------------------------------------------------- paths


def test_outlines_fit_the_unit_disc():
    """Placement keeps the disc of diameter `size` inside the frame, so every outline must fit in it."""
    for name, (outer, hole) in OUTLINES.items():
        assert np.hypot(outer[:, 0], outer[:, 1]).max() <= 1 + 1e-9, name
        if hole is not None:
            assert np.hypot(hole[:, 0], hole[:, 1]).max() < 1, name


@pytest.mark.parametrize("split", SPLITS)
def test_paths_stay_inside_the_frame(split):
    for i in range(400):
        spec = sample_spec(split, i, seed=1, width=64 + 32 * (i % 2), height=64)
        path = absolute_path(spec)
        outer, _ = OUTLINES[spec.subject.shape]
        for f in range(spec.frames):
            a = path.angle[f]
            rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
            pts = outer @ rot.T * (spec.size / 2 * path.scale[f]) + (path.cx[f], path.cy[f])
            assert pts.min() >= 0 and pts[:, 0].max() <= spec.width and pts[:, 1].max() <= spec.height, (
                split, i, f)
