"""Attribute records: what a clip shows. A `ClipSpec` renders deterministically, and round-trips through JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace

from customvid.world import vocab


@dataclass(frozen=True)
class Subject:
    shape: str
    colour: str
    texture: str = "solid"
    colour2: str | None = None  # second colour of two-colour (novel) textures

    def __post_init__(self):
        if self.shape not in vocab.ALL_SHAPES:
            raise ValueError(f"unknown shape {self.shape!r}; known: {', '.join(vocab.ALL_SHAPES)}")
        if self.colour not in vocab.ALL_COLOURS:
            raise ValueError(f"unknown colour {self.colour!r}; known: {', '.join(vocab.ALL_COLOURS)}")
        if self.texture not in vocab.ALL_TEXTURES:
            raise ValueError(f"unknown texture {self.texture!r}; known: {', '.join(vocab.ALL_TEXTURES)}")
        if (self.texture in vocab.NOVEL_TEXTURES) != (self.colour2 is not None):
            raise ValueError(f"texture {self.texture!r} {'needs' if self.colour2 is None else 'takes no'} colour2")

    def phrase(self) -> str:
        if self.colour2 is not None:
            return f"{self.colour} and {self.colour2} {self.texture} {self.shape}"
        if self.texture == "solid":
            return f"{self.colour} {self.shape}"
        return f"{self.colour} {self.texture} {self.shape}"


@dataclass(frozen=True)
class ClipSpec:
    """Everything needed to render a clip. Sizes and positions are in pixels of a width x height frame."""

    subject: Subject
    background: str
    motion: str
    size: float  # diameter of the sprite's bounding disc at scale 1
    offset: tuple[float, float]  # where the motion's relative path is placed
    params: dict = field(default_factory=dict)
    frames: int = 16
    width: int = 64
    height: int = 64
    fps: float = 8.0
    caption: str = ""

    def __post_init__(self):
        if self.background not in vocab.BACKGROUNDS:
            raise ValueError(f"unknown background {self.background!r}; known: {', '.join(vocab.BACKGROUNDS)}")
        if self.frames < 1 or self.width < 8 or self.height < 8:
            raise ValueError(f"bad clip geometry: {self.frames} frames of {self.width}x{self.height}")

    def to_dict(self) -> dict:
        """The flat attribute record used in manifests (subject fields at top level)."""
        d = asdict(self)
        subject = d.pop("subject")
        d["offset"] = list(self.offset)
        return {**subject, **d}

    @classmethod
    def from_dict(cls, d: dict) -> ClipSpec:
        subject_keys = {f.name for f in fields(Subject)}
        subject = Subject(**{k: d[k] for k in subject_keys if k in d})
        rest = {f.name: d[f.name] for f in fields(cls) if f.name in d and f.name != "subject"}
        rest["offset"] = tuple(rest.get("offset", (0.0, 0.0)))
        return cls(subject=subject, **rest)

    def with_frames(self, frames: int, fps: float | None = None) -> ClipSpec:
        """The same motion sampled at another frame count (motions are defined on normalised time)."""
        return replace(
            self, frames=frames, fps=self.fps * (frames - 1) / max(self.frames - 1, 1) if fps is None else fps
        )
