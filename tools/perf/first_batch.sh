#!/bin/bash
# Time to the first batch of each epoch, two annbatch binaries side by side.
#
#   bash tools/perf/first_batch.sh --after build/annbatch --base REV [options]
#   bash tools/perf/first_batch.sh --before OLD_BIN --after NEW_BIN [options]
#
# Options:
#   --before BIN | --base REV   the binary to compare against, or a git
#                               revision of this repository to build one from
#                               (git archive + a static build under OUT)
#   --after BIN                 the binary under test (default build/annbatch)
#   --store PATH                the sparse store (default: OUT/sparse.zarr,
#                               written by `annbatch synth` with --rows)
#   --rows N                    rows of that store (200000; 20000 genes,
#                               ~2000 non-zeros a row)
#   --epochs N                  epochs per run (4)
#   --repeat N                  runs of each binary per configuration (3)
#   --delay MS                  consumer hold per batch of the consumer-bound
#                               runs (150; 0 leaves them out)
#   --out DIR                   work directory (/var/tmp/annbatch-first-batch)
#
# Every configuration (uring and pread backends, O_DIRECT and buffered reads;
# then the same with consumers that hold each batch --delay ms, the case of a
# training step slower than the loader) runs both binaries alternately,
# REPEAT times each, with `annbatch bench --json` (shuffled, chunk 32,
# preload 256, batch 4096, seed 1). The table gives medians of the time from
# ab_loader_start to its epoch's first batch: the first epoch, and the later
# ones (median and max over the runs' later epochs), samples/s and the
# steady-state consumer wait p99, and before/after ratios. It also checks that
# both binaries give the same `annbatch iterate` checksum on the store.
# Results: OUT/first_batch.md and OUT/first_batch.json, the raw JSON of every
# run in OUT/runs/.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PY=/usr/bin/python3
BEFORE="" BASE="" AFTER="$REPO/build/annbatch" STORE="" ROWS=200000 EPOCHS=4 REPEAT=3 DELAY=150
OUT=/var/tmp/annbatch-first-batch

usage() { sed -n '2,33p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
	case "$1" in
	--before) BEFORE=$2; shift 2 ;;
	--base) BASE=$2; shift 2 ;;
	--after) AFTER=$2; shift 2 ;;
	--store) STORE=$2; shift 2 ;;
	--rows) ROWS=$2; shift 2 ;;
	--epochs) EPOCHS=$2; shift 2 ;;
	--repeat) REPEAT=$2; shift 2 ;;
	--delay) DELAY=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	-h|--help) usage; exit 0 ;;
	*) echo "first_batch.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
	esac
done
if [ -z "$BEFORE" ] && [ -z "$BASE" ]; then
	echo "first_batch.sh: give --before BIN or --base REV" >&2
	exit 2
