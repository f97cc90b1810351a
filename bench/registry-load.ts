/**
 * What a registry's own CPU is for the requests signing makes, without the rest of a run: for each
 * of n images, a `.sig`-like tag read (absent), three small blobs uploaded (a POST and a PUT each),
 * the manifest put and read back — 9 requests — 8 images at a time, over one keep-alive agent. The
 * registry's CPU is read from /proc before and after. What README *What signing costs* measured the
 * registry's GOGC with:
 *   node dist/bench/registry-load.js --port 5000 --pid <registry pid> [--images 300]
 * It writes under the repositories `load/img0` … `load/img199` of that registry.
 */
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import http from "node:http";
import { parseArgs } from "node:util";

const { values } = parseArgs({ options: { port: { type: "string", default: "5000" }, pid: { type: "string" }, images: { type: "string", default: "300" } } });
if (values.pid === undefined) throw new Error("registry-load: --pid <the registry's pid> is needed, its CPU is what is measured");
const registryPid = values.pid;
const port = Number(values.port);
const images = Number(values.images);
const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
const MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json";

interface Answer { readonly status: number; readonly location: string | undefined }

function call(method: string, urlPath: string, body?: Buffer, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const request = http.request({ host: "127.0.0.1", port, method, path: urlPath, agent, headers: { ...headers, ...(body === undefined ? {} : { "content-length": String(body.length) }) } }, (response) => {
      response.resume();
      response.on("end", () => resolve({ status: response.statusCode ?? 0, location: response.headers.location }));
    });
    request.on("error", reject);
    request.end(body);
  });
}

const sha256 = (bytes: Buffer): string => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
/** The registry's user and system CPU seconds (/proc/<pid>/stat, fields 14 and 15, in clock ticks of 1/100 s). */
function registryCpuSeconds(): number {
  const fields = (readFileSync(`/proc/${registryPid}/stat`, "utf8").split(") ")[1] ?? "").split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function signLike(index: number): Promise<void> {
  const repository = `load/img${index % 200}`;
  const blobs = [randomBytes(900), randomBytes(900), Buffer.from(JSON.stringify({ rootfs: { type: "layers", diff_ids: [] }, index, nonce: randomBytes(8).toString("hex") }))];
  const tag = `sha256-${createHash("sha256").update(`${index}${randomBytes(8).toString("hex")}`).digest("hex")}.sig`;
  await call("GET", `/v2/${repository}/manifests/${tag}`, undefined, { accept: MANIFEST_TYPE });
  for (const blob of blobs) {
    const started = await call("POST", `/v2/${repository}/blobs/uploads/`);
    if (started.status !== 202 || started.location === undefined) throw new Error(`registry-load: POST upload answered ${started.status}`);
    const upload = new URL(started.location, `http://127.0.0.1:${port}`);
    upload.searchParams.set("digest", sha256(blob));
    const put = await call("PUT", upload.pathname + upload.search, blob, { "content-type": "application/octet-stream" });
    if (put.status !== 201) throw new Error(`registry-load: PUT blob answered ${put.status}`);
  }
  const [first, second, config] = blobs as [Buffer, Buffer, Buffer];
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MANIFEST_TYPE, config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256(config), size: config.length }, layers: [first, second].map((blob) => ({ mediaType: "application/vnd.dev.cosign.simplesigning.v1+json", digest: sha256(blob), size: blob.length })) }));
  const put = await call("PUT", `/v2/${repository}/manifests/${tag}`, manifest, { "content-type": MANIFEST_TYPE });
  if (put.status !== 201) throw new Error(`registry-load: PUT manifest answered ${put.status}`);
  await call("GET", `/v2/${repository}/manifests/${tag}`, undefined, { accept: MANIFEST_TYPE });
}

const cpuBefore = registryCpuSeconds();
const started = Date.now();
let next = 0;
await Promise.all(Array.from({ length: 8 }, async () => {
  while (next < images) await signLike(next++);
}));
process.stdout.write(`${images} images (${images * 9} requests): the registry's CPU ${(registryCpuSeconds() - cpuBefore).toFixed(2)} s, wall ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
agent.destroy();
