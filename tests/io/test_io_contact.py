"""Contact sheets: size formula, frame placement, nearest-neighbour scaling, labels."""

import math
from pathlib import Path

import numpy as np
import pytest

from customvid.errors import CustomvidError
from customvid.io import VideoData, contact_sheet, read_image, write_contact_sheet
from customvid.io.contact import LABEL_HEIGHT, PAD_VALUE


def _solid_frames(n: int, h: int = 6, w: int = 5) -> np.ndarray:
    # Frame k is a distinct solid colour, none equal to the grey padding.
    return np.stack([np.full((h, w, 3), (10 + 20 * k, 200 - 10 * k, 3 * k), np.uint8) for k in range(n)])


@pytest.mark.parametrize(
    ("n", "cols", "pad", "scale"), [(7, 3, 2, 1), (4, None, 0, 2), (5, 1, 3, 3), (2, 9, 1, 1)]
)
def test_size_formula(n: int, cols: int | None, pad: int, scale: int) -> None:
    frames = _solid_frames(n)
    sheet = contact_sheet(frames, cols=cols, pad=pad, scale=scale)
    c = min(cols if cols is not None else math.ceil(math.sqrt(n)), n)
    r = math.ceil(n / c)
    assert sheet.dtype == np.uint8
    assert sheet.shape == (r * 6 * scale + (r + 1) * pad, c * 5 * scale + (c + 1) * pad, 3)


def test_frame_k_lands_in_its_cell_and_padding_is_grey() -> None:
    frames = _solid_frames(7)
    pad, scale, cols = 2, 2, 3
    sheet = contact_sheet(frames, cols=cols, pad=pad, scale=scale)
    ch, cw = 6 * scale, 5 * scale
    for k in range(7):
        top, left = pad + (k // cols) * (ch + pad), pad + (k % cols) * (cw + pad)
        assert (sheet[top : top + ch, left : left + cw] == frames[k, 0, 0]).all(), k
        assert (sheet[top - 1, left : left + cw] == PAD_VALUE).all()  # padding above each cell
    # The two empty cells of the last row (k=7, 8) stay grey.
    top = pad + 2 * (ch + pad)
    assert (sheet[top : top + ch, pad + cw + pad :] == PAD_VALUE).all()


def test_nearest_neighbour_upscale_keeps_pixels_crisp() -> None:
    frame = np.zeros((1, 2, 2, 3), np.uint8)
    frame[0, 0, 1] = frame[0, 1, 0] = 255  # checkerboard
    sheet = contact_sheet(frame, pad=0, scale=3)
    expected = np.kron(np.array([[0, 255], [255, 0]]), np.ones((3, 3)))
    assert sheet.shape == (6, 6, 3)
    assert (sheet[..., 0] == expected).all()


def test_labels_add_a_band_with_text_and_leave_frames_alone() -> None:
    frames = np.zeros((3, 8, 40, 3), np.uint8)
    sheet = contact_sheet(frames, cols=3, pad=1, labels=["a", "bb", "ccc"])
    assert sheet.shape == (8 + LABEL_HEIGHT + 2, 3 * 40 + 4, 3)
    assert (sheet[1:9, 1:41] == 0).all()
    band = sheet[9 : 9 + LABEL_HEIGHT, 1:41]
    assert (band > PAD_VALUE).any()  # white text drawn on the grey band
    with pytest.raises(CustomvidError, match="2 labels for 3 frames"):
        contact_sheet(frames, labels=["a", "b"])


def test_accepts_videodata_and_float_frames_and_writes_png(tmp_path: Path) -> None:
    frames = _solid_frames(4)
    assert (contact_sheet(VideoData(frames, 8.0)) == contact_sheet(frames.astype(np.float32) / 255)).all()
    out = write_contact_sheet(tmp_path / "sheets" / "s.png", frames, scale=4)
    assert (read_image(out) == contact_sheet(frames, scale=4)).all()


@pytest.mark.parametrize("kw", [{"cols": 0}, {"pad": -1}, {"scale": 0}])
def test_bad_layout_arguments_raise(kw: dict[str, int]) -> None:
    with pytest.raises(CustomvidError, match="contact sheet needs"):
        contact_sheet(_solid_frames(2), **kw)
