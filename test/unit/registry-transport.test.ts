/**
 * The registry client's transport (src/registry/transport.ts) against real local HTTP servers:
 * what it sends, what it reads back, and each way an exchange can fail, with the codes the retry
 * policy reads; then the client itself on it (scheme probe, a reset tried again).
 */
import http from "node:http";
import { type AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { RegistryClient, RegistryError } from "../../src/registry/client.js";
import { httpTransport } from "../../src/registry/transport.js";

interface Seen { readonly method: string; readonly url: string; readonly headers: http.IncomingHttpHeaders; readonly body: string }

const servers: http.Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

/** A server on 127.0.0.1 that records each request (body read whole) and answers with `handle`. */
async function serve(handle: (request: http.IncomingMessage, response: http.ServerResponse, seen: Seen) => void): Promise<{ base: string; seen: Seen[]; connections: () => number }> {
  const seen: Seen[] = [];
  let connections = 0;
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const entry = { method: request.method ?? "", url: request.url ?? "", headers: request.headers, body: Buffer.concat(chunks).toString("utf8") };
      seen.push(entry);
      handle(request, response, entry);
    });
  });
  server.on("connection", () => connections++);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, connections: () => connections };
}

const rejection = async (promise: Promise<unknown>): Promise<{ name?: string; code?: string }> => {
  try {
    await promise;
  } catch (error) {
    return error as { name?: string; code?: string };
  }
  throw new Error("expected the request to fail");
};

describe("httpTransport", () => {
  it("sends the method, headers and body, and reads the status, headers and whole body", async () => {
    const server = await serve((_request, response) => {
      response.writeHead(201, { "Docker-Content-Digest": "sha256:abc", "content-type": "application/json" });
      response.end('{"ok":true}');
    });
    const answer = await httpTransport(`${server.base}/v2/repo/manifests/tag`, { method: "PUT", headers: { "content-type": "application/x-test", authorization: "Basic eDp5" }, body: Buffer.from("bytes!"), timeoutMs: 5000 });
    expect(answer.status).toBe(201);
    expect(answer.headers.get("Docker-Content-Digest")).toBe("sha256:abc");
    expect(answer.headers.get("location")).toBeNull();
    expect(answer.body.toString("utf8")).toBe('{"ok":true}');
    expect(server.seen).toHaveLength(1);
    expect(server.seen[0]).toMatchObject({ method: "PUT", url: "/v2/repo/manifests/tag", body: "bytes!" });
    expect(server.seen[0]?.headers).toMatchObject({ "content-type": "application/x-test", authorization: "Basic eDp5", "content-length": "6", "user-agent": `strata node/${process.versions.node}` });
  });

  it("says a POST without a body is empty (content-length 0), and reads no body for a HEAD", async () => {
    const server = await serve((request, response) => {
      response.writeHead(request.method === "HEAD" ? 200 : 202, { "content-length": "12", location: "/v2/repo/blobs/uploads/u1" });
      response.end(request.method === "HEAD" ? undefined : "upload open!");
    });
    const post = await httpTransport(`${server.base}/v2/repo/blobs/uploads/`, { method: "POST", headers: {}, timeoutMs: 5000 });
    expect(post.status).toBe(202);
    expect(post.headers.get("location")).toBe("/v2/repo/blobs/uploads/u1");
    expect(server.seen[0]?.headers["content-length"]).toBe("0");
    const head = await httpTransport(`${server.base}/v2/repo/blobs/sha256:x`, { method: "HEAD", headers: {}, timeoutMs: 5000 });
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);
  });

  it("keeps the connection alive across requests", async () => {
    const server = await serve((_request, response) => response.end("x"));
    for (let i = 0; i < 10; i++) await httpTransport(`${server.base}/v2/`, { method: "GET", headers: {}, timeoutMs: 5000 });
    expect(server.seen).toHaveLength(10);
    expect(server.connections()).toBe(1);
  });

  it("fails with a TimeoutError when no answer comes in time, and when the body stalls after the headers", async () => {
    const silent = await serve(() => undefined);
    const started = Date.now();
    expect((await rejection(httpTransport(`${silent.base}/v2/`, { method: "GET", headers: {}, timeoutMs: 200 }))).name).toBe("TimeoutError");
    expect(Date.now() - started).toBeLessThan(3000);
    const stalled = await serve((_request, response) => {
      response.writeHead(200, { "content-length": "100" });
      response.write("only part of it");
    });
    expect((await rejection(httpTransport(`${stalled.base}/v2/repo/blobs/sha256:x`, { method: "GET", headers: {}, timeoutMs: 200 }))).name).toBe("TimeoutError");
  });

  it("fails with ECONNRESET when the answer breaks off, and ECONNREFUSED when nothing listens", async () => {
    const cut = await serve((_request, response) => {
      response.writeHead(200, { "content-length": "100" });
      response.write("part", () => response.socket?.destroy());
    });
    expect((await rejection(httpTransport(`${cut.base}/v2/x`, { method: "GET", headers: {}, timeoutMs: 5000 }))).code).toBe("ECONNRESET");
    const gone = await serve(() => undefined);
    const address = gone.base;
    const server = servers.pop();
    await new Promise((resolve) => server?.close(resolve));
    expect((await rejection(httpTransport(`${address}/v2/`, { method: "GET", headers: {}, timeoutMs: 5000 }))).code).toBe("ECONNREFUSED");
  });

  it("follows a GET's redirect, sending the login only to the registry's own origin, and leaves a PUT's as it is", async () => {
    const storage = await serve((_request, response) => response.end("blob bytes"));
    const registry = await serve((request, response) => {
      if (request.url === "/v2/repo/blobs/sha256:a") response.writeHead(307, { location: `${storage.base}/files/a` }).end();
      else if (request.url === "/v2/repo/blobs/sha256:b") response.writeHead(302, { location: "/v2/repo/blobs/sha256:c" }).end();
      else if (request.method === "PUT") response.writeHead(307, { location: "/elsewhere" }).end();
      else response.end("same-origin bytes");
    });
    const login = { authorization: "Basic c2VjcmV0" };
    const away = await httpTransport(`${registry.base}/v2/repo/blobs/sha256:a`, { method: "GET", headers: login, timeoutMs: 5000 });
    expect(away.body.toString("utf8")).toBe("blob bytes");
    expect(storage.seen[0]?.headers.authorization).toBeUndefined();
    const home = await httpTransport(`${registry.base}/v2/repo/blobs/sha256:b`, { method: "GET", headers: login, timeoutMs: 5000 });
    expect(home.body.toString("utf8")).toBe("same-origin bytes");
    expect(registry.seen.at(-1)).toMatchObject({ url: "/v2/repo/blobs/sha256:c", headers: { authorization: "Basic c2VjcmV0" } });
    const put = await httpTransport(`${registry.base}/v2/repo/manifests/t`, { method: "PUT", headers: login, body: Buffer.from("m"), timeoutMs: 5000 });
    expect(put.status).toBe(307);
    expect(registry.seen.some((entry) => entry.url === "/elsewhere")).toBe(false);
  });
});

