#!/usr/bin/python3
"""torch_agreement.py MODEL.safetensors OUT.safetensors - PyTorch's answers for a Basira model.

Reads a model written by Basira (weights + "architecture" in the metadata), builds
the same network in PyTorch from that architecture (torch_graph.py), and writes
what PyTorch computes for a fixed batch, for torch_agreement.c to compare with the
C engine:
  x, labels (as float), class_weights      the batch and the loss settings
  logits_eval                              eval mode (running statistics)
  logits_train, loss                       train mode (batch statistics), then the
                                           cross-entropy with class weights and
                                           label smoothing (metadata "label_smoothing")
  grad.<param>                             d loss / d param after one backward
  delta.<param>                            change made by one SGD step (Nesterov
                                           momentum, weight decay on conv/fc weights only)
  after.<layer>.running_mean/var           running statistics after the train forward
Exit 77 when torch is missing.
"""
import os
import sys

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    print("torch is not installed for this python", file=sys.stderr)
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import json  # noqa: E402

import st_read  # noqa: E402
from torch_graph import GraphNet  # noqa: E402

LABEL_SMOOTHING = 0.1
BATCH = 4
SGD_LR, SGD_WD = 0.1, 0.01


def main():
    torch.set_num_threads(2)
    tensors, meta = st_read.read(sys.argv[1])
    arch = json.loads(meta["architecture"])
    model = GraphNet(arch)
    model.load_basira(tensors)

    g = torch.Generator().manual_seed(20261122)
    c, h, w = arch["input"]
    k = arch["num_classes"]
    x = torch.randn(BATCH, c, h, w, generator=g)
    labels = torch.randint(0, k, (BATCH,), generator=g)
    class_weights = torch.rand(k, generator=g) + 0.5

    model.eval()
    with torch.no_grad():
        logits_eval = model(x)
    model.train()
    logits_train = model(x)
    loss = F.cross_entropy(logits_train, labels, weight=class_weights,
                           label_smoothing=LABEL_SMOOTHING)
    model.zero_grad()
    loss.backward()

    # One SGD step as a PyTorch recipe writes it: weight decay only on conv/fc weights
    # (a parameter group without decay for biases and batch-norm parameters).
    named = model.basira_tensors()
    params = {n: t for n, t in named.items() if t.requires_grad}
    before = {n: t.detach().clone() for n, t in params.items()}
    decay = [t for n, t in params.items() if t.dim() > 1]
    no_decay = [t for n, t in params.items() if t.dim() <= 1]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": SGD_WD},
                           {"params": no_decay, "weight_decay": 0.0}],
                          lr=SGD_LR, momentum=0.9, nesterov=True)
    grads = {n: t.grad.detach().clone() for n, t in params.items()}
    opt.step()

    out = {
        "x": x,
        "labels": labels.float(),
        "class_weights": class_weights,
        "logits_eval": logits_eval,
        "logits_train": logits_train.detach(),
        "loss": loss.detach().reshape(()),
    }
    for name, t in named.items():
        if name.endswith(".running_mean") or name.endswith(".running_var"):
            out["after." + name] = t.detach()
        elif name in grads:
            out["grad." + name] = grads[name]
            out["delta." + name] = t.detach() - before[name]
        else:
            raise ValueError("no gradient for %s" % name)
    st_read.write(sys.argv[2], {n: t.float().numpy() for n, t in out.items()},
                  {"label_smoothing": repr(LABEL_SMOOTHING), "sgd_lr": repr(SGD_LR),
                   "sgd_weight_decay": repr(SGD_WD), "torch": torch.__version__})


if __name__ == "__main__":
    main()
