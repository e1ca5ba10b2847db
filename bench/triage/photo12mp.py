"""photo12mp.py OUT.jpg [SOURCE] - a 12 MP (4000 x 3000) phone-sized JPEG, quality 92.

Without SOURCE: a synthetic lesion on skin (a dark disc on a skin tone, a little texture
and noise), the photo of bench/triage and bench/triage_cold. With SOURCE: that real photo
(e.g. a HAM10000 image from ../shared/data) upscaled bicubically to 4000 x 3000, so the
file has a real photo's content and a real camera file's size.
Needs NumPy and Pillow (/usr/bin/python3)."""
import sys

import numpy as np
from PIL import Image

W, H = 4000, 3000
if len(sys.argv) > 2:
    Image.open(sys.argv[2]).convert("RGB").resize((W, H), Image.BICUBIC).save(sys.argv[1], quality=92)
    sys.exit(0)
rng = np.random.default_rng(1)
yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
tex = 10 * np.sin(xx / 26) * np.cos(yy / 34) + rng.normal(0, 4, (H, W)).astype(np.float32)
d = np.hypot(xx - W / 2, yy - H / 2)
k = np.clip((0.12 * W + 40 - d) / 80, 0, 1)[..., None]
skin, lesion = np.array([215, 170, 145], np.float32), np.array([110, 70, 50], np.float32)
img = skin * (1 - k) + lesion * k + tex[..., None]
Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(sys.argv[1], quality=92)
