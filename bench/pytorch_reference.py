#!/usr/bin/env python3
"""The study's +BN model in plain PyTorch, for speed and accuracy comparisons with `sweep`.

Reads the IDX files in data/mnist (no download), trains 784-(1024 BN ReLU)x3-10 with SGD
(lr 0.01, momentum 0.9, weight decay 1e-6, batch 100) and prints, per epoch, the seconds and
test accuracy; with --step-bench it also times training steps and the step's matrix products.

    python3 bench/pytorch_reference.py --device cuda --epochs 2
    python3 bench/pytorch_reference.py --device cpu --threads 2 --step-bench
"""
import argparse, gzip, os, time

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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--data", default="data/mnist")
    ap.add_argument("--step-bench", action="store_true")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
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


if __name__ == "__main__":
    main()
