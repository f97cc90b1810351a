import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { ENGINE_SECRET_VARIABLES, keepSecretsFromChildren } from "../../src/pulumi/secret-env.js";

describe("keepSecretsFromChildren", () => {
  it("drops the engine's decrypted config and the state's passphrase, and nothing else, so a child started after it sees none of them", () => {
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: "/root", PULUMI_CONFIG: '{"strata:config:signingKey":"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----"}', PULUMI_CONFIG_SECRET_KEYS: '["strata:config:signingKey"]', PULUMI_CONFIG_PASSPHRASE: "state-passphrase", PULUMI_CONFIG_PASSPHRASE_FILE: "/run/passphrase", PULUMI_BACKEND_URL: "file:///state" };
    keepSecretsFromChildren(env);
    expect(Object.keys(env).sort()).toEqual(["HOME", "PATH", "PULUMI_BACKEND_URL"]);
    const seen = spawnSync("env", [], { env, encoding: "utf8" }).stdout;
    expect(seen).toMatch(/^PULUMI_BACKEND_URL=file:\/\/\/state$/m);
    for (const name of ENGINE_SECRET_VARIABLES) expect(seen).not.toMatch(new RegExp(`^${name}=`, "m"));
  });
});
