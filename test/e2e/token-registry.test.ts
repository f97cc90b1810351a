/**
 * A registry that logs in with tokens (Debian's docker-registry with `auth: token`, as Harbor,
 * GitLab and Quay do): each request must carry a token its token server gives for that scope in
 * exchange for the login. The token server here is a small one of the test's own, signing JWTs with
 * a certificate the registry trusts (rootcertbundle), as the distribution token spec has it. Strata's
 * client asks for tokens itself (registry/bearer.ts); Docker, BuildKit and cosign do the same, so a
 * whole signed release works there: build, sign, gate, verify.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { randomBytes, sign } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { removeImages } from "../../bench/docker-images.js";
import { sha256Digest } from "../../src/registry/blob-cache.js";
import { RegistryClient } from "../../src/registry/client.js";
import { freePort } from "../helpers/net.js";
import { createWorld, type E2eWorld, runStrata } from "./harness.js";
import { signedRelease } from "./signed-release.js";

const USER = "strata-ci";
const PASSWORD = `pw-${randomBytes(12).toString("hex")}`;
/** An identity token (an OAuth2 refresh token, as `az acr login` keeps in the Docker config) the token server takes for USER. */
const IDENTITY_TOKEN = `rt-${randomBytes(12).toString("hex")}`;
const SERVICE = "strata-token-test";
const ISSUER = "strata-token-issuer";
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";

/** What the token server was asked: the login it was given (user, or anonymous) and the scopes; `grant`: a POSTed refresh_token exchange. */
interface TokenAsk {
  readonly user: string | "anonymous" | "refused";
  readonly scopes: readonly string[];
  readonly grant?: "refresh_token";
}

let world: E2eWorld;
let address: string;
let registryServer: ChildProcess | undefined;
let tokenServer: Server | undefined;
const asked: TokenAsk[] = [];

/** A JWT (RS256) granting every scope asked, with the certificate in its header (x5c), as the registry's token spec reads it. */
function jwtFor(user: string, scopes: readonly string[], keyPem: string, certDer: string): string {
  const now = Math.floor(Date.now() / 1000);
  const access = scopes.map((scope) => {
    const parts = scope.split(":");
    return { type: parts[0], name: parts.slice(1, -1).join(":"), actions: (parts.at(-1) ?? "").split(",") };
  });
  const encode = (value: object): string => Buffer.from(JSON.stringify(value)).toString("base64url");
  const signed = `${encode({ alg: "RS256", typ: "JWT", x5c: [certDer] })}.${encode({ iss: ISSUER, sub: user, aud: SERVICE, exp: now + 300, nbf: now - 10, iat: now, jti: randomBytes(8).toString("hex"), access })}`;
  return `${signed}.${sign("sha256", Buffer.from(signed), keyPem).toString("base64url")}`;
}

