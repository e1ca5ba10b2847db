#!/usr/bin/python3
"""torch_bench.py - PyTorch's side of bench/nn_vs_torch (same measurements as nn_bench.c).

    torch_bench.py train ARCH.json THREADS BATCH STEPS [bf16]
                   {"images_per_s": x, "images_per_cpu_s": per second of process CPU time}
    torch_bench.py infer ARCH.json THREADS REPEATS [bf16]
                   {"ms_batch1": m, "cpu_ms_batch1": thread CPU time, "peak_rss_mb": y}

bf16: the same under torch.autocast("cpu", dtype=torch.bfloat16), PyTorch's mixed
precision on CPU. Where the installed version cannot run the model that way (PyTorch
1.13 has no bf16 backward of hardtanh, MobileNetV2's ReLU6), it prints {"error": why}.

The model is built from the architecture JSON that nn_bench prints
(tests/nn/torch_graph.py), so both sides run the same network. Inference uses
torch.inference_mode() in eval mode, which is what a PyTorch user would deploy.
"""
import contextlib
import json
import os
import resource
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "tests", "nn"))
from torch_graph import GraphNet  # noqa: E402


def main():
    mode, arch_path, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    bf16 = sys.argv[-1] == "bf16"
    if bf16 and not hasattr(torch, "autocast"):
        print(json.dumps({"error": "torch %s has no torch.autocast" % torch.__version__}))
        return
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else (
        lambda: contextlib.nullcontext())
    torch.set_num_threads(threads)
    with open(arch_path) as f:
        arch = json.load(f)
    torch.manual_seed(1)
    model = GraphNet(arch)
    c, h, w = arch["input"]
    k = arch["num_classes"]
    if mode == "train":
        batch, steps = int(sys.argv[4]), int(sys.argv[5])
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True,
                              weight_decay=1e-4)
        x = torch.rand(batch, c, h, w) * 2 - 1
        labels = torch.arange(batch) % k
        model.train()
        t0 = 0.0
        for s in range(-1, steps):  # step -1 warms up
            if s == 0:
                t0, c0 = time.perf_counter(), time.process_time()
            opt.zero_grad(set_to_none=True)
            with autocast():
                out = model(x)
            loss = F.cross_entropy(out.float(), labels, label_smoothing=0.1)
            try:
                loss.backward()
            except RuntimeError as e:
                print(json.dumps({"error": str(e).splitlines()[0]}))
                return
            opt.step()
        dt, cdt = time.perf_counter() - t0, time.process_time() - c0
        # images_per_cpu_s: per second of CPU time of all the process's threads, which a
        # neighbour taking the cores inflates less than the wall clock.
        print(json.dumps({"images_per_s": steps * batch / dt,
                          "images_per_cpu_s": steps * batch / cdt}))
    else:
        repeats = int(sys.argv[4])
        model.eval()
        x = torch.rand(1, c, h, w) * 2 - 1
        ms, cms = [], []
        with torch.inference_mode(), autocast():
            for r in range(-3, repeats):
                t0, c0 = time.perf_counter(), time.thread_time()
                model(x)
                if r >= 0:
                    ms.append(1e3 * (time.perf_counter() - t0))
                    cms.append(1e3 * (time.thread_time() - c0))
        ms.sort()
        cms.sort()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        # cpu_ms_batch1: CPU time of this thread (one thread: every op runs on it), less
        # disturbed than the wall clock when neighbours take the cores.
        print(json.dumps({"ms_batch1": ms[len(ms) // 2], "cpu_ms_batch1": cms[len(cms) // 2],
                          "peak_rss_mb": rss}))


if __name__ == "__main__":
    main()
