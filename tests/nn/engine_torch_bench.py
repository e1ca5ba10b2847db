"""Build a PyTorch model from a Basira architecture JSON and time it (eager, CPU): the
PyTorch side of tests/nn/engine_bench.c (not a test). Run with /usr/bin/python3 (Debian torch).
  nn_engine_bench resnet 32 2 128 arch 1 1 1 > resnet.json
  engine_torch_bench.py resnet.json train|infer BATCH THREADS N
Same modes and output (JSON line, images/s or median/min ms, peak RSS) as nn_engine_bench."""
import json, sys, time, resource
import torch, torch.nn as nn, torch.nn.functional as F

class Net(nn.Module):
    def __init__(self, arch):
        super().__init__()
        self.arch = arch
        c, h, w = arch["input"]
        shapes = {"input": (c, h, w)}
        self.mods = nn.ModuleDict()
        prev = "input"
        self.plan = []
        for l in arch["layers"]:
            name, t = l["name"], l["type"]
            ins = l.get("inputs", [prev])
            ic, ih, iw = shapes[ins[0]]
            key = name.replace(".", "_")
            def pair(v, d):
                v = l.get(v, d)
                return tuple(v) if isinstance(v, list) else (v, v)
            if t == "conv":
                k, s, p, d = pair("kernel", 1), pair("stride", 1), pair("padding", 0), pair("dilation", 1)
                m = nn.Conv2d(ic, l["out_channels"], k, s, p, d, l.get("groups", 1), l.get("bias", True))
                oh = (ih + 2 * p[0] - d[0] * (k[0] - 1) - 1) // s[0] + 1
                ow = (iw + 2 * p[1] - d[1] * (k[1] - 1) - 1) // s[1] + 1
                shp = (l["out_channels"], oh, ow)
            elif t == "batchnorm":
                m = nn.BatchNorm2d(ic); shp = (ic, ih, iw)
            elif t in ("relu", "relu6", "silu"):
                m = {"relu": nn.ReLU(inplace=True), "relu6": nn.ReLU6(inplace=True), "silu": nn.SiLU(inplace=True)}[t]
                shp = (ic, ih, iw)
            elif t in ("maxpool", "avgpool"):
                k = pair("kernel", 1); s = pair("stride", k[0]); p = pair("padding", 0)
                m = (nn.MaxPool2d if t == "maxpool" else nn.AvgPool2d)(k, s, p)
                shp = (ic, (ih + 2 * p[0] - k[0]) // s[0] + 1, (iw + 2 * p[1] - k[1]) // s[1] + 1)
            elif t == "gap":
                m = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()); shp = (ic, 1, 1)
            elif t == "fc":
                m = nn.Sequential(nn.Flatten(), nn.Linear(ic * ih * iw, l["out_features"], l.get("bias", True)))
                shp = (l["out_features"], 1, 1)
            elif t == "dropout":
                m = nn.Dropout(l.get("p", 0.5)); shp = (ic, ih, iw)
            elif t in ("add", "concat"):
                m = None
                shp = (ic if t == "add" else sum(shapes[i][0] for i in ins), ih, iw)
            if m is not None:
                self.mods[key] = m
            self.plan.append((name, t, key, ins))
            shapes[name] = shp
            prev = name
        self.out = arch["output"]

    def forward(self, x):
        vals = {"input": x}
        for name, t, key, ins in self.plan:
            if t == "add":
                v = vals[ins[0]]
                for i in ins[1:]:
                    v = v + vals[i]
            elif t == "concat":
                v = torch.cat([vals[i] for i in ins], 1)
            elif t in ("relu", "relu6", "silu"):
                # in place, as torchvision (the builders never reuse an activation's input)
                v = self.mods[key](vals[ins[0]])
            else:
                v = self.mods[key](vals[ins[0]])
            vals[name] = v
        return vals[self.out]

arch = json.load(open(sys.argv[1]))
mode, n, threads, iters = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
torch.set_num_threads(threads)
torch.manual_seed(0)
net = Net(arch)
c, h, w = arch["input"]
x = torch.randn(n, c, h, w)
y = torch.arange(n) % arch["num_classes"]
if mode == "train":
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    for s in range(iters + 2):
        if s == 2:
            t0 = time.perf_counter()
        opt.zero_grad()
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
    dt = time.perf_counter() - t0
    print(json.dumps({"engine": "pytorch", "family": arch["family"], "mode": "train", "batch": n, "threads": threads,
                      "images_per_s": round(n * iters / dt, 2),
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
else:
    net.eval()
    ts = []
    with torch.no_grad():
        for s in range(3):
            net(x)
        for s in range(iters):
            t0 = time.perf_counter(); net(x); ts.append(time.perf_counter() - t0)
    ts.sort()
    print(json.dumps({"engine": "pytorch", "family": arch["family"], "mode": "infer", "batch": n, "threads": threads,
                      "median_ms": round(1e3 * ts[len(ts) // 2], 3), "min_ms": round(1e3 * ts[0], 3),
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
