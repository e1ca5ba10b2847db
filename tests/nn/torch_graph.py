"""torch_graph.py - a PyTorch model built from a Basira architecture JSON.

The architecture (include/basira/nn.h) is interpreted layer by layer, so the torch
model is exactly what the C engine runs, whatever the builder produced; parameter
and buffer names are Basira's ("<layer>.weight", "<layer>.running_mean", ...).
Used by torch_agreement.py and the benchmark (bench/nn_vs_torch).
"""
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F


def _pair(layer, key, default):
    v = layer.get(key, default)
    if isinstance(v, list):
        return (int(v[0]), int(v[1]))
    return (int(v), int(v))


class GraphNet(nn.Module):
    def __init__(self, arch):
        super().__init__()
        self.arch = arch
        c_in = arch["input"][0]
        channels = {"input": c_in}
        flat = {"input": False}
        self.steps = []  # (name, type, inputs)
        self.mods = nn.ModuleDict()
        prev = "input"
        for i, layer in enumerate(arch["layers"]):
            name = layer.get("name", "layer%d" % i)
            typ = layer["type"]
            inputs = layer.get("inputs", [prev])
            c = channels[inputs[0]]
            key = name.replace(".", "__")
            if typ == "conv":
                k, s = _pair(layer, "kernel", 1), _pair(layer, "stride", 1)
                p, d = _pair(layer, "padding", 0), _pair(layer, "dilation", 1)
                out = int(layer["out_channels"])
                self.mods[key] = nn.Conv2d(c, out, k, s, p, d, int(layer.get("groups", 1)),
                                           bias=bool(layer.get("bias", True)))
                c = out
            elif typ == "batchnorm":
                self.mods[key] = nn.BatchNorm2d(c, eps=1e-5, momentum=0.1)
            elif typ in ("maxpool", "avgpool"):
                k = _pair(layer, "kernel", 1)
                s = _pair(layer, "stride", layer.get("kernel", 1))
                p = _pair(layer, "padding", 0)
                self.mods[key] = (nn.MaxPool2d(k, s, p) if typ == "maxpool"
                                  else nn.AvgPool2d(k, s, p, count_include_pad=True))
            elif typ == "fc":
                # The input size is only known from a shape pass: built lazily below.
                out = int(layer["out_features"])
                with warnings.catch_warnings():  # "lazy modules are a new feature"
                    warnings.simplefilter("ignore")
                    self.mods[key] = nn.LazyLinear(out, bias=bool(layer.get("bias", True)))
                c = out
            elif typ == "dropout":
                self.mods[key] = nn.Dropout(float(layer.get("p", 0.5)))
            elif typ == "concat":
                c = sum(channels[x] for x in inputs)
            elif typ not in ("relu", "relu6", "silu", "gap", "add"):
                raise ValueError("unknown layer type %s" % typ)
            channels[name] = c
            flat[name] = typ == "fc" or flat[inputs[0]]
            self.steps.append((name, key, typ, inputs))
            prev = name
        self.output = arch["output"]
        with torch.no_grad():
            self.eval()
            self.forward(torch.zeros(1, *arch["input"]))

    def forward(self, x):
        t = {"input": x}
        for name, key, typ, inputs in self.steps:
            a = t[inputs[0]]
            if typ in ("conv", "batchnorm", "maxpool", "avgpool", "dropout"):
                y = self.mods[key](a)
            elif typ == "fc":
                y = self.mods[key](a.flatten(1))
            elif typ == "relu":
                y = F.relu(a)
            elif typ == "relu6":
                y = F.relu6(a)
            elif typ == "silu":
                y = F.silu(a)
            elif typ == "gap":
                y = a.mean((2, 3), keepdim=True)
            elif typ == "add":
                y = a
                for other in inputs[1:]:
                    y = y + t[other]
            elif typ == "concat":
                y = torch.cat([t[i] for i in inputs], 1)
            t[name] = y
        out = t[self.output]
        return out.flatten(1)

    def basira_tensors(self):
        """name -> tensor (parameters and BN running stats) under Basira's names."""
        out = {}
        for name, key, typ, _ in self.steps:
            if key not in self.mods:
                continue
            m = self.mods[key]
            for suffix in ("weight", "bias", "running_mean", "running_var"):
                v = getattr(m, suffix, None)
                if isinstance(v, torch.Tensor):
                    out["%s.%s" % (name, suffix)] = v
        return out

    def load_basira(self, tensors):
        """Copy Basira-named numpy arrays in; every tensor must match exactly."""
        mine = self.basira_tensors()
        missing = sorted(set(mine) - set(tensors))
        extra = sorted(set(tensors) - set(mine))
        if missing or extra:
            raise ValueError("tensor names differ: missing %s, extra %s" % (missing, extra))
        with torch.no_grad():
            for name, v in mine.items():
                src = torch.from_numpy(tensors[name].copy())
                if tuple(src.shape) != tuple(v.shape):
                    raise ValueError("%s: shape %s vs %s" % (name, tuple(src.shape), tuple(v.shape)))
                v.copy_(src)
