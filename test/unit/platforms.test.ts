import { writeFileSync } from "node:fs";
import { machine } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { planBumps } from "../../src/core/bump.js";
import { loadCatalog } from "../../src/core/catalog.js";
import { indexConflicts, type PublishedTag } from "../../src/core/channel.js";
import { resolveStackConfig, type StackConfig } from "../../src/core/config.js";
import { fingerprintTargets } from "../../src/core/fingerprint.js";
import { planTargets } from "../../src/core/plan.js";
import { placeByPlatform } from "../../src/core/placement.js";
import { buildTargets, indexFingerprint } from "../../src/core/platform-targets.js";
import { catalogLayerName, enginePlatform, parsePlatform, qemuBinfmtName } from "../../src/core/platforms.js";
import { emulationRegistered, hostPlatform, platformsToEmulate } from "../../src/engine/emulation.js";
import { indexBytes } from "../../src/registry/image-index.js";
import { noteCatalog, scratchDir } from "../helpers/catalog.js";

const base = { registry: "127.0.0.1:5000", osRelease: "debian8.3", productVersion: "mos9.0", channel: "stable" };
function config(values: Record<string, unknown> = {}): StackConfig {
  const { config: resolved, problems } = resolveStackConfig({ values: { ...base, ...values }, file: "Pulumi.stable.yaml", env: {} });
  if (resolved === undefined) throw new Error(JSON.stringify(problems));
  return resolved;
}
const twoPlatforms = config({ platforms: '["linux/amd64", "linux/arm64"]', immutable: true });
const catalogTargets = planTargets(loadCatalog(noteCatalog()), twoPlatforms, "Pulumi.stable.yaml");

describe("strata:platforms", () => {
  it("takes a list (YAML, JSON or commas) and keeps strata:platform for one", () => {
    expect(config().platforms).toEqual(["linux/amd64"]);
    expect(config({ platform: "linux/arm64" }).platforms).toEqual(["linux/arm64"]);
    expect(config({ platforms: ["linux/amd64", "linux/arm64"] })).toMatchObject({ platform: "linux/amd64", platforms: ["linux/amd64", "linux/arm64"] });
    expect(config({ platforms: "linux/arm64, linux/amd64" }).platforms).toEqual(["linux/arm64", "linux/amd64"]);
  });
  it("refuses every bad entry at once, with the file, the field and the fix", () => {
    const { problems } = resolveStackConfig({ values: { ...base, platforms: '["linux/amd64", "arm64", "linux/amd64", 3]' }, file: "Pulumi.dev.yaml", env: {} });
    expect(problems.map((problem) => problem.message)).toEqual(['"arm64" is not os/arch[/variant]', "linux/amd64 is listed twice", "3 is not os/arch[/variant]"]);
    expect(problems[0]).toMatchObject({ file: "Pulumi.dev.yaml", field: "strata:platforms", fix: expect.stringMatching(/linux\/arm64/) as unknown });
    expect(resolveStackConfig({ values: { ...base, platforms: "[]" }, file: "f", env: {} }).problems).toMatchObject([{ field: "strata:platforms", message: "is an empty list" }]);
    expect(resolveStackConfig({ values: { ...base, platforms: ["linux/amd64", "linux/arm64"], push: false }, file: "f", env: {} }).problems).toMatchObject([{ field: "strata:push", message: expect.stringMatching(/2 platforms need a registry/) as unknown }]);
    expect(resolveStackConfig({ values: { ...base, engines: [{ host: "unix:///a.sock", platform: "arm64" }] }, file: "f", env: {} }).problems).toMatchObject([{ field: "strata:engines", message: expect.stringMatching(/platform of unix:\/\/\/a.sock must be os\/arch/) as unknown }]);
  });
});

