/**
 * Token logins (registry/bearer.ts): reading a Bearer challenge, the token server's address and
 * answer, and what a request needs a token for; then the client's exchange against a fake registry,
 * for the branches a real one does not show (a token server failing once, many asks at once, a plain
 * HTTP token server elsewhere, a challenge from where a redirect went, a layer's stream). The whole
 * exchange runs against a real registry with `auth: token` in test/e2e/token-registry.test.ts.
 */
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { bearerChallenge, refreshTokenRequest, rotatedRefreshToken, scopeKey, tokenAddress, tokenOf } from "../../src/registry/bearer.js";
import { RegistryClient } from "../../src/registry/client.js";

describe("Bearer challenges", () => {
  it("reads the distribution registry's challenge, a scope's commas inside its quotes", () => {
    expect(bearerChallenge('Bearer realm="https://auth.example.org/token",service="registry.example.org",scope="repository:g/app:pull,push"')).toEqual({
      realm: "https://auth.example.org/token", service: "registry.example.org", scope: "repository:g/app:pull,push",
    });
    expect(bearerChallenge('bearer realm="http://127.0.0.1:5001/token", service=reg, error="insufficient_scope"')).toEqual({ realm: "http://127.0.0.1:5001/token", service: "reg" });
    // A Bearer challenge after a Basic one in the same header.
    expect(bearerChallenge('Basic realm="x", Bearer realm="https://t.example/token",service="s"')).toEqual({ realm: "https://t.example/token", service: "s" });
  });

  it("is no challenge for a Basic registry, no header, or a Bearer challenge without a realm", () => {
    expect(bearerChallenge('Basic realm="Registry Realm"')).toBeUndefined();
    expect(bearerChallenge(null)).toBeUndefined();
    expect(bearerChallenge('Bearer service="s"')).toBeUndefined();
  });
});

describe("the token server's address and answer", () => {
  it("asks for the challenge's scopes and a mount's source, each once", () => {
    const address = tokenAddress({ realm: "https://auth.example.org/token?account=ci", service: "reg", scope: "repository:g/app:pull,push" }, ["repository:g/base:pull", "repository:g/app:pull,push"]);
    expect(address.origin + address.pathname).toBe("https://auth.example.org/token");
    expect(address.searchParams.get("account")).toBe("ci");
    expect(address.searchParams.getAll("service")).toEqual(["reg"]);
    expect(address.searchParams.getAll("scope")).toEqual(["repository:g/app:pull,push", "repository:g/base:pull"]);
  });

  it("exchanges an identity token with a form POSTed to the realm (its query kept), the token in the body only", () => {
    const request = refreshTokenRequest({ realm: "https://auth.example.org/oauth2/token?tenant=t", service: "reg", scope: "repository:g/app:pull,push" }, "refresh-secret", ["repository:g/base:pull"]);
    expect(request.url).toBe("https://auth.example.org/oauth2/token?tenant=t");
    expect(request.method).toBe("POST");
    expect(request.headers).toEqual({ "content-type": "application/x-www-form-urlencoded" });
    const form = new URLSearchParams(Buffer.from(request.body).toString("utf8"));
    expect(Object.fromEntries(form)).toEqual({ grant_type: "refresh_token", refresh_token: "refresh-secret", service: "reg", scope: "repository:g/app:pull,push repository:g/base:pull", client_id: "strata" });
    expect(request.url).not.toContain("refresh-secret");
    // The realm's own query stays in the address and never becomes the form's service or scopes.
    const queried = refreshTokenRequest({ realm: "https://a.test/token?service=realmsvc&scope=x", service: "reg", scope: "repository:g/app:pull" }, "r");
    expect(queried.url).toBe("https://a.test/token?service=realmsvc&scope=x");
    expect(Object.fromEntries(new URLSearchParams(Buffer.from(queried.body).toString("utf8")))).toEqual({ grant_type: "refresh_token", refresh_token: "r", service: "reg", scope: "repository:g/app:pull", client_id: "strata" });
    // No service, no scope (the ping's challenge): neither field.
    expect([...new URLSearchParams(Buffer.from(refreshTokenRequest({ realm: "https://auth.example.org/t" }, "r").body).toString("utf8")).keys()]).toEqual(["grant_type", "refresh_token", "client_id"]);
  });

  it("keeps a rotated refresh token from the answer, and nothing else", () => {
    expect(rotatedRefreshToken('{"access_token":"a","refresh_token":"next"}')).toBe("next");
    for (const body of ['{"access_token":"a"}', '{"refresh_token":""}', '{"refresh_token":7}', "not json", "null", "[]"]) expect(rotatedRefreshToken(body)).toBeUndefined();
  });

  it("takes token or access_token, with the given lifetime less a margin (60 s when none is given), and nothing else", () => {
    expect(tokenOf('{"token":"abc","expires_in":300}', 1_000)).toEqual({ token: "abc", expiresAt: 1_000 + 290_000 });
    expect(tokenOf('{"access_token":"xyz"}', 0)).toEqual({ token: "xyz", expiresAt: 50_000 });
    // A lifetime shorter than the margin: half of it.
    expect(tokenOf('{"token":"t","expires_in":4}', 0)).toEqual({ token: "t", expiresAt: 2_000 });
    for (const body of ["", "null", "[]", '{"token":""}', '{"token":7}', "<html>"]) expect(tokenOf(body, 0), body).toBeUndefined();
  });
});

