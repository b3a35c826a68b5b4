"""The quick Fashion-MNIST profile's random-acquisition runs, in PyTorch: the accuracy side of
issue 10's comparison, to put beside `cargo xtask reproduce fashion-mnist --quick
--heuristics random`.

Same protocol as ours (not the same random draws): 100 balanced initial labels, +20 random
labels a step up to 400, weights reset to the run's initial weights every step, the small CNN
(PyTorch defaults, dropout .25/.5 on in training), Adam (lr --lr, PyTorch's epsilon), batches
of 32 reshuffled every pass (last partial batch kept), --samples images per fit, evaluation as
the mean of 5 dropout-on passes over a fixed random test subset of 2000. Prints one JSON line
per seed: the curve and its mean (the "mean accuracy over the run"), and the mean seconds per
step of training, evaluation and a BALD step's MC prediction and ranking (20 dropout-on passes
over a random 2000 of the pool, as the quick profile's BALD runs; timed each step, not used to
choose: the labels stay random).

With --mc-caching, evaluation and the BALD step predict through Python baal's fastest MC path
(`pip install baal`): the model wrapped in `MCDropoutModule` (dropout always on, the model in
eval mode) and `MCCachingModule` (each convolution and dense layer keeps its last output and
returns it again while its input is unchanged: the layers before the first dropout run once).

Run: python benches/torch/quick_recipe.py --data /usr/share/datasets/fashion-mnist [--seeds 3]
"""
import argparse, copy, json, time

import numpy as np
import torch
from torch import nn

from parity import SmallCnn, balanced, find, read_idx


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--samples", type=int, default=6400)
    parser.add_argument("--epochs", type=int, default=0,
                        help="train for this many passes (at least --min-steps steps) instead "
                             "of --samples; issue 10's old recipe is --lr 1e-3 --epochs 30")
    parser.add_argument("--min-steps", type=int, default=200)
    parser.add_argument("--mc-caching", action="store_true",
                        help="predict through baal's MCDropoutModule + MCCachingModule")
    args = parser.parse_args()
    if args.mc_caching:
        from baal.bayesian.caching_utils import MCCachingModule
        from baal.bayesian.dropout import MCDropoutModule

        def predictor(model):
            wrapped = MCCachingModule(MCDropoutModule(copy.deepcopy(model)))
            return wrapped.eval()
    else:
        def predictor(model):
            return model
    norm = lambda x: torch.from_numpy(((x.astype(np.float32) / 255.0 - 0.2860) / 0.3530)[:, None])
    train_x = norm(read_idx(find(args.data, "train-images-idx3")))
    train_y = torch.from_numpy(read_idx(find(args.data, "train-labels-idx1")).astype(np.int64))
    test_x = norm(read_idx(find(args.data, "t10k-images-idx3")))
    test_y = torch.from_numpy(read_idx(find(args.data, "t10k-labels-idx1")).astype(np.int64))
    means = []
    for seed in range(args.seeds):
        started = time.perf_counter()
        rng = np.random.default_rng(seed)
        timing_rng = np.random.default_rng(seed + 1000)  # keeps rng's label draws as before
        torch.manual_seed(seed)
        labels = train_y.numpy()
        order = rng.permutation(len(labels))
        labelled = list(order[balanced(labels[order], 10)])
        pool = np.setdiff1d(np.arange(len(labels)), labelled)
        test = torch.from_numpy(rng.choice(len(test_y), 2000, replace=False))
        model = SmallCnn()
        initial = {k: v.clone() for k, v in model.state_dict().items()}
        curve = []
        phases = {"train": [], "eval": [], "bald_predict_rank": []}
        while True:
            t0 = time.perf_counter()
            model.load_state_dict(initial)
            model.train()
            opt = torch.optim.Adam(model.parameters(), lr=args.lr)
            idx = torch.tensor(labelled)
            if args.epochs:
                steps = max(args.epochs * -(-len(idx) // 32), args.min_steps)
            else:
                steps = -(-args.samples // min(32, len(idx)))
            done = 0
            while done < steps:
                perm = idx[torch.randperm(len(idx))]
                for start in range(0, len(perm), 32):
                    if done == steps:
                        break
                    b = perm[start:start + 32]
                    opt.zero_grad()
                    nn.functional.cross_entropy(model(train_x[b]), train_y[b]).backward()
                    opt.step()
                    done += 1
            t1 = time.perf_counter()
            mc_model = predictor(model)
            with torch.no_grad():  # dropout stays on: MC evaluation
                test_batch = test_x[test]
                probs = sum(torch.softmax(mc_model(test_batch), 1) for _ in range(5)) / 5
            curve.append(float((probs.argmax(1) == test_y[test]).float().mean()))
            t2 = time.perf_counter()
            with torch.no_grad():  # BALD over 2000 pool items, T = 20
                subset = torch.from_numpy(timing_rng.choice(pool, 2000, replace=False))
                pool_x = train_x[subset]
                mc = torch.stack([torch.softmax(mc_model(pool_x), 1) for _ in range(20)], 2)
                mean = mc.mean(2)
                entropy = -(mean * torch.log(mean + 1e-12)).sum(1)
                expected = -(mc * torch.log(mc + 1e-12)).sum(1).mean(1)
                torch.argsort(entropy - expected, descending=True)
            t3 = time.perf_counter()
            phases["train"].append(t1 - t0)
            phases["eval"].append(t2 - t1)
            phases["bald_predict_rank"].append(t3 - t2)
            if len(labelled) >= 400:
                break
            picks = rng.choice(len(pool), 20, replace=False)
            labelled += list(pool[picks])
            pool = np.delete(pool, picks)
        means.append(float(np.mean(curve)))
        print(json.dumps({"seed": seed, "lr": args.lr, "samples": args.samples,
                          "epochs": args.epochs, "mc_caching": args.mc_caching,
                          "mean_accuracy": round(means[-1], 4), "final": round(curve[-1], 4),
                          "curve": [round(c, 3) for c in curve],
                          "seconds_per_step": {k: round(float(np.mean(v)), 3)
                                               for k, v in phases.items()},
                          "seconds": round(time.perf_counter() - started, 1)}), flush=True)
    print(json.dumps({"mean_over_seeds": round(float(np.mean(means)), 4),
                      "std": round(float(np.std(means, ddof=1)), 4) if len(means) > 1 else None}))


if __name__ == "__main__":
    main()