describe("per-platform targets", () => {
  const { builds, indexes } = buildTargets(catalogTargets, twoPlatforms);

  it("leaves a one-platform stack's targets as they are", () => {
    const one = config();
    expect(buildTargets(catalogTargets, one)).toEqual({ builds: catalogTargets, indexes: [] });
  });
  it("gives each layer a target per platform, FROM its parent of the same platform, in a repository of its own", () => {
    expect(builds).toHaveLength(catalogTargets.length * 2);
    const arm = builds.find((target) => target.layer.name === "keystone@linux-arm64");
    expect(arm).toMatchObject({
      platform: "linux/arm64",
      parent: "keystone-base@linux-arm64",
      tag: "1.0-p5",
      repositoryPath: "debian8.3-mos9.0-stable/debian-mos-ms-keystone/linux-arm64",
      ref: "127.0.0.1:5000/debian8.3-mos9.0-stable/debian-mos-ms-keystone/linux-arm64:1.0-p5",
    });
    // Parents first within each platform, as the engine and the fingerprints need.
    const seen = new Set<string>();
    for (const target of builds) {
      if (target.parent !== undefined) expect(seen.has(target.parent), target.layer.name).toBe(true);
      seen.add(target.layer.name);
    }
    expect(catalogLayerName("keystone@linux-arm64")).toBe("keystone");
    expect(catalogLayerName("keystone")).toBe("keystone");
  });
  it("puts each layer's index in the layer's own repository, over its platforms in order", () => {
    const keystone = indexes.find((index) => index.layer === "keystone");
    expect(keystone?.target.ref).toBe("127.0.0.1:5000/debian8.3-mos9.0-stable/debian-mos-ms-keystone:1.0-p5");
    expect(keystone?.entries).toEqual([
      { platform: "linux/amd64", name: "keystone@linux-amd64", repositoryPath: "debian8.3-mos9.0-stable/debian-mos-ms-keystone/linux-amd64" },
      { platform: "linux/arm64", name: "keystone@linux-arm64", repositoryPath: "debian8.3-mos9.0-stable/debian-mos-ms-keystone/linux-arm64" },
    ]);
  });
  it("fingerprints each platform apart, and the index from its platforms", async () => {
    const fingerprints = await fingerprintTargets(builds, twoPlatforms.platform);
    const amd = fingerprints.get("keystone@linux-amd64");
    const arm = fingerprints.get("keystone@linux-arm64");
    expect(amd?.contextDigest).toBe(arm?.contextDigest);
    expect(amd?.fingerprint).not.toBe(arm?.fingerprint);
    // A one-platform stack's fingerprints are what they were: the platform came from the stack before too.
    const single = await fingerprintTargets(catalogTargets, "linux/amd64");
    expect(single.get("keystone")?.fingerprint).toBe(amd?.fingerprint);
    const both = indexFingerprint([{ platform: "linux/amd64", fingerprint: "a" }, { platform: "linux/arm64", fingerprint: "b" }]);
    expect(indexFingerprint([{ platform: "linux/amd64", fingerprint: "a" }, { platform: "linux/arm64", fingerprint: "b" }])).toBe(both);
    expect(indexFingerprint([{ platform: "linux/amd64", fingerprint: "a" }])).not.toBe(both);
  });
  it("bumps a catalog layer once when any of its platforms holds other content", async () => {
    const fingerprints = await fingerprintTargets(builds, twoPlatforms.platform);
    const published = new Map<string, PublishedTag>(builds.map((target) => [target.layer.name, { digestRef: `x@sha256:${target.layer.name}`, fingerprint: fingerprints.get(target.layer.name)?.fingerprint as string }]));
    published.set("ms@linux-arm64", { digestRef: "x@sha256:old", fingerprint: "old" });
    const bumps = planBumps({ targets: builds, fingerprints, view: { published } });
    expect(bumps.map((bump) => [bump.layer, bump.reason])).toEqual([["ms", "content changed"], ["keystone-base", "parent changed"], ["keystone", "parent changed"]]);
  });
});

