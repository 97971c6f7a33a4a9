#!/usr/bin/python3
"""Collects the runs of tools/perf/run.sh into one table.

    report.py OUT        reads OUT/info.env and OUT/runs/*, writes
                         OUT/results.md and OUT/results.json

Every run left four files: NAME.meta (key=value pairs naming what was
measured), NAME.cmd (the exact command), NAME.out (its JSON on stdout) and
NAME.time (/usr/bin/time -v, for the max RSS). Runs are paired by their
metadata: an annbatch run is compared with the Python route on the same data,
chunk_size, preload_nchunks and cache state, with fio at the read size the
engine issued, and with the decode ceiling of its data kind.
"""
import json
import math
import os
import re
import sys

MiB = 1048576.0
# A run is flagged when other processes kept more than this many cores busy.
OTHER_LIMIT = 0.15


def store_shape(data_dir, kind):
    """What the memory bound needs to know of the v2 store of `kind`: per
    array (item size, chunk elements, largest chunk file), the densest row's
    elements, and the rows. The v3 collection has the same chunking (inner
    chunks of ~64 rows' elements), so its bound is taken from the v2 store."""
    import numpy as np
    import zarr
    x = os.path.join(data_dir, f"{kind}_v2.zarr", "X")
    if not os.path.isdir(x):
        return None
    arrays = []
    if os.path.exists(os.path.join(x, "indptr")):
        indptr = np.asarray(zarr.open_array(os.path.join(x, "indptr"), mode="r")[:])
        max_row, nrows, names = int(np.diff(indptr).max()), len(indptr) - 1, ("data", "indices")
    else:
        meta = json.load(open(os.path.join(x, ".zarray")))
        max_row, nrows, names = meta["shape"][1], meta["shape"][0], (None,)
    for name in names:
        d = os.path.join(x, name) if name else x
        meta = json.load(open(os.path.join(d, ".zarray")))
        isz = np.dtype(meta["dtype"]).itemsize
        elems = meta["chunks"][0] * (meta["chunks"][1] if name is None else 1)
        files = [os.path.join(d, f) for f in os.listdir(d) if not f.startswith(".")]
        arrays.append((isz, elems, max(os.path.getsize(f) for f in files)))
    return {"arrays": arrays, "max_row": max_row, "nrows": nrows, "sparse": names[0] is not None}


def memory_bound(shape, cs, pn, mw, threads):
    """The resident-set ceiling of a loader configuration, in bytes: the model
    of tests/engine/test_ceilings.sh, applied to this data. A window holds its
    batches (rows x densest row x item bytes + 16 bytes a row: rows are
    decoded straight into them) and its read buffers (per chunk, every
    zarr chunk its rows can touch at the largest chunk file's size plus an
    alignment block; 2.25x for the registered and the ordinary buffer); on top
    each decode thread's scratch, the indptr, doubled for glibc's per-thread
    arenas, and 10 MiB for the process itself."""
    W = cs * pn
    streams = W * shape["max_row"] * sum(a[0] for a in shape["arrays"]) + W * 16
    per_chunk_elems = cs * (shape["max_row"] if shape["sparse"] else 1)
    if shape["sparse"]:
        reads = pn * sum((math.ceil(per_chunk_elems / e) + 1) * (f + 4096) for _, e, f in shape["arrays"])
    else:
        rows_per_chunk = shape["arrays"][0][1] // shape["max_row"]
        reads = pn * sum((math.ceil(cs / rows_per_chunk) + 1) * (f + 4096) for _, e, f in shape["arrays"])
    window = streams + reads * 9 // 4
    decode = threads * 2 * max(isz * e for isz, e, _ in shape["arrays"])
    indptr = 8 * shape["nrows"] if shape["sparse"] else 0
    return (10 << 20) + 2 * (mw * window + decode + indptr)


def read_env(path):
    d = {}
    if os.path.exists(path):
        for line in open(path):
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                d[k] = v
    return d