beforeAll(async () => {
  world = createWorld("token");
  const dir = path.join(world.root, "token-registry");
  mkdirSync(dir);
  execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=strata-token-issuer", "-keyout", path.join(dir, "key.pem"), "-out", path.join(dir, "cert.pem")], { stdio: "ignore" });
  const keyPem = readFileSync(path.join(dir, "key.pem"), "utf8");
  const certDer = readFileSync(path.join(dir, "cert.pem"), "utf8").split("\n").filter((line) => line !== "" && !line.startsWith("-----")).join("");
  const tokenPort = await freePort();
  tokenServer = createServer((request, response) => {
    const url = new URL(request.url ?? "/", `http://127.0.0.1:${tokenPort}`);
    if (request.method === "POST") {
      // OAuth2's refresh_token grant, as the docker client exchanges an identity token: a form in the body.
      const chunks: Buffer[] = [];
      request.on("data", (chunk: Buffer) => chunks.push(chunk));
      request.on("end", () => {
        const form = new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
        const scopes = (form.get("scope") ?? "").split(" ").filter((scope) => scope !== "");
        const granted = form.get("grant_type") === "refresh_token" && form.get("refresh_token") === IDENTITY_TOKEN && form.get("service") === SERVICE && request.headers.authorization === undefined;
        asked.push({ user: granted ? USER : "refused", scopes, grant: "refresh_token" });
        if (url.pathname !== "/token" || !granted) {
          response.writeHead(400, { "content-type": "application/json" }).end('{"error":"invalid_grant"}');
          return;
        }
        response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ access_token: jwtFor(USER, scopes, keyPem, certDer), expires_in: 300, refresh_token: IDENTITY_TOKEN }));
      });
      return;
    }
    const scopes = url.searchParams.getAll("scope").flatMap((scope) => scope.split(" ")).filter((scope) => scope !== "");
    const header = request.headers.authorization;
    let user: TokenAsk["user"] = "anonymous";
    if (header !== undefined) {
      const [name, password] = Buffer.from(header.replace(/^Basic /, ""), "base64").toString("utf8").split(/:(.*)/s);
      user = name === USER && password === PASSWORD ? USER : "refused";
    }
    asked.push({ user, scopes });
    if (url.pathname !== "/token" || url.searchParams.get("service") !== SERVICE || user === "refused") {
      response.writeHead(401, { "content-type": "application/json" }).end('{"details":"incorrect username or password"}');
      return;
    }
    // Anonymous callers get a token that grants nothing, as a private registry's token server answers.
    response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ token: jwtFor(user, user === USER ? scopes : [], keyPem, certDer), expires_in: 300 }));
  });
  await new Promise<void>((resolve) => tokenServer?.listen(tokenPort, "127.0.0.1", resolve));
  const port = await freePort();
  address = `127.0.0.1:${port}`;
  writeFileSync(path.join(dir, "config.yml"), [
    "version: 0.1",
    "storage:", "  filesystem:", `    rootdirectory: ${dir}/data`, "  delete:", "    enabled: true",
    "http:", `  addr: ${address}`,
    "auth:", "  token:", `    realm: http://127.0.0.1:${tokenPort}/token`, `    service: ${SERVICE}`, `    issuer: ${ISSUER}`, `    rootcertbundle: ${dir}/cert.pem`, "",
  ].join("\n"));
  registryServer = spawn("docker-registry", ["serve", path.join(dir, "config.yml")], { stdio: "ignore" });
  for (let attempt = 0; ; attempt++) {
    const ping = spawnSync("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", `http://${address}/v2/`], { encoding: "utf8" });
    if (ping.stdout === "401") break;
    if (attempt > 100) throw new Error(`the token registry did not start (its /v2/ answered ${ping.stdout})`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
});

afterAll(async () => {
  registryServer?.kill("SIGKILL");
  await new Promise((resolve) => (tokenServer === undefined ? resolve(undefined) : tokenServer.close(resolve)));
  if (address !== undefined) removeImages(`${address}/`);
  await world?.cleanup();
});

