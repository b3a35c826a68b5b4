"""PyTorch's side of `cargo xtask parity-torch`: the small CNN trained the same way in both.

`write DIR --data FMNIST_DIR [--seed S] [--steps 200]`: takes 400 Fashion-MNIST training images
(the first 40 of each class), normalised as ours ((x/255 - 0.2860) / 0.3530), builds the small
CNN with PyTorch's default initialisation, and writes to DIR
  init.pt        the initial weights (a state dict; names are the Burn model's paths),
  images.npy     [400, 1, 28, 28] float32,  labels.npy [400] int64,
  batches.npy    [steps, 32] int64: each step's batch, reshuffled every pass as a
                 DataLoader(shuffle=True, drop_last=True) does,
  torch_losses.npy  the loss after each of `steps` Adam steps (lr 1e-3, PyTorch's
                 defaults: betas (0.9, 0.999), eps 1e-8), dropout off (model.eval()).
The Rust side (`crates/baal-reproduce/examples/parity_torch.rs`) reads them and trains the same batches.
"""
import argparse, gzip, os, struct

import numpy as np
import torch
from torch import nn


class Head(nn.Module):
    def __init__(self, inputs, hidden, outputs, p):
        super().__init__()
        self.dropout1, self.dense1 = nn.Dropout(p[0]), nn.Linear(inputs, hidden)
        self.dropout2, self.dense2 = nn.Dropout(p[1]), nn.Linear(hidden, outputs)

    def forward(self, x):
        x = torch.relu(self.dense1(self.dropout1(x)))
        return self.dense2(self.dropout2(x))


class SmallCnn(nn.Module):
    """conv 5x5 x16 - relu - pool - conv 5x5 x32 - relu - pool - dropout - dense 128 - relu -
    dropout - dense 10; attribute names follow the Burn model's so the state dict loads as is."""

    def __init__(self, p=(0.25, 0.5)):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 16, 5), nn.Conv2d(16, 32, 5)
        self.head = Head(32 * 4 * 4, 128, 10, p)

    def forward(self, x):
        x = torch.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.head(x.flatten(1))


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    dims = magic & 0xFF
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def find(folder, stem):
    for name in (stem + "-ubyte.gz", stem + "-ubyte", stem + ".gz", stem):
        if os.path.exists(os.path.join(folder, name)):
            return os.path.join(folder, name)
    raise SystemExit(f"no {stem} in {folder}")


def balanced(labels, per_class):
    picks = [np.flatnonzero(labels == c)[:per_class] for c in range(10)]
    return np.sort(np.concatenate(picks))


def write(args):
    os.makedirs(args.dir, exist_ok=True)
    images = read_idx(find(args.data, "train-images-idx3"))
    labels = read_idx(find(args.data, "train-labels-idx1")).astype(np.int64)
    index = balanced(labels, 40)
    x = ((images[index].astype(np.float32) / 255.0 - 0.2860) / 0.3530)[:, None]
    y = labels[index]
    torch.manual_seed(args.seed)
    model = SmallCnn()
    torch.save(model.state_dict(), os.path.join(args.dir, "init.pt"))
    np.save(os.path.join(args.dir, "images.npy"), x)
    np.save(os.path.join(args.dir, "labels.npy"), y)
    gen = torch.Generator().manual_seed(args.seed)
    batches = []
    while len(batches) < args.steps:
        order = torch.randperm(len(y), generator=gen).numpy()
        for start in range(0, len(y) - args.batch + 1, args.batch):
            batches.append(order[start:start + args.batch])
    batches = np.stack(batches[:args.steps]).astype(np.int64)
    np.save(os.path.join(args.dir, "batches.npy"), batches)
    model.eval()  # dropout off
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    losses = []
    for batch in batches:
        b = torch.from_numpy(batch)
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(xt[b]), yt[b])
        loss.backward()
        opt.step()
        losses.append(loss.item())
    np.save(os.path.join(args.dir, "torch_losses.npy"), np.array(losses, dtype=np.float64))
    print(f"torch {torch.__version__}: {args.steps} steps, loss {losses[0]:.4f} -> {losses[-1]:.4f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("write")
    w.add_argument("dir")
    w.add_argument("--data", required=True)
    w.add_argument("--seed", type=int, default=0)
    w.add_argument("--steps", type=int, default=200)
    w.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    write(args)
