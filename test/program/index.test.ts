/** The Pulumi entry point under mocks: config in, stack outputs out. */
import { createServer } from "node:http";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import * as pulumi from "@pulumi/pulumi";
import { noteCatalog, scratchDir } from "../helpers/catalog.js";
import { installMocks, resolved } from "../helpers/mocks.js";

// The program pings the Docker engine before it declares a build; under mocks
// nothing is built, so a socket that answers the ping stands in for the engine.
const engineSocket = path.join(scratchDir("engine"), "docker.sock");
// A Docker engine that answers its ping, and its info with this machine's architecture (the platform check reads it).
const engine = createServer((request, response) => {
  if (request.url?.endsWith("/info")) response.writeHead(200).end(JSON.stringify({ OSType: "linux", Architecture: process.arch === "arm64" ? "aarch64" : "x86_64" }));
  else response.writeHead(request.url?.endsWith("/_ping") ? 200 : 404).end("OK");
});
await new Promise<void>((resolve) => engine.listen(engineSocket, resolve));
afterAll(() => engine.close());

// An empty registry: the program's lookups get "not found" (404) for every tag and carry on, as
// for a first-time stack. (A registry that cannot answer stops the program: test/e2e/fault-corpus.)
const registry = createServer((request, response) => response.writeHead(request.url === "/v2/" ? 200 : 404, { "content-type": "application/json" }).end("{}"));
await new Promise<void>((resolve) => registry.listen(0, "127.0.0.1", resolve));
const registryAddress = `127.0.0.1:${(registry.address() as { port: number }).port}`;
afterAll(() => registry.close());

describe("index.ts", () => {
  it("reads stack config and exports every layer's name, tag, ref, digest and parent", async () => {
    await installMocks("stable");
    pulumi.runtime.setAllConfig({
      "strata:registry": registryAddress,
      "strata:osRelease": "debian8.3",
      "strata:productVersion": "mos9.0",
      "strata:channel": "stable",
      "strata:push": "true",
      "strata:platform": "linux/amd64",
      // Pulumi.yaml's default: a building channel has promoteFrom "", not unset.
      "strata:promoteFrom": "",
    });
    process.env.STRATA_CATALOG = noteCatalog();
    process.env.STRATA_SOURCE_REVISION = "abc123";
    process.env.DOCKER_HOST = `unix://${engineSocket}`;
    const program = await import("../../index.js");
    expect(program.group).toBe("debian8.3-mos9.0-stable");
    expect(program.sourceRevision).toBe("abc123");
    const keystone = program.layers.keystone;
    expect(keystone).toMatchObject({ image: "debian-mos-ms-keystone", tag: "1.0-p5", ref: `${registryAddress}/debian8.3-mos9.0-stable/debian-mos-ms-keystone:1.0-p5`, parent: "keystone-base" });
    expect(await resolved(keystone!.digestRef)).toMatch(new RegExp(`^${registryAddress.replaceAll(".", "\\.")}/debian8\\.3-mos9\\.0-stable/debian-mos-ms-keystone@sha256:`));
    expect(Object.keys(program.layers)).toEqual(["debian", "mos", "ms", "keystone-base", "keystone", "mysql"]);
  });
});
