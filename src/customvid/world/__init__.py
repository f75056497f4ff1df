"""The procedural toy world: vocabulary, sprites, motions, captions, splits, renderer and probe."""

from customvid.world.captions import make_caption, parse_caption
from customvid.world.render import Clip, render_clip
from customvid.world.spec import ClipSpec, Subject
from customvid.world.splits import (
    CUSTOM_MOTIONS,
    CUSTOM_SUBJECTS,
    HELD_OUT_PAIRS,
    SPLITS,
    TRAJECTORIES,
    reference_specs,
    sample_spec,
    spec_from_caption,
)

__all__ = [
    "CUSTOM_MOTIONS",
    "CUSTOM_SUBJECTS",
    "HELD_OUT_PAIRS",
    "SPLITS",
    "TRAJECTORIES",
    "Clip",
    "ClipSpec",
    "Subject",
    "make_caption",
    "parse_caption",
    "reference_specs",
    "render_clip",
    "sample_spec",
    "spec_from_caption",
]
