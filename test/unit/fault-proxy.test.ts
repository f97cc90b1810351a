/**
 * The fault proxy's record of what it faulted (test/helpers/fault-proxy.ts): the fault corpus
 * asserts the point each fault names against it, so the classification must be right.
 */
import { createServer } from "node:http";
import { afterAll, describe, expect, it } from "vitest";
import { classify, startFaultProxy } from "../helpers/fault-proxy.js";

describe("classify", () => {
  it("names the registry route, the repository and the reference", () => {
    expect(classify("GET", "/v2/", {})).toMatchObject({ kind: "version check" });
    expect(classify("GET", "/v2/_catalog?n=1000", {})).toMatchObject({ kind: "catalog" });
    expect(classify("GET", "/v2/g-1/base-tools/tags/list?n=50", {})).toMatchObject({ kind: "tag list", repository: "g-1/base-tools" });
    expect(classify("HEAD", "/v2/g/app/manifests/1.0-p2", {})).toMatchObject({ kind: "manifest", repository: "g/app", reference: "1.0-p2" });
    expect(classify("GET", "/v2/g/app/manifests/sha256:abc", {})).toMatchObject({ kind: "manifest", reference: "sha256:abc" });
    expect(classify("GET", "/v2/g/app/blobs/sha256:abc", {})).toMatchObject({ kind: "blob", repository: "g/app", reference: "sha256:abc" });
    expect(classify("POST", "/v2/g/app/blobs/uploads/", {})).toMatchObject({ kind: "blob upload", repository: "g/app" });
    expect(classify("PUT", "/v2/g/app/blobs/uploads/5f2c-uuid?digest=sha256:abc", {})).toMatchObject({ kind: "blob upload", repository: "g/app" });
    expect(classify("GET", "/metrics", {})).toMatchObject({ kind: "other" });
  });

  it("names the sender by its User-Agent and sees the login", () => {
    expect(classify("GET", "/v2/", { "user-agent": "docker/27.5.1 go/go1.22.12 os/linux arch/amd64" })).toMatchObject({ sender: "docker engine", authorized: false });
    expect(classify("GET", "/v2/", { "user-agent": "node", authorization: "Basic eDp5" })).toMatchObject({ sender: "strata", authorized: true });
    expect(classify("GET", "/v2/", { "user-agent": "strata node/22.23.3" })).toMatchObject({ sender: "strata" });
    expect(classify("GET", "/v2/", { "user-agent": "curl/8.5.0" })).toMatchObject({ sender: "other" });
  });
});

describe("the proxy", () => {
  const upstream = createServer((request, response) => response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ host: request.headers.host })));
  afterAll(() => upstream.close());

  it("records each faulted request as Node's fetch sent it, and forwards the rest", async () => {
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    const proxy = await startFaultProxy({ host: "127.0.0.1", port: (upstream.address() as { port: number }).port });
    try {
      proxy.setRule((request) => (request.kind === "manifest" && request.reference === "1.0-p0" ? { kind: "status", status: 500 } : undefined));
      const faulted = await fetch(`http://${proxy.address}/v2/g/app/manifests/1.0-p0`, { headers: { authorization: "Basic eDp5" } });
      const forwarded = await fetch(`http://${proxy.address}/v2/g/app/tags/list`);
      expect([faulted.status, forwarded.status]).toEqual([500, 200]);
      // Host as sent, the proxy's: a registry builds its upload locations from it, so an upload's PUT comes back through the proxy.
      expect(await forwarded.json()).toEqual({ host: proxy.address });
      expect(proxy.injected).toEqual([{ method: "GET", url: "/v2/g/app/manifests/1.0-p0", kind: "manifest", repository: "g/app", reference: "1.0-p0", sender: "strata", authorized: true, fault: "status" }]);
    } finally {
      await proxy.close();
    }
  });
});
