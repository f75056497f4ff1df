"""The world probe: subject box, mask, colour, shape, texture, background and motion read from pixels."""

from customvid.world.probe.core import VideoProbe, probe_video

__all__ = ["VideoProbe", "probe_video"]
