"""The toy world's vocabulary: colours, shapes, textures, backgrounds, motions, and their words.

Colours are bright and backgrounds dark (or low-contrast textures), so a subject is always separable from its
background by colour alone; texture "ink" is a darker shade of the subject colour.
"""

from __future__ import annotations

RGB = tuple[int, int, int]

# Base vocabulary: everything the embedded model is trained on (minus the held-out pairs in splits.py).
COLOURS: dict[str, RGB] = {
    "red": (230, 40, 40),
    "green": (40, 200, 70),
    "blue": (60, 110, 255),
    "yellow": (245, 225, 40),
    "purple": (165, 70, 225),
    "orange": (255, 145, 25),
    "white": (245, 245, 245),
}
SHAPES = ["circle", "square", "triangle", "star", "heart"]
TEXTURES = ["solid", "striped", "dotted"]

# Plain backgrounds plus two low-contrast textured ones; each is rendered deterministically from its name.
PLAIN_BACKGROUNDS: dict[str, RGB] = {
    "black": (0, 0, 0),
    "gray": (90, 90, 90),
    "blue": (15, 20, 80),
    "green": (20, 80, 35),
    "brown": (75, 45, 25),
}
TEXTURED_BACKGROUNDS = ["tiled", "gradient"]
BACKGROUNDS = list(PLAIN_BACKGROUNDS) + TEXTURED_BACKGROUNDS

# Motions of the subject's box. Directional ones move the centre in a straight line.
DIRECTIONS: dict[str, tuple[float, float]] = {
    "left": (-1, 0),
    "right": (1, 0),
    "up": (0, -1),
    "down": (0, 1),
    "up_left": (-1, -1),
    "up_right": (1, -1),
    "down_left": (-1, 1),
    "down_right": (1, 1),
}
MOTIONS = [*DIRECTIONS, "still", "bounce", "circle", "grow", "shrink", "spin"]

# Extra vocabulary that only appears in held-out splits (customization subjects and motions).
NOVEL_COLOURS: dict[str, RGB] = {"teal": (30, 205, 190)}
NOVEL_SHAPES = ["diamond", "ring", "hexagon", "cross"]
NOVEL_TEXTURES = ["checkered", "spotted", "banded"]  # two-colour patterns: ink is the subject's second colour
NOVEL_MOTIONS = ["zigzag", "figure_eight", "spiral"]

ALL_COLOURS: dict[str, RGB] = {**COLOURS, **NOVEL_COLOURS}
ALL_SHAPES = SHAPES + NOVEL_SHAPES
ALL_TEXTURES = TEXTURES + NOVEL_TEXTURES

# Rotating these changes no pixel, so "spin" is never paired with them.
ROTATION_INVARIANT_SHAPES = {"circle", "ring"}

# Caption words. The first phrase of each motion is canonical; the rest are paraphrases so the text encoder,
# not a lookup of fixed strings, carries the meaning.
MOTION_PHRASES: dict[str, list[str]] = {
    "left": ["moving left", "sliding to the left", "heading left"],
    "right": ["moving right", "sliding to the right", "heading right"],
    "up": ["moving up", "rising upward", "heading up"],
    "down": ["moving down", "falling downward", "heading down"],
    "up_left": ["moving diagonally up and left", "drifting up to the left"],
    "up_right": ["moving diagonally up and right", "drifting up to the right"],
    "down_left": ["moving diagonally down and left", "drifting down to the left"],
    "down_right": ["moving diagonally down and right", "drifting down to the right"],
    "still": ["staying still", "resting in place", "not moving"],
    "bounce": ["bouncing", "bouncing up and down", "hopping"],
    "circle": ["moving in a circle", "circling around", "going round in a circle"],
    "grow": ["growing", "zooming in", "getting bigger"],
    "shrink": ["shrinking", "zooming out", "getting smaller"],
    "spin": ["spinning", "rotating", "turning around"],
    "zigzag": ["zigzagging", "moving in a zigzag"],
    "figure_eight": ["tracing a figure eight", "moving in a figure eight"],
    "spiral": ["spiralling outward", "moving in a spiral"],
}
CAPTION_TEMPLATES = [
    "{subject} {motion} on a {background} background",
    "{subject} {motion}, {background} background",
    "on a {background} background, {subject} {motion}",
]


def colour_rgb(name: str) -> RGB:
    return ALL_COLOURS[name]


def ink_rgb(colour: str, texture: str, colour2: str | None) -> RGB:
    """Second colour of a textured subject: its own darker shade for base textures, colour2 for novel ones."""
    if texture in NOVEL_TEXTURES:
        if colour2 is None:
            raise ValueError(f"texture {texture!r} needs a second colour")
        return ALL_COLOURS[colour2]
    r, g, b = ALL_COLOURS[colour]
    return (int(r * 0.5), int(g * 0.5), int(b * 0.5))
