import { createHash } from "node:crypto";
import { chmodSync, cpSync, mkdirSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadCatalog } from "../../src/core/catalog.js";
import { resolveStackConfig, type StackConfig } from "../../src/core/config.js";
import { fingerprintTargets } from "../../src/core/fingerprint.js";
import { contextDigest, layerFingerprint, layerInputsDigest, listContext } from "../../src/core/hash.js";
import { planTargets } from "../../src/core/plan.js";
import { layerYaml, makeCatalog, scratchDir } from "../helpers/catalog.js";

function context(files: Record<string, string>): string {
  const dir = scratchDir("context");
  writeFileSync(path.join(dir, "Dockerfile"), "FROM scratch\nCOPY . /\n");
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    writeFileSync(path.join(dir, file), text);
  }
  return dir;
}
const digestOf = (dir: string) => contextDigest(dir, path.join(dir, "Dockerfile"));

describe("context digest", () => {
  it("is the same for a copy of the tree, whatever the timestamps and umask", async () => {
    const original = context({ "a.txt": "a", "sub/b.txt": "b" });
    const copy = scratchDir("copy");
    cpSync(original, copy, { recursive: true });
    utimesSync(path.join(copy, "a.txt"), 1, 1);
    chmodSync(path.join(copy, "sub/b.txt"), 0o600);
    expect(await digestOf(copy)).toBe(await digestOf(original));
  });
  it("is the documented sha256 over the entries, for small files (read whole) and large ones (streamed) alike", async () => {
    // Just over the 1 MiB a file is read whole up to, and a few bytes: the two ways fileDigest reads.
    const large = "x".repeat((1 << 20) + 1);
    const dir = context({ "big.bin": large, "small.txt": "s" });
    const sha = (text: string): string => createHash("sha256").update(text).digest("hex");
    const expected = createHash("sha256")
      .update(`dockerfile\0${sha("FROM scratch\nCOPY . /\n")}\n`)
      .update(`file\0Dockerfile\0-\0${sha("FROM scratch\nCOPY . /\n")}\n`)
      .update(`file\0big.bin\0-\0${sha(large)}\n`)
      .update(`file\0small.txt\0-\0${sha("s")}\n`)
      .digest("hex");
    expect(await digestOf(dir)).toBe(`sha256:${expected}`);
  });
  it("changes with a file's contents, name, a new file, the executable bit and the Dockerfile", async () => {
    const dir = context({ "a.txt": "a" });
    const seen = new Set([await digestOf(dir)]);
    writeFileSync(path.join(dir, "a.txt"), "A");
    seen.add(await digestOf(dir));
    writeFileSync(path.join(dir, "new.txt"), "");
    seen.add(await digestOf(dir));
    chmodSync(path.join(dir, "new.txt"), 0o755);
    seen.add(await digestOf(dir));
    writeFileSync(path.join(dir, "Dockerfile"), "FROM scratch\n");
    seen.add(await digestOf(dir));
    const renamed = context({ "b.txt": "a" });
    const original = context({ "a.txt": "a" });
    expect(await digestOf(renamed)).not.toBe(await digestOf(original));
    expect(seen.size).toBe(5);
  });
  it("honours .dockerignore, exceptions included", async () => {
    const dir = context({ ".dockerignore": "*.log\nbuild/\n!build/keep.txt\n", "a.txt": "a", "x.log": "1", "build/out.bin": "1", "build/keep.txt": "k" });
    expect(listContext(dir).entries.map((entry) => entry.path)).toEqual([".dockerignore", "Dockerfile", "a.txt", "build/keep.txt"]);
    const before = await digestOf(dir);
    writeFileSync(path.join(dir, "x.log"), "2");
    writeFileSync(path.join(dir, "build/out.bin"), "2");
    expect(await digestOf(dir)).toBe(before);
    writeFileSync(path.join(dir, "build/keep.txt"), "changed");
    expect(await digestOf(dir)).not.toBe(before);
  });
  it("records symlinks and refuses one that leaves the context", async () => {
    const dir = context({ "a.txt": "a" });
    symlinkSync("a.txt", path.join(dir, "inside"));
    expect(listContext(dir).problems).toEqual([]);
    symlinkSync("/etc/passwd", path.join(dir, "outside"));
    const { problems } = listContext(dir, dir);
    expect(problems).toMatchObject([{ file: "outside", message: "the symlink points outside the build context (to /etc/passwd)" }]);
    await expect(digestOf(dir)).rejects.toThrow(/outside the build context/);
  });
});

