"""PyTorch's side of the `conv/*` benches: the same layers and ops, one by one.

For each layer (see benches/benches/conv.rs): `forward` (F.conv2d), `input_backward`
(torch.nn.grad.conv2d_input), `weight_backward` (torch.nn.grad.conv2d_weight) and `train`
(forward and backward through autograd; the input's gradient only where a network needs it,
not for a first layer), then the 2×2 max poolings after them, `pool/<id>/train` (forward and the
input's gradient). Prints one JSON object per bench id: median milliseconds.

Run: python benches/torch/conv_ops.py   (cargo xtask bench-torch runs it after train_steps.py)
"""
import json, statistics, time

import torch
import torch.nn.functional as F

LAYERS = [("small1", 32, 1, 28, 16, 5), ("small2", 32, 16, 12, 32, 5),
          ("gal1", 64, 1, 28, 32, 4), ("gal2", 64, 32, 25, 32, 4)]

POOLS = [("small1", (32, 16, 24, 24)), ("small2", (32, 32, 8, 8)), ("gal", (64, 32, 22, 22))]


def median_ms(fn, reps=40):
    for _ in range(5):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return round(statistics.median(times) * 1e3, 3)


def main():
    torch.manual_seed(0)
    for name, batch, channels, side, filters, kernel in LAYERS:
        out = side - kernel + 1
        x = torch.randn(batch, channels, side, side)
        w = torch.randn(filters, channels, kernel, kernel)
        g = torch.randn(batch, filters, out, out)
        first = channels == 1

        def train():
            xr = x if first else x.clone().requires_grad_(True)
            wr = w.clone().requires_grad_(True)
            F.conv2d(xr, wr).backward(g)

        ops = {
            "forward": lambda: F.conv2d(x, w),
            "input_backward": lambda: torch.nn.grad.conv2d_input(x.shape, w, g),
            "weight_backward": lambda: torch.nn.grad.conv2d_weight(x, w.shape, g),
            "train": train,
        }
        for op, fn in ops.items():
            print(json.dumps({"bench": f"conv/{name}/{op}", "torch": torch.__version__,
                              "threads": torch.get_num_threads(), "median_ms": median_ms(fn)}),
                  flush=True)

    for name, shape in POOLS:
        x = torch.randn(*shape)
        g = torch.randn(shape[0], shape[1], shape[2] // 2, shape[3] // 2)

        def pool_train():
            xr = x.clone().requires_grad_(True)
            F.max_pool2d(xr, 2, 2).backward(g)

        print(json.dumps({"bench": f"pool/{name}/train", "torch": torch.__version__,
                          "threads": torch.get_num_threads(), "median_ms": median_ms(pool_train)}),
              flush=True)


if __name__ == "__main__":
    main()
