"""A subject's photos as training data: read, checked, centre-cropped and resized to the model's frame size, each
with an optional mask (`NAME_mask.png` beside it, as `customvid world references` writes, or in a masks folder)
and an optional caption (`NAME.txt`, where `{token}` and `{class_word}` are filled in)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
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
    suffixes: list[str] = field(default_factory=list)  # appended to each caption (augmentation words), or none


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


# Magic-Me's rescale augmentation names the change in the caption, so the token does not learn the subject's size
CLOSE_UP, FAR_AWAY = ", close up", ", far away"


def _warp(array: np.ndarray, matrix: np.ndarray, nearest: bool) -> np.ndarray:
    h, w = array.shape[:2]
    if nearest:  # masks: no new border pixels count as subject
        return cv2.warpAffine(array, matrix, (w, h), flags=cv2.INTER_NEAREST, borderValue=0)
    # photos: the border repeats the edge, i.e. the background usually continues
    return cv2.warpAffine(array, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def augment(data: SubjectImages, variants: int, seed: int, max_degrees: float = 10.0) -> SubjectImages:
    """`variants` versions of every photo, the first the photo itself; the others seeded: flipped half of the
    time, rotated by up to `max_degrees`, and a third each kept at size, enlarged x1.3-1.6 about the subject
    ("close up") or shrunk to x0.55-0.75 ("far away"). Masks follow the same warp."""
    images, masks, names, captions, suffixes = [], [], [], [], []
    h, w = data.images.shape[1:3]
    for i in range(len(data.images)):
        mask = data.masks[i] if data.masks is not None else None
        # scale about the subject (the mask's centre) where known, so a close up keeps it in the frame
        centre = (w / 2, h / 2) if mask is None else tuple(float(c.mean()) for c in np.nonzero(mask)[::-1])
        for v in range(variants):
            rng = np.random.default_rng([seed, i, v])
            image, m, suffix = data.images[i], mask, ""
            if v:
                kind = rng.integers(3)
                scale = (1.0, rng.uniform(1.3, 1.6), rng.uniform(0.55, 0.75))[kind]
                suffix = ("", CLOSE_UP, FAR_AWAY)[kind]
                matrix = cv2.getRotationMatrix2D(centre, rng.uniform(-max_degrees, max_degrees), scale)
                if rng.random() < 0.5:  # mirror about the vertical axis through the image centre
                    matrix = np.array([[-1.0, 0, w - 1], [0, 1, 0]]) @ np.vstack([matrix, [0, 0, 1]])
                image = _warp(image, matrix, nearest=False)
                if m is not None:
                    m = _warp(m.astype(np.uint8), matrix, nearest=True).astype(bool)
                    if not m.any():  # warped out of the frame: keep the photo as it is
                        image, m, suffix = data.images[i], mask, ""
            images.append(image), masks.append(m), suffixes.append(suffix)
            names.append(data.names[i] if not v else f"{data.names[i]}#{v}"), captions.append(data.captions[i])
    stacked = np.stack(masks) if data.masks is not None else None
    return SubjectImages(names, np.stack(images), stacked, captions, suffixes)
