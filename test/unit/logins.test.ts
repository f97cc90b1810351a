/**
 * Logins from a Docker config file, found as the docker CLI finds them: credHelpers[host], then
 * credsStore, then inline auths; a helper is a real program on PATH (a script written here).
 */
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { dockerConfigLogin, LoginError } from "../../src/registry/logins.js";

const REGISTRY = "registry.test:5000";

/** A Docker config folder and a bin folder with a helper `docker-credential-<name>` answering from `secrets` (server → [user, secret]). */
function setup(config: object, helpers: Record<string, Record<string, [string, string]>> = {}): { dir: string; env: NodeJS.ProcessEnv } {
  const dir = mkdtempSync(path.join(tmpdir(), "strata-logins-"));
  writeFileSync(path.join(dir, "config.json"), JSON.stringify(config));
  for (const [name, secrets] of Object.entries(helpers)) {
    const script = path.join(dir, `docker-credential-${name}`);
    const cases = Object.entries(secrets).map(([server, [user, secret]]) => `  '${server}') echo '{"ServerURL":"${server}","Username":"${user}","Secret":"${secret}"}' ;;`).join("\n");
    writeFileSync(script, `#!/bin/sh\n[ "$1" = get ] || exit 3\nserver="$(cat)"\ncase "$server" in\n${cases}\n  *) echo "credentials not found in native keychain"; exit 1 ;;\nesac\n`);
    chmodSync(script, 0o755);
  }
  return { dir, env: { ...process.env, PATH: `${dir}:${process.env.PATH ?? ""}` } };
}
const inline = (user: string, password: string) => ({ auth: Buffer.from(`${user}:${password}`).toString("base64") });

describe("Docker config logins", () => {
  it("inline auths, under the bare host or a URL", () => {
    const { dir, env } = setup({ auths: { [`https://${REGISTRY}`]: inline("u", "p:with:colons") } });
    expect(dockerConfigLogin(REGISTRY, dir, env)).toEqual({ credentials: { username: "u", password: "p:with:colons" }, source: `${dir}/config.json (auths)` });
  });
  it("credsStore: the helper's login wins over inline auths; a helper that has none falls back to them", () => {
    const { dir, env } = setup({ credsStore: "store", auths: { [REGISTRY]: inline("inline", "x") } }, { store: { [REGISTRY]: ["helper-user", "helper-secret"] } });
    expect(dockerConfigLogin(REGISTRY, dir, env)).toEqual({ credentials: { username: "helper-user", password: "helper-secret" }, source: "credential helper docker-credential-store" });
    expect(dockerConfigLogin("other.test", dir, env)).toBeUndefined();
  });
  it("credHelpers[host] wins over credsStore", () => {
    const { dir, env } = setup({ credsStore: "store", credHelpers: { [REGISTRY]: "special" } }, { store: { [REGISTRY]: ["store-user", "a"] }, special: { [REGISTRY]: ["special-user", "b"] } });
    expect(dockerConfigLogin(REGISTRY, dir, env)?.credentials.username).toBe("special-user");
  });
  it("a helper named but not installed, a helper that fails, a config that is not JSON: errors that name the fix", () => {
    const missing = setup({ credsStore: "absent" });
    expect(() => dockerConfigLogin(REGISTRY, missing.dir, missing.env)).toThrow(LoginError);
    expect(() => dockerConfigLogin(REGISTRY, missing.dir, missing.env)).toThrow(/docker-credential-absent is not on PATH: install it or put it on PATH/);
    const broken = setup({ credsStore: "broken" });
    writeFileSync(path.join(broken.dir, "docker-credential-broken"), "#!/bin/sh\necho 'keychain is locked' >&2\nexit 2\n", { mode: 0o755 });
    expect(() => dockerConfigLogin(REGISTRY, broken.dir, broken.env)).toThrow(/docker-credential-broken failed for registry.test:5000 \(exit 2: keychain is locked\)/);
    const notJson = mkdtempSync(path.join(tmpdir(), "strata-logins-"));
    writeFileSync(path.join(notJson, "config.json"), "{ not json");
    expect(() => dockerConfigLogin(REGISTRY, notJson)).toThrow(/config.json is not valid JSON/);
  });
  it("no config file: no login", () => {
    expect(dockerConfigLogin(REGISTRY, "/nonexistent-docker-config")).toBeUndefined();
  });
});
