"""Fixed, documented splits. Base training never sees the held-out pairs, subjects, motions or trajectories.

- train:        base colours x shapes minus HELD_OUT_PAIRS, base textures, backgrounds and motions.
- composition:  only the HELD_OUT_PAIRS (each colour and each shape also appears in train, never together).
- subjects:     CUSTOM_SUBJECTS (novel shapes / two-colour patterns / a novel colour) doing base motions;
                `reference_specs` gives their still reference images at varied sizes, positions, backgrounds.
- motions:      NOVEL_MOTIONS performed by train subjects on varied backgrounds.
- trajectories: box paths no base motion produces (TRAJECTORIES), performed by train subjects.

Clip i of a split with seed s is a pure function of (split, s, i): the same everywhere, forever.
"""

from __future__ import annotations

import numpy as np

from customvid.world import vocab
from customvid.world.captions import make_caption
from customvid.world.motions import Path, frame_times, place, relative_path, sample_params
from customvid.world.spec import ClipSpec, Subject

HELD_OUT_PAIRS = {("red", "star"), ("green", "triangle"), ("blue", "heart"), ("yellow", "square"), ("purple", "circle")}
TRAIN_PAIRS = [(c, s) for c in vocab.COLOURS for s in vocab.SHAPES if (c, s) not in HELD_OUT_PAIRS]

CUSTOM_SUBJECTS: dict[str, Subject] = {
    "checkered_diamond": Subject("diamond", "red", "checkered", "white"),
    "teal_ring": Subject("ring", "teal", "solid"),
    "spotted_hexagon": Subject("hexagon", "yellow", "spotted", "purple"),
    "banded_cross": Subject("cross", "orange", "banded", "blue"),
}
CUSTOM_MOTIONS = list(vocab.NOVEL_MOTIONS)


def _trajectory(name: str, t: np.ndarray, side: float) -> Path:
    """Relative box-centre paths that none of the base motions produce."""
    one = np.ones_like(t)
    d = 0.45 * side
    if name == "l_turn":  # right for the first half, then down
        return Path(d * np.minimum(t, 0.5) * 2, d * np.maximum(t - 0.5, 0) * 2, one, 0 * t)
    if name == "u_turn":  # right, down a little, back left
        x = d * np.where(t < 0.5, t * 2, 2 - t * 2)
        y = 0.35 * side * np.clip((t - 0.35) / 0.3, 0, 1)
        return Path(x, y, one, 0 * t)
    if name == "wave":
        return Path(d * t, 0.15 * side * np.sin(2 * np.pi * t), one, 0 * t)
    if name == "stop_and_go":  # moves, stops for the middle third, moves on
        progress = np.clip(t * 3, 0, 1) * 0.5 + np.clip(t * 3 - 2, 0, 1) * 0.5
        return Path(d * progress, 0 * t, one, 0 * t)
    if name == "approach":  # moves right while growing: a combination of two base motions
        return Path(0.35 * side * t, 0 * t, 0.6 + 0.8 * t, 0 * t)
    raise ValueError(f"unknown trajectory {name!r}")


TRAJECTORIES = ["l_turn", "u_turn", "wave", "stop_and_go", "approach"]
SPLITS = ["train", "composition", "subjects", "motions", "trajectories"]


def _rng(split: str, seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, SPLITS.index(split), index])


def _compatible_motions(subject: Subject, motions) -> list[str]:
    return [m for m in motions if not (m == "spin" and subject.shape in vocab.ROTATION_INVARIANT_SHAPES)]


def _pick(rng, items):
    return items[int(rng.integers(len(items)))]


def build_spec(
    subject: Subject,
    motion: str,
    background: str,
    rng: np.random.Generator,
    frames: int = 16,
    width: int = 64,
    height: int = 64,
    fps: float = 8.0,
    caption: str | None = None,
) -> ClipSpec:
    """Sample size, motion parameters and placement for the given attributes until the path fits the frame."""
    side = min(width, height)
    for _ in range(100):
        size = float(rng.uniform(0.19, 0.34) * side)
        if motion in TRAJECTORIES:
            t = frame_times(frames)
            rel = _trajectory(motion, t, side)
            params = {"poses": [rel.cx.tolist(), rel.cy.tolist(), rel.scale.tolist(), rel.angle.tolist()]}
        else:
            params = sample_params(motion, rng, width, height, size)
            rel = relative_path(motion, frame_times(frames), params)
        offset = place(rel, rng, width, height, size)
        if offset is not None:
            break
    else:  # pragma: no cover - every motion fits a 64 px frame at the smallest size
        raise ValueError(f"motion {motion!r} does not fit a {width}x{height} frame")
    if caption is None:
        caption = make_caption(subject, motion, background, rng)
    return ClipSpec(subject, background, motion, size, offset, params, frames, width, height, fps, caption)


def sample_spec(
    split: str, index: int, seed: int = 0, frames: int = 16, width: int = 64, height: int = 64, fps: float = 8.0
) -> ClipSpec:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    rng = _rng(split, seed, index)
    if split == "train":
        subject = Subject(*reversed(_pick(rng, TRAIN_PAIRS)), texture=_pick(rng, vocab.TEXTURES))
        motions = vocab.MOTIONS
    elif split == "composition":
        subject = Subject(*reversed(_pick(rng, sorted(HELD_OUT_PAIRS))), texture=_pick(rng, vocab.TEXTURES))
        motions = vocab.MOTIONS
    elif split == "subjects":
        subject = CUSTOM_SUBJECTS[list(CUSTOM_SUBJECTS)[index % len(CUSTOM_SUBJECTS)]]
        motions = vocab.MOTIONS
    else:
        subject = Subject(*reversed(_pick(rng, TRAIN_PAIRS)), texture=_pick(rng, vocab.TEXTURES))
        motions = CUSTOM_MOTIONS if split == "motions" else TRAJECTORIES
    motion = _pick(rng, _compatible_motions(subject, motions))
    background = _pick(rng, vocab.BACKGROUNDS)
    return build_spec(subject, motion, background, rng, frames, width, height, fps)


def reference_specs(subject_name: str, n: int = 6, seed: int = 0, width: int = 64, height: int = 64) -> list[ClipSpec]:
    """Still one-frame renders of a custom subject at varied sizes, positions, angles and backgrounds."""
    subject = CUSTOM_SUBJECTS[subject_name]
    rng = np.random.default_rng([seed, SPLITS.index("subjects"), 10_000 + list(CUSTOM_SUBJECTS).index(subject_name)])
    return [build_spec(subject, "still", _pick(rng, vocab.BACKGROUNDS), rng, 1, width, height) for _ in range(n)]


def spec_from_caption(
    caption: str, seed: int = 0, frames: int = 16, width: int = 64, height: int = 64, fps: float = 8.0
) -> ClipSpec:
    """A clip showing what the caption says (random size, speed, placement from the seed)."""
    from customvid.world.captions import parse_caption

    parsed = parse_caption(caption)
    rng = np.random.default_rng([seed, 99])
    return build_spec(
        parsed["subject"], parsed["motion"], parsed["background"], rng, frames, width, height, fps, caption=caption
    )