describe("what a request needs a token for", () => {
  it("names the repository and whether it reads, writes or deletes; a mount's source too; the catalog; nothing for the ping", () => {
    expect(scopeKey("https://r.example/v2/g/app/manifests/1.0-p1", "GET")).toEqual({ key: "repository:g/app:pull", baseKey: "repository:g/app:pull", extraScopes: [] });
    expect(scopeKey("https://r.example/v2/g/app/blobs/sha256:ab", "HEAD")?.key).toBe("repository:g/app:pull");
    expect(scopeKey("https://r.example/v2/g/app/manifests/1.0-p1", "PUT")?.key).toBe("repository:g/app:push");
    expect(scopeKey("https://r.example/v2/g/app/manifests/sha256:ab", "DELETE")?.key).toBe("repository:g/app:delete");
    expect(scopeKey("https://r.example/v2/g/app/blobs/uploads/?mount=sha256%3Aab&from=g%2Fbase", "POST")).toEqual({ key: "repository:g/app:push repository:g/base:pull", baseKey: "repository:g/app:push", extraScopes: ["repository:g/base:pull"] });
    // An upload's location the registry answered with is the same repository's.
    expect(scopeKey("https://r.example/v2/g/app/blobs/uploads/5f1e?_state=x&digest=sha256%3Aab", "PUT")?.key).toBe("repository:g/app:push");
    expect(scopeKey("https://r.example/v2/g/app/tags/list?n=1000", "GET")?.key).toBe("repository:g/app:pull");
    expect(scopeKey("https://r.example/v2/_catalog?n=1000", "GET")?.key).toBe("registry:catalog:*");
    expect(scopeKey("https://r.example/v2/", "GET")).toBeUndefined();
  });

  it("takes the repository whole when a component of its name is blobs, manifests or tags", () => {
    expect(scopeKey("https://r.example/v2/team/blobs/app/manifests/1", "GET")?.key).toBe("repository:team/blobs/app:pull");
    expect(scopeKey("https://r.example/v2/team/manifests/blobs/sha256:ab", "HEAD")?.key).toBe("repository:team/manifests:pull");
    expect(scopeKey("https://r.example/v2/tags/tags/list", "GET")?.key).toBe("repository:tags:pull");
    expect(scopeKey("https://r.example/v2/team/blobs/app/blobs/uploads/", "POST")?.key).toBe("repository:team/blobs/app:push");
  });
});

