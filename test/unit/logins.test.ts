/**
 * Logins from a Docker config file, found as the docker CLI finds them: credHelpers[host], then
 * credsStore, then inline auths; a helper is a real program on PATH (a script written here).
 */
import { chmodSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { checkCredentialStore } from "../../src/pulumi/docker-engine.js";
import { credentialStoreProblem, dockerConfigLogin, LoginError } from "../../src/registry/logins.js";
import { scratchDir } from "../helpers/catalog.js";

const REGISTRY = "registry.test:5000";

/** A Docker config folder and a bin folder with a helper `docker-credential-<name>` answering from `secrets` (server → [user, secret]). */
function setup(config: object, helpers: Record<string, Record<string, [string, string]>> = {}): { dir: string; env: NodeJS.ProcessEnv } {
  const dir = scratchDir("logins");
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
    expect(dockerConfigLogin(REGISTRY, dir, env)).toEqual({ credentials: { username: "special-user", password: "b" }, source: "credential helper docker-credential-special" });
  });
  it("an identity token: a helper's <token> user, or an inline identitytoken, which goes before the entry's user and password (az acr login writes both)", () => {
    const helper = setup({ credsStore: "store" }, { store: { [REGISTRY]: ["<token>", "refresh-from-helper"] } });
    expect(dockerConfigLogin(REGISTRY, helper.dir, helper.env)).toEqual({ identityToken: "refresh-from-helper", source: "credential helper docker-credential-store (an identity token)" });
    const written = setup({ auths: { [REGISTRY]: { ...inline("00000000-0000-0000-0000-000000000000", ""), identitytoken: "refresh-inline" } } });
    expect(dockerConfigLogin(REGISTRY, written.dir, written.env)).toEqual({ identityToken: "refresh-inline", source: `${written.dir}/config.json (auths, an identity token)` });
    // An empty identitytoken is no login of that kind: the entry's user and password are.
    const empty = setup({ auths: { [REGISTRY]: { ...inline("u", "p"), identitytoken: "" } } });
    expect(dockerConfigLogin(REGISTRY, empty.dir, empty.env)).toEqual({ credentials: { username: "u", password: "p" }, source: `${empty.dir}/config.json (auths)` });
  });
  it("a helper named but not installed, a helper that fails, a config that is not JSON: errors that name the fix", () => {
    const missing = setup({ credsStore: "absent" });
    expect(() => dockerConfigLogin(REGISTRY, missing.dir, missing.env)).toThrow(LoginError);
    expect(() => dockerConfigLogin(REGISTRY, missing.dir, missing.env)).toThrow(/docker-credential-absent is not on PATH: install it or put it on PATH/);
    const broken = setup({ credsStore: "broken" });
    writeFileSync(path.join(broken.dir, "docker-credential-broken"), "#!/bin/sh\necho 'keychain is locked' >&2\nexit 2\n", { mode: 0o755 });
    expect(() => dockerConfigLogin(REGISTRY, broken.dir, broken.env)).toThrow(/docker-credential-broken failed for registry.test:5000 \(exit 2: keychain is locked\)/);
    const notJson = scratchDir("logins");
    writeFileSync(path.join(notJson, "config.json"), "{ not json");
    expect(() => dockerConfigLogin(REGISTRY, notJson)).toThrow(/config.json is not valid JSON/);
  });
  it("no config file: no login", () => {
    expect(dockerConfigLogin(REGISTRY, "/nonexistent-docker-config")).toBeUndefined();
  });
});

/** A folder holding config.json (when `config` is given) and helper scripts `docker-credential-<name>` whose `list` runs `list`; PATH is that folder alone. */
function storeSetup(config: object | undefined, helpers: Record<string, string>, extra: Record<string, string> = {}): { dir: string; env: NodeJS.ProcessEnv } {
  const dir = scratchDir("store");
  if (config !== undefined) writeFileSync(path.join(dir, "config.json"), JSON.stringify(config));
  for (const [name, list] of Object.entries(helpers)) {
    writeFileSync(path.join(dir, `docker-credential-${name}`), `#!/bin/sh\n[ "$1" = list ] || { echo "credentials not found in native keychain"; exit 1; }\n${list}\n`, { mode: 0o755 });
  }
  for (const [name, text] of Object.entries(extra)) writeFileSync(path.join(dir, name), text, { mode: 0o755 });
  return { dir, env: { PATH: dir } };
}