fi
mkdir -p "$OUT/runs"
rm -f "$OUT"/runs/*
log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

if [ -n "$BASE" ]; then
	# A static build of REV, so that the binary needs no library path.
	rev=$(git -C "$REPO" rev-parse "$BASE")
	BEFORE=$OUT/base-$rev/build/annbatch
	if [ ! -x "$BEFORE" ]; then
		log "building $BASE ($rev) in $OUT/base-$rev"
		rm -rf "$OUT/base-$rev"
		mkdir -p "$OUT/base-$rev/src" "$OUT/base-$rev/build"
		git -C "$REPO" archive "$rev" | tar -x -C "$OUT/base-$rev/src"
		(cd "$OUT/base-$rev/src" && autoreconf -fi > /dev/null 2>&1)
		(cd "$OUT/base-$rev/build" && ../src/configure -q --disable-shared --disable-python &&
			make -j"$(nproc)" annbatch > /dev/null)
	fi
fi
for b in "$BEFORE" "$AFTER"; do
	[ -x "$b" ] || { echo "first_batch.sh: $b is not an executable" >&2; exit 1; }
done
BEFORE=$(readlink -f "$BEFORE")
AFTER=$(readlink -f "$AFTER")

if [ -z "$STORE" ]; then
	STORE=$OUT/sparse.zarr
	if [ "$(cat "$OUT/sparse.stamp" 2>/dev/null)" != "rows=$ROWS" ]; then
		log "writing $STORE: $ROWS rows (annbatch synth)"
		rm -rf "$STORE"
		"$AFTER" synth "$STORE" --n-obs "$ROWS" --n-vars 20000 --mean-nnz 2000 --seed 1
		echo "rows=$ROWS" > "$OUT/sparse.stamp"
	fi
fi

# The batches must not change: the same checksum from both binaries.
sums=()
for b in "$BEFORE" "$AFTER"; do
	sums+=("$("$b" iterate "$STORE" --shuffle --seed 1 --chunk-size 32 --preload-nchunks 256 \
		--batch-size 4096 --epochs 2 --emit index+colsum | sha256sum | cut -d' ' -f1)")
done
log "iterate checksum: before ${sums[0]}, after ${sums[1]}"

configs=("uring direct 0" "uring buffered 0" "pread direct 0" "pread buffered 0")
if [ "$DELAY" != 0 ]; then
	configs+=("uring direct $DELAY" "uring buffered $DELAY" "pread direct $DELAY" "pread buffered $DELAY")
fi
for cfg in "${configs[@]}"; do
	set -- $cfg
	for r in $(seq 1 "$REPEAT"); do
		for side in before after; do
			if [ $side = before ]; then b=$BEFORE; else b=$AFTER; fi
			name="${side}_$1_$2_d$3_r$r"
			log "$name"
			"$b" bench "$STORE" --shuffle --seed 1 --chunk-size 32 --preload-nchunks 256 --batch-size 4096 \
				--epochs "$EPOCHS" --backend "$1" --io "$2" --consumer-delay "$3" --json \
				> "$OUT/runs/$name.json" 2> "$OUT/runs/$name.err" ||
				echo "first_batch.sh: $name failed, see $OUT/runs/$name.err" >&2
		done
	done
done

$PY - "$OUT" "$BEFORE" "$AFTER" "$STORE" "${sums[0]}" "${sums[1]}" <<'EOF'
import glob, json, os, statistics, sys
out, before, after, store, sum_b, sum_a = sys.argv[1:7]
runs = {}
for path in sorted(glob.glob(os.path.join(out, "runs", "*.json"))):
    name = os.path.basename(path)[:-5]
    side, be, io, d, _ = name.split("_")
    try:
        j = json.load(open(path))
    except ValueError:
        continue
    fb = j.get("first_batch_ms", {})
    eps = fb.get("epochs", [])
    runs.setdefault((be, io, d[1:]), {}).setdefault(side, []).append({
        "first": eps[0]["ms"] if eps else None,
        "later": [e["ms"] for e in eps[1:]],
        "samples_per_s": j["samples_per_s"],
        "wait_p99_us": j["wait_us"]["p99"],
    })

def med(v):
    v = [x for x in v if x is not None]
    return statistics.median(v) if v else float("nan")

rows, table = [], []
for (be, io, d), sides in sorted(runs.items(), key=lambda kv: (int(kv[0][2]), kv[0][0], kv[0][1])):
    f = {}
    for side in ("before", "after"):
        rs = sides.get(side, [])
        later = [x for r in rs for x in r["later"]]
        f[side] = {
            "first_epoch_ms": med([r["first"] for r in rs]),
            "later_p50_ms": med(later),
            "later_max_ms": max(later) if later else float("nan"),
            "samples_per_s": med([r["samples_per_s"] for r in rs]),
            "wait_p99_ms": med([r["wait_p99_us"] for r in rs]) / 1000.0,
            "runs": len(rs),
        }
    ratio = lambda k: f["before"][k] / f["after"][k] if f["after"][k] else float("nan")
    rows.append({"backend": be, "io": io, "consumer_delay_ms": int(d), "before": f["before"], "after": f["after"]})
    table.append("| %s | %s | %s | %.0f / %.0f (%.1fx) | %.0f / %.0f (%.1fx) | %.0f / %.0f | %.0f / %.0f | %.0f / %.0f |" % (
        be, io, d, f["before"]["first_epoch_ms"], f["after"]["first_epoch_ms"], ratio("first_epoch_ms"),
        f["before"]["later_p50_ms"], f["after"]["later_p50_ms"], ratio("later_p50_ms"),
        f["before"]["later_max_ms"], f["after"]["later_max_ms"],
        f["before"]["samples_per_s"], f["after"]["samples_per_s"],
        f["before"]["wait_p99_ms"], f["after"]["wait_p99_ms"]))
md = ["# Time to the first batch, before / after", "",
      "before: `%s`  " % before, "after: `%s`  " % after, "store: `%s`  " % store,
      "iterate checksum: before `%s`, after `%s` (%s)" % (sum_b, sum_a, "same" if sum_b == sum_a else "DIFFERENT"), "",
      "Medians over the runs; ms from ab_loader_start to the epoch's first batch. delay: consumer hold per batch (ms).", "",
      "| backend | io | delay | first epoch ms | later epochs p50 ms | later max ms | samples/s | wait p99 ms |",
      "| --- | --- | --- | --- | --- | --- | --- | --- |"] + table
open(os.path.join(out, "first_batch.md"), "w").write("\n".join(md) + "\n")
json.dump({"before": before, "after": after, "store": store, "checksum_before": sum_b, "checksum_after": sum_a,
           "configs": rows}, open(os.path.join(out, "first_batch.json"), "w"), indent=1)
print("\n".join(md))
EOF
