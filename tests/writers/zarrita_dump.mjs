// zarrita_dump.mjs STORE OUTDIR - reads every array of a zarr store with
// zarrita (the JavaScript zarr implementation), through the store's
// consolidated metadata, and writes each array's values to OUTDIR:
// numeric and bool arrays as raw little-endian C-order bytes (bool: one byte
// per item) in NODE.bin, string arrays as a JSON list in NODE.json, where NODE
// is the node path with '/' replaced by '%'. OUTDIR/manifest.tsv lists
// path, data type and shape of each array.
import * as fs from "node:fs";
import * as path from "node:path";
import * as zarr from "zarrita";
import { FileSystemStore } from "@zarrita/storage";

const [storePath, outDir] = process.argv.slice(2);
if (!storePath || !outDir) {
	console.error("usage: zarrita_dump.mjs STORE OUTDIR");
	process.exit(2);
}
const isV3 = fs.existsSync(path.join(storePath, "zarr.json"));
const raw = new FileSystemStore(storePath);
const store = await zarr.withConsolidatedMetadata(raw, { format: isV3 ? "v3" : "v2" });
const root = zarr.root(store);
fs.mkdirSync(outDir, { recursive: true });
const manifest = [];
const contents = store.contents().filter((c) => c.kind === "array");
contents.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
for (const { path: p } of contents) {
	const arr = await zarr.open(root.resolve(p), { kind: "array" });
	// zarrita refuses to index an empty array; its values are known anyway
	const chunk = arr.shape.some((n) => n === 0)
		? { data: arr.dtype === "string" || arr.dtype === "v2:object" ? [] : new Uint8Array(0), shape: arr.shape }
		: await zarr.get(arr);
	const name = p.replace(/^\//, "").replaceAll("/", "%");
	let data = chunk.data;
	if (Array.isArray(data)) {
		fs.writeFileSync(path.join(outDir, name + ".json"), JSON.stringify(data));
	} else {
		if (data instanceof zarr.BoolArray)
			data = new Uint8Array(data.buffer, data.byteOffset, data.length);
		fs.writeFileSync(path.join(outDir, name + ".bin"),
			Buffer.from(data.buffer, data.byteOffset, data.byteLength));
	}
	manifest.push([p.replace(/^\//, ""), arr.dtype, chunk.shape.join(",")].join("\t"));
}
fs.writeFileSync(path.join(outDir, "manifest.tsv"), manifest.join("\n") + "\n");
console.log(`zarrita read ${contents.length} arrays`);
