import { describe, expect, it } from "vitest";
import { type EngineEvent } from "@pulumi/pulumi/automation/index.js";
import { eventCollector } from "../../src/engine/events.js";
import { summaryRows } from "../../src/cli/summary.js";

const urn = (type: string, name: string): string => `urn:pulumi:dev::strata::strata:index:LayerTree$${type}::${name}`;
const pre = (type: string, name: string, op: string): EngineEvent => ({ sequence: 0, timestamp: 0, resourcePreEvent: { metadata: { op, urn: urn(type, name), type } } } as unknown as EngineEvent);
const outputs = (type: string, name: string, op: string, repoDigest?: string): EngineEvent => ({ sequence: 0, timestamp: 0, resOutputsEvent: { metadata: { op, urn: urn(type, name), type, new: repoDigest === undefined ? undefined : { outputs: { repoDigest } } } } } as unknown as EngineEvent);

describe("engine events per layer", () => {
  it("follows the new resource when a layer's image changes type, not the old one's delete", () => {
    const { events, onEvent } = eventCollector();
    for (const event of [
      pre("strata:index:CopiedImage", "tools", "create"),
      outputs("strata:index:CopiedImage", "tools", "create", "r/g/tools@sha256:1"),
      pre("docker:index/image:Image", "libs", "update"),
      outputs("docker:index/image:Image", "libs", "update", "r/g/libs@sha256:2"),
      // At the end of the update, the engine deletes tools' old docker.Image.
      pre("docker:index/image:Image", "tools", "delete"),
      outputs("docker:index/image:Image", "tools", "delete"),
    ]) onEvent(event);
    expect(events.get("tools")).toMatchObject({ type: "strata:index:CopiedImage", op: "create", digestRef: "r/g/tools@sha256:1", failed: false });
    expect(events.get("libs")).toMatchObject({ type: "docker:index/image:Image", op: "update", digestRef: "r/g/libs@sha256:2" });
  });

  it("says an image index was held already when Strata's provider wrote nothing for it, and the summary calls it adopted", () => {
    const { events, onEvent } = eventCollector();
    const index = (name: string, created: boolean): EngineEvent => ({ sequence: 0, timestamp: 0, resOutputsEvent: { metadata: { op: "update", urn: urn("strata:index:ImageIndex", name), type: "strata:index:ImageIndex", new: { outputs: { repoDigest: `r/g/${name}@sha256:${name === "tools" ? "1" : "2"}`, created } } } } } as unknown as EngineEvent);
    onEvent(index("tools", false));
    onEvent(index("libs", true));
    expect(events.get("tools")).toMatchObject({ heldAlready: true });
    expect(events.get("libs")?.heldAlready).toBeUndefined();
    const rows = summaryRows([{ layer: "tools", image: "tools", ref: "r/g/tools:1.0-p0", parent: null }, { layer: "libs", image: "libs", ref: "r/g/libs:1.0-p0", parent: "tools" }], events);
    expect(rows.map((row) => [row.layer, row.result, row.detail])).toEqual([
      ["tools", "adopted", "the registry already held this image index under the tag (the same platform images)"],
      ["libs", "built", "image index over the layer's platforms, written again"],
    ]);
  });

  it("keeps a plain delete of a layer that left the catalog", () => {
    const { events, onEvent } = eventCollector();
    onEvent(pre("docker:index/image:Image", "redis", "delete"));
    expect(events.get("redis")).toMatchObject({ op: "delete" });
  });

  it("times each layer's step and docker.Image's pull, build and push phases with the clock the events arrive by", () => {
    const { events, onEvent } = eventCollector();
    const type = "docker:index/image:Image";
    const info = (message: string): EngineEvent => ({ sequence: 0, timestamp: 0, diagnosticEvent: { urn: urn(type, "app"), severity: "info", message, color: "never" } } as unknown as EngineEvent);
    onEvent(pre(type, "app", "create"), 1_000);
    onEvent(info("Pulling cached image r/g/libs@sha256:1"), 1_200);
    onEvent(info("Starting Docker build"), 2_500);
    onEvent(info("Pushing Image to the registry"), 6_000);
    onEvent(outputs(type, "app", "create", "r/g/app@sha256:2"), 7_500);
    onEvent(pre(type, "base", "same"), 8_000);
    expect(events.get("app")?.timing).toEqual({ startedAt: 1_000, buildStartedAt: 2_500, pushStartedAt: 6_000, finishedAt: 7_500 });
    expect(events.get("base")?.timing).toBeUndefined();
    const rows = summaryRows([{ layer: "base", image: "b", ref: "r/g/b:1", parent: null }, { layer: "app", image: "a", ref: "r/g/a:1", parent: "base" }], events);
    expect(rows.map((row) => row.timing)).toEqual([null, { seconds: 6.5, pullSeconds: 1.5, buildSeconds: 3.5, pushSeconds: 1.5 }]);
  });

  it("spreads a CI copy set's step and its digests over the layers it copies", () => {
    const { events, onEvent } = eventCollector();
    const type = "strata:index:CiCopySet";
    onEvent({ sequence: 0, timestamp: 0, resourcePreEvent: { metadata: { op: "create", urn: urn(type, "ci-copies"), type, new: { inputs: { copies: [{ layer: "base" }, { layer: "tools" }] } } } } } as unknown as EngineEvent, 1_000);
    onEvent({ sequence: 0, timestamp: 0, resOutputsEvent: { metadata: { op: "create", urn: urn(type, "ci-copies"), type, new: { outputs: { repoDigests: { base: "r/g/base@sha256:1", tools: "r/g/tools@sha256:2" } } } } } } as unknown as EngineEvent, 1_400);
    expect(events.get("base")).toMatchObject({ type, op: "create", digestRef: "r/g/base@sha256:1", timing: { startedAt: 1_000, finishedAt: 1_400 } });
    expect(events.get("tools")).toMatchObject({ type, op: "create", digestRef: "r/g/tools@sha256:2" });
    expect(events.has("ci-copies")).toBe(false);
  });

  it("keeps a layer's whole output with its times (warnings and errors marked), what changed, and the stack's layer outputs", () => {
    const { events, stackLayers, onEvent } = eventCollector();
    const type = "docker:index/image:Image";
    const diagnostic = (severity: string, message: string): EngineEvent => ({ sequence: 0, timestamp: 0, diagnosticEvent: { urn: urn(type, "app"), severity, message, color: "never" } } as unknown as EngineEvent);
    onEvent({ sequence: 0, timestamp: 0, resourcePreEvent: { metadata: { op: "update", urn: urn(type, "app"), type, diffs: ["build"] } } } as unknown as EngineEvent, 1_000);
    onEvent(diagnostic("info", "Starting Docker build\n#5 [2/2] RUN false\n\n"), 1_100);
    onEvent(diagnostic("warning", "cache miss"), 1_200);
    onEvent(diagnostic("error", "executor failed running [/bin/sh -c false]: exit code: 1"), 1_300);
    onEvent({ sequence: 0, timestamp: 0, resOutputsEvent: { metadata: { op: "same", urn: "urn:pulumi:dev::strata::pulumi:pulumi:Stack::strata-dev", type: "pulumi:pulumi:Stack", new: { outputs: { layers: { app: { fingerprint: "sha256:f", digestRef: "r/g/app@sha256:1" } } } } } } } as unknown as EngineEvent, 1_400);
    expect(events.get("app")?.log).toEqual([
      { at: 1_100, text: "Starting Docker build" },
      { at: 1_100, text: "#5 [2/2] RUN false" },
      { at: 1_200, text: "warning: cache miss" },
      { at: 1_300, text: "error: executor failed running [/bin/sh -c false]: exit code: 1" },
    ]);
    expect(events.get("app")?.changedInputs).toEqual(["build"]);
    expect(events.get("app")?.failed).toBe(true);
    expect(stackLayers.get("app")).toEqual({ fingerprint: "sha256:f", digestRef: "r/g/app@sha256:1" });
  });
});

