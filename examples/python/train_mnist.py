#!/usr/bin/env python3
"""A small PyTorch MNIST trainer that speaks sweep's protocol for command trials.

    python3 examples/python/train_mnist.py --lr 0.01 --momentum 0.9 --epochs 5 --out DIR

- Reads MNIST from data/mnist (the IDX files this repository carries; no download).
- Holds out 10000 training images for validation (seeded, the same in every trial).
- After every epoch prints one JSON line on stdout, the protocol:
      {"epoch": 3, "train_loss": 0.08, "val_loss": 0.07, "val_acc": 97.9, "test_acc": 97.8}
- Keeps the model of best val_acc in DIR/best.pt and its full state in DIR/state.pt after
  every epoch; with SWEEP_RESUME=1 (a trial run again after an interruption) it continues
  from that state.
- SIGTERM (sweep stopping or pruning the trial) ends it at once; its last state stays.

Needs PyTorch and numpy (not part of CI). The sweep: examples/python/sweep.toml.
"""
import argparse, gzip, json, os, struct

import numpy as np
import torch
from torch import nn

p = argparse.ArgumentParser()
p.add_argument("--lr", type=float, default=0.01)
p.add_argument("--momentum", type=float, default=0.9)
p.add_argument("--epochs", type=int, default=5)
p.add_argument("--hidden", type=int, default=1024)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--data", default="data/mnist")
p.add_argument("--out", default=os.environ.get("SWEEP_TRIAL_DIR", "."))
a = p.parse_args()


def idx(name):
    with gzip.open(os.path.join(a.data, name + ".gz")) as f:
        data = f.read()
    dims = data[3]
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def tensors(images, labels):
    x = torch.tensor((images.reshape(len(images), -1) / 255.0 - 0.1307) / 0.3081, dtype=torch.float32)
    return x, torch.tensor(labels, dtype=torch.long)


device = "cuda" if torch.cuda.is_available() else "cpu"
train_x, train_y = tensors(idx("train-images-idx3-ubyte"), idx("train-labels-idx1-ubyte"))
test_x, test_y = tensors(idx("t10k-images-idx3-ubyte"), idx("t10k-labels-idx1-ubyte"))
split = np.random.default_rng(0).permutation(len(train_y))
val_x, val_y = train_x[split[:10000]], train_y[split[:10000]]
train_x, train_y = train_x[split[10000:]], train_y[split[10000:]]

torch.manual_seed(a.seed)
model = nn.Sequential(
    nn.Linear(784, a.hidden), nn.BatchNorm1d(a.hidden), nn.ReLU(),
    nn.Linear(a.hidden, a.hidden), nn.BatchNorm1d(a.hidden), nn.ReLU(),
    nn.Linear(a.hidden, 10),
).to(device)
opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=a.momentum, weight_decay=1e-6)
state_path, best_path = os.path.join(a.out, "state.pt"), os.path.join(a.out, "best.pt")
start, best = 1, -1.0
if os.environ.get("SWEEP_RESUME") == "1" and os.path.exists(state_path):
    state = torch.load(state_path)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["opt"])
    start, best = state["epoch"] + 1, state["best"]


def evaluate(x, y):
    model.eval()
    with torch.no_grad():
        logits = model(x.to(device))
        loss = nn.functional.cross_entropy(logits, y.to(device)).item()
        acc = (logits.argmax(1).cpu() == y).float().mean().item() * 100
    return loss, acc


for epoch in range(start, a.epochs + 1):
    model.train()
    order = torch.randperm(len(train_y), generator=torch.Generator().manual_seed(a.seed * 1000 + epoch))
    total = 0.0
    for i in range(0, len(order), 100):
        b = order[i:i + 100]
        loss = nn.functional.cross_entropy(model(train_x[b].to(device)), train_y[b].to(device))
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += loss.item() * len(b)
    val_loss, val_acc = evaluate(val_x, val_y)
    _, test_acc = evaluate(test_x, test_y)
    if val_acc > best:
        best = val_acc
        torch.save(model.state_dict(), best_path)
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "epoch": epoch, "best": best}, state_path)
    print(json.dumps({"epoch": epoch, "train_loss": total / len(order), "val_loss": val_loss,
                      "val_acc": val_acc, "test_acc": test_acc}), flush=True)