def time_v(path):
    """Max RSS (KiB) and user + system CPU seconds from /usr/bin/time -v."""
    try:
        t = open(path).read()
    except OSError:
        return None, None
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", t)
    u = re.search(r"User time \(seconds\): ([\d.]+)", t)
    sy = re.search(r"System time \(seconds\): ([\d.]+)", t)
    cpu = float(u.group(1)) + float(sy.group(1)) if u and sy else None
    return (int(m.group(1)) if m else None), cpu


def load_runs(rdir):
    runs = {}
    for f in sorted(os.listdir(rdir)):
        if not f.endswith(".meta"):
            continue
        name = f[:-5]
        base = os.path.join(rdir, name)
        r = {"name": name, "meta": read_env(base + ".meta")}
        try:
            r["cmd"] = open(base + ".cmd").read().strip()
        except OSError:
            r["cmd"] = ""
        try:
            r["result"] = json.loads(open(base + ".out").read())
        except (OSError, ValueError):
            r["result"] = None
            try:
                r["error"] = open(base + ".err").read().strip()[-400:]
            except OSError:
                r["error"] = "no output"
        r["max_rss_kb"], own_cpu = time_v(base + ".time")
        # Cores' worth of other work on the machine during the run.
        m = r["meta"]
        if own_cpu is not None and "machine_busy_s" in m and float(m.get("wall_s", 0)) > 0:
            r["other_cores"] = max(0.0, (float(m["machine_busy_s"]) - own_cpu) / float(m["wall_s"]))
        else:
            r["other_cores"] = None
        runs[name] = r
    return runs


def fmt(v, spec="{:.0f}", none="–"):
    return none if v is None else spec.format(v)