describe("what the engine said went wrong", () => {
  it("keeps the program's error paragraph and drops the Automation API's command dump and the closing lines", async () => {
    const { engineErrorText } = await import("../../src/engine/events.js");
    const output = [
      "CommandError: code: 255",
      " stdout: Previewing update (plan):",
      "    pulumi:pulumi:Stack strata-plan  error: The Docker engine is not running: start it with scripts/services.sh start",
      " stderr: error: preview failed",
      "  error: The Docker engine is not running: start it with scripts/services.sh start",
    ].join("\n");
    expect(engineErrorText(output)).toBe("The Docker engine is not running: start it with scripts/services.sh start");
    expect(engineErrorText("something\nwent\nwrong")).toBe("something\nwent\nwrong");
  });

  it("keeps a multi-line error's lines (the problems of a list), not its first line alone", async () => {
    const { engineErrorText } = await import("../../src/engine/events.js");
    const output = [
      "CommandError: code: 255",
      " stdout: Previewing update (staging):",
      "Diagnostics:",
      "  pulumi:pulumi:Stack (strata-staging):",
      "    error: 1 problem in the Strata input (nothing was built or pushed):",
      "      Pulumi.staging.yaml: strata:trust.keys[0]: cannot read \"keys/ci.pub\"; fix: add the public key",
      "",
      " stderr: error: preview failed",
    ].join("\n");
    expect(engineErrorText(output)).toBe("1 problem in the Strata input (nothing was built or pushed):\nPulumi.staging.yaml: strata:trust.keys[0]: cannot read \"keys/ci.pub\"; fix: add the public key");
  });

  it("keeps the lines the engine prints at the indent of the error itself, as a preview prints a program's problems", async () => {
    const { engineErrorText } = await import("../../src/engine/events.js");
    // As `pulumi preview` printed it (2026-12-04): the problem at the error's own indent, its fix deeper.
    const output = [
      " +  pulumi:pulumi:Stack strata-x1 creating (0s) error: 1 problem in the Strata input (nothing was built or pushed):",
      " +  pulumi:pulumi:Stack strata-x1 **creating failed (0.53s)** 1 error",
      "Diagnostics:",
      "  pulumi:pulumi:Stack (strata-x1):",
      "    error: 1 problem in the Strata input (nothing was built or pushed):",
      "    Pulumi.x1.yaml: strata:trust.keys[0]: cannot read \"keys/missing.pub\": no such file",
      "        fix: add the public key at that path (cosign generate-key-pair writes cosign.pub) or correct the path",
      "    warning: something else the engine said",
      "",
      "Resources:",
      "    + 1 created",
      "    1 errored",
    ].join("\n");
    expect(engineErrorText(output)).toBe([
      "1 problem in the Strata input (nothing was built or pushed):",
      "Pulumi.x1.yaml: strata:trust.keys[0]: cannot read \"keys/missing.pub\": no such file",
      "fix: add the public key at that path (cosign generate-key-pair writes cosign.pub) or correct the path",
    ].join("\n"));
  });
});
