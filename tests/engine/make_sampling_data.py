#!/usr/bin/env python3
"""Stores for test_sampling.sh, written by anndata (an independent writer).

grouped.zarr: 400 rows grouped by the categorical obs column "ct" (labels with
spaces, categories in an order unlike the runs' order), X = row * 3 + column
(float32, 3 columns). The runs are printed as JSON for the checker.
"""
import json
import os
import sys

import anndata
import numpy as np
import pandas as pd

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
runs = [("T cell", 120), ("B cell", 80), ("NK", 100), ("T cell", 60), ("Mono", 40)]
ct = [lab for lab, n in runs for _ in range(n)]
n = len(ct)
X = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
obs = pd.DataFrame({"ct": pd.Categorical(ct, categories=["B cell", "Mono", "NK", "T cell"]),
                    "donor": np.arange(n) % 7},
                   index=[f"c{i}" for i in range(n)])
anndata.AnnData(X=X, obs=obs).write_zarr(os.path.join(out, "grouped.zarr"))
json.dump({"labels": ct, "categories": ["B cell", "Mono", "NK", "T cell"],
           "donor": [int(d) for d in obs["donor"]]},
          open(os.path.join(out, "grouped.json"), "w"))
