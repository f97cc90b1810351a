/**
 * A registry with htpasswd auth and TLS on loopback. Credentials come from a
 * config secret or from a Docker config file (inline auths, or a credential
 * helper through credsStore or credHelpers), and never show up in stack
 * outputs, the state in plain text, logs or error messages.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import bcrypt from "bcryptjs";
import { Agent, fetch as undiciFetch } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RegistryClient } from "../../src/registry/client.js";
import { emptyEngine, removeImages } from "../../bench/docker-images.js";
import { changed, createWorld, type E2eWorld, repoRoot } from "./harness.js";
import { signedRelease } from "./signed-release.js";
import { freePort } from "../helpers/net.js";

const USER = "strata-ci";
const PASSWORD = `pw-${randomBytes(12).toString("hex")}`;
let world: E2eWorld;
let dir: string;
let port: number;
let address: string;
let server: ChildProcess | undefined;
let certsDir: string;
let client: RegistryClient;

beforeAll(async () => {
  world = createWorld("credentials");
  dir = path.join(world.root, "secure-registry");
  mkdirSync(dir);
  port = await freePort();
  address = `127.0.0.1:${port}`;
  execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", path.join(dir, "key.pem"), "-out", path.join(dir, "cert.pem")], { stdio: "ignore" });
  writeFileSync(path.join(dir, "htpasswd"), `${USER}:${bcrypt.hashSync(PASSWORD, 10)}\n`);
  writeFileSync(path.join(dir, "config.yml"), [
    "version: 0.1",
    "storage:", `  filesystem:`, `    rootdirectory: ${dir}/data`,
    "http:", `  addr: ${address}`, "  tls:", `    certificate: ${dir}/cert.pem`, `    key: ${dir}/key.pem`,
    "auth:", "  htpasswd:", "    realm: strata-test", `    path: ${dir}/htpasswd`, "",
  ].join("\n"));
  // The Docker engine trusts this CA for this registry only.
  certsDir = `/etc/docker/certs.d/${address}`;
  mkdirSync(certsDir, { recursive: true });
  writeFileSync(path.join(certsDir, "ca.crt"), readFileSync(path.join(dir, "cert.pem")));
  server = spawn("docker-registry", ["serve", path.join(dir, "config.yml")], { stdio: "ignore" });
  const dispatcher = new Agent({ connect: { ca: readFileSync(path.join(dir, "cert.pem")) } });
  // undici's own fetch: Node's built-in one does not take a dispatcher from the newer undici package.
  const tlsFetch = ((input: string | URL, init?: RequestInit) => undiciFetch(input, { ...(init as object), dispatcher })) as unknown as typeof fetch;
  client = new RegistryClient({ registry: address, credentials: { username: USER, password: PASSWORD }, fetch: tlsFetch });
  let last: unknown;
  for (let attempt = 0; attempt < 100; attempt++) {
    try {
      await client.repositories();
      return;
    } catch (error) {
      last = error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  throw new Error(`the TLS registry did not start: ${String(last)}`);
});

afterAll(async () => {
  server?.kill("SIGKILL");
  rmSync(certsDir, { recursive: true, force: true });
  // The world removes images of the shared registry only; these are tagged for the TLS one.
  if (address !== undefined) removeImages(`${address}/`);
  await world?.cleanup();
});

/** Every file under a folder, as text. */
function allText(root: string): string {
  let text = "";
  for (const entry of readdirSync(root)) {
    const file = path.join(root, entry);
    text += statSync(file).isDirectory() ? allText(file) : readFileSync(file, "latin1");
  }
  return text;
}