describe("index tags on an immutable channel", () => {
  const { builds, indexes } = buildTargets(catalogTargets, twoPlatforms);
  const keystoneOnly = indexes.filter((index) => index.layer === "keystone");
  const published = new Map<string, PublishedTag>(builds.map((target) => [target.layer.name, { digestRef: `r@sha256:${target.layer.name.replace("@", "-")}`, fingerprint: "f" }]));
  const view = { published };
  const entries = [{ platform: "linux/amd64", digest: "sha256:keystone-linux-amd64" }, { platform: "linux/arm64", digest: "sha256:keystone-linux-arm64" }];
  const immutable = { immutable: true };

  it("lets an index over this stack's platform images stand", () => {
    expect(indexConflicts(keystoneOnly, immutable, new Map([["keystone", { digest: "sha256:i", entries }]]), view, "Pulumi.stable.yaml", "stable")).toEqual([]);
    expect(indexConflicts(keystoneOnly, immutable, new Map(), view, "Pulumi.stable.yaml", "stable")).toEqual([]);
  });
  it("refuses a single image under the tag, another platform list, or an entry no platform tag holds", () => {
    const refuse = (found: { digest: string; entries?: typeof entries }) => indexConflicts(keystoneOnly, immutable, new Map([["keystone", found]]), view, "Pulumi.stable.yaml", "stable")[0];
    expect(refuse({ digest: "sha256:single" })).toMatchObject({ file: "Pulumi.stable.yaml", field: "strata:immutable", message: expect.stringMatching(/holds a single-platform image/) as unknown, fix: expect.stringMatching(/strata bump --stack stable/) as unknown });
    expect(refuse({ digest: "sha256:i", entries: entries.slice(0, 1) })?.message).toMatch(/holds an index over linux\/amd64, not linux\/amd64, linux\/arm64/);
    expect(refuse({ digest: "sha256:i", entries: [entries[0] as (typeof entries)[0], { platform: "linux/arm64", digest: "sha256:other" }] })?.message).toMatch(/whose linux\/arm64 image is not the one/);
  });
  it("leaves a mutable channel's and a CI run's index tags alone, whatever the registry or the state's witness says", () => {
    const witness = { tags: new Map([[(keystoneOnly[0] as (typeof keystoneOnly)[0]).target.ref, { digest: "sha256:old", fingerprint: "f-old" }]]), fingerprints: new Map() };
    expect(indexConflicts(keystoneOnly, { immutable: false }, new Map([["keystone", { digest: "sha256:single" }]]), view, "Pulumi.dev.yaml", "dev", witness)).toEqual([]);
    expect(indexConflicts(keystoneOnly, { immutable: false }, new Map(), view, "Pulumi.dev.yaml", "dev", witness)).toEqual([]);
    expect(indexConflicts(keystoneOnly, { immutable: true, ci: { change: 1 } }, new Map(), view, "Pulumi.stable.yaml", "stable", witness)).toEqual([]);
    expect(indexConflicts(keystoneOnly, immutable, new Map(), view, "Pulumi.stable.yaml", "stable", witness)).toHaveLength(1);
  });
});

describe("index bytes", () => {
  it("are the same for the same entries, with each entry's platform", () => {
    const entries = [{ platform: "linux/amd64", mediaType: "application/vnd.docker.distribution.manifest.v2+json", digest: "sha256:a", size: 10 }, { platform: "linux/arm/v7", mediaType: "application/vnd.docker.distribution.manifest.v2+json", digest: "sha256:b", size: 11 }];
    expect(indexBytes(entries).equals(indexBytes(entries))).toBe(true);
    const index = JSON.parse(indexBytes(entries).toString("utf8")) as { mediaType: string; manifests: { platform: unknown }[] };
    expect(index.mediaType).toBe("application/vnd.oci.image.index.v1+json");
    expect(index.manifests.map((entry) => entry.platform)).toEqual([{ os: "linux", architecture: "amd64" }, { os: "linux", architecture: "arm", variant: "v7" }]);
  });
});

