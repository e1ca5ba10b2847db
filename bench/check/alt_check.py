#!/usr/bin/env python3
"""What a user would write instead of `basira check`: Pillow + NumPy quality checks.

Decodes the photo (Pillow), applies the EXIF orientation, resizes it to 200 px on the
longer side and measures the same things as Basira's gate: variance of the Laplacian,
brightness percentiles, clipped and near-white fractions, luma range, mean chroma,
and an Otsu split for the lesion. Prints one JSON object per file.
"""
import json
import sys

import numpy as np
from PIL import Image, ImageOps


def check(path):
    img = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
    w, h = img.size
    s = 200 / max(w, h)
    small = np.asarray(img.resize((max(1, round(w * s)), max(1, round(h * s))), Image.BILINEAR),
                       dtype=np.float32)
    y = small @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    lap = 4 * y[1:-1, 1:-1] - y[:-2, 1:-1] - y[2:, 1:-1] - y[1:-1, :-2] - y[1:-1, 2:]
    mx, mn = small.max(axis=2), small.min(axis=2)
    hist, edges = np.histogram(255 - y, bins=256, range=(0, 256))
    p = hist / hist.sum()
    omega, mu = np.cumsum(p), np.cumsum(p * np.arange(256))
    between = (mu[-1] * omega - mu) ** 2 / np.maximum(omega * (1 - omega), 1e-12)
    t = int(np.argmax(between))
    lesion = (255 - y) > t
    return {
        "file": path,
        "laplacian_var": float(lap.var()),
        "bright_p99": float(np.percentile(mx, 99)),
        "clipped": float((mx >= 250).mean()),
        "glare": float(((y >= 230) & (mx - mn <= 0.12 * mx)).mean()),
        "y_range": float(np.percentile(y, 98) - np.percentile(y, 2)),
        "mean_rgb": [float(v) for v in small.reshape(-1, 3).mean(axis=0)],
        "lesion_area": float(lesion.mean()),
    }


for f in sys.argv[1:]:
    print(json.dumps(check(f)))
