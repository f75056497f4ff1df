"""customvid: customize text-to-video diffusion models, measured on a toy world with ground truth."""

__version__ = "0.1.0"
