"""Imports every built-in metric module; each registers its metric(s). The order here is the report order."""

from customvid.metrics import (  # noqa: F401
    cd,
    clip_i,
    clip_t,
    dino_i,
    dynamic_degree,
    miou,
    r_clip,
    r_dino,
    subject_consistency,
    temporal_consistency,
    world_scores,
)

ORDER = [
    "clip_t",
    "clip_i",
    "dino_i",
    "r_clip",
    "r_dino",
    "temporal_consistency",
    "subject_consistency",
    "dynamic_degree",
    "miou",
    "cd",
    "attr_colour",
    "attr_shape",
    "attr_texture",
    "attr_background",
    "motion_acc",
    "identity_match",
    "trajectory_error",
]
