"""A subject's photos as training data: read, checked, centre-cropped and resized to the model's frame size, each
with an optional mask (`NAME_mask.png` beside it, as `customvid world references` writes, or in a masks folder)
and an optional caption (`NAME.txt`, where `{token}` and `{class_word}` are filled in)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from customvid.errors import CustomvidError
from customvid.io import read_image

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
MIN_SIDE = 16  # px: below this a photo holds too little of the subject to learn from


@dataclass
class SubjectImages:
    names: list[str]
    images: np.ndarray  # uint8 [N, H, W, 3] at the model's size
    masks: np.ndarray | None  # bool [N, H, W] (all images have one, or none has)
    captions: list[str | None]  # NAME.txt beside a photo (kohya-style), else None: the instance prompt is used


def fit_frame(array: np.ndarray, height: int, width: int, resample) -> np.ndarray:
    """Centre-crop to the target aspect, then resize."""
    h, w = array.shape[:2]
    scale = min(h / height, w / width)
    ch, cw = round(height * scale), round(width * scale)
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = array[top : top + ch, left : left + cw]
    return np.asarray(Image.fromarray(crop).resize((width, height), resample))


def _mask_for(image: Path, masks_dir: Path | None) -> Path | None:
    candidates = [image.with_name(f"{image.stem}_mask.png")]
    if masks_dir is not None:
        candidates = [masks_dir / f"{image.stem}_mask.png", masks_dir / f"{image.stem}.png"]
    return next((c for c in candidates if c.is_file()), None)


def load_subject_images(folder: Path, height: int, width: int, masks_dir: Path | None = None) -> SubjectImages:
    folder = Path(folder)
    if not folder.is_dir():
        raise CustomvidError(f"--images {folder}: not a folder")
    if masks_dir is not None and not Path(masks_dir).is_dir():
        raise CustomvidError(f"--masks {masks_dir}: not a folder")
    paths = sorted(
        p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.stem.endswith("_mask")
    )
    if not paths:
        raise CustomvidError(f"--images {folder}: no PNG or JPEG images there")
    names, images, masks, with_mask, captions = [], [], [], [], []
    for path in paths:
        image = read_image(path)
        if min(image.shape[:2]) < MIN_SIDE:
            raise CustomvidError(f"{path}: {image.shape[1]}x{image.shape[0]} px is too small (min {MIN_SIDE} px)")
        mask_path = _mask_for(path, masks_dir)
        with_mask.append(mask_path is not None)
        if mask_path is not None:
            try:
                with Image.open(mask_path) as im:
                    mask = np.asarray(im.convert("L")) >= 128
            except OSError as err:
                raise CustomvidError(f"cannot read mask {mask_path}: {err}") from err
            if mask.shape != image.shape[:2]:
                raise CustomvidError(
                    f"mask {mask_path} is {mask.shape[1]}x{mask.shape[0]} px, "
                    f"its image {image.shape[1]}x{image.shape[0]}"
                )
            if not mask.any():
                raise CustomvidError(f"mask {mask_path} is empty")
            masks.append(fit_frame(mask.astype(np.uint8) * 255, height, width, Image.NEAREST) >= 128)
        names.append(path.name)
        images.append(fit_frame(image, height, width, Image.BICUBIC))
        caption = path.with_suffix(".txt")
        captions.append(caption.read_text(encoding="utf-8").strip() or None if caption.is_file() else None)
    if any(with_mask) and not all(with_mask):
        lacking = next(n for n, m in zip(names, with_mask, strict=True) if not m)
        raise CustomvidError(f"some images have masks and {lacking} has none; give every image a mask or none")
    return SubjectImages(names, np.stack(images), np.stack(masks) if masks else None, captions)
