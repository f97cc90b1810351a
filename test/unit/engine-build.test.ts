import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { engineEndpoint } from "../../src/pulumi/docker-engine.js";
import { BuildProgress, contextTarPaths } from "../../src/pulumi/provider/engine-build.js";
import { builderKind } from "../../src/pulumi/provider/docker-cli.js";
import { scratchDir } from "../helpers/catalog.js";

describe("engine endpoint", () => {
  it("reads DOCKER_HOST as the docker CLI does", () => {
    // Unset (or empty): the default socket. (undefined would take the default parameter, this process's DOCKER_HOST.)
    expect(engineEndpoint("")).toEqual({ socketPath: "/var/run/docker.sock" });
    expect(engineEndpoint("unix:///run/user/1000/docker.sock")).toEqual({ socketPath: "/run/user/1000/docker.sock" });
    expect(engineEndpoint("tcp://127.0.0.1:2375")).toEqual({ host: "127.0.0.1", port: 2375 });
    expect(() => engineEndpoint("ssh://builder@example")).toThrow(/STRATA_DOCKER_BUILDER=legacy/);
  });
});

describe("builder choice", () => {
  it("is BuildKit unless legacy is asked for, and anything else is refused", () => {
    expect(builderKind(undefined)).toBe("buildkit");
    expect(builderKind("legacy")).toBe("legacy");
    expect(() => builderKind("kaniko")).toThrow(/STRATA_DOCKER_BUILDER=kaniko is not a builder: use buildkit \(the default\) or legacy/);
  });
});

describe("context tar paths", () => {
  it("sends what .dockerignore lets through, the folders above it, and always the Dockerfile", () => {
    const dir = scratchDir("tar-context");
    mkdirSync(path.join(dir, "etc/app"), { recursive: true });
    mkdirSync(path.join(dir, "cache"), { recursive: true });
    writeFileSync(path.join(dir, "Dockerfile"), "FROM scratch\n");
    writeFileSync(path.join(dir, ".dockerignore"), "cache\nDockerfile\n");
    writeFileSync(path.join(dir, "etc/app/app.conf"), "x");
    writeFileSync(path.join(dir, "cache/big.bin"), "x");
    expect(contextTarPaths(dir, "Dockerfile")).toEqual(["etc", "etc/app", ".dockerignore", "Dockerfile", "etc/app/app.conf"]);
  });
});

describe("BuildKit progress", () => {
  it("turns the engine's trace of a failing build (recorded from Docker 20.10) into the failing step and its output", () => {
    const progress = new BuildProgress();
    const lines = readFileSync(path.join(import.meta.dirname, "../fixtures/buildkit-failing-build.jsonl"), "utf8").trim().split("\n");
    for (const line of lines) {
      const message = JSON.parse(line) as { id?: string; aux?: unknown };
      if (message.id === "moby.buildkit.trace" && typeof message.aux === "string") progress.addTrace(message.aux);
    }
    expect(progress.failureReport()).toBe([
      "step: [2/2] RUN echo building step output && echo simulated failure >&2 && false",
      // stdout and stderr are separate streams; this is the order the engine flushed them in the recording.
      "  simulated failure",
      "  building step output",
    ].join("\n"));
  });
});
