/**
 * What a registry's own CPU is for the requests signing makes, without the rest of a run: for each
 * of n images, a `.sig`-like tag read (absent), three small blobs uploaded (a POST and a PUT each),
 * the manifest put and read back — 9 requests — 8 images at a time, over one keep-alive agent. The
 * registry's CPU is read from /proc before and after. What README *What signing costs* measured the
 * registry's GOGC with:
 *   node dist/bench/registry-load.js --port 5000 --pid <registry pid> [--images 300] [--client http|fetch]
 * `--client` says how this process asks: `node:http` (the default), or Node's `fetch` the way
 * registry/client.ts asked before e20eec6 (a timeout signal per request, the whole body read): this
 * process's own CPU per request is printed too, which is what README *What signing costs* moved the
 * registry client off `fetch` for.
 * It leaves what it wrote in that registry, under the repositories `load/img0` … `load/img199`
 * (point it at a throwaway registry, or run `scripts/services.sh gc` after deleting them).
 */
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import http from "node:http";
import { parseArgs } from "node:util";
import { clockTicksPerSecond, parseStat } from "./cpu-sampler.js";

const { values } = parseArgs({ options: { port: { type: "string", default: "5000" }, pid: { type: "string" }, images: { type: "string", default: "300" }, client: { type: "string", default: "http" } } });
const wholeNumber = (text: string | undefined, what: string, max = Number.MAX_SAFE_INTEGER): number => {
  const value = Number(text);
  if (text === undefined || !Number.isInteger(value) || value < 1 || value > max) throw new Error(`registry-load: --${what} must be a whole number from 1 to ${max} (given: ${text ?? "nothing"})`);
  return value;
};
const registryPid = wholeNumber(values.pid, "pid");
const port = wholeNumber(values.port, "port", 65535);
const images = wholeNumber(values.images, "images");
if (values.client !== "http" && values.client !== "fetch") throw new Error(`registry-load: --client must be http or fetch (given: ${values.client})`);
const client = values.client;
/** A request that has no answer in this time fails the run (a registry that stopped answering does not hang it). */
const REQUEST_TIMEOUT_MS = 30_000;
const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
const MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json";

interface Answer { readonly status: number; readonly location: string | undefined; readonly bytes: number }

/** One request over node:http, its whole answer read (as registry/client.ts reads every small answer). */
function callHttp(method: string, urlPath: string, body?: Buffer, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const request = http.request({ host: "127.0.0.1", port, method, path: urlPath, agent, headers: { ...headers, ...(body === undefined ? {} : { "content-length": String(body.length) }) } }, (response) => {
      const chunks: Buffer[] = [];
      response.on("error", reject);
      response.on("aborted", () => reject(new Error(`registry-load: ${method} ${urlPath}: the answer broke off`)));
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, location: response.headers.location, bytes: Buffer.concat(chunks).length }));
    });
    request.setTimeout(REQUEST_TIMEOUT_MS, () => request.destroy(new Error(`registry-load: ${method} ${urlPath}: no answer within ${REQUEST_TIMEOUT_MS / 1000} s`)));
    request.on("error", reject);
    request.end(body);
  });
}

/** The same request through `fetch`, as RegistryClient.request sends it. */
async function callFetch(method: string, urlPath: string, body?: Buffer, headers: Record<string, string> = {}): Promise<Answer> {
  const response = await fetch(`http://127.0.0.1:${port}${urlPath}`, { method, headers, ...(body === undefined ? {} : { body: new Uint8Array(body) }), signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  const bytes = Buffer.from(await response.arrayBuffer()).length;
  return { status: response.status, location: response.headers.get("location") ?? undefined, bytes };
}

const call = client === "fetch" ? callFetch : callHttp;

const expectStatus = (answer: Answer, status: number, what: string): Answer => {
  if (answer.status !== status) throw new Error(`registry-load: ${what} answered ${answer.status}, not ${status}`);
  return answer;
};

const sha256 = (bytes: Buffer): string => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
/** The registry's user and system CPU seconds. */
function registryCpuSeconds(): number {
  const stat = parseStat(readFileSync(`/proc/${registryPid}/stat`, "utf8"));
  return (stat.utime + stat.stime) / clockTicksPerSecond();
}

async function signLike(index: number): Promise<void> {
  const repository = `load/img${index % 200}`;
  const blobs = [randomBytes(900), randomBytes(900), Buffer.from(JSON.stringify({ rootfs: { type: "layers", diff_ids: [] }, index, nonce: randomBytes(8).toString("hex") }))];
  const tag = `sha256-${createHash("sha256").update(`${index}${randomBytes(8).toString("hex")}`).digest("hex")}.sig`;
  expectStatus(await call("GET", `/v2/${repository}/manifests/${tag}`, undefined, { accept: MANIFEST_TYPE }), 404, "the read of a tag not written yet");
  for (const blob of blobs) {
    const started = expectStatus(await call("POST", `/v2/${repository}/blobs/uploads/`), 202, "POST upload");
    if (started.location === undefined) throw new Error("registry-load: POST upload answered without a Location");
    const upload = new URL(started.location, `http://127.0.0.1:${port}`);
    upload.searchParams.set("digest", sha256(blob));
    expectStatus(await call("PUT", upload.pathname + upload.search, blob, { "content-type": "application/octet-stream" }), 201, "PUT blob");
  }
  const [first, second, config] = blobs as [Buffer, Buffer, Buffer];
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MANIFEST_TYPE, config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256(config), size: config.length }, layers: [first, second].map((blob) => ({ mediaType: "application/vnd.dev.cosign.simplesigning.v1+json", digest: sha256(blob), size: blob.length })) }));
  expectStatus(await call("PUT", `/v2/${repository}/manifests/${tag}`, manifest, { "content-type": MANIFEST_TYPE }), 201, "PUT manifest");
  expectStatus(await call("GET", `/v2/${repository}/manifests/${tag}`, undefined, { accept: MANIFEST_TYPE }), 200, "the read-back of the tag");
}

const cpuBefore = registryCpuSeconds();
const ownBefore = process.cpuUsage();
const started = Date.now();
let next = 0;
await Promise.all(Array.from({ length: 8 }, async () => {
  while (next < images) await signLike(next++);
}));
const own = process.cpuUsage(ownBefore);
const ownSeconds = (own.user + own.system) / 1e6;
process.stdout.write(`${images} images (${images * 9} requests) over ${client}: the registry's CPU ${(registryCpuSeconds() - cpuBefore).toFixed(2)} s, this process's ${ownSeconds.toFixed(2)} s (${(ownSeconds * 1000 / (images * 9)).toFixed(3)} ms a request), wall ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
agent.destroy();
