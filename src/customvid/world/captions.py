"""Captions from a small grammar, and the inverse: a caption (or a user's prompt) back to its attributes."""

from __future__ import annotations

import re

import numpy as np

from customvid.errors import CustomvidError
from customvid.world import vocab
from customvid.world.spec import Subject

# Box paths of the trajectory split have captions too (see splits.TRAJECTORIES).
TRAJECTORY_PHRASES: dict[str, list[str]] = {
    "l_turn": ["moving right then down"],
    "u_turn": ["making a u-turn"],
    "wave": ["moving right in a wave"],
    "stop_and_go": ["moving right, pausing, then moving on"],
    "approach": ["moving right and getting bigger"],
}
ALL_PHRASES = {**vocab.MOTION_PHRASES, **TRAJECTORY_PHRASES}


def make_caption(subject: Subject, motion: str, background: str, rng: np.random.Generator | None = None,
                 words: str | None = None) -> str:
    """A caption for the clip; with `rng`, a random template and paraphrase, else the canonical wording.
    `words` names the subject instead of its full phrase (e.g. the shape alone)."""
    phrases = ALL_PHRASES[motion]
    if rng is None:
        template, phrase = vocab.CAPTION_TEMPLATES[0], phrases[0]
    else:
        template = vocab.CAPTION_TEMPLATES[rng.integers(len(vocab.CAPTION_TEMPLATES))]
        phrase = phrases[rng.integers(len(phrases))]
    words = words or subject.phrase()
    article = "an" if words[0] in "aeiou" else "a"
    return template.format(subject=f"{article} {words}", motion=phrase, background=background)


def _words(alternatives) -> str:
    return "|".join(sorted((re.escape(a) for a in alternatives), key=len, reverse=True))


_BACKGROUND_RE = re.compile(rf"\b({_words(vocab.BACKGROUNDS)}) background\b")
_TWO_COLOUR_RE = re.compile(
    rf"\b({_words(vocab.ALL_COLOURS)}) and ({_words(vocab.ALL_COLOURS)}) ({_words(vocab.NOVEL_TEXTURES)}) "
    rf"({_words(vocab.ALL_SHAPES)})\b"
)
_SUBJECT_RE = re.compile(
    rf"\b({_words(vocab.ALL_COLOURS)}) (?:({_words(vocab.ALL_TEXTURES)}) )?({_words(vocab.ALL_SHAPES)})\b"
)


def _normalise(text: str) -> str:
    return " ".join(text.lower().replace(",", " ,").split())


def parse_caption(text: str) -> dict:
    """{subject: Subject, motion: str, background: str} from a caption of the grammar (any paraphrase).

    Raises CustomvidError naming the part that could not be understood and the words that would be.
    """
    t = _normalise(text)
    m_bg = _BACKGROUND_RE.search(t)
    if not m_bg:
        raise CustomvidError(f"no background in {text!r}; say '... on a <{'|'.join(vocab.BACKGROUNDS)}> background'")
    rest = t[: m_bg.start()] + t[m_bg.end() :]
    m2 = _TWO_COLOUR_RE.search(rest)
    if m2:
        subject = Subject(shape=m2.group(4), colour=m2.group(1), texture=m2.group(3), colour2=m2.group(2))
    else:
        m = _SUBJECT_RE.search(rest)
        if not m:
            raise CustomvidError(
                f"no subject in {text!r}; say '<colour> [texture] <shape>' with colour in {list(vocab.ALL_COLOURS)}, "
                f"texture in {vocab.TEXTURES}, shape in {vocab.ALL_SHAPES}"
            )
        texture = m.group(2) or "solid"
        if texture in vocab.NOVEL_TEXTURES:
            raise CustomvidError(f"texture {texture!r} needs two colours, e.g. 'red and white {texture} diamond'")
        subject = Subject(shape=m.group(3), colour=m.group(1), texture=texture)
    motion = None
    best = 0
    for name, phrases in ALL_PHRASES.items():
        for phrase in phrases:
            phrase = _normalise(phrase)  # same comma spacing as the text, e.g. "moving right , pausing , ..."
            if re.search(rf"\b{re.escape(phrase)}\b", rest) and len(phrase) > best:
                motion, best = name, len(phrase)
    if motion is None:
        known = "; ".join(f"{k}: {v[0]!r}" for k, v in ALL_PHRASES.items())
        raise CustomvidError(f"no motion in {text!r}; known motions: {known}")
    if motion == "spin" and subject.shape in vocab.ROTATION_INVARIANT_SHAPES:
        raise CustomvidError(f"a {subject.shape} looks the same when spinning; pick another shape or motion")
    return {"subject": subject, "motion": motion, "background": m_bg.group(1)}
