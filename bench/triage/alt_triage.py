"""alt_triage.py PHOTO MODEL - what a user would pick instead of `basira triage`:
Python + Pillow + PyTorch (CPU) running the same network with the same weights and
preprocessing (decode, resize to the input size, Shades of Gray, normalise, softmax
with the calibration temperature, malignant probability). One process per photo,
as a command-line tool would be used."""
import json
import os
import sys

import numpy as np
import torch
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "nn"))
import st_read  # noqa: E402
from torch_graph import GraphNet  # noqa: E402

torch.set_num_threads(1)
tensors, meta = st_read.read(sys.argv[2])
arch = json.loads(meta["architecture"])
info = json.loads(meta["basira"])
net = GraphNet(arch)
net.load_basira({k: np.asarray(v, dtype=np.float32) for k, v in tensors.items()})
net.eval()
pre = info["preprocessing"]
w, h = pre["input_size"] if isinstance(pre["input_size"], list) else (pre["input_size"],) * 2
im = Image.open(sys.argv[1])
im.draft("RGB", (w * 2, h * 2))  # JPEG shrink-on-load, as Basira does
a = np.asarray(im.convert("RGB").resize((w, h), Image.BILINEAR), dtype=np.float32)
m = np.mean(a ** 6, axis=(0, 1)) ** (1 / 6)
a = np.clip(a * (m.mean() / np.maximum(m, 1e-6)), 0, 255) / 255.0
a = (a - np.array(pre["mean"], np.float32)) / np.array(pre["std"], np.float32)
x = torch.from_numpy(a.transpose(2, 0, 1).copy())[None]
with torch.no_grad():
    p = torch.softmax(net(x) / info["temperature"], 1)[0].numpy()
mal = sum(p[i] for i, c in enumerate(info["classes"]) if c["malignant"])
print(json.dumps({"malignant_probability": float(mal)}))
