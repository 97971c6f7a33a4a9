#!/usr/bin/python3
"""The route a user would take without annbatch: zarr-python + numpy/scipy.

Does what the annbatch loader does, with the Python stack Debian ships
(zarr 2.13, which reads zarr v2 only): every step picks preload_nchunks random
chunks of chunk_size contiguous rows, reads them through zarr, concatenates
them, permutes the rows in memory and cuts batches of batch_size (scipy CSR
for a csr_matrix X, numpy arrays for a dense X). Chunks are drawn without
replacement within an epoch, like the loader's shuffle.

For CSR the indptr array is read once at start (it is 8 bytes a row and every
loader keeps it in memory); each chunk is then an indptr slice followed by one
data slice and one indices slice through zarr, which decodes every zarr chunk
the slice touches.

Runs for --duration seconds (whole steps; at least one) and prints one JSON
object: samples/s, batches, steps, and the settings.
"""
import argparse
import json
import sys
import time

import numpy as np
import scipy.sparse as sp
import zarr


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("store", help="zarr v2 AnnData store")
    ap.add_argument("--chunk-size", type=int, default=32)
    ap.add_argument("--preload-nchunks", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=4096)
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()

    root = zarr.open_group(a.store, mode="r")
    x = root["X"]
    sparse = isinstance(x, zarr.hierarchy.Group)
    t_open = time.perf_counter()
    if sparse:
        indptr = x["indptr"][:]
        data, indices = x["data"], x["indices"]
        n_obs = len(indptr) - 1
        n_vars = int(x.attrs["shape"][1])
    else:
        n_obs, n_vars = x.shape
    open_s = time.perf_counter() - t_open

    rng = np.random.default_rng(a.seed)
    cs, pn, bs = a.chunk_size, a.preload_nchunks, a.batch_size
    starts = np.arange(0, n_obs, cs)
    samples = batches = steps = 0
    read_s = 0.0
    t0 = time.perf_counter()
    order, pos = rng.permutation(starts), 0
    while True:
        if pos >= len(order):  # next epoch
            order, pos = rng.permutation(starts), 0
        pick = order[pos:pos + pn]
        pos += pn
        tr = time.perf_counter()
        if sparse:
            parts_d, parts_i, lens = [], [], []
            for s in pick:
                e = min(s + cs, n_obs)
                lo, hi = int(indptr[s]), int(indptr[e])
                parts_d.append(data[lo:hi])
                parts_i.append(indices[lo:hi])
                lens.append(np.diff(indptr[s:e + 1]))
            rl = np.concatenate(lens)
            ip = np.zeros(len(rl) + 1, dtype=np.int64)
            np.cumsum(rl, out=ip[1:])
            win = sp.csr_matrix((np.concatenate(parts_d), np.concatenate(parts_i), ip),
                                shape=(len(rl), n_vars))
        else:
            win = np.concatenate([x[s:min(s + cs, n_obs)] for s in pick])
        read_s += time.perf_counter() - tr
        perm = rng.permutation(win.shape[0])
        win = win[perm]
        for b in range(0, win.shape[0], bs):
            batch = win[b:b + bs]
            samples += batch.shape[0]
            batches += 1
        steps += 1
        if time.perf_counter() - t0 >= a.duration:
            break
    el = time.perf_counter() - t0
    json.dump({
        "samples": samples, "batches": batches, "steps": steps, "elapsed_s": el,
        "samples_per_s": samples / el, "read_fraction": read_s / el,
        "open_s": open_s, "n_obs": n_obs, "n_vars": n_vars, "sparse": sparse,
        "chunk_size": cs, "preload_nchunks": pn, "batch_size": bs,
        "zarr": zarr.__version__, "numpy": np.__version__,
        "scipy": __import__("scipy").__version__,
    }, sys.stdout)
    print()


if __name__ == "__main__":
    main()
