"""The Python route through annbatch_c beside `annbatch bench`, one run.

    PYTHONPATH=build/pybuild python3 tools/perf/python_bench.py STORE [--annbatch build/annbatch]
        [--batch-size 4096 --chunk-size 32 --preload-nchunks 256] [--seconds 15] [--repeat 2]

For the same store and settings, measures samples/s of:
  - `annbatch bench --touch` (C consumers reading every byte of each batch)
    and `annbatch bench` (batches released unread: the engine's own rate);
  - annbatch_c yielding scipy CSR batches, the consumer summing every value;
  - annbatch_c yielding torch CSR tensors, the consumer summing every value;
alternating them `--repeat` times so the machine's noise falls on all alike,
and prints one table with each Python route's ratio to the C bench. Warm:
the store is read once before the timed runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def python_route(store: str, args, to_torch: bool) -> float:
    import annbatch_c as annbatch

    ld = annbatch.Loader(batch_size=args.batch_size, chunk_size=args.chunk_size,
                         preload_nchunks=args.preload_nchunks, shuffle=True, seed=1, to_torch=to_torch,
                         threads=args.threads).use_collection(store) if args.collection else \
        annbatch.Loader(batch_size=args.batch_size, chunk_size=args.chunk_size,
                        preload_nchunks=args.preload_nchunks, shuffle=True, seed=1, to_torch=to_torch,
                        threads=args.threads).add_adata(store)
    rows, t0, epoch = 0, time.perf_counter(), 0
    sink = 0.0
    while True:
        for b in ld:
            x = b["X"]
            sink += float(x.values().sum()) if to_torch else float(x.data.sum())
            rows += x.shape[0]
            if time.perf_counter() - t0 >= args.seconds:
                return rows / (time.perf_counter() - t0)
        epoch += 1


def c_bench(store: str, args, touch: bool = True) -> float:
    out = subprocess.run([args.annbatch, "bench", store, "--batch-size", str(args.batch_size), "--chunk-size",
                          str(args.chunk_size), "--preload-nchunks", str(args.preload_nchunks), "--shuffle",
                          "--seed", "1", "--duration", str(args.seconds), "--json", "--consumers", "1"]
                         + (["--touch"] if touch else [])
                         + (["--threads", str(args.threads)] if args.threads else []),
                         capture_output=True, text=True, check=True)
    j = json.loads(out.stdout)
    for key in ("samples_per_s", "rows_per_s"):
        if key in j:
            return float(j[key])
    raise SystemExit(f"bench --json: no samples/s in {sorted(j)}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("store")
    ap.add_argument("--annbatch", default="build/annbatch")
    ap.add_argument("--batch-size", type=int, default=4096)
    ap.add_argument("--chunk-size", type=int, default=32)
    ap.add_argument("--preload-nchunks", type=int, default=256)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    args.collection = os.path.isfile(os.path.join(args.store, "zarr.json")) and "dataset_0" in os.listdir(args.store)
    # warm the page cache
    for root, _, files in os.walk(args.store):
        for f in files:
            with open(os.path.join(root, f), "rb") as fh:
                while fh.read(1 << 20):
                    pass
    res = {"C bench --touch": [], "C bench (batches not read)": [], "annbatch_c scipy CSR": [],
           "annbatch_c torch CSR": []}
    for _ in range(args.repeat):
        res["C bench --touch"].append(c_bench(args.store, args))
        res["C bench (batches not read)"].append(c_bench(args.store, args, touch=False))
        res["annbatch_c scipy CSR"].append(python_route(args.store, args, False))
        res["annbatch_c torch CSR"].append(python_route(args.store, args, True))
    c = max(res["C bench --touch"])
    print(f"| route | samples/s (best of {args.repeat}) | ratio to C |")
    print("| --- | --- | --- |")
    for k, v in res.items():
        print(f"| {k} | {max(v):,.0f} | {max(v) / c:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
