"""A real image data set that a PyPI package ships, laid out as a plant delivers photos, for runs on unseen data.

scikit-learn ships the UCI optical recognition of handwritten digits in its wheel: 1,797 real scans, 8x8 pixels,
16 grey levels, ten classes. To the inspection pipeline it is a folder of small grayscale photos in one folder
per class; "0" plays the good part and the nine other digits the defect types. ``write_digits_layout`` writes
``images/<class>/digit_NNNN.png`` and a ``config.yaml``, so it runs through ``shopfloor run visual-inspection
--data DIR --config DIR/config.yaml`` alone.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

__all__ = ["DIGITS_CONFIG", "write_digits_layout"]

DIGITS_CONFIG = """scenario: visual-inspection
model_name: digits-inspection
data:
  manifest: null                # one folder per class
  classes: ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]
  ok_class: "0"
  image_size: [8, 8]
model:
  filters: [32, 64]
  convs_per_block: 1
  local_contrast: 0
  flip: false
"""


def write_digits_layout(folder: Path) -> dict[str, Path]:
    """Write scikit-learn's digits as PNG files in class folders, plus a config; return the paths."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = np.clip(digits.images * (255.0 / 16.0), 0, 255).round().astype(np.uint8)
    for index, (image, target) in enumerate(zip(pixels, digits.target, strict=True)):
        target_dir = folder / "images" / str(target)
        target_dir.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        Image.fromarray(image, mode="L").save(buffer, format="PNG")
        (target_dir / f"digit_{index:04d}.png").write_bytes(buffer.getvalue())
    (folder / "config.yaml").write_text(DIGITS_CONFIG)
    return {"images": folder / "images", "config": folder / "config.yaml"}