describe("RegistryClient on node:http", () => {
  it("asks a loopback registry over HTTP when HTTPS gets no TLS answer, and tries a reset read again", async () => {
    const manifest = Buffer.from(JSON.stringify({ mediaType: "application/vnd.oci.image.manifest.v1+json", layers: [] }));
    let resets = 0;
    const server = await serve((request, response) => {
      if (request.url === "/v2/") {
        response.end("{}");
      } else if (resets === 0) {
        resets++;
        response.socket?.destroy();
      } else {
        response.writeHead(200, { "content-type": "application/vnd.oci.image.manifest.v1+json" }).end(manifest);
      }
    });
    const registry = server.base.replace("http://", "");
    const client = new RegistryClient({ registry, sleep: async () => undefined, dockerConfigDir: "/nonexistent" });
    const found = await client.manifest("repo", "tag");
    expect(found?.mediaType).toBe("application/vnd.oci.image.manifest.v1+json");
    expect(resets).toBe(1);
    expect(server.seen.filter((entry) => entry.url === "/v2/repo/manifests/tag")).toHaveLength(2);
  });

  it("says a request that gets no answer timed out, after its attempts", async () => {
    const server = await serve((request, response) => {
      if (request.url === "/v2/") response.end("{}");
    });
    const client = new RegistryClient({ registry: server.base.replace("http://", ""), scheme: "http", timeoutMs: 100, sleep: async () => undefined, dockerConfigDir: "/nonexistent" });
    const error = await rejection(client.manifest("repo", "tag"));
    expect(error).toBeInstanceOf(RegistryError);
    expect(String(error)).toMatch(/GET \/repo\/manifests\/tag at 127\.0\.0\.1:\d+ \(3 attempts\): no answer within 0\.1 s/);
  });
});
