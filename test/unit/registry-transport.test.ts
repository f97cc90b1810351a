/**
 * The registry client's transport (src/registry/transport.ts) against real local HTTP servers:
 * what it sends, what it reads back, and each way an exchange can fail, with the codes the retry
 * policy reads; then the client itself on it (scheme probe, a reset tried again).
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import net, { type AddressInfo } from "node:net";
import path from "node:path";
import { afterEach, describe, expect, it, onTestFinished, vi } from "vitest";
import { RegistryClient, RegistryError } from "../../src/registry/client.js";
import { httpTransport } from "../../src/registry/transport.js";
import { freePort } from "../helpers/net.js";
import { scratchDir } from "../helpers/catalog.js";

interface Seen { readonly method: string; readonly url: string; readonly headers: http.IncomingHttpHeaders; readonly body: string }

const servers: (http.Server | net.Server)[] = [];
/** The raw servers' connections, ended after each test (a kept-alive one would hold close() until the agent drops it). */
const rawSockets = new Set<net.Socket>();
afterEach(async () => {
  for (const socket of rawSockets) socket.destroy();
  rawSockets.clear();
  for (const server of servers.splice(0)) {
    if (server instanceof http.Server) server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

const USER_AGENT = `strata node/${process.versions.node}`;

/** Starts a server on a loopback port (closed after the test) and says where: `127.0.0.1:<port>`. */
async function listening(server: http.Server | net.Server): Promise<string> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

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
  return { base: `http://${await listening(server)}`, seen, connections: () => connections };
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
    expect(server.seen[0]?.headers).toMatchObject({ "content-type": "application/x-test", authorization: "Basic eDp5", "content-length": "6", "user-agent": USER_AGENT });
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
    expect((await rejection(httpTransport(`http://127.0.0.1:${await freePort()}/v2/`, { method: "GET", headers: {}, timeoutMs: 5000 }))).code).toBe("ECONNREFUSED");
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

describe("a 401 after a redirect to another origin", () => {
  it("says the registry's redirect took the request where the login is not sent, for a read (node:http) and a layer's stream (fetch); the registry's own 401 still blames the login", async () => {
    const storage = await serve((_request, response) => response.writeHead(401).end("{}"));
    const registry = await serve((request, response) => {
      if (request.url === "/v2/repo/manifests/own") response.writeHead(401).end("{}");
      else response.writeHead(307, { location: `${storage.base}/files${request.url ?? ""}` }).end();
    });
    const client = new RegistryClient({ registry: registry.base.replace("http://", ""), scheme: "http", credentials: { username: "ci", password: "s3cret" }, sleep: async () => undefined });
    const storageOrigin = storage.base;
    const redirected = `the registry at ${registry.base.replace("http://", "")} sent a redirect to ${storageOrigin}, not its own address ${registry.base}, and ${storageOrigin} asked for a login (HTTP 401): Strata sends a registry's login only to the registry itself, as Docker does. fix: have its storage's redirects need no login (signed URLs), or turn them off (the distribution registry's storage.redirect.disable: true)`;
    await expect(client.manifest("repo", "t")).rejects.toThrow(redirected);
    await expect(client.blobStream("repo", `sha256:${"a".repeat(64)}`)).rejects.toThrow(redirected);
    // A list's first page redirected is a redirect too, not "the next page".
    await expect(client.tags("repo")).rejects.toThrow(redirected);
    expect(storage.seen.map((entry) => entry.headers.authorization)).toEqual([undefined, undefined, undefined]);
    await expect(client.manifest("repo", "own")).rejects.toThrow(/refused the credentials \(HTTP 401; the login from the stack config/);
  });
});

describe("a list page redirected", () => {
  it("reads its next page where its own link points, resolved against the page's final address, without the login there", async () => {
    const mirror = await serve((request, response) => {
      if (request.url === "/v2/repo/tags/list?n=1000") response.setHeader("link", '</v2/repo/tags/list?n=1000&last=a>; rel="next"');
      response.end(JSON.stringify({ name: "repo", tags: [request.url?.includes("last=a") === true ? "b" : "a"] }));
    });
    const registry = await serve((request, response) => response.writeHead(307, { location: `${mirror.base}${request.url ?? ""}` }).end());
    const client = new RegistryClient({ registry: registry.base.replace("http://", ""), scheme: "http", credentials: { username: "ci", password: "s3cret" }, sleep: async () => undefined });
    expect(await client.tags("repo")).toEqual(["a", "b"]);
    expect(mirror.seen.map((entry) => [entry.url, entry.headers.authorization])).toEqual([["/v2/repo/tags/list?n=1000", undefined], ["/v2/repo/tags/list?n=1000&last=a", undefined]]);
    expect(registry.seen).toHaveLength(1);
  });
});

describe("httpTransport, the edges", () => {
  it("joins every value of a repeated header, as fetch does", async () => {
    const server = await serve((_request, response) => {
      response.setHeader("content-type", ["application/a", "application/b"]);
      response.setHeader("link", ['</v2/a>; rel="next"', '</v2/b>; rel="prev"']);
      response.end("x");
    });
    const answer = await httpTransport(`${server.base}/v2/`, { method: "GET", headers: {}, timeoutMs: 5000 });
    expect(answer.headers.get("Content-Type")).toBe("application/a, application/b");
    expect(answer.headers.get("link")).toBe('</v2/a>; rel="next", </v2/b>; rel="prev"');
  });

  it("leaves no timer behind an answered request, and closes the connection of one that timed out", async () => {
    const server = await serve((_request, response) => response.end("x"));
    const set = vi.spyOn(globalThis, "setTimeout");
    const clear = vi.spyOn(globalThis, "clearTimeout");
    try {
      await httpTransport(`${server.base}/v2/`, { method: "GET", headers: {}, timeoutMs: 60_000 });
      const index = set.mock.calls.findIndex((call) => typeof call[1] === "number" && call[1] > 59_000);
      expect(index).toBeGreaterThanOrEqual(0);
      expect(clear.mock.calls.map((call) => call[0])).toContain(set.mock.results[index]?.value);
    } finally {
      set.mockRestore();
      clear.mockRestore();
    }
    let closed = false;
    const silent = await serve(() => undefined);
    const silentServer = servers.at(-1) as http.Server;
    silentServer.on("connection", (socket) => socket.on("close", () => (closed = true)));
    await rejection(httpTransport(`${silent.base}/v2/`, { method: "GET", headers: {}, timeoutMs: 100 }));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(closed).toBe(true);
  });

  it("stops following redirects after five, resolves a relative location against the hop it came from, and keeps one deadline for the chain", async () => {
    const loop = await serve((_request, response) => response.writeHead(307, { location: "/v2/again" }).end());
    const looped = await httpTransport(`${loop.base}/v2/start`, { method: "GET", headers: {}, timeoutMs: 5000 });
    expect(looped.status).toBe(307);
    expect(loop.seen).toHaveLength(6);
    const second = await serve((request, response) => {
      if (request.url === "/hop") response.writeHead(302, { location: "/end" }).end();
      else response.end(`second ${request.url ?? ""}`);
    });
    const first = await serve((_request, response) => response.writeHead(307, { location: `${second.base}/hop` }).end());
    expect((await httpTransport(`${first.base}/v2/x`, { method: "GET", headers: {}, timeoutMs: 5000 })).body.toString("utf8")).toBe("second /end");
    const twice = await serve((request, response) => {
      if (request.url === "/v2/start") response.setHeader("location", ["/v2/first", "/v2/second"]).writeHead(302).end();
      else response.end(`at ${request.url ?? ""}`);
    });
    // Two Location headers: the first is followed, not an address made of both.
    expect((await httpTransport(`${twice.base}/v2/start`, { method: "GET", headers: {}, timeoutMs: 5000 })).body.toString("utf8")).toBe("at /v2/first");
    const slow = await serve((request, response) => {
      setTimeout(() => response.writeHead(307, { location: `/v2/hop${(request.url ?? "").length}` }).end(), 120);
    });
    // Each hop answers in 120 ms, within the 300 ms timeout, but the chain of five does not.
    expect((await rejection(httpTransport(`${slow.base}/v2/`, { method: "GET", headers: {}, timeoutMs: 300 }))).name).toBe("TimeoutError");
  });

  it("does not send the login back to the registry after a redirect took it elsewhere", async () => {
    const registry = await serve((request, response) => {
      if (request.url === "/v2/repo/blobs/sha256:a") response.writeHead(307, { location: `${storage.base}/bounce` }).end();
      else response.end("back home");
    });
    const storage = await serve((_request, response) => response.writeHead(307, { location: `${registry.base}/v2/final` }).end());
    const answer = await httpTransport(`${registry.base}/v2/repo/blobs/sha256:a`, { method: "GET", headers: { authorization: "Basic c2VjcmV0" }, timeoutMs: 5000 });
    expect(answer.body.toString("utf8")).toBe("back home");
    expect(registry.seen.at(-1)?.url).toBe("/v2/final");
    expect(registry.seen.at(-1)?.headers.authorization).toBeUndefined();
  });

  it("sends a GET again when its kept-alive connection was closed before any answer, and marks another method's failure stale for the client", async () => {
    // A raw server: the first request on a connection is answered (kept alive), the second one on
    // that connection finds it closed without an answer, as when a server drops an idle connection
    // just as the request is sent. A new connection is answered again.
    const received: string[] = [];
    const server = net.createServer((socket) => {
      rawSockets.add(socket);
      let requests = 0;
      socket.on("data", (data: Buffer) => {
        received.push(data.toString("latin1").split(" ", 2).join(" "));
        requests++;
        if (requests === 1) socket.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: keep-alive\r\n\r\nok");
        else socket.destroy();
      });
    });
    const base = `http://${await listening(server)}`;
    expect((await httpTransport(`${base}/v2/a`, { method: "GET", headers: {}, timeoutMs: 5000 })).status).toBe(200);
    expect((await httpTransport(`${base}/v2/b`, { method: "GET", headers: {}, timeoutMs: 5000 })).status).toBe(200);
    expect(received).toEqual(["GET /v2/a", "GET /v2/b", "GET /v2/b"]);
    // A POST on the kept-alive connection is not sent again here: the server may have done it.
    const post = await rejection(httpTransport(`${base}/v2/repo/blobs/uploads/`, { method: "POST", headers: {}, timeoutMs: 5000 }));
    expect(post).toMatchObject({ code: "ECONNRESET", stale: true });
    expect(received.slice(3)).toEqual(["POST /v2/repo/blobs/uploads/"]);
    // A new connection that breaks is a plain failure, not a stale one.
    const breaking = net.createServer((socket) => socket.on("data", () => socket.destroy()));
    const broken = await rejection(httpTransport(`http://${await listening(breaking)}/v2/`, { method: "POST", headers: {}, timeoutMs: 5000 }));
    expect(broken.code).toBe("ECONNRESET");
    expect((broken as { stale?: boolean }).stale).toBeUndefined();
  });

  it("sends its requests through Node's global agent (its idle timeout, NODE_USE_ENV_PROXY)", async () => {
    const server = await serve((_request, response) => response.end("x"));
    const getName = vi.spyOn(http.globalAgent, "getName");
    try {
      await httpTransport(`${server.base}/v2/`, { method: "GET", headers: {}, timeoutMs: 5000 });
      expect(getName).toHaveBeenCalled();
    } finally {
      getName.mockRestore();
    }
  });

  it("speaks TLS to an https URL and checks the certificate", async () => {
    const dir = scratchDir("tls");
    execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-keyout", path.join(dir, "key.pem"), "-out", path.join(dir, "cert.pem")], { stdio: "ignore" });
    const server = https.createServer({ key: readFileSync(path.join(dir, "key.pem")), cert: readFileSync(path.join(dir, "cert.pem")) }, (_request, response) => response.end("tls"));
    const refused = await rejection(httpTransport(`https://${await listening(server)}/v2/`, { method: "GET", headers: {}, timeoutMs: 5000 }));
    expect(refused.code).toMatch(/SELF_SIGNED|CERT/);
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
    expect(server.seen.every((entry) => entry.headers["user-agent"] === USER_AGENT)).toBe(true);
  });

  it("says a request that gets no answer timed out, after its attempts", async () => {
    const server = await serve((request, response) => {
      if (request.url === "/v2/") response.end("{}");
    });
    const client = new RegistryClient({ registry: server.base.replace("http://", ""), scheme: "http", timeoutMs: 100, sleep: async () => undefined, dockerConfigDir: "/nonexistent" });
    const error = await rejection(client.manifest("repo", "tag"));
    expect(error).toBeInstanceOf(RegistryError);
    expect(String(error)).toMatch(/GET \/repo\/manifests\/tag at 127\.0\.0\.1:\d+ \(3 attempts\): no answer within 0\.1 s/);
    expect(server.seen.filter((entry) => entry.url === "/v2/repo/manifests/tag").map((entry) => entry.headers["user-agent"])).toEqual([USER_AGENT, USER_AGENT, USER_AGENT]);
  });

  it("tries a POST and a PUT again, counted, when their kept-alive connection broke before any answer", async () => {
    // The second request on each connection is done, then its connection dropped without an
    // answer: the upload's POST is lost that way, its PUT lands (the blob is stored) and is then
    // asked again, finding the upload closed, so the blob's HEAD is what says it is there.
    const stored = new Set<string>();
    const requestsOn = new WeakMap<object, number>();
    const server = await serve((request, response, seen) => {
      const count = (requestsOn.get(request.socket) ?? 0) + 1;
      requestsOn.set(request.socket, count);
      const digest = /[?&]digest=([^&]+)/.exec(seen.url)?.[1];
      if (request.method === "PUT" && digest !== undefined && count === 2) stored.add(decodeURIComponent(digest));
      if (count === 2) {
        request.socket.destroy();
        return;
      }
      if (request.method === "HEAD") response.writeHead(stored.size > 0 ? 200 : 404).end();
      else if (request.method === "GET") response.end('{"name":"repo","tags":[]}');
      else if (request.method === "POST") response.writeHead(202, { location: "/v2/repo/blobs/uploads/u1" }).end();
      else if (request.method === "PUT") response.writeHead(404).end('{"errors":[{"code":"BLOB_UPLOAD_UNKNOWN"}]}');
      else response.end("{}");
    });
    const client = new RegistryClient({ registry: server.base.replace("http://", ""), scheme: "http", sleep: async () => undefined, dockerConfigDir: "/nonexistent" });
    // A first request, so that the upload's POST goes out on a kept-alive connection.
    expect(await client.tags("repo")).toEqual([]);
    await new Promise((resolve) => setImmediate(resolve));
    const bytes = Buffer.from("signature payload");
    const digest = await client.putBlob("repo", bytes, { unchecked: true });
    expect(stored.has(digest)).toBe(true);
    const methods = server.seen.map((entry) => entry.method);
    expect(methods.filter((method) => method === "POST")).toHaveLength(2);
    expect(methods.filter((method) => method === "PUT")).toHaveLength(2);
    expect(server.seen.at(-1)).toMatchObject({ method: "HEAD", url: `/v2/repo/blobs/${digest}` });
  });

  describe("TLS refusals, each with its fix", () => {
    const openssl = (dir: string, args: readonly string[]): void => {
      execFileSync("openssl", args, { cwd: dir, stdio: "ignore" });
    };
    const EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    /** A self-signed certificate (and its key) for `subject`, with `altNames` as its subjectAltName. */
    const selfSigned = (subject: string, altNames: string): { key: Buffer; cert: Buffer } => {
      const dir = scratchDir("tls");
      openssl(dir, ["req", "-x509", ...EC_KEY, "-days", "1", "-subj", subject, "-addext", `subjectAltName=${altNames}`, "-keyout", "key.pem", "-out", "cert.pem"]);
      return { key: readFileSync(path.join(dir, "key.pem")), cert: readFileSync(path.join(dir, "cert.pem")) };
    };
    /** A CA, and a certificate for 127.0.0.1 it signed with `extensions` (an openssl extfile). */
    const signedByCa = (extensions: string, digest = "-sha256"): { ca: Buffer; key: Buffer; cert: Buffer } => {
      const dir = scratchDir("tls");
      openssl(dir, ["req", "-x509", ...EC_KEY, "-days", "1", "-subj", "/CN=Strata test CA", "-keyout", "ca-key.pem", "-out", "ca.pem"]);
      openssl(dir, ["req", "-new", ...EC_KEY, "-subj", "/CN=127.0.0.1", "-keyout", "key.pem", "-out", "request.pem"]);
      writeFileSync(path.join(dir, "extensions.cnf"), `${extensions}\n`);
      openssl(dir, ["x509", "-req", "-in", "request.pem", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial", "-days", "1", digest, "-extfile", "extensions.cnf", "-out", "cert.pem"]);
      return { ca: readFileSync(path.join(dir, "ca.pem")), key: readFileSync(path.join(dir, "key.pem")), cert: readFileSync(path.join(dir, "cert.pem")) };
    };
    const SERVER_EXTENSIONS = "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth";
    /** A CA, and a server certificate for 127.0.0.1 it signed, valid only in 2000 (openssl ca: x509 -req takes no past dates). */
    const expiredByCa = (): { ca: Buffer; key: Buffer; cert: Buffer } => {
      const dir = scratchDir("tls");
      openssl(dir, ["req", "-x509", ...EC_KEY, "-days", "1", "-subj", "/CN=Strata test CA", "-keyout", "ca-key.pem", "-out", "ca.pem"]);
      openssl(dir, ["req", "-new", ...EC_KEY, "-subj", "/CN=127.0.0.1", "-keyout", "key.pem", "-out", "request.pem"]);
      writeFileSync(path.join(dir, "extensions.cnf"), `${SERVER_EXTENSIONS}\n`);
      writeFileSync(path.join(dir, "ca.cnf"), "[ca]\ndefault_ca=test\n[test]\ndatabase=index.txt\nnew_certs_dir=.\nserial=serial\ndefault_md=sha256\npolicy=any\n[any]\ncommonName=supplied\n");
      writeFileSync(path.join(dir, "index.txt"), "");
      writeFileSync(path.join(dir, "serial"), "01\n");
      openssl(dir, ["ca", "-batch", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile", "ca-key.pem", "-in", "request.pem", "-out", "cert.pem", "-startdate", "20000101000000Z", "-enddate", "20010101000000Z", "-extfile", "extensions.cnf"]);
      return { ca: readFileSync(path.join(dir, "ca.pem")), key: readFileSync(path.join(dir, "key.pem")), cert: readFileSync(path.join(dir, "cert.pem")) };
    };
    /** Node's global HTTPS agent (the transport's) trusts `ca` for one test, as NODE_EXTRA_CA_CERTS would make it. */
    const trusting = (ca: Buffer): void => {
      const before = https.globalAgent.options.ca;
      https.globalAgent.options.ca = ca;
      onTestFinished(() => {
        https.globalAgent.options.ca = before;
        https.globalAgent.destroy();
      });
    };

    it("names NODE_EXTRA_CA_CERTS for a certificate no trusted CA signed", async () => {
      const server = https.createServer(selfSigned("/CN=127.0.0.1", "IP:127.0.0.1"), (_request, response) => response.end("{}"));
      const client = new RegistryClient({ registry: await listening(server), scheme: "https", attempts: 1, sleep: async () => undefined, dockerConfigDir: "/nonexistent" });
      const refused = String(await rejection(client.manifest("repo", "tag")));
      expect(refused).toMatch(/^RegistryError: GET \/repo\/manifests\/tag at 127\.0\.0\.1:\d+: the registry's TLS certificate is not signed by a CA this machine trusts \(DEPTH_ZERO_SELF_SIGNED_CERT: self[- ]signed certificate\): give Strata the CA that signed it, NODE_EXTRA_CA_CERTS=<ca\.pem>/);
    });

    // Each through the loopback probe: one connection, no second one over plain HTTP (a TLS server
    // answers that 400, which hid why the registry was refused), the failure marked "tls" for the
    // lookup's fix, and a message that says what was refused.
    const refusals: readonly { readonly case: string; readonly server: () => https.ServerOptions; readonly said: RegExp }[] = [
      {
        case: "a private CA's certificate, the CA not given",
        server: () => {
          const pair = signedByCa(SERVER_EXTENSIONS);
          return { key: pair.key, cert: pair.cert };
        },
        said: /is not signed by a CA this machine trusts \(UNABLE_TO_VERIFY_LEAF_SIGNATURE: .*NODE_EXTRA_CA_CERTS=<ca\.pem>.*or, if that CA is trusted already, make the registry send its intermediate certificates/,
      },
      {
        case: "a private CA's chain, the CA not given",
        server: () => {
          const pair = signedByCa(SERVER_EXTENSIONS);
          return { key: pair.key, cert: Buffer.concat([pair.cert, pair.ca]) };
        },
        said: /is not signed by a CA this machine trusts \(SELF_SIGNED_CERT_IN_CHAIN: .*NODE_EXTRA_CA_CERTS=<ca\.pem>/,
      },
      {
        case: "a private CA's intermediate and certificate, the CA not given",
        server: () => {
          const dir = scratchDir("tls");
          openssl(dir, ["req", "-x509", ...EC_KEY, "-days", "1", "-subj", "/CN=Strata test root", "-keyout", "root-key.pem", "-out", "root.pem"]);
          openssl(dir, ["req", "-new", ...EC_KEY, "-subj", "/CN=Strata test intermediate", "-keyout", "intermediate-key.pem", "-out", "intermediate-request.pem"]);
          writeFileSync(path.join(dir, "intermediate.cnf"), "basicConstraints=critical,CA:TRUE\nkeyUsage=keyCertSign\n");
          openssl(dir, ["x509", "-req", "-in", "intermediate-request.pem", "-CA", "root.pem", "-CAkey", "root-key.pem", "-CAcreateserial", "-days", "1", "-extfile", "intermediate.cnf", "-out", "intermediate.pem"]);
          openssl(dir, ["req", "-new", ...EC_KEY, "-subj", "/CN=127.0.0.1", "-keyout", "key.pem", "-out", "request.pem"]);
          writeFileSync(path.join(dir, "extensions.cnf"), `${SERVER_EXTENSIONS}\n`);
          openssl(dir, ["x509", "-req", "-in", "request.pem", "-CA", "intermediate.pem", "-CAkey", "intermediate-key.pem", "-CAcreateserial", "-days", "1", "-extfile", "extensions.cnf", "-out", "cert.pem"]);
          return { key: readFileSync(path.join(dir, "key.pem")), cert: Buffer.concat([readFileSync(path.join(dir, "cert.pem")), readFileSync(path.join(dir, "intermediate.pem"))]) };
        },
        said: /is not signed by a CA this machine trusts \(UNABLE_TO_GET_ISSUER_CERT_LOCALLY: .*NODE_EXTRA_CA_CERTS=<ca\.pem> \(the Docker engine takes the same CA as \/etc\/docker\/certs\.d\/<host:port>\/ca\.crt\)$/,
      },
      {
        case: "a trusted certificate for another host",
        server: () => {
          const pair = selfSigned("/CN=registry.invalid", "DNS:registry.invalid");
          trusting(pair.cert);
          return pair;
        },
        said: /is for another host name \(ERR_TLS_CERT_ALTNAME_INVALID: .*127\.0\.0\.1.*\): use the registry address the certificate names/,
      },
      {
        case: "a trusted CA's certificate that is not a server's",
        server: () => {
          const pair = signedByCa("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=clientAuth");
          trusting(pair.ca);
          return { key: pair.key, cert: pair.cert };
        },
        said: /the registry's TLS certificate was refused \(INVALID_PURPOSE: .*\): issue it as a server certificate/,
      },
      {
        case: "a trusted CA's certificate that has expired",
        server: () => {
          const pair = expiredByCa();
          trusting(pair.ca);
          return { key: pair.key, cert: pair.cert };
        },
        said: /the registry's TLS certificate is not valid now \(CERT_HAS_EXPIRED: certificate has expired\): renew it, or check this machine's clock/,
      },
      {
        case: "a trusted CA's certificate signed with SHA-1 (a verify error Node has no code for)",
        server: () => {
          const pair = signedByCa(SERVER_EXTENSIONS, "-sha1");
          trusting(pair.ca);
          return { key: pair.key, cert: pair.cert };
        },
        said: /the registry's TLS certificate was refused \(UNSPECIFIED: .*too weak\): issue it as a server certificate/,
      },
      {
        case: "a client certificate required (TLS 1.3: an alert after the handshake)",
        server: () => {
          const pair = selfSigned("/CN=127.0.0.1", "IP:127.0.0.1");
          trusting(pair.cert);
          return { ...pair, ca: pair.cert, requestCert: true, rejectUnauthorized: true };
        },
        said: /the TLS handshake failed \(ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED\): tlsv13 alert certificate required$/,
      },
      {
        case: "a client certificate required (TLS 1.2: an alert in the handshake)",
        server: () => {
          const pair = selfSigned("/CN=127.0.0.1", "IP:127.0.0.1");
          trusting(pair.cert);
          return { ...pair, ca: pair.cert, requestCert: true, rejectUnauthorized: true, maxVersion: "TLSv1.2" };
        },
        said: /the TLS handshake failed \(EPROTO\): (sslv3|ssl\/tls) alert handshake failure$/,
      },
    ];
    it("asks a loopback registry over HTTP when its HTTPS port closed the connection at the TLS hello (no TLS there)", async () => {
      const asked: string[] = [];
      const server = net.createServer((socket) => {
        rawSockets.add(socket);
        socket.on("data", (bytes: Buffer) => {
          // A TLS ClientHello starts with 0x16 (a handshake record): closed unanswered, as a plain server may.
          if (bytes[0] === 0x16) {
            socket.destroy();
            return;
          }
          for (const head of bytes.toString("latin1").split("\r\n\r\n").filter((text) => text !== "")) {
            const target = head.split(" ")[1] ?? "";
            asked.push(target);
            socket.write(target === "/v2/" ? "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}" : "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n");
          }
        });
      });
      const probing = new RegistryClient({ registry: await listening(server), attempts: 1, sleep: async () => undefined, dockerConfigDir: "/nonexistent" });
      expect(await probing.manifest("repo", "tag")).toBeUndefined();
      expect(asked).toEqual(["/v2/", "/v2/repo/manifests/tag"]);
    });

    it("tries a loopback TLS registry that dropped the probe after the handshake again over HTTPS, never over HTTP", async () => {
      const pair = selfSigned("/CN=127.0.0.1", "IP:127.0.0.1");
      trusting(pair.cert);
      const asked: string[] = [];
      const server = https.createServer(pair, (request, response) => {
        asked.push(request.url ?? "");
        // The first request (the probe) is dropped: a reset after TLS was set up.
        if (asked.length === 1) {
          request.socket.destroy();
          return;
        }
        response.writeHead(request.url === "/v2/" ? 200 : 404).end(request.url === "/v2/" ? "{}" : "");
      });
      // Every connection set up TLS: one asked over plain HTTP would not (nor reach the handler).
      let connections = 0;
      let secured = 0;
      server.on("connection", () => connections++);
      server.on("secureConnection", () => secured++);
      const probing = new RegistryClient({ registry: await listening(server), attempts: 2, sleep: async () => undefined, dockerConfigDir: "/nonexistent" });
      expect(await probing.manifest("repo", "tag")).toBeUndefined();
      expect(asked).toEqual(["/v2/", "/v2/", "/v2/repo/manifests/tag"]);
      expect(connections).toBe(secured);
    });

    for (const refusal of refusals) {
      it(`refuses ${refusal.case} with the fix, and does not ask a loopback registry over HTTP after it`, async () => {
        let connections = 0;
        let answered = 0;
        const server = https.createServer(refusal.server(), (_request, response) => {
          answered++;
          response.end("{}");
        });
        server.on("connection", () => connections++);
        const probing = new RegistryClient({ registry: await listening(server), attempts: 1, sleep: async () => undefined, dockerConfigDir: "/nonexistent" });
        const failure = await rejection(probing.manifest("repo", "tag"));
        expect(String(failure)).toMatch(/^RegistryError: will not talk to the registry at https:\/\/127\.0\.0\.1:\d+\/v2: /);
        expect(String(failure)).toMatch(refusal.said);
        expect(String(failure)).not.toMatch(/SSL routines/);
        expect((failure as { fault?: string }).fault).toBe("tls");
        expect(connections).toBe(1);
        expect(answered).toBe(0);
      });
    }
  });

  it("says a registry that answers HTTPS with plain HTTP did not answer in TLS", async () => {
    const server = await serve((_request, response) => response.end("{}"));
    const client = new RegistryClient({ registry: server.base.replace("http://", ""), scheme: "https", attempts: 1, sleep: async () => undefined, dockerConfigDir: "/nonexistent" });
    expect(String(await rejection(client.manifest("repo", "tag")))).toMatch(/the answer was not TLS \((EPROTO|ERR_SSL_[A-Z_]+)\): the registry may speak plain HTTP/);
  });
});
