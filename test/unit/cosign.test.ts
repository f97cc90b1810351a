import { spawn, spawnSync } from "node:child_process";
import { chownSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { isLoopbackRegistry } from "../../src/core/reference.js";
import { cosignAccess, cosignArgs, PRIVATE_KEY_VARIABLE, scrub } from "../../src/engine/cosign.js";

const digest = `sha256:${"a".repeat(64)}`;

describe("cosign arguments", () => {
  it("gives the private key as env:// and plain HTTP to loopback registries only", () => {
    expect(cosignArgs.sign([`127.0.0.1:5000/g/app@${digest}`], { commit: "abc", "org.strata.layer": "app" })).toEqual([
      "sign", "--key", `env://${PRIVATE_KEY_VARIABLE}`, "--tlog-upload=false", "--yes", "--allow-http-registry=true", "-a", "commit=abc", "-a", "org.strata.layer=app", `127.0.0.1:5000/g/app@${digest}`,
    ]);
    expect(cosignArgs.verify(`registry.example.org/g/app@${digest}`, "keys/ci.pub")).toEqual(["verify", "--key", "keys/ci.pub", "--insecure-ignore-tlog=true", "--output", "json", `registry.example.org/g/app@${digest}`]);
    expect(cosignArgs.verifyAttestation(`localhost:5000/g/app@${digest}`, "k.pub", "spdxjson")).toContain("--allow-http-registry=true");
  });

  it("refuses tags, an empty list, and a call mixing loopback and remote registries", () => {
    expect(() => cosignArgs.sign([])).toThrow(/no reference/);
    expect(() => cosignArgs.attest("127.0.0.1:5000/g/app:1.0", "spdxjson", "p.json")).toThrow(/not a digest reference/);
    expect(() => cosignArgs.sign([`127.0.0.1:5000/g/app@${digest}`, `registry.example.org/g/app@${digest}`])).toThrow(/mixes loopback and remote/);
  });

  it("knows loopback registries", () => {
    for (const registry of ["127.0.0.1:5000", "127.1.2.3", "localhost:5000", "[::1]:5000"]) expect(isLoopbackRegistry(registry), registry).toBe(true);
    for (const registry of ["registry.example.org", "10.0.0.1:5000", "127.0.0.1.example.org:5000", "127.example.org:5000", "127.0.0.1.nip.io", "localhost.example.org"]) expect(isLoopbackRegistry(registry), registry).toBe(false);
  });
});

describe("scrubbing cosign's output", () => {
  it("removes the passphrase, the PEM and each line of its body", () => {
    const pem = "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\neyJrZGYiOnsibmFtZSI6InNjcnlwdCIsInBhcmFtcyI6eyJOIjo2NTUzNiwiciI6OCwicCI6MX0s\nInNhbHQiOiJ4eHh4In0sImNpcGhlciI6eyJuYW1lIjoibmFjbC9zZWNyZXRib3gifX0=\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n";
    const text = `Error: reading key with pass hunter2-pass from ${pem} and line InNhbHQiOiJ4eHh4In0sImNpcGhlciI6eyJuYW1lIjoibmFjbC9zZWNyZXRib3gifX0=`;
    const scrubbed = scrub(text, [pem, "hunter2-pass"]);
    expect(scrubbed).not.toContain("hunter2-pass");
    expect(scrubbed).not.toContain("eyJrZGYi");
    expect(scrubbed).not.toContain("InNhbHQi");
    expect(scrubbed).toContain("Error: reading key with pass [redacted]");
  });
});

describe("the folders that hand cosign a login", () => {
  it("removes one left by a process that is gone once it is older than any call, and keeps a young one, a live process's and others", () => {
    const scratch = mkdtempSync(path.join(tmpdir(), "strata-cosign-access-test-"));
    const savedTmpdir = process.env.TMPDIR;
    process.env.TMPDIR = scratch;
    const live = spawn("sleep", ["30"], { stdio: "ignore" });
    try {
      const gone = spawnSync("true").pid;
      const made = (name: string, ageMs: number): void => {
        mkdirSync(path.join(scratch, name));
        writeFileSync(path.join(scratch, name, "config.json"), "{}");
        const at = (Date.now() - ageMs) / 1000;
        utimesSync(path.join(scratch, name), at, at);
      };
      made(`strata-cosign-access-${gone}-old`, 2 * 3600_000);
      made(`strata-cosign-access-${gone}-young`, 60_000);
      made(`strata-cosign-access-${String(live.pid)}-old`, 2 * 3600_000);
      made(`unrelated-${gone}-old`, 2 * 3600_000);
      // Names, times and pids anyone can fake: another user's folder, and a link, are never removed (nor what it points at).
      made(`strata-cosign-access-${gone}-theirs`, 2 * 3600_000);
      chownSync(path.join(scratch, `strata-cosign-access-${gone}-theirs`), 65534, 65534);
      made("target", 2 * 3600_000);
      symlinkSync(path.join(scratch, "target"), path.join(scratch, `strata-cosign-access-${gone}-link`));
      const access = cosignAccess({ registry: "127.0.0.1:5000", username: "u", password: "pw-12345" }, {});
      expect(access.folder?.startsWith(path.join(scratch, `strata-cosign-access-${process.pid}-`))).toBe(true);
      expect(readdirSync(scratch).filter((name) => name !== path.basename(access.folder ?? "")).sort()).toEqual([
        `strata-cosign-access-${gone}-young`, `strata-cosign-access-${String(live.pid)}-old`, `unrelated-${gone}-old`,
        `strata-cosign-access-${gone}-theirs`, "target", `strata-cosign-access-${gone}-link`,
      ].sort());
      expect(readdirSync(path.join(scratch, "target"))).toEqual(["config.json"]);
    } finally {
      live.kill();
      if (savedTmpdir === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = savedTmpdir;
      rmSync(scratch, { recursive: true, force: true });
    }
  });
});
