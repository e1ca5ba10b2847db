#!/usr/bin/python3
"""optim_ref.py OUT.safetensors - reference trajectories of torch.optim.SGD and AdamW.

Runs each optimiser configuration for a few steps on fixed tensors (a start point
"p0" and one gradient per step "g.<t>", the same for every configuration) and
writes the parameters after each step ("<config>.p.<t>"). The configurations are
in the metadata ("configs", JSON) so that test_optim.c replays exactly these.
Weight decay off ("decay": 0) is a parameter group with weight_decay=0, which is
how PyTorch recipes exclude biases and norms. Exit 77 when torch is missing.
"""
import json
import os
import sys

try:
    import torch
except ImportError:
    print("torch is not installed for this python", file=sys.stderr)
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_read  # noqa: E402

N, T = 53, 6
torch.manual_seed(1234)
p0 = torch.randn(N)
grads = [torch.randn(N) * (0.5 + t) for t in range(T)]

CONFIGS = [
    {"name": "sgd_nesterov", "kind": "sgd", "lr": [0.1] * T, "momentum": 0.9, "nesterov": 1,
     "weight_decay": 0.01, "decay": 1},
    {"name": "sgd_momentum_nodecay", "kind": "sgd", "lr": [0.05] * T, "momentum": 0.8,
     "nesterov": 0, "weight_decay": 0.01, "decay": 0},
    {"name": "sgd_plain", "kind": "sgd", "lr": [0.2] * T, "momentum": 0.0, "nesterov": 0,
     "weight_decay": 0.001, "decay": 1},
    {"name": "adamw", "kind": "adamw", "lr": [0.01] * T, "beta1": 0.9, "beta2": 0.999,
     "eps": 1e-8, "weight_decay": 0.05, "decay": 1},
    {"name": "adamw_nodecay_sched", "kind": "adamw", "lr": [0.003 * (t + 1) for t in range(T)],
     "beta1": 0.8, "beta2": 0.99, "eps": 1e-6, "weight_decay": 0.1, "decay": 0},
]

out = {"p0": p0, **{"g.%d" % t: g for t, g in enumerate(grads)}}
for c in CONFIGS:
    p = torch.nn.Parameter(p0.clone())
    wd = c["weight_decay"] if c["decay"] else 0.0
    if c["kind"] == "sgd":
        opt = torch.optim.SGD([p], lr=c["lr"][0], momentum=c["momentum"],
                              nesterov=bool(c["nesterov"]), weight_decay=wd)
    else:
        opt = torch.optim.AdamW([p], lr=c["lr"][0], betas=(c["beta1"], c["beta2"]),
                                eps=c["eps"], weight_decay=wd)
    for t in range(T):
        for group in opt.param_groups:
            group["lr"] = c["lr"][t]
        p.grad = grads[t].clone()
        opt.step()
        out["%s.p.%d" % (c["name"], t)] = p.detach().clone()

st_read.write(sys.argv[1], {k: v.numpy() for k, v in out.items()},
              {"configs": json.dumps(CONFIGS), "steps": str(T), "torch": torch.__version__})