describe("layer fingerprints", () => {
  const inputs = { contextDigest: "sha256:aa", buildArgs: { STRATA_VERSION: "1.0-p0", STRATA_SOURCE: "" }, platform: "linux/amd64" };
  it("changes with each input", () => {
    const base = layerInputsDigest(inputs);
    expect(layerInputsDigest({ ...inputs, contextDigest: "sha256:bb" })).not.toBe(base);
    expect(layerInputsDigest({ ...inputs, buildArgs: { ...inputs.buildArgs, STRATA_VERSION: "1.0-p1" } })).not.toBe(base);
    expect(layerInputsDigest({ ...inputs, platform: "linux/arm64" })).not.toBe(base);
    expect(layerInputsDigest({ ...inputs, buildArgs: { STRATA_SOURCE: "", STRATA_VERSION: "1.0-p0" } })).toBe(base);
    expect(layerFingerprint(base, "sha256:p1")).not.toBe(layerFingerprint(base, "sha256:p2"));
    expect(layerFingerprint(base)).not.toBe(layerFingerprint(base, "sha256:p1"));
  });

  function config(): StackConfig {
    const { config: resolved } = resolveStackConfig({ values: { registry: "127.0.0.1:5000", osRelease: "d", productVersion: "p", channel: "c" }, file: "f", env: {} });
    if (resolved === undefined) throw new Error("config");
    return resolved;
  }
  const tree = () => makeCatalog({
    base: { yaml: layerYaml("base", "1.0.0"), files: { "rootfs.tar": "root" } },
    tools: { yaml: layerYaml("tools", "1.0.0", "base"), files: { "t.txt": "t" } },
    libs: { yaml: layerYaml("common-libs", "1.0.0", "tools"), files: { "l.txt": "l" } },
    app: { yaml: layerYaml("service", "1.0.0", "libs"), files: { "a.txt": "a" } },
    db: { yaml: layerYaml("service", "1.0.0", "tools"), files: { "d.txt": "d" } },
  });
  const fingerprintsOf = async (dir: string) => {
    const fingerprints = await fingerprintTargets(planTargets(loadCatalog(dir), config(), "f"), "linux/amd64");
    return Object.fromEntries([...fingerprints].map(([layer, value]) => [layer, value.fingerprint]));
  };

  it("are identical for two copies of a catalog", async () => {
    expect(await fingerprintsOf(tree())).toEqual(await fingerprintsOf(tree()));
  });
  it("cascade: a change in a layer changes it and every descendant, nothing else", async () => {
    const dir = tree();
    const before = await fingerprintsOf(dir);
    writeFileSync(path.join(dir, "libs/l.txt"), "changed");
    const after = await fingerprintsOf(dir);
    const moved = Object.keys(before).filter((layer) => before[layer] !== after[layer]).sort();
    expect(moved).toEqual(["app", "libs"]);
  });
  it("a version bump moves the layer's fingerprint and its descendants'", async () => {
    const dir = tree();
    const before = await fingerprintsOf(dir);
    writeFileSync(path.join(dir, "tools/layer.yaml"), layerYaml("tools", "1.0.1", "base"));
    const after = await fingerprintsOf(dir);
    expect(Object.keys(before).filter((layer) => before[layer] !== after[layer]).sort()).toEqual(["app", "db", "libs", "tools"]);
  });
});

describe("layer.yaml is catalog data, not content", () => {
  it("does not change the context digest", async () => {
    const dir = context({ "layer.yaml": "kind: base\nversion: 1.0.0\n", "a.txt": "a" });
    const before = await digestOf(dir);
    writeFileSync(path.join(dir, "layer.yaml"), "kind: base\nversion: 1.0.1\ndescription: bumped\n");
    expect(await digestOf(dir)).toBe(before);
  });
});
