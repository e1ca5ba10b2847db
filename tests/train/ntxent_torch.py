#!/usr/bin/python3
"""ntxent_torch.py OUT - PyTorch's NT-Xent (SimCLR) loss and gradient for random embeddings,
for test_contrastive to compare with Basira's: the embeddings normalised (F.normalize), the
similarities over the temperature with each row's own masked out, the cross-entropy towards
the other view (row i + n/2 mod n), autograd in double. Writes "n d tau", z, loss, gradient.
Exit 77 when torch is missing."""
import sys

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    print("torch is not installed for this python", file=sys.stderr)
    sys.exit(77)

N, D, TAU = 16, 8, 0.2
g = torch.Generator().manual_seed(20261207)
z32 = torch.randn(N, D, generator=g).float()
z = z32.double().requires_grad_(True)
u = F.normalize(z, dim=1)
s = u @ u.t() / TAU
s = s.masked_fill(torch.eye(N, dtype=torch.bool), float("-inf"))
target = (torch.arange(N) + N // 2) % N
loss = F.cross_entropy(s, target)
loss.backward()
with open(sys.argv[1], "w") as f:
    f.write("%d %d %.17g\n" % (N, D, TAU))
    f.write(" ".join("%.9g" % v for v in z32.flatten().tolist()) + "\n")
    f.write("%.17g\n" % loss.item())
    f.write(" ".join("%.17g" % v for v in z.grad.flatten().tolist()) + "\n")