describe("the client's token logins, against a fake registry", () => {
  const REALM = "https://auth.test/token";
  const LAYER = Buffer.from("a layer's bytes");
  const LAYER_DIGEST = `sha256:${createHash("sha256").update(LAYER).digest("hex")}`;
  /** A registry that wants `Bearer tok-1` on everything but its ping, its token server at `realm`, and what each side was sent. */
  function tokenRegistry(options: { realm?: string; tokenAnswers?: (() => Response)[]; answer?: (url: string) => Response | undefined; identityToken?: string; basic?: boolean; tokenServer?: (form: URLSearchParams) => Promise<Response> } = {}) {
    const realm = options.realm ?? REALM;
    const seen: { url: string; authorization: string | null; method?: string; body?: string }[] = [];
    const challenge = (scope?: string): Response => new Response("", { status: 401, headers: { "www-authenticate": `Bearer realm="${realm}",service="reg"${scope === undefined ? "" : `,scope="${scope}"`}` } });
    const fetcher = (async (input: string | URL, init?: RequestInit) => {
      const url = String(input);
      const authorization = new Headers(init?.headers).get("authorization");
      seen.push({ url, authorization, ...(init?.method === undefined || init.method === "GET" ? {} : { method: init.method }), ...(init?.body instanceof Uint8Array && url.startsWith(realm) ? { body: Buffer.from(init.body).toString("utf8") } : {}) });
      if (url.startsWith(realm) && options.tokenServer !== undefined) return options.tokenServer(new URLSearchParams(init?.body instanceof Uint8Array ? Buffer.from(init.body).toString("utf8") : ""));
      if (url.startsWith(realm)) return options.tokenAnswers?.shift()?.() ?? Response.json({ token: "tok-1", expires_in: 300 });
      const special = options.answer?.(url);
      if (special !== undefined) return special;
      const { pathname } = new URL(url);
      if (options.basic === true) return new Response("", { status: 401, headers: { "www-authenticate": 'Basic realm="reg"' } });
      if (authorization !== "Bearer tok-1") return challenge(pathname === "/v2/" ? undefined : "repository:g/app:pull");
      if (pathname === "/v2/g/app/tags/list") return Response.json({ name: "g/app", tags: ["1.0"] });
      if (pathname === "/v2/g/other/tags/list") return Response.json({ name: "g/other", tags: ["2.0"] });
      if (pathname === `/v2/g/app/blobs/${LAYER_DIGEST}`) return new Response(LAYER, { status: 200 });
      // A mount the registry turns into a copy (202, as Harbor does across projects), then the copy's upload.
      if (pathname === "/v2/g/copy/blobs/uploads/") return new Response("", { status: 202, headers: { location: "/v2/g/copy/blobs/uploads/u1" } });
      if (pathname === "/v2/g/copy/blobs/uploads/u1") return new Response("", { status: 201 });
      return new Response("", { status: 404 });
    }) as typeof fetch;
    const login = options.identityToken === undefined ? { credentials: { username: "u", password: "p" } } : { dockerLogin: { identityToken: options.identityToken, source: "credential helper docker-credential-acr (an identity token)" } };
    const client = new RegistryClient({ registry: "registry.test:5000", scheme: "https", fetch: fetcher, ...login, sleep: async () => undefined });
    return { client, seen, asks: () => seen.filter((request) => request.url.startsWith(realm)) };
  }

  it("asks once for requests that need one scope at once, tries a token server's 503 again, and sends the login only to it", async () => {
    const registry = tokenRegistry({ tokenAnswers: [() => new Response("busy", { status: 503 })] });
    const lists = await Promise.all(Array.from({ length: 8 }, () => registry.client.tags("g/app")));
    expect(lists).toEqual(Array.from({ length: 8 }, () => ["1.0"]));
    // One ask failed (503) and was asked again; the eight requests shared it.
    expect(registry.asks()).toHaveLength(2);
    expect(registry.asks().every((ask) => ask.authorization === `Basic ${Buffer.from("u:p").toString("base64")}`)).toBe(true);
    expect(new URL(registry.asks()[0]?.url ?? "").searchParams.getAll("scope")).toEqual(["repository:g/app:pull"]);
    // Later requests carry the kept token without a 401 first.
    const before = registry.seen.length;
    await registry.client.tags("g/app");
    expect(registry.seen.slice(before)).toEqual([{ url: "https://registry.test:5000/v2/g/app/tags/list?n=1000", authorization: "Bearer tok-1" }]);
  });

  it("sends no login to a token server over plain HTTP on another machine (127.example.org is one), and asks one on loopback", async () => {
    for (const realm of ["http://auth.test/token", "http://127.example.org/token"]) {
      const registry = tokenRegistry({ realm });
      await expect(registry.client.tags("g/app")).rejects.toThrow(/its token server http:\/\/[^ ]+\/token is not reached over TLS, and Strata sends no login over plain HTTP to another machine/);
      expect(registry.asks()).toEqual([]);
    }
    const loopback = tokenRegistry({ realm: "http://127.0.0.1:5001/token" });
    expect(await loopback.client.tags("g/app")).toEqual(["1.0"]);
    expect(loopback.asks()).toHaveLength(1);
  });

  it("asks no token for a challenge from another origin (where a redirect went): the login is never sent where the registry did not answer", async () => {
    const registry = tokenRegistry({
      answer: (url) => {
        if (!url.includes("/tags/list")) return undefined;
        const elsewhere = new Response("", { status: 401, headers: { "www-authenticate": 'Bearer realm="https://evil.test/token",service="x"' } });
        Object.defineProperty(elsewhere, "url", { value: "https://storage.test/listing" });
        return elsewhere;
      },
    });
    await expect(registry.client.tags("g/app")).rejects.toThrow(/https:\/\/storage\.test, not its own address .* asked for a login \(HTTP 401\)/);
    expect(registry.seen.some((request) => request.url.includes("evil.test"))).toBe(false);
  });

  it("a layer's stream asks for its own token and sends it", async () => {
    const registry = tokenRegistry();
    const chunks: Uint8Array[] = [];
    for await (const chunk of await registry.client.blobStream("g/app", LAYER_DIGEST, LAYER.length)) chunks.push(chunk);
    expect(Buffer.concat(chunks).equals(LAYER)).toBe(true);
    expect(registry.asks()).toHaveLength(1);
    expect(registry.seen.at(-1)).toEqual({ url: `https://registry.test:5000/v2/g/app/blobs/${LAYER_DIGEST}`, authorization: "Bearer tok-1" });
  });
  it("a mount the registry copies instead: the upload that follows carries the mount's token at once, not after a 401 (the blob is sent once)", async () => {
    const registry = tokenRegistry();
    await registry.client.mountBlob("g/app", "g/copy", LAYER_DIGEST);
    const puts = registry.seen.filter((request) => request.method === "PUT");
    expect(puts).toEqual([{ url: `https://registry.test:5000/v2/g/copy/blobs/uploads/u1?digest=${encodeURIComponent(LAYER_DIGEST)}`, authorization: "Bearer tok-1", method: "PUT" }]);
    // The mount's ask named the source too.
    expect(registry.asks().some((ask) => new URL(ask.url).searchParams.getAll("scope").includes("repository:g/app:pull"))).toBe(true);
  });
  it("a shared ask the token server refuses: each request its own error, naming what the token was for, with the fix", async () => {
    const registry = tokenRegistry({ tokenAnswers: [() => new Response("", { status: 401 })] });
    const [first, second] = await Promise.allSettled([registry.client.tags("g/app"), registry.client.tags("g/app")]);
    expect(registry.asks()).toHaveLength(1);
    const errors = [first, second].map((outcome) => (outcome?.status === "rejected" ? (outcome.reason as Error) : undefined));
    expect(errors[0]).toBeInstanceOf(Error);
    expect(errors[1]).toBeInstanceOf(Error);
    expect(errors[0]).not.toBe(errors[1]);
    for (const error of errors) expect(error?.message).toMatch(/^the registry at registry\.test:5000 asked for a token for repository:g\/app:pull, and its token server https:\/\/auth\.test\/token refused the credentials \(HTTP 401; the login from the stack config .*\): set strata:registryUsername and strata:registryPassword \(pulumi config set --secret\), or docker login registry\.test:5000 \(a credential helper's login counts\)$/);
  });

  it("an identity token: exchanged at the token server with a POST, never sent to the registry; refused or run out, the message says to log in again", async () => {
    const registry = tokenRegistry({ identityToken: "refresh-secret" });
    expect(await registry.client.tags("g/app")).toEqual(["1.0"]);
    expect(registry.asks()).toHaveLength(1);
    const ask = registry.asks()[0];
    expect(ask?.method).toBe("POST");
    expect(ask?.authorization).toBeNull();
    expect(Object.fromEntries(new URLSearchParams(ask?.body ?? ""))).toEqual({ grant_type: "refresh_token", refresh_token: "refresh-secret", service: "reg", scope: "repository:g/app:pull", client_id: "strata" });
    // The registry itself saw no login but the token its token server gave.
    const toRegistry = registry.seen.filter((request) => !request.url.startsWith(REALM));
    expect(toRegistry.every((request) => request.authorization === null || request.authorization === "Bearer tok-1")).toBe(true);
    expect(JSON.stringify(toRegistry)).not.toContain("refresh-secret");

    for (const refusal of [() => new Response('{"error":"invalid_grant"}', { status: 400 }), () => new Response("", { status: 401 }), () => new Response("", { status: 403 })]) {
      const refused = tokenRegistry({ identityToken: "refresh-secret", tokenAnswers: [refusal] });
      const error = await refused.client.tags("g/app").then(() => undefined, (reason: unknown) => reason as Error);
      expect(error?.message).toMatch(/its token server https:\/\/auth\.test\/token refused the credentials \(HTTP 40[013]; the login from credential helper docker-credential-acr \(an identity token\) was refused\): .*an identity token runs out: log in again the way it was made/);
      expect(error?.message).not.toContain("refresh-secret");
    }
    // Another 400 (a request the server does not take) is no refusal of the login, and its body, which could echo the form, is not shown.
    const echoing = tokenRegistry({ identityToken: "refresh-secret", tokenAnswers: [() => new Response('{"error":"invalid_request","echo":"refresh_token=refresh-secret"}', { status: 400 })] });
    const echoed = await echoing.client.tags("g/app").then(() => undefined, (reason: unknown) => reason as Error);
    expect(echoed?.message).toMatch(/its token server https:\/\/auth\.test\/token answered HTTP 400 where a token was asked for$/);
  });

  it("an identity token a token server rotates: each exchange uses the one the last answer gave, one exchange at a time", async () => {
    const issued = ["rt-0"];
    const registry = tokenRegistry({
      identityToken: "rt-0",
      tokenServer: async (form) => {
        const presented = form.get("refresh_token");
        // Each refresh token is taken once; a slow answer, so exchanges that overlapped would present one twice.
        if (presented !== issued.at(-1)) return new Response('{"error":"invalid_grant"}', { status: 400 });
        await new Promise((resolve) => setTimeout(resolve, 5));
        issued.push(`rt-${issued.length}`);
        return Response.json({ access_token: "tok-1", expires_in: 300, refresh_token: issued.at(-1) });
      },
    });
    const [app, other] = await Promise.all([registry.client.tags("g/app"), registry.client.tags("g/other")]);
    expect([app, other]).toEqual([["1.0"], ["2.0"]]);
    expect(await registry.client.tags("g/app")).toEqual(["1.0"]);
    expect(registry.asks().map((ask) => new URLSearchParams(ask.body ?? "").get("refresh_token"))).toEqual(["rt-0", "rt-1"]);
  });

  it("an identity token refused after an attempt that got no answer: the message says the lost attempt may have spent it", async () => {
    let asked = 0;
    const registry = tokenRegistry({
      identityToken: "rt-0",
      tokenServer: async () => {
        asked++;
        // The first exchange reaches a server that rotates tokens, and its answer is lost; the retry presents the spent one.
        if (asked === 1) throw new TypeError("fetch failed", { cause: Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }) });
        return new Response('{"error":"invalid_grant"}', { status: 400 });
      },
    });
    const error = await registry.client.tags("g/app").then(() => undefined, (reason: unknown) => reason as Error);
    expect(asked).toBe(2);
    expect(error?.message).toMatch(/refused the credentials \(HTTP 400, attempt 2; the login from credential helper docker-credential-acr \(an identity token\) was refused\) \(an earlier attempt of this exchange lost its connection after it was made, or got a 5xx, and was sent again: a token server that takes each refresh token once may have spent it then, .*\): .*log in again the way it was made/);
    expect(error?.message).not.toContain("rt-0");
    // A 503 first may have come after the work was done too; a 429, or a connection refused, says it was not.
    const refusedAfter = async (first: () => Response | never): Promise<string | undefined> => {
      let calls = 0;
      const server = tokenRegistry({ identityToken: "rt-0", tokenServer: async () => (++calls === 1 ? first() : new Response('{"error":"invalid_grant"}', { status: 400 })) });
      return server.client.tags("g/app").then(() => undefined, (reason: unknown) => (reason as Error).message);
    };
    expect(await refusedAfter(() => new Response("", { status: 503 }))).toContain("an earlier attempt of this exchange lost its connection after it was made, or got a 5xx");
    const notConnected = (code: string) => (): never => {
      throw new TypeError("fetch failed", { cause: Object.assign(new Error(`connect ${code}`), { code }) });
    };
    for (const notReached of [() => new Response("", { status: 429 }), notConnected("ECONNREFUSED"), notConnected("UND_ERR_CONNECT_TIMEOUT")]) {
      const said = await refusedAfter(notReached);
      expect(said).toMatch(/refused the credentials \(HTTP 400, attempt 2; /);
      expect(said).not.toContain("earlier attempt");
    }
    // Refused at once, nothing lost before: no such guess.
    const refused = tokenRegistry({ identityToken: "rt-0", tokenAnswers: [() => new Response('{"error":"invalid_grant"}', { status: 400 })] });
    const plain = await refused.client.tags("g/app").then(() => undefined, (reason: unknown) => reason as Error);
    expect(plain?.message).toMatch(/refused the credentials \(HTTP 400; /);
    expect(plain?.message).not.toContain("earlier attempt");
  });

  it("an identity token goes to no token server over plain HTTP on another machine, and a registry that asks for Basic is told it is one", async () => {
    const plain = tokenRegistry({ identityToken: "refresh-secret", realm: "http://auth.test/token" });
    await expect(plain.client.tags("g/app")).rejects.toThrow(/is not reached over TLS, and Strata sends no login over plain HTTP to another machine/);
    expect(plain.asks()).toEqual([]);
    const basic = tokenRegistry({ identityToken: "refresh-secret", basic: true });
    await expect(basic.client.tags("g/app")).rejects.toThrow(/refused the credentials \(HTTP 401; the login from credential helper docker-credential-acr \(an identity token\) is an identity token, which only a registry that logs in with tokens \(a Bearer challenge\) takes/);
    expect(basic.seen.length).toBeGreaterThan(0);
    expect(basic.seen.every((request) => request.authorization === null)).toBe(true);
  });
});
