import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { resolveStackConfig } from "../../src/core/config.js";
import { holdsSecret } from "../../src/core/stack-files.js";

const base = { registry: "127.0.0.1:5000", osRelease: "debian8.3", productVersion: "mos9.0", channel: "stable" };
const resolve = (values: Record<string, unknown>, env: Record<string, string> = {}) =>
  resolveStackConfig({ values, file: "Pulumi.stable.yaml", env });

describe("stack config", () => {
  it("falls back to the same defaults Pulumi.yaml declares", () => {
    const project = parse(readFileSync(path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../Pulumi.yaml"), "utf8")) as { config: Record<string, { default?: unknown }> };
    const resolved = resolve(base).config as unknown as Record<string, unknown>;
    for (const key of ["push", "platform", "builder", "immutable", "copyUnchanged", "buildNetwork"]) expect(resolved[key], key).toBe(project.config[key]?.default);
  });
  it("forms the group and defaults push and platform", () => {
    expect(resolve(base).config).toMatchObject({ group: "debian8.3-mos9.0-stable", push: true, platform: "linux/amd64" });
    expect(resolve({ ...base, push: "false", platform: "linux/arm64" }).config).toMatchObject({ push: false, platform: "linux/arm64" });
  });
  it("takes change and patchset from config as numbers or strings", () => {
    expect(resolve({ ...base, change: 19026, patchset: "2" }).config?.ci).toEqual({ change: 19026, patchset: 2 });
    expect(resolve({ ...base, change: "19026" }).config?.ci).toEqual({ change: 19026 });
  });
  it("takes change and patchset from Gerrit, then Zuul, environments", () => {
    expect(resolve(base, { GERRIT_CHANGE_NUMBER: "19026", GERRIT_PATCHSET_NUMBER: "2" }).config?.ci).toEqual({ change: 19026, patchset: 2 });
    expect(resolve(base, { ZUUL_CHANGE: "42", ZUUL_PATCHSET: "3" }).config?.ci).toEqual({ change: 42, patchset: 3 });
    expect(resolve(base, { GERRIT_CHANGE_NUMBER: "1", ZUUL_CHANGE: "2" }).config?.ci).toEqual({ change: 1 });
  });
  it("prefers stack config over the environment", () => {
    expect(resolve({ ...base, change: 7 }, { GERRIT_CHANGE_NUMBER: "19026", GERRIT_PATCHSET_NUMBER: "2" }).config?.ci).toEqual({ change: 7 });
  });
  it("rejects a patchset without a change", () => {
    expect(resolve({ ...base, patchset: 2 }).problems).toMatchObject([{ file: "Pulumi.stable.yaml", field: "strata:patchset", message: "a patchset is given without a change" }]);
    expect(resolve(base, { GERRIT_PATCHSET_NUMBER: "2" }).problems).toMatchObject([{ file: "environment", field: "GERRIT_PATCHSET_NUMBER" }]);
  });
  it.each(["abc", "-1", "0", "1.5", "19026x"])("rejects change %j", (change) => {
    expect(resolve({ ...base, change }).problems).toMatchObject([{ field: "strata:change" }]);
  });
  it("rejects a non-numeric patchset from the environment", () => {
    expect(resolve(base, { ZUUL_CHANGE: "1", ZUUL_PATCHSET: "two" }).problems).toMatchObject([{ file: "environment", field: "ZUUL_PATCHSET" }]);
  });
  it.each(["http://127.0.0.1:5000", "127.0.0.1:port", "registry/path", ""])("rejects registry %j", (registry) => {
    const [problem] = resolve({ ...base, registry }).problems;
    expect(problem).toMatchObject({ field: "strata:registry" });
    expect(problem?.fix).toMatch(/host\[:port\]/);
  });
  it("rejects unknown keys and missing required keys", () => {
    const { osRelease: _dropped, ...withoutOs } = base;
    const problems = resolve({ ...withoutOs, regsitry: "x" }).problems;
    expect(problems.map((problem) => problem.field).sort()).toEqual(["strata:osRelease", "strata:regsitry"]);
  });
  it("rejects a group that breaks the OCI grammar", () => {
    expect(resolve({ ...base, channel: "Stable" }).problems[0]?.message).toMatch(/group "debian8.3-mos9.0-Stable"/);
  });
  it("rejects a malformed platform", () => {
    expect(resolve({ ...base, platform: "amd64" }).problems).toMatchObject([{ field: "strata:platform" }]);
  });
  it("reads a pool of engines as a list, JSON or comma-separated text, with TLS folders", () => {
    expect(resolve(base).config?.engines).toBeUndefined();
    expect(resolve({ ...base, engines: '["unix:///run/e1.sock","tcp://builder2:2376"]' }).config?.engines).toEqual([{ host: "unix:///run/e1.sock" }, { host: "tcp://builder2:2376" }]);
    expect(resolve({ ...base, engines: "unix:///run/e1.sock, ssh://ci@builder3" }).config?.engines).toEqual([{ host: "unix:///run/e1.sock" }, { host: "ssh://ci@builder3" }]);
    expect(resolve({ ...base, engines: [{ host: "tcp://b2:2376", certPath: "/etc/strata/b2" }] }).config?.engines).toEqual([{ host: "tcp://b2:2376", certPath: "/etc/strata/b2" }]);
    expect(resolve({ ...base, copyUnchanged: "false" }).config?.copyUnchanged).toBe(false);
    expect(resolve(base).config?.copyUnchanged).toBe(true);
  });
  it("reads the build steps' network: the engine's default unless host or none is set", () => {
    expect(resolve(base).config?.buildNetwork).toBe("default");
    expect(resolve({ ...base, buildNetwork: "host" }).config?.buildNetwork).toBe("host");
    expect(resolve({ ...base, buildNetwork: "none" }).config?.buildNetwork).toBe("none");
    const { config, problems } = resolve({ ...base, buildNetwork: "bridge" });
    expect(config).toBeUndefined();
    expect(problems[0]).toMatchObject({ file: "Pulumi.stable.yaml", field: "strata:buildNetwork", message: 'is invalid: "bridge"' });
    expect(problems[0]?.fix).toMatch(/use one of default, host, none/);
  });
  it("rejects engines that are not endpoints, listed twice, or with the strata builder", () => {
    for (const [engines, message] of [["http://b2:2376", /is not unix:\/\/\/path, tcp:\/\/host:port or ssh:\/\/host/], ["unix:///a.sock,unix:///a.sock", /listed twice/], ["[oops", /not a JSON list/]] as const) {
      const { problems } = resolve({ ...base, engines });
      expect(problems[0]).toMatchObject({ file: "Pulumi.stable.yaml", field: "strata:engines" });
      expect(problems[0]?.message).toMatch(message);
      expect(problems[0]?.fix).toMatch(/list of Docker engine endpoints/);
    }
    expect(resolve({ ...base, engines: "unix:///a.sock", builder: "strata" }).problems[0]).toMatchObject({ field: "strata:engines", message: expect.stringMatching(/docker.Image only/) });
  });
  it("reads a layer selection as a list, JSON or comma-separated text", () => {
    expect(resolve({ ...base, layers: ["keystone"] }).config?.layers).toEqual(["keystone"]);
    expect(resolve({ ...base, layers: '["keystone","mysql"]' }).config?.layers).toEqual(["keystone", "mysql"]);
    expect(resolve({ ...base, layers: "keystone, mysql" }).config?.layers).toEqual(["keystone", "mysql"]);
  });
});

describe("holdsSecret: a stack file's value that only the engine can read", () => {
  it("finds a secret value, or a secret leaf of a structured one, and nothing else", () => {
    expect(holdsSecret({ secure: "v1:abc" })).toBe(true);
    expect(holdsSecret({ keys: [{ secure: "v1:abc" }], reviewedRef: "origin/main" })).toBe(true);
    expect(holdsSecret({ keys: ["keys/ci.pub"], reviewedRef: { secure: "v1:abc" } })).toBe(true);
    expect(holdsSecret({ keys: ["keys/ci.pub"], reviewedRef: "origin/main" })).toBe(false);
    expect(holdsSecret('{"keys":["keys/ci.pub"]}')).toBe(false);
    // A mapping that merely has a field called secure beside others is a plain value (trust-policy.ts refuses it by name).
    expect(holdsSecret({ secure: "v1:abc", keys: [] })).toBe(false);
    expect(holdsSecret({ secure: 3 })).toBe(false);
    expect(holdsSecret(undefined)).toBe(false);
  });
});