describe("the credential store's answer to list (the docker plugin asks it before every build)", () => {
  it("a store that lists nothing, as JSON, or its logins: no problem", () => {
    for (const list of ["echo '{}'", `echo '{"${REGISTRY}":"u","https://index.docker.io/v1/":"v"}'`]) {
      const { dir, env } = storeSetup({ credsStore: "store" }, { store: list });
      expect(credentialStoreProblem(dir, env)).toBeUndefined();
    }
  });
  it("a credsStore that answers list with nothing: names the helper, the operation, what the plugin would say, and the fix", () => {
    const { dir, env } = storeSetup({ credsStore: "store" }, { store: "exit 0" });
    const found = credentialStoreProblem(dir, env);
    expect(found?.problem).toBe(`the credential store docker-credential-store ("credsStore" in ${dir}/config.json) answered "list" with nothing (the docker plugin stops on that with a bare "error: EOF"); the docker client asks the credential store to list every login it holds before each build`);
    expect(found?.fix).toBe(`make "docker-credential-store list" print its logins as a JSON object of server → user name ({} when it holds none): update, reinstall or initialise the helper, or remove "credsStore": "store" from ${dir}/config.json`);
    expect(() => checkCredentialStore(dir, env)).toThrow(/docker-credential-store .*answered "list" with nothing.*\. Nothing was built or pushed\. fix: make "docker-credential-store list" print/);
  });
  it("a list answer that is not a login object, a helper that fails, a helper not on PATH", () => {
    const notJson = storeSetup({ credsStore: "store" }, { store: "echo 'Error: keyring locked'" });
    expect(credentialStoreProblem(notJson.dir, notJson.env)?.problem).toMatch(/answered "list" with something that is not a JSON object of server → user name: Error: keyring locked;/);
    const array = storeSetup({ credsStore: "store" }, { store: "echo '[]'" });
    expect(credentialStoreProblem(array.dir, array.env)?.problem).toMatch(/answered "list" with something that is not a JSON object.*: \[\];/);
    const failing = storeSetup({ credsStore: "store" }, { store: "echo 'Cannot autolaunch D-Bus without X11 $DISPLAY' >&2; exit 1" });
    expect(credentialStoreProblem(failing.dir, failing.env)?.problem).toMatch(/docker-credential-store \("credsStore" in .*\) failed when asked to "list" its logins \(exit 1: Cannot autolaunch D-Bus without X11 \$DISPLAY\)/);
    const absent = storeSetup({ credsStore: "absent" }, {});
    expect(credentialStoreProblem(absent.dir, absent.env)).toMatchObject({ problem: expect.stringMatching(/docker-credential-absent .* is not on PATH/), fix: expect.stringMatching(/remove "credsStore": "absent"/) });
  });
  it("no credsStore: the docker client's default store when its helper is on PATH (pass when pass is installed, else secretservice), else none", () => {
    const none = storeSetup(undefined, {});
    expect(credentialStoreProblem(none.dir, none.env)).toBeUndefined();
    const secretservice = storeSetup({ auths: {} }, { secretservice: "exit 0" });
    expect(credentialStoreProblem(secretservice.dir, secretservice.env)).toMatchObject({
      problem: expect.stringMatching(/^the credential store docker-credential-secretservice \(the docker client's default store: .*config\.json names no "credsStore" and docker-credential-secretservice is on PATH\) answered "list" with nothing/),
      fix: expect.stringMatching(/or name a working store in .*config\.json \("credsStore"\), or take docker-credential-secretservice off PATH$/),
    });
    const pass = storeSetup(undefined, { pass: "exit 0", secretservice: "echo '{}'" }, { pass: "#!/bin/sh\nexit 0\n" });
    expect(credentialStoreProblem(pass.dir, pass.env)?.problem).toMatch(/^the credential store docker-credential-pass /);
    // A named store wins over the default.
    const named = storeSetup({ credsStore: "store" }, { store: "echo '{}'", secretservice: "exit 0" });
    expect(credentialStoreProblem(named.dir, named.env)).toBeUndefined();
    // A config that holds a login of its own (auths, credHelpers) gets no default store: the docker client never asks one.
    const withAuths = storeSetup({ auths: { "r:5000": { auth: Buffer.from("u:p").toString("base64") } } }, { secretservice: "exit 0" });
    expect(credentialStoreProblem(withAuths.dir, withAuths.env)).toBeUndefined();
    const withHelpers = storeSetup({ credHelpers: { "r:5000": "store" } }, { store: "echo '{}'", secretservice: "exit 0" });
    expect(credentialStoreProblem(withHelpers.dir, withHelpers.env)).toBeUndefined();
  });
});