def ratio(a, b):
    return a / b if a is not None and b else None


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "/var/tmp/annbatch-perf"
    info = read_env(os.path.join(out, "info.env"))
    runs = load_runs(os.path.join(out, "runs"))
    cpus = int(info.get("cpus", os.cpu_count()))

    # Ceilings.
    decode = {}
    for r in runs.values():
        m, res = r["meta"], r["result"]
        if m.get("kind") == "decode" and res:
            decode[m["data"]] = {
                "single_core_rows_per_s": res["rows_per_s"],
                "single_core_decoded_MBps": res["decoded_bytes_per_s"] / 1e6,
                "single_core_compressed_MBps": res["compressed_bytes_per_s"] / 1e6,
                "ceiling_rows_per_s": cpus * res["rows_per_s"],
                "decoded_bytes_per_row": res["decoded_bytes_per_row"],
                "compressed_bytes_per_row": res["total_compressed_bytes"] / res["rows"],
                "ratio": res["ratio"],
            }
    fio = {}
    for r in runs.values():
        m, res = r["meta"], r["result"]
        if m.get("kind") == "fio" and res:
            rd = res["jobs"][0]["read"]
            pct = rd.get("clat_ns", {}).get("percentile", {})
            fio[r["name"]] = {
                "role": m["role"], "bs": m["bs"], "depth": int(m["depth"]),
                "bw_bytes_per_s": rd["bw_bytes"], "iops": rd["iops"],
                "clat_p99_us": pct.get("99.000000", 0) / 1000.0,
            }
    python = {}
    for r in runs.values():
        m, res = r["meta"], r["result"]
        if m.get("kind") == "python" and res:
            python[(m["data"], m["cs"], m["pn"], m["cache"])] = res["samples_per_s"]

    # annbatch rows.
    rows = []
    shapes = {}
    for r in runs.values():
        m, res = r["meta"], r["result"]
        if m.get("kind") != "annbatch":
            continue
        row = {"name": r["name"], "cmd": r["cmd"], "data": m["data"], "fmt": m["fmt"],
               "cs": int(m["cs"]), "pn": int(m["pn"]), "io": m["io"], "cache": m["cache"],
               "consumers": int(m["consumers"]), "touch": m.get("touch") == "1",
               "threads_opt": int(m.get("threads", 0)), "max_rss_kb": r["max_rss_kb"],
               "other_cores": r.get("other_cores")}
        if not res:
            row["error"] = r.get("error")
            rows.append(row)
            continue
        el = res["elapsed_s"] or 1e-9
        row.update({
            "samples_per_s": res["samples_per_s"],
            "disk_MBps": res["disk_bytes_per_s"] / 1e6,
            "mean_read_KiB": res["mean_read_bytes"] / 1024.0,
            "read_p99_ms": res["read_lat_us"]["p99"] / 1000.0,
            "wait_p50_ms": res["wait_us"]["p50"] / 1000.0,
            "wait_p99_ms": res["wait_us"]["p99"] / 1000.0,
            "cpu_cores_busy": (res["cpu_user_s"] + res["cpu_sys_s"]) / el,
            "cpu_sys_share": res["cpu_sys_s"] / max(res["cpu_user_s"] + res["cpu_sys_s"], 1e-9),
            "io_mode": res["io_mode"], "threads": res["threads"], "elapsed_s": el,
            "decoded_MBps": res["decoded_bytes_per_s"] / 1e6,
            "decode_mode": res.get("decode", "chunks"),
            "delay_ms": res.get("consumer_delay_ms", 0) or 0,
            "first_wait_max_ms": res.get("first_wait_us", {}).get("max", 0) / 1000.0,
            "batch_size": res["batch_size"],
            "first_batch": res.get("first_batch_ms"),
        })
        dc = decode.get(m["data"])
        if m["data"] not in shapes:
            try:
                shapes[m["data"]] = store_shape(os.path.join(out, "data"), m["data"])
            except Exception as e:  # the bound is extra information: never fatal
                print(f"report.py: no memory bound for {m['data']}: {e}", file=sys.stderr)
                shapes[m["data"]] = None
        if shapes[m["data"]]:
            row["budget_MiB"] = memory_bound(shapes[m["data"]], row["cs"], row["pn"], res["max_windows"],
                                             res["threads"]) / MiB
        if dc:
            row["vs_decode_ceiling"] = res["samples_per_s"] / dc["ceiling_rows_per_s"]
            # Decoded bytes per delivered row over what the row holds: >1 when
            # whole chunks are decoded for part of their rows.
            row["decode_amplification"] = (res["decoded_bytes_per_s"] / max(res["samples_per_s"], 1e-9)
                                           / dc["decoded_bytes_per_row"])
        row["rss_MiB"] = r["max_rss_kb"] / 1024.0 if r["max_rss_kb"] else None
        py = python.get((m["data"], m["cs"], m["pn"], m["cache"]))
        row["python_samples_per_s"] = py
        row["vs_python"] = ratio(res["samples_per_s"], py)
        fe = fio.get(f"fio_engine_cs{m['cs']}")
        if m["io"] == "direct" and m["cache"] == "cold" and fe and m["data"] == "sparse" and m["fmt"] == "v3":
            row["fio_MBps"] = fe["bw_bytes_per_s"] / 1e6
            row["vs_fio"] = ratio(res["disk_bytes_per_s"], fe["bw_bytes_per_s"])
        rows.append(row)

    order = {"sparse": 0, "dense": 1}
    rows.sort(key=lambda x: (order.get(x["data"], 9), x["fmt"] != "v3", x["fmt"], x["cs"], x["io"],
                             x["cache"], x["consumers"], x["touch"], x["threads_opt"],
                             x.get("decode_mode", "") != "blocks", x.get("delay_ms", 0)))
    by = {x["name"]: x for x in rows}

    # Targets: chunk_size 32 / preload 256 / batch 4096.
    targets = []

    def target(name, goal, value, ok, why=""):
        targets.append({"target": name, "goal": goal, "measured": value,
                        "status": "met" if ok is True else ("missed" if ok is False else "n/a"),
                        "note": why})

    def best_warm(data, fm):
        w = [x for x in rows if x["data"] == data and x["fmt"] == fm and x["cs"] == 32
             and x["io"] == "buffered" and x["cache"] == "warm" and not x["touch"]
             and not x["threads_opt"] and x.get("samples_per_s") and x.get("decode_mode") == "blocks"
             and not x.get("delay_ms")]
        return max(w, key=lambda x: x["samples_per_s"]) if w else None

    # 1. Warm samples/s against the decode ceiling, on convert's default
    # output (v3) and on the v2 store as anndata writes it.
    for data, fm in (("sparse", "v3"), ("dense", "v3"), ("sparse", "v2"), ("dense", "v2")):
        best, dc = best_warm(data, fm), decode.get(data)
        if not best or not dc:
            continue
        r = best["samples_per_s"] / dc["ceiling_rows_per_s"]
        amp = best.get("decode_amplification", 1) or 1
        why = (f"decoded {amp:.2f}x the bytes delivered; against the ceiling divided by that "
               f"{100 * r * amp:.0f}%; CPU {best['cpu_cores_busy']:.2f} cores, sys share "
               f"{100 * best['cpu_sys_share']:.0f}%")
        if data == "sparse" and fm == "v3":
            ch = by.get("ab_sparse_v3_cs32_buffered_warm_c1_chunks", {})
            b1 = by.get("ab_sparse_v3_cs32_buffered_warm_c1", {})
            if ch.get("samples_per_s") and b1.get("samples_per_s"):
                why += (f"; whole-chunk decode in the same run {ch['samples_per_s']:.0f} rows/s "
                        f"({ch.get('decode_amplification', 0):.2f}x), blocks {b1['samples_per_s'] / ch['samples_per_s']:.2f}x faster")
            vb = by.get("ab_sparse_v3b_cs32_buffered_warm_c1", {})
            if vb.get("samples_per_s"):
                why += (f"; with libblosc's own 256 KiB split blocks (v3b) {vb['samples_per_s']:.0f} rows/s = "
                        f"{100 * vb['samples_per_s'] / dc['ceiling_rows_per_s']:.0f}% "
                        f"({vb.get('decode_amplification', 0):.2f}x)")
        target(f"warm vs decode ceiling, {data} {fm}", ">= 50% of cores x single-core decode",
               f"{best['samples_per_s']:.0f} rows/s ({best['consumers']} consumers) = {100 * r:.0f}% of "
               f"{dc['ceiling_rows_per_s']:.0f} rows/s", r >= 0.5, why)
    # 1b. Cold O_DIRECT: as fast as warm, or the disk's limit.
    for data in ("sparse", "dense"):
        cold, warm = by.get(f"ab_{data}_v3_cs32_direct_cold_c1", {}), by.get(f"ab_{data}_v3_cs32_buffered_warm_c1", {})
        if not cold.get("samples_per_s") or not warm.get("samples_per_s"):
            continue
        cw = cold["samples_per_s"] / warm["samples_per_s"]
        fe = fio.get("fio_engine_cs32")
        vf = cold["disk_MBps"] * 1e6 / fe["bw_bytes_per_s"] if fe else None
        ok = cw >= 0.95 or (vf is not None and vf >= 0.85)
        target(f"cold O_DIRECT, {data} v3", "= warm (>= 95%), or >= 85% of fio at the engine's read size and depth",
               f"{cold['samples_per_s']:.0f} rows/s = {100 * cw:.0f}% of warm; {cold['disk_MBps']:.0f} MB/s"
               + (f" = {100 * vf:.0f}% of fio {fe['bw_bytes_per_s'] / 1e6:.0f} MB/s ({fe['bs']}, QD {fe['depth']})"
                  if fe else ""), ok, f"CPU {cold['cpu_cores_busy']:.2f} cores")
    # 2. Against the zarr-python route.
    for cache, goal, nm in (("warm", 8, "ab_sparse_v3_cs32_buffered_warm_c1"),
                            ("cold", 10, "ab_sparse_v3_cs32_direct_cold_c1"),
                            ("warm", 8, "ab_dense_v3_cs32_buffered_warm_c1"),
                            ("cold", 10, "ab_dense_v3_cs32_direct_cold_c1")):
        x = by.get(nm, {})
        if x.get("vs_python"):
            target(f"vs zarr-python, {x['data']} ({cache})", f">= {goal}x samples/s",
                   f"{x['samples_per_s']:.0f} / {x['python_samples_per_s']:.0f} = {x['vs_python']:.1f}x",
                   x["vs_python"] >= goal)
    # 3. The collection writer's memory.
    cv = runs.get("convert_sparse")
    if cv and cv.get("max_rss_kb"):
        m = cv["meta"]
        wall = float(m.get("wall_s", 0)) or 1e-9
        mb = float(m.get("input_bytes", 0)) / 1e6
        bound = float(m.get("memory_bytes", 0))
        rss = cv["max_rss_kb"] * 1024.0
        target("convert peak RSS under --memory", "< --memory (1 GiB by default), whatever the input size",
               f"{rss / MiB:.0f} MiB converting {mb:.0f} MB of zarr v2 at {mb / wall:.0f} MB/s (cold)",
               rss < bound if bound else None,
               "the 2x input-throughput target is measured side by side against the previous build "
               "(README, tools/perf/convert_bench.sh)")
    # 4. Time to the first batch.
    hold = by.get("ab_sparse_v3_cs32_buffered_warm_c1_hold", {})
    fb = hold.get("first_batch") or {}
    if fb.get("epochs") and len(fb["epochs"]) > 1:
        later = max(e["ms"] for e in fb["epochs"][1:])
        target("first batch, epochs after the first", "<= 20 ms",
               f"at most {later:.1f} ms over {len(fb['epochs']) - 1} epochs (consumers holding each batch "
               f"{hold['delay_ms']:g} ms)", later <= 20)
    firsts = [(x["name"], (x.get("first_batch") or {}).get("first_epoch")) for x in rows
              if x["data"] == "sparse" and x["fmt"] == "v3" and x["cs"] == 32 and x["consumers"] == 1
              and not x["touch"] and not x["threads_opt"] and x.get("decode_mode") == "blocks"]
    firsts = [(n, v) for n, v in firsts if v is not None]
    if firsts:
        worst = max(firsts, key=lambda nv: nv[1])
        target("first batch, first epoch", "<= 100 ms",
               f"at most {worst[1]:.0f} ms ({worst[0]}); " + ", ".join(f"{v:.0f}" for _, v in firsts) + " ms",
               worst[1] <= 100)
    # The consumer wait only means something when the loader keeps up, i.e.
    # the consumers (reading every byte) are slower than the loader alone.
    kept = []
    # Consumers that hold each batch (--consumer-delay, a training step): the
    # loader keeps up when the median batch is ready on arrival and the
    # consumers get most of the batches their hold time allows (the rest is
    # the start of each epoch, whose first window nothing can have ready: those
    # waits are reported apart as the time to the first batch).
    for x in rows:
        if x.get("delay_ms") and x.get("samples_per_s"):
            demand = x["consumers"] * x["batch_size"] / (x["delay_ms"] / 1000.0)
            x["demand_samples_per_s"] = demand
            if x["samples_per_s"] >= 0.8 * demand and x["wait_p50_ms"] < 0.1:
                kept.append(x)
    for x in rows if not kept else []:
        if x["touch"] and x.get("samples_per_s"):
            base = by.get(x["name"].replace("_touch", ""))
            # Slower than without touching AND the median batch was ready on
            # arrival: the consumers, not the loader, set the pace. (On few
            # cores touching also takes CPU from decoding, so "slower" alone
            # proves nothing.)
            if (base and base.get("samples_per_s") and x["samples_per_s"] < 0.8 * base["samples_per_s"]
                    and x["wait_p50_ms"] < 0.1):
                kept.append(x)
    if kept:
        worst = max(kept, key=lambda x: x["wait_p99_ms"])
        hold = (f"; consumers holding each batch {worst['delay_ms']:g} ms asked for "
                f"{worst['demand_samples_per_s']:.0f} samples/s and got {worst['samples_per_s']:.0f}"
                if worst.get("delay_ms") else "")
        target("consumer wait p99 when the loader keeps up", "< 1 ms",
               f"{worst['wait_p99_ms']:.3f} ms ({worst['name']})", worst["wait_p99_ms"] < 1.0,
               f"waits for the batches of an epoch's first window (the time to the first batch, at most "
               f"{worst.get('first_wait_max_ms', 0):.0f} ms, once an epoch) are reported apart{hold}")
    else:
        tr = [x for x in rows if x["touch"] and x.get("samples_per_s")]
        target("consumer wait p99 when the loader keeps up", "< 1 ms",
               "; ".join(f"{x['wait_p99_ms']:.1f} ms ({x['consumers']} touching consumers)" for x in tr) or "–",
               None, "not evaluable: no run was consumer-bound (touching consumers still outrun "
               "the loader), so the waits measure the loader's gaps")
    mem = [x for x in rows if x.get("rss_MiB") and x.get("budget_MiB")]
    if mem:
        over = [x for x in mem if x["rss_MiB"] > x["budget_MiB"]]
        worst = max(mem, key=lambda x: x["rss_MiB"] / x["budget_MiB"])
        target("resident set under the budget", "max RSS < the memory bound of the configuration in every run",
               f"worst {worst['rss_MiB']:.0f} MiB of {worst['budget_MiB']:.0f} MiB ({worst['name']})",
               not over, f"{len(over)} run(s) over budget" if over else "")

    load_warn = [f"{n} ({r['other_cores']:.2f})" for n, r in sorted(runs.items())
                 if r.get("other_cores") is not None and r["other_cores"] > OTHER_LIMIT]

    res = {"info": info, "cpus": cpus, "decode": decode, "fio": fio,
           "python": [{"data": k[0], "cs": int(k[1]), "pn": int(k[2]), "cache": k[3], "samples_per_s": v}
                      for k, v in sorted(python.items())],
           "annbatch": rows, "targets": targets,
           "runs_sharing_the_machine": load_warn,
           "commands": {n: r["cmd"] for n, r in sorted(runs.items())}}
    json.dump(res, open(os.path.join(out, "results.json"), "w"), indent=1)

    L = []
    L.append(f"Machine: {cpus} cores, {int(info.get('mem_kb', 0)) / MiB:.0f} GiB, {info.get('cpu_model', '?')}, "
             f"Linux {info.get('kernel', '?')}, {info.get('fio', '')}; annbatch {info.get('git', '?')}; "
             f"{info.get('rows', '?')} sparse rows x 20000 genes (~2000 nnz/row), {info.get('dense_rows', '?')} "
             f"dense rows x {info.get('dense_vars', '?')} genes; float32 blosc-lz4; {info.get('duration', '?')} s "
             f"per timed run; load average {info.get('load_start', '?')} at start, {info.get('load_end', '?')} at end.")
    L.append("")
    L.append(f"Command: `{info.get('command', 'bash tools/perf/run.sh')}`")
    L.append("")
    L.append("### Targets (chunk_size 32 / preload 256 / batch 4096)")
    L.append("")
    L.append("| target | goal | measured | status | note |")
    L.append("| --- | --- | --- | --- | --- |")
    for t in targets:
        L.append(f"| {t['target']} | {t['goal']} | {t['measured']} | **{t['status']}** | {t['note']} |")
    L.append("")
    L.append("### Ceilings")
    L.append("")
    L.append("| ceiling | single core | x cores | per row |")
    L.append("| --- | --- | --- | --- |")
    for k, d in decode.items():
        L.append(f"| blosc-lz4 decode, {k} | {d['single_core_decoded_MBps']:.0f} MB/s decoded "
                 f"({d['single_core_compressed_MBps']:.0f} MB/s compressed), {d['single_core_rows_per_s']:.0f} rows/s "
                 f"| {d['ceiling_rows_per_s']:.0f} rows/s | {d['decoded_bytes_per_row'] / 1024:.1f} KiB decoded, "
                 f"{d['compressed_bytes_per_row'] / 1024:.1f} KiB on disk |")
    L.append("")
    L.append("| fio randread io_uring O_DIRECT | block | depth | MB/s | IOPS | clat p99 |")
    L.append("| --- | --- | --- | --- | --- | --- |")
    for n, f in sorted(fio.items(), key=lambda kv: kv[1]["role"]):
        L.append(f"| {f['role']} | {f['bs']} | {f['depth']} | {f['bw_bytes_per_s'] / 1e6:.0f} | {f['iops']:.0f} "
                 f"| {f['clat_p99_us'] / 1000:.2f} ms |")
    L.append("")
    L.append("### annbatch bench vs the ceilings and the zarr-python route")
    L.append("")
    L.append("| data | format | chunk/preload | io | cache | consumers | samples/s | disk MB/s | read KiB | CPU cores "
             "| wait p99 ms | RSS / bound MiB | zarr-python samples/s | x Python | / fio | / decode ceiling |")
    L.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for x in rows:
        extra = ((" touch" if x["touch"] else "") + (f" threads={x['threads_opt']}" if x["threads_opt"] else "")
                 + (" whole-chunks" if x.get("decode_mode") == "chunks" else "")
                 + (f" hold {x['delay_ms']:g} ms" if x.get("delay_ms") else ""))
        if x.get("error") is not None or not x.get("samples_per_s"):
            L.append(f"| {x['data']} | {x['fmt']} | {x['cs']}/{x['pn']} | {x['io']} | {x['cache']} | "
                     f"{x['consumers']}{extra} | FAILED: {x.get('error', '')[:80]} |" + " |" * 9)
            continue
        L.append(f"| {x['data']} | {x['fmt']} | {x['cs']}/{x['pn']} | {x['io']} | {x['cache']} | {x['consumers']}{extra} "
                 f"| {x['samples_per_s']:.0f} | {x['disk_MBps']:.0f} | {x['mean_read_KiB']:.0f} | {x['cpu_cores_busy']:.2f} "
                 f"| {x['wait_p99_ms']:.2f} | {fmt(x.get('rss_MiB'))} / {fmt(x.get('budget_MiB'))} "
                 f"| {fmt(x.get('python_samples_per_s'))} | {fmt(x.get('vs_python'), '{:.1f}x')} "
                 f"| {fmt(x.get('vs_fio'), '{:.0%}')} | {fmt(x.get('vs_decode_ceiling'), '{:.0%}')} |")
    L.append("")
    L.append("zarr-python route (zarr " + next((r["result"].get("zarr", "") for r in runs.values()
                                             if r["meta"].get("kind") == "python" and r["result"]), "?")
             + ", numpy/scipy from Debian, zarr v2 store):")
    L.append("")
    L.append("| data | chunk/preload | cache | samples/s |")
    L.append("| --- | --- | --- | --- |")
    for k, v in sorted(python.items()):
        L.append(f"| {k[0]} | {k[1]}/{k[2]} | {k[3]} | {v:.0f} |")
    if load_warn:
        L.append("")
        L.append(f"Warning: {len(load_warn)} run(s) shared the machine with other work (more than "
                 f"{OTHER_LIMIT} of a core busy outside the run, in parentheses): {', '.join(load_warn)}.")
    L.append("")
    open(os.path.join(out, "results.md"), "w").write("\n".join(L))


if __name__ == "__main__":
    main()