describe("registry credentials end to end (htpasswd + TLS on loopback)", () => {
  it("pushes with a config secret, and the password appears nowhere", async () => {
    const tls = { NODE_EXTRA_CA_CERTS: path.join(dir, "cert.pem") };
    const stack = await world.stack("secret", { channel: "secret", registry: address, registryUsername: USER }, { secrets: { registryPassword: PASSWORD }, env: { ...tls, STRATA_PULL_PARENT_FIRST: "auto" } });
    const { log } = await stack.up();
    const tags = await client.tags(`${stack.group}/base-tools-libs-app`);
    expect(tags).toEqual(["1.0-p2"]);
    expect(log).not.toContain(PASSWORD);
    expect(JSON.stringify(await stack.stack.outputs())).not.toContain(PASSWORD);
    // `pulumi stack export` as a user runs it (the Automation API's exportStack shows secrets on purpose).
    const exported = execFileSync("pulumi", ["stack", "export", "--stack", "secret"], { cwd: world.projectDir, env: { ...process.env, ...world.env }, encoding: "utf8" });
    // docker.Image's registry login is in the state, encrypted: Pulumi's secret signature and ciphertext.
    const images = ((JSON.parse(exported) as { deployment: { resources: { type: string; inputs?: { registry?: unknown } }[] } }).deployment.resources)
      .filter((resource) => resource.type === "docker:index/image:Image");
    expect(images).toHaveLength(6);
    for (const image of images) expect(JSON.stringify(image.inputs?.registry)).toMatch(/"4dabf18193072939515e22adb298388d":"1b47061264138c4ac30d75fd1eb44270","ciphertext"/);
    expect(exported).not.toContain(PASSWORD);
    expect(allText(path.join(world.root, "state"))).not.toContain(PASSWORD);
    // And a second run needs nothing built: the lookup logged in too.
    const again = await stack.up();
    expect(again.summary.update ?? 0).toBe(0);
    // The CLI's own registry lookups (plan, bump) log in with the stack's secret as well.
    const cli = (args: string[]) => spawnSync("node", [path.join(repoRoot, "bin/strata.js"), ...args, "--stack", "secret", "--project", world.projectDir, "--catalog", world.catalogDir],
      { cwd: world.projectDir, env: { ...process.env, ...world.env, ...tls }, encoding: "utf8" });
    const plan = cli(["plan", "--json"]);
    expect(plan.status, plan.stderr).toBe(0);
    expect(new Set((JSON.parse(plan.stdout) as { status: string }[]).map((row) => row.status))).toEqual(new Set(["unchanged"]));
    const bump = cli(["bump", "--dry-run"]);
    expect(bump.stdout).toMatch(/nothing to bump/);
    expect(`${plan.stdout}${plan.stderr}${bump.stdout}${bump.stderr}`).not.toContain(PASSWORD);
    // A leaf changes on a machine that has none of the images (a fresh CI runner): its parent is
    // pulled from the registry with the stack's credentials, over TLS, then the leaf alone is built.
    // On the project's engine BuildKit pulls it itself (core/parent-pull.ts): the leaf's docker.Image
    // names no cacheFrom, and the parent does not become an image of the engine's own.
    // Its build cache emptied too, so BuildKit downloads the parent's layers, not only its manifest.
    emptyEngine(`${address}/${stack.group}/`);
    const localImages = () => execFileSync("docker", ["image", "ls", "--format", "{{.Repository}}"], { encoding: "utf8" }).split("\n").filter((name) => name.startsWith(`${address}/${stack.group}/`));
    expect(localImages()).toEqual([]);
    const appDockerfile = path.join(world.catalogDir, "app/Dockerfile");
    const original = readFileSync(appDockerfile, "utf8");
    writeFileSync(appDockerfile, `${original}LABEL org.example.note="built on a fresh runner"\n`);
    const leaf = await stack.up().finally(() => writeFileSync(appDockerfile, original));
    expect(changed(leaf.operations)).toEqual(["app"]);
    const leafState = (JSON.parse(execFileSync("pulumi", ["stack", "export", "--stack", "secret"], { cwd: world.projectDir, env: { ...process.env, ...world.env }, encoding: "utf8" })) as { deployment: { resources: { type: string; urn: string; inputs?: { build?: { cacheFrom?: unknown; args?: Record<string, string> } } }[] } }).deployment.resources
      .find((resource) => resource.type === "docker:index/image:Image" && resource.urn.endsWith("::app"));
    expect(leafState?.inputs?.build?.args?.BASE_IMAGE).toMatch(new RegExp(`^${address}/${stack.group}/base-tools-libs-app-base@sha256:`));
    expect(leafState?.inputs?.build?.cacheFrom).toBeUndefined();
    expect(localImages()).not.toContain(`${address}/${stack.group}/base-tools-libs-app-base`);
    // The rebuilt leaf is what its tag holds now.
    const leafDigestRef = (await stack.outputs()).app?.digestRef;
    expect(leafDigestRef).toBe(`${address}/${stack.group}/base-tools-libs-app@${(await client.manifest(`${stack.group}/base-tools-libs-app`, "1.0-p2"))?.digest}`);
    expect(leaf.log).not.toContain(PASSWORD);
  });

  it("a wrong password fails with a clear message that does not contain it", async () => {
    const wrong = `wrong-${randomBytes(8).toString("hex")}`;
    const stack = await world.stack("wrong", { channel: "wrong", registry: address, registryUsername: USER }, { secrets: { registryPassword: wrong }, env: { NODE_EXTRA_CA_CERTS: path.join(dir, "cert.pem") } });
    const failure = await stack.up().then(() => undefined, (error: Error) => error);
    expect(failure?.message).toMatch(/refused the credentials \(HTTP 401; the login from the stack config \(strata:registryUsername, strata:registryPassword\) was refused\).*Nothing was built or pushed.*fix: log in/s);
    expect(failure?.message).not.toMatch(/unhandled exception|\n\s+at /);
    expect(failure?.message).not.toContain(wrong);
    expect(allText(path.join(world.root, "state"))).not.toContain(wrong);
  });

  it("a TLS registry whose CA Strata was not given fails, naming NODE_EXTRA_CA_CERTS, and nothing is pushed", async () => {
    // The engine trusts the registry's CA (certs.d); Strata's lookups, which come first, are given
    // another CA, as on a machine whose NODE_EXTRA_CA_CERTS names its company's CA but not this one.
    const otherCa = path.join(world.root, "other-ca.pem");
    execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=another CA",
      "-keyout", path.join(world.root, "other-ca-key.pem"), "-out", otherCa], { stdio: "ignore" });
    const stack = await world.stack("untrusted", { channel: "untrusted", registry: address, registryUsername: USER }, { secrets: { registryPassword: PASSWORD }, env: { NODE_EXTRA_CA_CERTS: otherCa } });
    const failure = await stack.up().then(() => undefined, (error: Error) => error);
    expect(failure?.message).toMatch(/the registry's TLS certificate is not signed by a CA this machine trusts \(DEPTH_ZERO_SELF_SIGNED_CERT: self[- ]signed certificate\): give Strata the CA that signed it, NODE_EXTRA_CA_CERTS=<ca\.pem>.*Nothing was built or pushed.* fix: Strata cannot speak TLS with 127\.0\.0\.1:\d+ as it is: do what is said of its TLS above/s);
    expect(failure?.message).not.toMatch(/unhandled exception|\n\s+at /);
    expect(failure?.message).not.toContain(PASSWORD);
    expect((await client.repositories()).filter((repository) => repository.startsWith(`${stack.group}/`))).toEqual([]);
  });

  for (const layout of ["credsStore", "credHelpers"] as const) {
    it(`takes the login from a credential helper (${layout}), for the lookups and for docker.Image's pushes; the password appears nowhere`, async () => {
      // A credential helper as docker login uses one: docker-credential-<name> get, the server on stdin, JSON out.
      const bin = path.join(world.root, `helper-bin-${layout}`);
      const store = path.join(world.root, `helper-store-${layout}.json`);
      mkdirSync(bin);
      writeFileSync(store, JSON.stringify({ [address]: { Username: USER, Secret: PASSWORD } }));
      // `list` too: the docker plugin, like the docker CLI, asks a credsStore for every login it holds.
      writeFileSync(path.join(bin, "docker-credential-strata-test"), [
        "#!/bin/sh",
        `if [ "$1" = list ]; then exec node -e 'const all=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")); console.log(JSON.stringify(Object.fromEntries(Object.entries(all).map(([k,v])=>[k,v.Username]))))' ${JSON.stringify(store)}; fi`,
        `[ "$1" = get ] || { echo "unsupported: $1" >&2; exit 1; }`,
        `server="$(cat)"`,
        `exec node -e 'const s=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"))[process.argv[2]]; if(!s){console.log("credentials not found in native keychain");process.exit(1)} console.log(JSON.stringify({ServerURL:process.argv[2],...s}))' ${JSON.stringify(store)} "$server"`,
        "",
      ].join("\n"), { mode: 0o755 });
      const dockerConfig = path.join(world.root, `docker-config-${layout}`);
      mkdirSync(dockerConfig);
      writeFileSync(path.join(dockerConfig, "config.json"), JSON.stringify(layout === "credsStore" ? { credsStore: "strata-test" } : { credHelpers: { [address]: "strata-test" } }));
      const env = { DOCKER_CONFIG: dockerConfig, PATH: `${bin}:${process.env.PATH ?? ""}`, NODE_EXTRA_CA_CERTS: path.join(dir, "cert.pem") };
      const name = `helper-${layout.toLowerCase()}`;
      const stack = await world.stack(name, { channel: name, registry: address }, { env });
      const { log } = await stack.up();
      expect(await client.tags(`${stack.group}/base-tools-libs-app`)).toEqual(["1.0-p2"]);
      expect(log).not.toContain(PASSWORD);
      expect(JSON.stringify(await stack.stack.outputs())).not.toContain(PASSWORD);
      expect(allText(path.join(world.root, "state"))).not.toContain(PASSWORD);
      // The CLI's own lookups take the same login: strata plan sees what was pushed.
      const plan = spawnSync("node", [path.join(repoRoot, "bin/strata.js"), "plan", "--json", "--stack", name, "--project", world.projectDir, "--catalog", world.catalogDir],
        { cwd: world.projectDir, env: { ...process.env, ...world.env, ...env }, encoding: "utf8" });
      expect(plan.status, plan.stderr).toBe(0);
      expect(new Set((JSON.parse(plan.stdout) as { status: string }[]).map((row) => row.status))).toEqual(new Set(["unchanged"]));
      expect(`${plan.stdout}${plan.stderr}`).not.toContain(PASSWORD);
    });
  }

  it("a credential helper that is named but not installed: one paragraph naming the helper and the fix, no stack trace", async () => {
    const dockerConfig = path.join(world.root, "docker-config-missing-helper");
    mkdirSync(dockerConfig);
    writeFileSync(path.join(dockerConfig, "config.json"), JSON.stringify({ credsStore: "strata-absent" }));
    const stack = await world.stack("nohelper", { channel: "nohelper", registry: address }, { env: { DOCKER_CONFIG: dockerConfig, NODE_EXTRA_CA_CERTS: path.join(dir, "cert.pem") } });
    const failure = await stack.up().then(() => undefined, (error: Error) => error);
    expect(failure?.message).toMatch(/names the credential helper "strata-absent", but docker-credential-strata-absent is not on PATH: install it or put it on PATH/);
    expect(failure?.message).not.toMatch(/unhandled exception|\n\s+at /);
  });

  it("a credential store that answers list with nothing: the run stops before anything is pushed, naming the helper, the operation and the fix (not a bare EOF)", async () => {
    // A store that holds the login (get answers) but lists nothing: the docker plugin asks it to list every login before each build.
    const bin = path.join(world.root, "helper-bin-silent-list");
    const store = path.join(world.root, "helper-store-silent-list.json");
    mkdirSync(bin);
    writeFileSync(store, JSON.stringify({ [address]: { Username: USER, Secret: PASSWORD } }));
    writeFileSync(path.join(bin, "docker-credential-strata-silent"), [
      "#!/bin/sh",
      `[ "$1" = list ] && exit 0`,
      `[ "$1" = get ] || { echo "unsupported: $1" >&2; exit 1; }`,
      `server="$(cat)"`,
      `exec node -e 'const s=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"))[process.argv[2]]; if(!s){console.log("credentials not found in native keychain");process.exit(1)} console.log(JSON.stringify({ServerURL:process.argv[2],...s}))' ${JSON.stringify(store)} "$server"`,
      "",
    ].join("\n"), { mode: 0o755 });
    const dockerConfig = path.join(world.root, "docker-config-silent-list");
    mkdirSync(dockerConfig);
    writeFileSync(path.join(dockerConfig, "config.json"), JSON.stringify({ credsStore: "strata-silent" }));
    const env = { DOCKER_CONFIG: dockerConfig, PATH: `${bin}:${process.env.PATH ?? ""}`, NODE_EXTRA_CA_CERTS: path.join(dir, "cert.pem") };
    const stack = await world.stack("silentlist", { channel: "silentlist", registry: address }, { env });
    const failure = await stack.up().then(() => undefined, (error: Error) => error);
    expect(failure?.message).toMatch(/the credential store docker-credential-strata-silent \("credsStore" in \S+\/docker-config-silent-list\/config\.json\) answered "list" with nothing.*Nothing was built or pushed\. fix: make "docker-credential-strata-silent list" print its logins as a JSON object.*or remove "credsStore": "strata-silent"/s);
    expect(failure?.message).not.toMatch(/error: EOF\s*$|unhandled exception|\n\s+at /m);
    expect(await client.repositories()).not.toContainEqual(expect.stringContaining(`${stack.group}/`));
  });

  it("uses the Docker config file when the stack has no credentials", async () => {
    const dockerConfig = path.join(world.root, "docker-config");
    mkdirSync(dockerConfig);
    execFileSync("docker", ["--config", dockerConfig, "login", "--username", USER, "--password-stdin", address], { input: PASSWORD, stdio: ["pipe", "ignore", "ignore"] });
    const stack = await world.stack("dockerconfig", { channel: "dockerconfig", registry: address }, { env: { DOCKER_CONFIG: dockerConfig, NODE_EXTRA_CA_CERTS: path.join(dir, "cert.pem") } });
    const { log } = await stack.up();
    expect(await client.tags(`${stack.group}/base`)).toEqual(["1.0-p0"]);
    expect(log).not.toContain(PASSWORD);
    expect(allText(path.join(world.root, "state"))).not.toContain(PASSWORD);
  });

  it("signs with the stack's login over TLS; the promotion gate and strata verify read the signatures with that login and the CA Strata was given, and the password appears nowhere", async () => {
    // cosign (Go) reads neither the stack's config secret nor NODE_EXTRA_CA_CERTS: without Strata
    // handing both on, every image here is refused as "could not tell" (401, or x509).
    const tls = { NODE_EXTRA_CA_CERTS: path.join(dir, "cert.pem") };
    const release = await signedRelease(world, { address, username: USER, password: PASSWORD, env: tls, client }, async (stack, cosign) => {
      // A process of its own: Node reads NODE_EXTRA_CA_CERTS as it starts.
      const run = spawnSync("node", [path.join(repoRoot, "bin/strata.js"), "verify", "--stack", stack, "--project", world.projectDir, "--catalog", world.catalogDir],
        { cwd: world.projectDir, env: { ...process.env, ...world.env, ...tls, STRATA_COSIGN: cosign }, encoding: "utf8" });
      return { code: run.status ?? 1, out: `${run.stdout}${run.stderr}` };
    });
    for (const text of release.texts) expect(text).not.toContain(PASSWORD);
    expect(allText(path.join(world.root, "state"))).not.toContain(PASSWORD);
  });
});
