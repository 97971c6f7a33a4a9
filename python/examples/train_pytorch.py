"""Train a small cell-type classifier on an annbatch collection.

    python examples/train_pytorch.py COLLECTION [--label cell_type] [--epochs 3]

Each batch arrives as a torch.sparse_csr_tensor over the engine's memory
(no copy), goes through one sparse matrix product (torch.sparse.mm) into a
small multilayer perceptron, and the loss of each epoch is printed with the
samples per second the loop achieved. The labels are the codes of a
categorical obs column, delivered with the batch.

Make a collection to try it on:

    annbatch synth cells.zarr --n-obs 20000 --n-vars 2000
    annbatch convert cells.zarr -o coll.zarr
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import annbatch_c as annbatch


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("collection")
    ap.add_argument("--label", default="cell_type", help="categorical obs column to predict")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--chunk-size", type=int, default=32)
    ap.add_argument("--preload-nchunks", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    loader = annbatch.Loader(
        chunk_size=args.chunk_size,
        preload_nchunks=args.preload_nchunks,
        batch_size=args.batch_size,
        shuffle=True,
        seed=args.seed,
        to_torch=True,
        obs_columns=[args.label],
    ).use_collection(args.collection)
    n_genes = loader.n_var

    # the classes: read from the first batch's categorical (one label table)
    first = next(iter(loader))
    classes = list(first["obs"][args.label].cat.categories)
    loader.set_epoch(0)
    print(f"{loader.n_obs} cells x {n_genes} genes, {len(classes)} classes, {len(loader)} batches an epoch")

    w_in = torch.nn.Parameter(torch.randn(n_genes, args.hidden) * (1.0 / np.sqrt(n_genes)))
    head = torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(args.hidden, len(classes)))
    params = [w_in, *head.parameters()]
    opt = torch.optim.Adam(params, lr=args.lr)
    loss_fn = torch.nn.CrossEntropyLoss()

    for epoch in range(args.epochs):
        t0, seen, total_loss, nb = time.perf_counter(), 0, 0.0, 0
        for batch in loader:
            x = batch["X"]  # torch.sparse_csr_tensor, a view of the engine's batch
            y = torch.from_numpy(batch["obs"][args.label].cat.codes.to_numpy().astype(np.int64))
            # log1p of the counts, kept sparse (values only)
            x = torch.sparse_csr_tensor(x.crow_indices(), x.col_indices(), torch.log1p(x.values()), size=x.shape)
            h = torch.sparse.mm(x, w_in)
            loss = loss_fn(head(h), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total_loss += loss.item()
            nb += 1
            seen += x.shape[0]
        dt = time.perf_counter() - t0
        print(f"epoch {epoch}: loss {total_loss / max(nb, 1):.4f}  {seen / dt:,.0f} samples/s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
