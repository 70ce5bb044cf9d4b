#!/usr/bin/env python3
"""The study's +BN model in plain PyTorch, for speed and accuracy comparisons with `sweep`.

Reads the IDX files in data/mnist (no download), trains 784-(1024 BN ReLU)x3-10 with SGD
(lr 0.01, momentum 0.9, weight decay 1e-6, batch 100) and prints, per epoch, the seconds and
test accuracy; with --step-bench it also times training steps and the step's matrix products.
With --json it prints one JSON object instead (what `sweep bench --python` reads): the step's
products (each in the layout nn.Linear uses: addmm forward, mm for both gradients), the step,
and, unless --epochs 0, the last epoch's seconds.

    python3 bench/pytorch_reference.py --device cuda --epochs 2
    python3 bench/pytorch_reference.py --device cpu --threads 2 --step-bench
    python3 bench/pytorch_reference.py --threads 2 --epochs 1 --json
"""
import argparse, gzip, json, os, time

import numpy as np
import torch
import torch.nn as nn


def idx(path):
    for p in (path, path + ".gz"):
        if os.path.exists(p):
            raw = gzip.open(p).read() if p.endswith(".gz") else open(p, "rb").read()
            dims = raw[3]  # magic: 0x00 0x00 0x08 (u8) then the number of dimensions
            shape = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
            return np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(shape)
    raise FileNotFoundError(path)


def load(data, device):
    def split(stem):
        x = torch.tensor(idx(f"{data}/{stem}-images-idx3-ubyte"), dtype=torch.float32).div_(255)
        x = x.sub_(0.1307).div_(0.3081).reshape(-1, 784)
        y = torch.tensor(idx(f"{data}/{stem}-labels-idx1-ubyte"), dtype=torch.long)
        return x.to(device), y.to(device)
    return split("train"), split("t10k")


def model():
    layers, width = [], 784
    for _ in range(3):
        layers += [nn.Linear(width, 1024), nn.BatchNorm1d(1024), nn.ReLU()]
        width = 1024
    return nn.Sequential(*layers, nn.Linear(width, 10))


def gemm_ms(batch=100, widths=(784, 1024, 1024, 1024, 10), reps=50):
    """ms per step of the step's products alone, timed as nn.Linear's forward and backward run
    them; and their GFLOP/s."""
    g = torch.Generator().manual_seed(0)
    r = lambda *shape: torch.randn(*shape, generator=g)
    products, flop = [], 0
    for i, o in zip(widths, widths[1:]):
        x, w, b, dy = r(batch, i), r(o, i), r(o), r(batch, o)
        products.append(lambda x=x, w=w, b=b: torch.addmm(b, x, w.t()))  # forward
        products.append(lambda x=x, dy=dy: torch.mm(dy.t(), x))          # weight gradient
        flop += 2 * 2 * batch * i * o
        if i != widths[0]:
            products.append(lambda dy=dy, w=w: torch.mm(dy, w))          # input gradient
            flop += 2 * batch * i * o
    for _ in range(5):
        for p in products: p()
    best = float("inf")
    for _ in range(4):  # the best of 4 rounds, as sweep bench keeps its best
        t0 = time.perf_counter()
        for _ in range(reps):
            for p in products: p()
        best = min(best, (time.perf_counter() - t0) / reps * 1000)
    return best, flop / best / 1e6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--data", default="data/mnist")
    ap.add_argument("--step-bench", action="store_true")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.json:
        return report_json(a)
    dev = torch.device(a.device)
    sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)
    torch.manual_seed(0)
    (xtr, ytr), (xte, yte) = load(a.data, dev)
    net = model().to(dev)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-6)
    loss_fn = nn.CrossEntropyLoss()
    print(f"device = {dev} ({torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'cpu'}), torch {torch.__version__}")
    for epoch in range(1, a.epochs + 1):
        sync(); t0 = time.time()
        net.train()
        perm = torch.randperm(len(xtr), device=dev)
        for i in range(0, len(xtr), 100):
            b = perm[i:i + 100]
            opt.zero_grad(set_to_none=True)
            loss_fn(net(xtr[b]), ytr[b]).backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            acc = (net(xte).argmax(1) == yte).float().mean().item() * 100
        sync()
        print(f"epoch {epoch} = {time.time() - t0:.2f} s, test acc {acc:.2f} %")
    if a.step_bench:
        x, y = xtr[:100], ytr[:100]
        net.train()
        def step():
            opt.zero_grad(set_to_none=True); loss_fn(net(x), y).backward(); opt.step()
        for _ in range(10): step()
        sync(); t0 = time.time()
        for _ in range(100): step()
        sync(); print(f"step = {(time.time() - t0) * 10:.2f} ms")


def report_json(a):
    torch.manual_seed(0)
    ms, gflops = gemm_ms()
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(),
           "blas": torch.backends.mkl.is_available() and "MKL" or "other",
           "gemm_ms": ms, "gemm_gflops": gflops}
    (xtr, ytr), _ = load(a.data, torch.device("cpu"))
    net = model()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-6)
    loss_fn = nn.CrossEntropyLoss()
    net.train()
    x, y = xtr[:100], ytr[:100]
    def step(x, y):
        opt.zero_grad(set_to_none=True); loss_fn(net(x), y).backward(); opt.step()
    for _ in range(10): step(x, y)
    t0 = time.perf_counter()
    for _ in range(100): step(x, y)
    out["step_ms"] = (time.perf_counter() - t0) * 10
    for _ in range(a.epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(len(xtr))
        for i in range(0, len(xtr), 100):
            b = perm[i:i + 100]
            step(xtr[b], ytr[b])
        out["epoch_s"] = time.perf_counter() - t0
    print(json.dumps(out))


if __name__ == "__main__":
    main()