describe("where each platform builds", () => {
  it("sends a platform's builds to the engines naming it, the rest to the engines naming none", () => {
    const targets = [
      { name: "a@linux-amd64", platform: "linux/amd64" }, { name: "b@linux-amd64", parent: "a@linux-amd64", platform: "linux/amd64" },
      { name: "a@linux-arm64", platform: "linux/arm64" }, { name: "b@linux-arm64", parent: "a@linux-arm64", platform: "linux/arm64" },
    ];
    const placed = placeByPlatform(targets, [{}, { platform: "linux/arm64" }]);
    expect(Object.fromEntries(placed.engineOf)).toEqual({ "a@linux-amd64": 0, "b@linux-amd64": 0, "a@linux-arm64": 1, "b@linux-arm64": 1 });
    expect(placeByPlatform(targets, [{ platform: "linux/arm64" }]).unplaced).toEqual(["linux/amd64"]);
  });
  it("names engines' architectures and qemu's interpreters as Docker and binfmt_misc do", () => {
    expect(enginePlatform("linux", "x86_64")).toBe("linux/amd64");
    expect(enginePlatform("linux", "aarch64")).toBe("linux/arm64");
    expect(qemuBinfmtName("linux/arm64")).toBe("qemu-aarch64");
    expect(qemuBinfmtName("linux/arm/v7")).toBe("qemu-arm");
    expect(qemuBinfmtName("linux/amd64")).toBe("qemu-x86_64");
    expect(qemuBinfmtName("linux/mips64")).toBeUndefined();
    expect(parsePlatform("linux/arm64/v8")).toEqual({ os: "linux", architecture: "arm64", variant: "v8" });
  });
  it("reads binfmt_misc's entry: registered and enabled, or not", () => {
    const dir = scratchDir("binfmt");
    expect(emulationRegistered("linux/arm64", dir)).toBe(false);
    writeFileSync(path.join(dir, "qemu-aarch64"), "disabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\n");
    expect(emulationRegistered("linux/arm64", dir)).toBe(false);
    writeFileSync(path.join(dir, "qemu-aarch64"), "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\n");
    expect(emulationRegistered("linux/arm64", dir)).toBe(true);
  });
  it("asks for emulation of the foreign platforms a stack builds on an engine of this machine, never for an engine elsewhere", () => {
    const dir = scratchDir("binfmt");
    const foreign = hostPlatform() === "linux/amd64" ? "linux/arm64" : "linux/amd64";
    const stack = { platforms: [hostPlatform(), foreign] };
    // DOCKER_HOST: this machine's engine (unset, a socket, loopback) or another's.
    for (const local of ["", "unix:///var/run/docker.sock", "tcp://127.0.0.1:2375"]) expect(platformsToEmulate(stack, dir, local), local).toEqual([foreign]);
    for (const remote of ["tcp://10.0.0.5:2376", "ssh://builder@arm-box", "tcp://arm-box:2375"]) expect(platformsToEmulate(stack, dir, remote), remote).toEqual([]);
    // strata:engines: the engines that take the platform's builds (those naming it, else those naming none).
    expect(platformsToEmulate({ ...stack, engines: [{ host: "unix:///a.sock" }] }, dir, "ssh://elsewhere")).toEqual([foreign]);
    expect(platformsToEmulate({ ...stack, engines: [{ host: "ssh://builder@arm-box" }] }, dir, "")).toEqual([]);
    expect(platformsToEmulate({ ...stack, engines: [{ host: "unix:///a.sock" }, { host: "ssh://builder@arm-box", platform: foreign }] }, dir, "")).toEqual([]);
    // Registered already: nothing to do.
    writeFileSync(path.join(dir, qemuBinfmtName(foreign) as string), "enabled\n");
    expect(platformsToEmulate(stack, dir, "")).toEqual([]);
  });
  it("names this machine's platform from its kernel, as the engine and services.sh do", () => {
    expect(hostPlatform()).toBe(enginePlatform("linux", machine()));
    expect(hostPlatform()).toMatch(/^linux\/(amd64|arm64)$/);
  });
});
