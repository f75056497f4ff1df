"""File I/O for customvid: atomic writes, video/image read-write, contact sheets, per-frame box files."""

from .atomic import atomic_write, atomic_write_dir, write_json_atomic, write_text_atomic
from .boxes import BOX_UNITS, parse_boxes, read_boxes
from .contact import contact_sheet, write_contact_sheet
from .video import DEFAULT_FPS, VideoData, as_uint8_frames, read_image, read_video, write_image, write_video

__all__ = [
    "BOX_UNITS",
    "DEFAULT_FPS",
    "VideoData",
    "as_uint8_frames",
    "atomic_write",
    "atomic_write_dir",
    "contact_sheet",
    "parse_boxes",
    "read_boxes",
    "read_image",
    "read_video",
    "write_contact_sheet",
    "write_image",
    "write_json_atomic",
    "write_text_atomic",
    "write_video",
]