describe("a registry that logs in with tokens", () => {
  it("Strata's client asks the token server with the login and sends each request its token: reads, uploads, a mount, a stream, lists, a delete", async () => {
    const client = new RegistryClient({ registry: address, credentials: { username: USER, password: PASSWORD } });
    const config = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
    const layer = randomBytes(4096);
    const configDigest = await client.putBlob("t/app", config);
    const layerDigest = await client.putBlob("t/app", layer);
    expect([configDigest, layerDigest]).toEqual([sha256Digest(config), sha256Digest(layer)]);
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: configDigest, size: config.length }, layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: layerDigest, size: layer.length }] }));
    const digest = await client.putManifest("t/app", "1.0-p0", manifest, OCI_MANIFEST);
    expect((await client.manifest("t/app", "1.0-p0"))?.digest).toBe(digest);
    expect(await client.tags("t/app")).toEqual(["1.0-p0"]);
    // A mount asks for a token that may read the source too: the blob is mounted, not copied through this process.
    await client.mountBlob("t/app", "t/copy", layerDigest);
    expect(asked.some((ask) => ask.user === USER && ask.scopes.includes("repository:t/app:pull") && ask.scopes.some((scope) => scope.startsWith("repository:t/copy:") && scope.includes("push")))).toBe(true);
    expect(await client.blobExists("t/copy", layerDigest)).toBe(true);
    const chunks: Uint8Array[] = [];
    for await (const chunk of await client.blobStream("t/copy", layerDigest, layer.length)) chunks.push(chunk);
    const streamed = Buffer.concat(chunks);
    expect(streamed.equals(layer)).toBe(true);
    expect(await client.repositories()).toEqual(expect.arrayContaining(["t/app", "t/copy"]));
    await client.deleteManifest("t/app", digest);
    expect(await client.manifest("t/app", digest)).toBeUndefined();
    // Every ask carried the login; tokens are kept for what they were given for, not asked for each request.
    const mine = asked.filter((ask) => ask.user !== "anonymous");
    expect(mine.every((ask) => ask.user === USER)).toBe(true);
    expect(mine.length).toBeLessThanOrEqual(12);
    const again = asked.length;
    await client.manifest("t/copy", digest).catch(() => undefined);
    await client.tags("t/app");
    await client.tags("t/app");
    expect(asked.length - again).toBeLessThanOrEqual(1);
  });

  it("a wrong password: the token server's refusal, named as such, with the fix and without the password; an anonymous token that grants nothing: the right it lacks", async () => {
    const wrong = `wrong-${randomBytes(8).toString("hex")}`;
    const refused = await new RegistryClient({ registry: address, credentials: { username: USER, password: wrong } }).manifest("t/app", "1.0-p0").then(() => "read", (error: Error) => error.message);
    expect(refused).toMatch(new RegExp(`the registry at ${address.replace(/\./g, "\\.")} asked for a token for repository:t/app:pull, and its token server http://127\\.0\\.0\\.1:\\d+/token refused the credentials \\(HTTP 401; the login from the stack config .*\\): set strata:registryUsername and strata:registryPassword`));
    expect(refused).not.toContain(wrong);
    const anonymous = await new RegistryClient({ registry: address, dockerLogin: null }).tags("t/app").then(() => "listed", (error: Error) => error.message);
    expect(anonymous).toMatch(/refused the token its token server gave for GET \/v2\/t\/app\/tags\/list \(HTTP 401, asking for repository:t\/app:pull; no login was found, so the token is an anonymous one\)/);
  });

  it("an identity token in the Docker config (auths.identitytoken, as az acr login writes it): exchanged with a POST for each scope's token; a stale one refused, saying to log in again", async () => {
    const configDir = path.join(world.root, "docker-config-identity");
    mkdirSync(configDir, { recursive: true });
    const writeConfig = (identitytoken: string): void => {
      writeFileSync(path.join(configDir, "config.json"), JSON.stringify({ auths: { [address]: { auth: Buffer.from("00000000-0000-0000-0000-000000000000:").toString("base64"), identitytoken } } }), { mode: 0o600 });
    };
    writeConfig(IDENTITY_TOKEN);
    const before = asked.length;
    const client = new RegistryClient({ registry: address, dockerConfigDir: configDir });
    const config = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
    const configDigest = await client.putBlob("t/identity", config);
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: configDigest, size: config.length }, layers: [] }));
    const digest = await client.putManifest("t/identity", "1.0-p0", manifest, OCI_MANIFEST);
    expect((await client.manifest("t/identity", "1.0-p0"))?.digest).toBe(digest);
    expect(await client.tags("t/identity")).toEqual(["1.0-p0"]);
    const mine = asked.slice(before);
    expect(mine.length).toBeGreaterThan(0);
    expect(mine.every((ask) => ask.grant === "refresh_token" && ask.user === USER)).toBe(true);
    expect(mine.some((ask) => ask.scopes.some((scope) => scope.startsWith("repository:t/identity:") && scope.includes("push")))).toBe(true);

    writeConfig(`stale-${randomBytes(6).toString("hex")}`);
    const stale = await new RegistryClient({ registry: address, dockerConfigDir: configDir }).tags("t/identity").then(() => "listed", (error: Error) => error.message);
    expect(stale).toMatch(new RegExp(`its token server http://127\\.0\\.0\\.1:\\d+/token refused the credentials \\(HTTP 400; the login from ${configDir.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}/config\\.json \\(auths, an identity token\\) was refused\\): .*an identity token runs out: log in again the way it was made`));
    expect(stale).not.toContain("stale-");
  });

  it("a signed release: built and pushed with the stack's login, signed by Strata's provider, admitted by the gate (cosign logs in too), verified by strata verify", async () => {
    const client = new RegistryClient({ registry: address, credentials: { username: USER, password: PASSWORD } });
    // strata verify in this process, not a child waited for: the token server answers from this process's event loop.
    const release = await signedRelease(world, { address, username: USER, password: PASSWORD, client }, (stack, cosign) => runStrata(world, ["verify", "--stack", stack, "--catalog", world.catalogDir], { STRATA_COSIGN: cosign }));
    for (const text of release.texts) expect(text).not.toContain(PASSWORD);
  });
});
