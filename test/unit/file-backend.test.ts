import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import zlib, { gzipSync, zstdCompressSync, zstdDecompressSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { absoluteFileBackendUrl, checkpointDir, checkpointFile, readCheckpointDeployment } from "../../src/engine/file-backend.js";
import { engineEnv } from "../../src/engine/project.js";
import { builtLayers, readBuiltLayers, witnessedTags } from "../../src/engine/stack-state.js";
import { DOCKER_IMAGE_TYPE } from "../../src/core/image-types.js";
import { scratchDir } from "../helpers/catalog.js";
import { pulumiProject } from "../helpers/pulumi-project.js";

/** A file backend folder with meta.yaml `version` (none: no meta.yaml) and the given files under .pulumi/stacks. */
function backend(version: string | undefined, files: readonly string[]): string {
  const dir = scratchDir("backend");
  mkdirSync(path.join(dir, ".pulumi", "stacks"), { recursive: true });
  if (version !== undefined) writeFileSync(path.join(dir, ".pulumi", "meta.yaml"), `version: ${version}\n`);
  for (const file of files) {
    mkdirSync(path.dirname(path.join(dir, ".pulumi", "stacks", file)), { recursive: true });
    writeFileSync(path.join(dir, ".pulumi", "stacks", file), "{}");
  }
  return pathToFileURL(dir).href;
}

describe("checkpointFile: a stack's checkpoint only when there is exactly one", () => {
  it("finds a project-scoped checkpoint, plain, gzipped or zstd, with URL parameters", () => {
    expect(checkpointFile(backend("1", ["strata/dev.json"]), "strata", "dev")).toMatch(/stacks\/strata\/dev\.json$/);
    expect(checkpointFile(backend("1", ["strata/dev.json.gz"]), "strata", "dev")).toMatch(/dev\.json\.gz$/);
    expect(checkpointFile(backend("1", ["strata/dev.json.zst"]), "strata", "dev")).toMatch(/dev\.json\.zst$/);
    expect(checkpointFile(`${backend("1", ["strata/dev.json"])}?no_tmp=1`, "strata", "dev")).toMatch(/dev\.json$/);
  });
  it("none for another stack, another project, only a backup, or both forms at once", () => {
    expect(checkpointFile(backend("1", ["strata/dev.json"]), "strata", "staging")).toBeUndefined();
    expect(checkpointFile(backend("1", ["other/dev.json"]), "strata", "dev")).toBeUndefined();
    expect(checkpointFile(backend("1", ["strata/dev.json.bak"]), "strata", "dev")).toBeUndefined();
    expect(checkpointFile(backend("1", ["strata/dev.json", "strata/dev.json.gz"]), "strata", "dev")).toBeUndefined();
    expect(checkpointFile(backend("1", ["strata/dev.json", "strata/dev.json.zst"]), "strata", "dev")).toBeUndefined();
    // A project-scoped backend does not look at the legacy place.
    expect(checkpointFile(backend("1", ["dev.json"]), "strata", "dev")).toBeUndefined();
  });
  it("reads the legacy layout (no meta.yaml, or version 0)", () => {
    expect(checkpointFile(backend(undefined, ["dev.json"]), "strata", "dev")).toMatch(/stacks\/dev\.json$/);
    expect(checkpointFile(backend("0", ["dev.json"]), "strata", "dev")).toMatch(/stacks\/dev\.json$/);
  });
  it("does not know for other backends, qualified names and unknown layouts", () => {
    expect(checkpointFile(undefined, "strata", "dev")).toBeUndefined();
    expect(checkpointFile("postgres://localhost/pulumi", "strata", "dev")).toBeUndefined();
    expect(checkpointFile(backend("1", ["strata/dev.json"]), "strata", "organization/strata/dev")).toBeUndefined();
    expect(checkpointFile(backend("7", ["strata/dev.json", "dev.json"]), "strata", "dev")).toBeUndefined();
  });
});

describe("absoluteFileBackendUrl: a relative file:// folder made absolute as Pulumi makes it", () => {
  it("resolves what follows file:// against the folder given, keeping the query; leaves absolute, ~ and other backends", () => {
    expect(absoluteFileBackendUrl("file://state", "/work/clone")).toBe("file:///work/clone/state");
    expect(absoluteFileBackendUrl("file://./state/../pulumi?no_tmp_dir=false", "/work/clone")).toBe("file:///work/clone/pulumi?no_tmp_dir=false");
    // Pulumi takes no host: "localhost" is the first folder of a relative path, as in massageBlobPath.
    expect(absoluteFileBackendUrl("file://localhost/state", "/w")).toBe("file:///w/localhost/state");
    expect(absoluteFileBackendUrl("file://", "/w")).toBe("file:///w");
    for (const url of ["file:///srv/state", "file://~", "file://~/state", "postgres://db/pulumi", "s3://bucket"]) expect(absoluteFileBackendUrl(url, "/w")).toBe(url);
  });
  it("engineEnv passes it so, once, to every engine run and every reader; the other settings as they are", () => {
    const env = engineEnv({ cwd: "/work/clone", env: { PULUMI_BACKEND_URL: "file://state", PULUMI_CONFIG_PASSPHRASE: "file://state" } });
    expect(env).toEqual({ PULUMI_BACKEND_URL: "file:///work/clone/state", PULUMI_CONFIG_PASSPHRASE: "file://state" });
  });
  it("names the folder the real Pulumi CLI keeps the stack in when it runs there", () => {
    // The state folder beside the project's, named from the project as a relative file:// URL.
    const { root, project, pulumi } = pulumiProject("relative", { PULUMI_BACKEND_URL: "file://../state" });
    pulumi(["stack", "init", "dev", "--non-interactive"]);
    expect(checkpointFile(absoluteFileBackendUrl("file://../state", project), "strata", "dev")).toBe(path.join(root, "state/.pulumi/stacks/strata/dev.json"));
  }, 30_000);
});

describe("checkpointDir: the folder holding a stack's checkpoint, in either layout", () => {
  const dirOf = (files: readonly string[]): string | undefined => {
    const dir = fileURLToPath(backend("1", files));
    const found = checkpointDir(dir, "strata", "dev");
    return found === undefined ? undefined : path.relative(path.join(dir, ".pulumi", "stacks"), found) || ".";
  };
  it("finds each form, project-scoped first, then the legacy place; none for a backup or another stack", () => {
    for (const name of ["dev.json", "dev.json.gz", "dev.json.zst"]) expect(dirOf([`strata/${name}`])).toBe("strata");
    expect(dirOf(["dev.json.zst"])).toBe(".");
    expect(dirOf(["strata/dev.json.zst", "dev.json"])).toBe("strata");
    expect(dirOf(["strata/dev.json.bak", "strata/staging.json"])).toBeUndefined();
  });
});

describe("readCheckpointDeployment: what pulumi stack export prints, or undefined", () => {
  const write = (content: string | Buffer, name = "dev.json"): string => {
    const file = path.join(scratchDir("checkpoint"), name);
    writeFileSync(file, content);
    return file;
  };
  it("reads latest of a version 3 checkpoint, plain, gzipped or zstd; a stack never deployed is empty", () => {
    const checkpoint = JSON.stringify({ version: 3, checkpoint: { stack: "organization/strata/dev", latest: { manifest: {}, resources: [{ urn: "u", type: "t" }] } } });
    expect(readCheckpointDeployment(write(checkpoint))).toEqual({ manifest: {}, resources: [{ urn: "u", type: "t" }] });
    expect(readCheckpointDeployment(write(gzipSync(checkpoint), "dev.json.gz"))).toEqual({ manifest: {}, resources: [{ urn: "u", type: "t" }] });
    expect(readCheckpointDeployment(write(zstdCompressSync(checkpoint), "dev.json.zst"))).toEqual({ manifest: {}, resources: [{ urn: "u", type: "t" }] });
    expect(readCheckpointDeployment(write(JSON.stringify({ version: 3, checkpoint: { stack: "s" } })))).toEqual({ resources: [] });
  });
  it("anything else is undefined, so the CLI is asked: another version, no checkpoint, bad JSON, bad gzip or zstd", () => {
    expect(readCheckpointDeployment(write(JSON.stringify({ version: 4, checkpoint: { latest: { resources: [] } } })))).toBeUndefined();
    expect(readCheckpointDeployment(write(JSON.stringify({ version: 3 })))).toBeUndefined();
    expect(readCheckpointDeployment(write("{ half"))).toBeUndefined();
    expect(readCheckpointDeployment(write("not gzip", "dev.json.gz"))).toBeUndefined();
    expect(readCheckpointDeployment(write("not zstd", "dev.json.zst"))).toBeUndefined();
    // A Node.js before 22.15 has no zstd: the CLI is asked (and the module still loads: looked up when used).
    const zstd = Object.getOwnPropertyDescriptor(zlib, "zstdDecompressSync") as PropertyDescriptor;
    Object.defineProperty(zlib, "zstdDecompressSync", { value: undefined, configurable: true });
    try {
      expect(readCheckpointDeployment(write(zstdCompressSync(JSON.stringify({ version: 3, checkpoint: { latest: { resources: [] } } })), "dev.json.zst"))).toBeUndefined();
    } finally {
      Object.defineProperty(zlib, "zstdDecompressSync", zstd);
    }
    expect(readCheckpointDeployment("/nonexistent/dev.json")).toBeUndefined();
  });
});

describe("readBuiltLayers reads the file as pulumi stack export reads it (the real Pulumi CLI)", () => {
  // What the CLI writes when asked to compress (PULUMI_DIY_BACKEND_ZSTD) is read directly too.
  const forms: { form: string; compression: Record<string, string>; fileName: RegExp; encode: (bytes: Buffer) => Buffer; decode: (bytes: Buffer) => Buffer }[] = [
    { form: "plain", compression: {}, fileName: /strata\/dev\.json$/, encode: (bytes: Buffer) => bytes, decode: (bytes: Buffer) => bytes },
    { form: "zstd", compression: { PULUMI_DIY_BACKEND_ZSTD: "true" }, fileName: /strata\/dev\.json\.zst$/, encode: (bytes: Buffer) => zstdCompressSync(bytes), decode: (bytes: Buffer) => zstdDecompressSync(bytes) },
  ];
  it.each(forms)("$form: the same layers and witness either way, and the CLI's answer when the file cannot be read", async ({ compression, fileName, encode, decode }) => {
    const { root, project, env, pulumi } = pulumiProject("state", compression);
    pulumi(["stack", "init", "dev", "--non-interactive"]);
    const stackUrn = "urn:pulumi:dev::strata::pulumi:pulumi:Stack::strata-dev";
    const image = (layer: string, fingerprint: string) => ({
      urn: `urn:pulumi:dev::strata::strata:index:LayerTree$${DOCKER_IMAGE_TYPE}::${layer}`, custom: true, type: DOCKER_IMAGE_TYPE, parent: stackUrn,
      inputs: { imageName: `127.0.0.1:5000/g/${layer}:1.0-p0`, build: { args: { STRATA_FINGERPRINT: fingerprint } } },
      outputs: { repoDigest: `127.0.0.1:5000/g/${layer}@sha256:${"a".repeat(64)}` },
    });
    const deployment = { version: 3, deployment: { manifest: { time: "2026-12-02T00:00:00Z", magic: "", version: "" }, resources: [
      { urn: stackUrn, custom: false, type: "pulumi:pulumi:Stack", outputs: { published: { "127.0.0.1:5000/g/old:1.0-p0": { digest: `sha256:${"b".repeat(64)}` } } } },
      image("base", "f1"), image("tools", "f2"),
    ] } };
    writeFileSync(path.join(root, "import.json"), JSON.stringify(deployment));
    pulumi(["stack", "import", "--stack", "dev", "--file", path.join(root, "import.json")]);
    const exported = (JSON.parse(pulumi(["stack", "export", "--stack", "dev"])) as { deployment: unknown }).deployment;
    const file = checkpointFile(env.PULUMI_BACKEND_URL, "strata", "dev");
    expect(file).toMatch(fileName);
    const direct = await readBuiltLayers("dev", DOCKER_IMAGE_TYPE, { project: "strata", cwd: project, env });
    expect(direct.unreadable).toBeUndefined();
    expect(direct.built).toEqual(builtLayers(exported, DOCKER_IMAGE_TYPE));
    expect(direct.witness).toEqual(witnessedTags(exported));
    expect([...direct.built.keys()].sort()).toEqual(["base", "tools"]);
    expect(direct.witness.get("127.0.0.1:5000/g/old:1.0-p0")?.digest).toBe(`sha256:${"b".repeat(64)}`);
    // The file gone: the CLI is asked, and says it cannot find the stack (not "nothing built").
    renameSync(file as string, `${file as string}.moved`);
    const viaCli = await readBuiltLayers("dev", DOCKER_IMAGE_TYPE, { project: "strata", cwd: project, env });
    expect(viaCli.unreadable).toMatch(/pulumi stack export failed/);
    // A checkpoint this cannot read is not taken for an empty state either: the CLI decides.
    const moved = JSON.parse(decode(readFileSync(`${file as string}.moved`)).toString("utf8")) as { version: number };
    expect(moved.version).toBe(3);
    writeFileSync(file as string, encode(Buffer.from(JSON.stringify(moved))));
    expect(readCheckpointDeployment(file as string)).toBeDefined();
    writeFileSync(file as string, encode(Buffer.from(JSON.stringify({ ...moved, version: 9 }))));
    expect(readCheckpointDeployment(file as string)).toBeUndefined();
  }, 30_000);
});
