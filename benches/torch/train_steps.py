"""PyTorch's side of the `train/small_cnn/b32`, `train/gal_cnn/b64` and `train/vgg_small/b64`
benches.

The same models (PyTorch's default initialisation), 400 random 28x28x1 (32x32x3) images, Adam lr 1e-3,
cross-entropy, dropout on, and one "fit" = reset the weights, then 50 gradient steps over
shuffled batches (a DataLoader-free loop over one tensor, the fastest way PyTorch offers).
Prints one JSON object per bench: gradient steps per second (median over 10 fits).

Run: python benches/torch/train_steps.py   (cargo xtask bench-torch sets up the venv)
"""
import copy, json, statistics, time

import torch
from torch import nn

from parity import SmallCnn

LABELLED, STEPS = 400, 50


def gal_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 32, 4), nn.ReLU(), nn.Conv2d(32, 32, 4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.25), nn.Linear(32 * 11 * 11, 128), nn.ReLU(),
        nn.Dropout(0.5), nn.Linear(128, 10))


def vgg_small():
    def block(c_in, c_out):
        return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(),
                nn.Conv2d(c_out, c_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
    return nn.Sequential(
        *block(3, 32), *block(32, 64), *block(64, 128), nn.Flatten(),
        nn.Linear(128 * 4 * 4, 256), nn.ReLU(), nn.Dropout(0.5), nn.Linear(256, 256), nn.ReLU(),
        nn.Dropout(0.5), nn.Linear(256, 10))


def bench(name, model, batch, shape=(1, 28, 28)):
    torch.manual_seed(0)
    x = torch.rand(LABELLED, *shape) * 2 - 1
    y = torch.arange(LABELLED) % 10
    initial = copy.deepcopy(model.state_dict())
    loss_fn = nn.CrossEntropyLoss()

    def fit():
        model.load_state_dict(initial)
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        step, losses = 0, []
        while step < STEPS:
            order = torch.randperm(LABELLED)
            for start in range(0, LABELLED, batch):
                if step == STEPS:
                    break
                idx = order[start:start + batch]
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model(x[idx]), y[idx])
                loss.backward()
                opt.step()
                losses.append(loss.detach())
                step += 1
            float(torch.stack(losses).mean())  # one read-back per pass, as ours
            losses = []

    fit()
    times = []
    for _ in range(10):
        t0 = time.perf_counter()
        fit()
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    print(json.dumps({"bench": f"train/{name}", "torch": torch.__version__,
                      "threads": torch.get_num_threads(), "median_s_per_fit": round(med, 4),
                      "steps_per_s": round(STEPS / med, 1)}), flush=True)


if __name__ == "__main__":
    bench("small_cnn/b32", SmallCnn(), 32)
    bench("gal_cnn/b64", gal_cnn(), 64)
    bench("vgg_small/b64", vgg_small(), 64, (3, 32, 32))
