/**
 * The registry client under faults, with a fetch that answers as a broken registry would: which
 * answers are retried and how often, what is an error rather than "not found", digests checked.
 */
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { RegistryClient, RegistryError } from "../../src/registry/client.js";
import { describeStatus, isTransientCode, isTransientStatus, retryDelayMs } from "../../src/registry/retry.js";
import { fixFor } from "../../src/registry/lookups.js";

const manifestBytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.docker.distribution.manifest.v2+json", config: { digest: "sha256:c" }, layers: [] }));
const digestOf = (bytes: Buffer): string => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
const found = (bytes: Buffer = manifestBytes, digest: string = digestOf(manifestBytes)): Response =>
  new Response(new Uint8Array(bytes), { status: 200, headers: { "docker-content-digest": digest, "content-type": "application/vnd.docker.distribution.manifest.v2+json" } });

/** A client over scripted answers (one per request after the scheme probe), recording the waits. */
function scripted(answers: (() => Response | Promise<Response>)[]): { client: RegistryClient; requests: () => number; waits: number[] } {
  let index = 0;
  const waits: number[] = [];
  const fetcher = (async (input: string | URL) => {
    if (String(input).endsWith("/v2/")) return new Response("{}");
    const answer = answers[Math.min(index, answers.length - 1)] as () => Response;
    index += 1;
    return answer();
  }) as typeof fetch;
  return { client: new RegistryClient({ registry: "registry.test:5000", scheme: "http", fetch: fetcher, sleep: async (ms) => void waits.push(ms), dockerConfigDir: "/nonexistent" }), requests: () => index, waits };
}

describe("retry policy", () => {
  it("retries 5xx, 429 and 408 and network resets and timeouts; never 4xx answers or unknown failures", () => {
    expect([500, 502, 503, 429, 408].every(isTransientStatus)).toBe(true);
    expect([400, 401, 403, 404].some(isTransientStatus)).toBe(false);
    expect(["ECONNRESET", "ECONNREFUSED", "UND_ERR_SOCKET", "TIMEOUT"].every(isTransientCode)).toBe(true);
    expect(isTransientCode("CERT_HAS_EXPIRED")).toBe(false);
    expect(isTransientCode(undefined)).toBe(false);
  });
  it("backs off 250 ms, 1 s, 4 s, or as Retry-After says (seconds or a date), capped at 10 s", () => {
    expect([1, 2, 3].map((attempt) => retryDelayMs(attempt))).toEqual([250, 1000, 4000]);
    expect(retryDelayMs(1, "3")).toBe(3000);
    expect(retryDelayMs(1, "3600")).toBe(10_000);
    expect(retryDelayMs(1, new Date(5_000).toUTCString(), 3_000)).toBe(2000);
    expect(describeStatus(500)).toBe("HTTP 500 (a server error)");
  });
});

describe("registry client under faults", () => {
  it("a 500 that clears: asked again, then found", async () => {
    const { client, requests, waits } = scripted([() => new Response("oops", { status: 500 }), found]);
    expect((await client.manifest("g/img", "1.0-p0"))?.digest).toBe(digestOf(manifestBytes));
    expect(requests()).toBe(2);
    expect(waits).toEqual([250]);
  });
  it("a 500 that stays: an error after three attempts, never 'not found'", async () => {
    const { client, requests } = scripted([() => new Response('{"errors":[{"code":"UNKNOWN"}]}', { status: 500 })]);
    const error = await client.manifest("g/img", "1.0-p0").then(() => undefined, (failure: unknown) => failure);
    expect(error).toBeInstanceOf(RegistryError);
    expect((error as RegistryError).message).toBe("GET manifest g/img:1.0-p0 at registry.test:5000: HTTP 500 (a server error) UNKNOWN after 3 attempts");
    expect(requests()).toBe(3);
  });
  it("429 waits as Retry-After asks", async () => {
    const { client, waits } = scripted([() => new Response("slow down", { status: 429, headers: { "retry-after": "2" } }), found]);
    await client.manifest("g/img", "1.0-p0");
    expect(waits).toEqual([2000]);
  });
  it("404 is 'not found' at once; 401 and 403 are errors at once", async () => {
    const notFound = scripted([() => new Response("{}", { status: 404 })]);
    expect(await notFound.client.manifest("g/img", "1.0-p0")).toBeUndefined();
    expect(notFound.requests()).toBe(1);
    const refused = scripted([() => new Response("{}", { status: 401 })]);
    await expect(refused.client.manifest("g/img", "1.0-p0")).rejects.toThrow(/refused the credentials \(HTTP 401; no login was found\)/);
    expect(refused.requests()).toBe(1);
    const denied = scripted([() => new Response("{}", { status: 403 })]);
    await expect(denied.client.tags("g/img")).rejects.toThrow(/HTTP 403 \(access denied\)/);
  });
  it("a connection reset mid-body is retried like any reset", async () => {
    const reset = () => new Response(new ReadableStream({ start(controller) { controller.enqueue(new Uint8Array([123])); controller.error(new TypeError("terminated", { cause: { code: "UND_ERR_SOCKET" } })); } }), { status: 200 });
    const { client, requests } = scripted([reset, reset, reset]);
    await expect(client.manifest("g/img", "1.0-p0")).rejects.toThrow(/GET \/g\/img\/manifests\/1.0-p0 at registry.test:5000 \(3 attempts\): connection reset \(UND_ERR_SOCKET\)/);
    expect(requests()).toBe(3);
  });
  it("a request that outlives the timeout is a timeout, retried, then an error naming it", async () => {
    let asked = 0;
    const stall = (async (input: string | URL, init?: RequestInit) => {
      if (String(input).endsWith("/v2/")) return new Response("{}");
      asked += 1;
      return new Promise<Response>((_resolve, reject) => init?.signal?.addEventListener("abort", () => reject(init.signal?.reason)));
    }) as typeof fetch;
    const client = new RegistryClient({ registry: "registry.test:5000", scheme: "http", fetch: stall, timeoutMs: 50, sleep: async () => undefined, dockerConfigDir: "/nonexistent" });
    await expect(client.manifest("g/img", "1.0-p0")).rejects.toThrow(/\(3 attempts\): no answer within 0.05 s/);
    expect(asked).toBe(3);
  });
  it("bytes that do not match the announced digest, or the digest asked for, are an error, not 'found'", async () => {
    const tampered = Buffer.concat([Buffer.from(" "), manifestBytes]);
    const lying = scripted([() => found(tampered, digestOf(manifestBytes))]);
    await expect(lying.client.manifest("g/img", "1.0-p0")).rejects.toThrow(/the manifest's bytes do not match its digest/);
    const byDigest = scripted([() => found(tampered, digestOf(tampered))]);
    await expect(byDigest.client.rawManifest("g/img", digestOf(manifestBytes))).rejects.toThrow(/do not match its digest \(announced sha256:/);
  });
  it("each kind of failure gets its own fix", () => {
    expect(fixFor(new RegistryError("x", 401), "r:5000")).toMatch(/^log in to r:5000/);
    expect(fixFor(new RegistryError("x", 403), "r:5000")).toMatch(/pull and push rights/);
    expect(fixFor(new RegistryError("x", 429), "r:5000")).toMatch(/limits requests/);
    expect(fixFor(new RegistryError("x", 200, "a manifest whose bytes do not match its digest", "integrity"), "r:5000")).toMatch(/altered what it serves/);
    expect(fixFor(new RegistryError("x", undefined, "an answer that does not parse", "malformed"), "r:5000")).toMatch(/not a registry answer/);
    expect(fixFor(new RegistryError("x", undefined, "the registry's TLS certificate is not signed by a CA this machine trusts", "tls"), "r:5000")).toMatch(/^Strata cannot speak TLS with r:5000 as it is: do what is said of its TLS above/);
    expect(fixFor(new RegistryError("x", 500), "r:5000")).toMatch(/runs and answers/);
  });
  it("a manifest that does not parse is an error", async () => {
    const garbage = Buffer.from("<html>login</html>");
    const { client } = scripted([() => found(garbage, digestOf(garbage))]);
    await expect(client.manifest("g/img", "1.0-p0")).rejects.toThrow(/is not valid JSON/);
  });
  it("a config blob whose bytes do not match its digest is an error", async () => {
    const config = Buffer.from('{"config":{"Labels":{}}}');
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, config: { digest: digestOf(config) }, layers: [] }));
    const { client } = scripted([() => found(manifest, digestOf(manifest)), () => new Response(new Uint8Array(Buffer.from('{"config":{"Labels":{"x":"y"}}}')))]);
    const result = await client.manifest("g/img", "1.0-p0");
    await expect(client.configOf("g/img", result as NonNullable<typeof result>)).rejects.toThrow(/config blob .* bytes do not match its digest/);
  });
});

describe("writes: digests, the upload's final PUT, a tag written twice at once", () => {
  it("putManifest returns the bytes' digest when the registry announces none, and refuses another announced digest", async () => {
    const silent = scripted([() => new Response(null, { status: 201 })]);
    expect(await silent.client.putManifest("g/img", "1.0-p0", manifestBytes, "application/vnd.docker.distribution.manifest.v2+json")).toBe(digestOf(manifestBytes));
    const agreeing = scripted([() => new Response(null, { status: 201, headers: { "docker-content-digest": digestOf(manifestBytes) } })]);
    expect(await agreeing.client.putManifest("g/img", "1.0-p0", manifestBytes, "application/vnd.docker.distribution.manifest.v2+json")).toBe(digestOf(manifestBytes));
    const other = scripted([() => new Response(null, { status: 201, headers: { "docker-content-digest": "sha256:" + "0".repeat(64) } })]);
    const error = await other.client.putManifest("g/img", "1.0-p0", manifestBytes, "x").then(() => undefined, (failure: unknown) => failure);
    expect(error).toBeInstanceOf(RegistryError);
    expect((error as RegistryError).fault).toBe("integrity");
    expect((error as RegistryError).message).toMatch(/reports sha256:0+ for bytes whose digest is sha256:/);
  });
  it("a copy to a registry that announces no digest succeeds (it failed with an empty digest before)", async () => {
    const { copyImage } = await import("../../src/registry/copy.js");
    // tag absent, then the source manifest, then the PUT without a digest header
    const { client } = scripted([() => new Response("{}", { status: 404 }), found, () => new Response(null, { status: 201 })]);
    expect(await copyImage(client, { sourceRepository: "g/img", digest: digestOf(manifestBytes), targetRepository: "g/img", tag: "1.0-p0", immutable: false })).toEqual({ created: true, digest: digestOf(manifestBytes) });
  });
  it("mountBlob's final upload PUT is retried on a 500 and says a 401 as the login's fault", async () => {
    const blob = Buffer.from("layer bytes");
    const upload = () => new Response(null, { status: 202, headers: { location: "/v2/g/to/blobs/uploads/u1?_state=x" } });
    const puts: string[] = [];
    const answers = [() => new Response(null, { status: 404 }), upload, () => new Response(new Uint8Array(blob)), () => new Response("busy", { status: 500 }), () => new Response(null, { status: 201 })];
    let index = 0;
    const fetcher = (async (input: string | URL, init?: RequestInit) => {
      if (String(input).endsWith("/v2/")) return new Response("{}");
      if (init?.method === "PUT") puts.push(String(input));
      return (answers[index++] as () => Response)();
    }) as typeof fetch;
    const client = new RegistryClient({ registry: "registry.test:5000", scheme: "http", fetch: fetcher, sleep: async () => undefined, dockerConfigDir: "/nonexistent" });
    await client.mountBlob("g/from", "g/to", digestOf(blob));
    expect(puts).toHaveLength(2);
    expect(puts[1]).toMatch(/^http:\/\/registry\.test:5000\/v2\/g\/to\/blobs\/uploads\/u1\?_state=x&digest=sha256%3A/);
    const refused = scripted([() => new Response(null, { status: 404 }), upload, () => new Response(new Uint8Array(blob)), () => new Response("{}", { status: 401 })]);
    await expect(refused.client.mountBlob("g/from", "g/to", digestOf(blob))).rejects.toThrow(/refused the credentials \(HTTP 401; no login was found\)/);
  });
  it("putBlob skips a blob already there, uploads one that is not with its digest, and fails on an answer that is neither", async () => {
    const blob = Buffer.from("signature payload");
    const puts: string[] = [];
    const script = (answers: (() => Response)[]) => {
      let index = 0;
      const fetcher = (async (input: string | URL, init?: RequestInit) => {
        if (String(input).endsWith("/v2/")) return new Response("{}");
        if (init?.method === "PUT") puts.push(String(input));
        return (answers[index++] as () => Response)();
      }) as typeof fetch;
      return new RegistryClient({ registry: "registry.test:5000", scheme: "http", fetch: fetcher, sleep: async () => undefined, dockerConfigDir: "/nonexistent" });
    };
    expect(await script([() => new Response(null, { status: 200 })]).putBlob("g/app", blob)).toBe(digestOf(blob));
    expect(puts).toHaveLength(0);
    const upload = () => new Response(null, { status: 202, headers: { location: "/v2/g/app/blobs/uploads/u2" } });
    expect(await script([() => new Response(null, { status: 404 }), upload, () => new Response(null, { status: 201 })]).putBlob("g/app", blob)).toBe(digestOf(blob));
    expect(puts).toEqual([`http://registry.test:5000/v2/g/app/blobs/uploads/u2?digest=${encodeURIComponent(digestOf(blob))}`]);
    // A HEAD that is neither 200 nor 404 is not read as "absent".
    await expect(script([() => new Response("teapot", { status: 418 })]).putBlob("g/app", blob)).rejects.toThrow(/HEAD blob g\/app@sha256:.*418/);
    await expect(script([() => new Response(null, { status: 404 }), upload, () => new Response("{}", { status: 400 })]).putBlob("g/app", blob)).rejects.toThrow(/PUT blob g\/app@sha256:.*400/);
    // Unchecked: no HEAD, the POST and PUT straight away (a blob the registry has is accepted again).
    const methods: string[] = [];
    let index = 0;
    const unchecked = new RegistryClient({
      registry: "registry.test:5000", scheme: "http", sleep: async () => undefined, dockerConfigDir: "/nonexistent",
      fetch: (async (input: string | URL, init?: RequestInit) => {
        if (String(input).endsWith("/v2/")) return new Response("{}");
        methods.push(init?.method ?? "GET");
        return [upload, () => new Response(null, { status: 201 })][index++]?.() ?? new Response("unexpected", { status: 500 });
      }) as typeof fetch,
    });
    expect(await unchecked.putBlob("g/app", blob, { unchecked: true })).toBe(digestOf(blob));
    expect(methods).toEqual(["POST", "PUT"]);
  });
  it("a Location or next-page link on another origin (host, port or scheme) gets no login, the registry's own in any spelling keeps it, and a 401 there says why", async () => {
    const blob = Buffer.from("attestation payload");
    const sent: { url: string; method: string; authorization: string | null }[] = [];
    const fake = (answer: (url: string, method: string) => Response) => (async (input: string | URL, init?: RequestInit) => {
      const method = init?.method ?? "GET";
      sent.push({ url: String(input), method, authorization: new Headers(init?.headers).get("authorization") });
      return answer(String(input), method);
    }) as typeof fetch;
    const credentials = { username: "ci", password: "s3cret" };
    const uploads = (location: string, putStatus = 201) => fake((_url, method) => method === "POST" ? new Response(null, { status: 202, headers: { location } }) : method === "PUT" ? new Response(null, { status: putStatus }) : method === "GET" ? new Response(new Uint8Array(blob)) : new Response(null, { status: 404 }));
    const client = (location: string, putStatus = 201, login: typeof credentials | null = credentials, registry = "registry.test:5000") => new RegistryClient({
      registry, scheme: "https", sleep: async () => undefined, dockerConfigDir: "/nonexistent", ...(login === null ? { dockerLogin: null } : { credentials: login }), fetch: uploads(location, putStatus),
    });
    const login = `Basic ${Buffer.from("ci:s3cret").toString("base64")}`;
    const putTo = async (location: string, registry?: string) => {
      sent.length = 0;
      await client(location, 201, credentials, registry).putBlob("g/app", blob);
      expect(sent.find((request) => request.method === "POST")?.authorization).toBe(login);
      return sent.find((request) => request.method === "PUT");
    };
    // Another host, another port, plain HTTP on the registry's own host: no login.
    for (const location of ["https://uploads.elsewhere.test/v2/g/app/blobs/uploads/u3", "https://registry.test:5001/v2/g/app/blobs/uploads/u4", "http://registry.test:5000/v2/g/app/blobs/uploads/u5"]) {
      expect(await putTo(location)).toMatchObject({ url: expect.stringContaining(`${location}?digest=`), authorization: null });
    }
    // The registry's own origin, as written, in capitals, or relative: the login.
    for (const location of ["https://registry.test:5000/v2/g/app/blobs/uploads/u6", "HTTPS://REGISTRY.TEST:5000/v2/g/app/blobs/uploads/u7", "/v2/g/app/blobs/uploads/u8"]) {
      expect(await putTo(location)).toMatchObject({ url: expect.stringMatching(/^https:\/\/registry\.test:5000\/v2\/g\/app\/blobs\/uploads\/u[678]\?digest=/), authorization: login });
    }
    // A registry named with its default port, answering without it: the same origin, the login.
    expect(await putTo("https://registry.test/v2/g/app/blobs/uploads/u9", "registry.test:443")).toMatchObject({ authorization: login });
    const why = "Strata sends a registry's login only to the registry itself, as Docker does. fix:";
    await expect(client("https://uploads.elsewhere.test/v2/g/app/blobs/uploads/u10", 401).putBlob("g/app", blob)).rejects.toThrow(
      `the registry at registry.test:5000 sent an upload to https://uploads.elsewhere.test, not its own address https://registry.test:5000, and https://uploads.elsewhere.test asked for a login (HTTP 401): ${why} when uploads.elsewhere.test is this registry under another name, set strata:registry to it; else set the distribution registry's http.relativeurls: true (or http.host), or have the proxy in front of it pass X-Forwarded-Host and X-Forwarded-Proto`,
    );
    // Only the scheme differs (a TLS proxy in front of a registry that names itself http://): strata:registry cannot help.
    await expect(client("http://registry.test:5000/v2/g/app/blobs/uploads/u11", 401).putBlob("g/app", blob)).rejects.toThrow(
      `sent an upload to http://registry.test:5000, not its own address https://registry.test:5000, and http://registry.test:5000 asked for a login (HTTP 401): ${why} the registry names its own address with http:// though Strata reaches it over https://: set the distribution registry's http.relativeurls: true (or http.host), or have the TLS proxy in front of it pass X-Forwarded-Proto`,
    );
    // A mount the registry turned into an upload goes the same way.
    sent.length = 0;
    const mounted = client("https://uploads.elsewhere.test/v2/g/to/blobs/uploads/u12", 401);
    const refused = await mounted.mountBlob("g/from", "g/to", digestOf(blob)).then(() => undefined, (error: unknown) => error as RegistryError);
    expect(refused?.message).toMatch(/^the registry at registry\.test:5000 sent an upload to https:\/\/uploads\.elsewhere\.test, not its own address/);
    expect(sent.filter((request) => request.method === "PUT").map((request) => request.authorization)).toEqual([null]);
    // What a lookup adds is this message's fix, not "log in".
    expect(refused).toMatchObject({ status: 401, fault: "elsewhere", answer: "HTTP 401 from https://uploads.elsewhere.test, another origin, where the login is not sent" });
    expect(fixFor(refused as RegistryError, "registry.test:5000")).toBe("do what is said above of the other origin registry.test:5000 sent the request to, then run again");
    // Another port of the registry's host is another origin, not a scheme the registry names wrong.
    await expect(client("https://registry.test:5001/v2/g/app/blobs/uploads/u14", 401).putBlob("g/app", blob)).rejects.toThrow(
      `sent an upload to https://registry.test:5001, not its own address https://registry.test:5000, and https://registry.test:5001 asked for a login (HTTP 401): ${why} when registry.test:5001 is this registry under another name, set strata:registry`,
    );
    // Without a login configured the same: the registry's own origin took the request without one,
    // and a login set up for it would still not go there, so "set a login" would not fix it.
    await expect(client("https://uploads.elsewhere.test/v2/g/app/blobs/uploads/u13", 401, null).putBlob("g/app", blob)).rejects.toThrow(/^the registry at registry\.test:5000 sent an upload to https:\/\/uploads\.elsewhere\.test, not its own address/);
    // A tag list whose next page is on another host (in capitals too): asked without the login, and its 401 names the page.
    const paged = (nextStatus: number, link = "<https://mirror.test/v2/g/app/tags/list?n=1000&last=a>") => new RegistryClient({
      registry: "registry.test:5000", scheme: "https", sleep: async () => undefined, dockerConfigDir: "/nonexistent", credentials,
      fetch: fake((url) => url.startsWith("https://registry.test:5000/v2/g/app/tags/list?n=1000") && !url.includes("last=")
        ? new Response(JSON.stringify({ name: "g/app", tags: ["a"] }), { headers: { link: `${link}; rel="next"` } })
        : new Response(nextStatus === 200 ? JSON.stringify({ name: "g/app", tags: ["b"] }) : "{}", { status: nextStatus })),
    });
    for (const [link, asked, authorization] of [
      ["<https://mirror.test/v2/g/app/tags/list?n=1000&last=a>", "https://mirror.test/v2/g/app/tags/list?n=1000&last=a", null],
      ["<HTTPS://MIRROR.TEST/v2/g/app/tags/list?n=1000&last=a>", "https://mirror.test/v2/g/app/tags/list?n=1000&last=a", null],
      // Relative links, as the distribution registry writes them, resolved against the page: the registry's own, with the login.
      ["</v2/g/app/tags/list?n=1000&last=a>", "https://registry.test:5000/v2/g/app/tags/list?n=1000&last=a", login],
      ["<?n=1000&last=a>", "https://registry.test:5000/v2/g/app/tags/list?n=1000&last=a", login],
    ] as const) {
      sent.length = 0;
      expect(await paged(200, link).tags("g/app")).toEqual(["a", "b"]);
      expect(sent.map((request) => [request.url, request.authorization])).toEqual([["https://registry.test:5000/v2/g/app/tags/list?n=1000", login], [asked, authorization]]);
    }
    await expect(paged(401).tags("g/app")).rejects.toThrow(
      `the registry at registry.test:5000 sent the next page of the tag list of g/app to https://mirror.test, not its own address https://registry.test:5000, and https://mirror.test asked for a login (HTTP 401): ${why} when mirror.test is this registry under another name, set strata:registry to it; else have the registry, or what sits in front of it, write relative Link headers (the distribution registry does)`,
    );
    // A next page that is one already read would never end; a link that is no address is the registry's fault.
    await expect(paged(200, "<?n=1000>").tags("g/app")).rejects.toThrow(/^GET the tag list of g\/app at registry\.test:5000: page 1's next page is https:\/\/registry\.test:5000\/v2\/g\/app\/tags\/list\?n=1000, a page already read: the list would never end/);
    await expect(paged(200, "<http://[x>").tags("g/app")).rejects.toMatchObject({ fault: "malformed", message: 'GET the tag list of g/app at registry.test:5000: the next page\'s link "http://[x" is not an address' });
    // The repository list pages the same way, its next pages named as its first is.
    sent.length = 0;
    let catalogPage = 0;
    const catalog = new RegistryClient({
      registry: "registry.test:5000", scheme: "https", sleep: async () => undefined, dockerConfigDir: "/nonexistent", credentials,
      fetch: fake(() => catalogPage++ === 0
        ? new Response(JSON.stringify({ repositories: ["x"] }), { headers: { link: '</v2/_catalog?last=x&n=1000>; rel="next"' } })
        : new Response("busy", { status: 503 })),
    });
    await expect(catalog.repositories()).rejects.toThrow(/^GET the repository list at registry\.test:5000: HTTP 503/);
    expect(sent.map((request) => [request.url, request.authorization])).toEqual([["https://registry.test:5000/v2/_catalog?n=1000", login], ...Array.from({ length: 3 }, () => ["https://registry.test:5000/v2/_catalog?last=x&n=1000", login])]);
    // A layer's stream refused by a fetch that gives no address of its own: the address asked, the login's fault.
    const streamed = new RegistryClient({ registry: "registry.test:5000", scheme: "https", sleep: async () => undefined, dockerConfigDir: "/nonexistent", credentials, fetch: fake(() => new Response("{}", { status: 401 })) });
    await expect(streamed.blobStream("g/app", `sha256:${"b".repeat(64)}`)).rejects.toThrow(/refused the credentials \(HTTP 401; the login from the stack config/);
  });
  it("an upload's PUT tried again: a blob there afterwards is success (the first landed), none is the PUT's failure", async () => {
    const blob = Buffer.from("signature payload");
    const upload = () => new Response(null, { status: 202, headers: { location: "/v2/g/app/blobs/uploads/u20" } });
    const status = (code: number) => () => new Response(code === 200 ? null : "{}", { status: code });
    const failed = scripted([upload, status(500), status(500), status(500), status(404)]);
    await expect(failed.client.putBlob("g/app", blob, { unchecked: true })).rejects.toThrow(/^PUT blob g\/app@sha256:[0-9a-f]{64} at registry\.test:5000: HTTP 500 \(a server error\) after 3 attempts$/);
    expect(failed.requests()).toBe(5);
    const landed = scripted([upload, status(500), status(404), status(200)]);
    expect(await landed.client.putBlob("g/app", blob, { unchecked: true })).toBe(digestOf(blob));
    expect(landed.requests()).toBe(4);
  });
  it("an immutable index write that another run overwrote at the same time fails loud", async () => {
    const { putIndex } = await import("../../src/registry/image-index.js");
    const config = Buffer.from(JSON.stringify({ os: "linux", architecture: "amd64" }));
    const image = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config: { digest: digestOf(config) }, layers: [] }));
    const oci = (bytes: Buffer) => () => new Response(new Uint8Array(bytes), { status: 200, headers: { "docker-content-digest": digestOf(bytes), "content-type": "application/vnd.oci.image.manifest.v1+json" } });
    const theirs = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: [] }));
    const request = { repository: "g/img", tag: "1.0-p0", immutable: true, entries: [{ platform: "linux/amd64", repository: "g/img/linux-amd64", digest: digestOf(image) }] };
    // rawManifest, config, the tag (absent), HEAD blob (config, present), ... the copy of the child, the index PUT, then the re-read.
    const answers = (last: () => Response) => [oci(image), () => new Response(new Uint8Array(config)), () => new Response("{}", { status: 404 }),
      () => new Response(null, { status: 200 }), () => new Response(null, { status: 201 }), () => new Response(null, { status: 201 }), last];
    const lost = scripted(answers(oci(theirs)));
    await expect(putIndex(lost.client, request)).rejects.toThrow(/g\/img:1.0-p0 was written as sha256:\w+, but the registry now answers that it holds sha256:\w+: another run wrote it at the same time/);
    const { indexBytes } = await import("../../src/registry/image-index.js");
    const ours = indexBytes([{ platform: "linux/amd64", mediaType: "application/vnd.oci.image.manifest.v1+json", digest: digestOf(image), size: image.length }]);
    const won = scripted(answers(oci(ours)));
    expect(await putIndex(won.client, request)).toEqual({ digest: digestOf(ours), created: true });
  });
});

describe("tag lists", () => {
  it("follow the registry's pages (Link rel=next) to the last one", async () => {
    const asked: string[] = [];
    const fetcher = (async (input: string | URL) => {
      const url = String(input);
      if (url.endsWith("/v2/")) return new Response("{}");
      asked.push(url.replace("http://registry.test:5000", ""));
      return url.includes("last=b")
        ? new Response(JSON.stringify({ name: "g/app", tags: ["c"] }))
        : new Response(JSON.stringify({ name: "g/app", tags: ["b", "a"] }), { headers: { link: '</v2/g/app/tags/list?n=2&last=b>; rel="next"' } });
    }) as typeof fetch;
    const client = new RegistryClient({ registry: "registry.test:5000", scheme: "http", fetch: fetcher, dockerConfigDir: "/nonexistent" });
    expect(await client.tags("g/app")).toEqual(["a", "b", "c"]);
    expect(asked).toEqual(["/v2/g/app/tags/list?n=1000", "/v2/g/app/tags/list?n=2&last=b"]);
  });

  it("a 404 on a later page is an error, not an empty list (only the first page's says there is no repository)", async () => {
    const fetcher = (async (input: string | URL) => {
      const url = String(input);
      if (url.endsWith("/v2/")) return new Response("{}");
      return url.includes("last=b")
        ? new Response("gone", { status: 404 })
        : new Response(JSON.stringify({ name: "g/app", tags: ["a", "b"] }), { headers: { link: '</v2/g/app/tags/list?n=2&last=b>; rel="next"' } });
    }) as typeof fetch;
    const client = new RegistryClient({ registry: "registry.test:5000", scheme: "http", fetch: fetcher, dockerConfigDir: "/nonexistent" });
    await expect(client.tags("g/app")).rejects.toThrow(/tag list of g\/app/);
    const absent = new RegistryClient({ registry: "registry.test:5000", scheme: "http", fetch: (async (input: string | URL) => (String(input).endsWith("/v2/") ? new Response("{}") : new Response("no", { status: 404 }))) as typeof fetch, dockerConfigDir: "/nonexistent" });
    expect(await absent.tags("g/none")).toEqual([]);
  });
});

describe("a list's pages and a 404, read so that nothing is taken as absent that the registry did not say is", () => {
  /** A registry whose first tag-list page holds "b" and "a" and names the next one with `link`; the next holds "c". */
  const paged = (link: string) => new RegistryClient({
    registry: "registry.test:5000", scheme: "http", dockerConfigDir: "/nonexistent",
    fetch: (async (input: string | URL) => {
      const url = String(input);
      if (url.endsWith("/v2/")) return new Response("{}");
      return url.includes("last=b") ? new Response(JSON.stringify({ name: "g/app", tags: ["c"] })) : new Response(JSON.stringify({ name: "g/app", tags: ["b", "a"] }), { headers: { link } });
    }) as typeof fetch,
  });

  it("follows a next page in any spelling RFC 8288 allows, and stops at a Link header it cannot read", async () => {
    const next = "</v2/g/app/tags/list?n=2&last=b>";
    for (const link of [`${next}; rel="next"`, `${next}; rel=next`, `${next};rel=NEXT`, `${next}; title="a; b, c"; rel="next"`, `${next}; rel="next last"`, `</v2/g/app/tags/list?n=2>; rel="prev", ${next}; rel="next"`]) {
      expect(await paged(link).tags("g/app"), link).toEqual(["a", "b", "c"]);
    }
    // No next page named: the list ends there.
    expect(await paged(`${next}; rel="prev"`).tags("g/app")).toEqual(["a", "b"]);
    await expect(paged("next page, somewhere").tags("g/app")).rejects.toMatchObject({ fault: "malformed", message: expect.stringMatching(/^GET the tag list of g\/app at registry\.test:5000: its Link header "next page, somewhere" cannot be read .*, so Strata cannot tell whether the list goes on$/) });
    await expect(paged(`${next}; rel="next", </v2/g/app/tags/list?n=2&last=x>; rel="next"`).tags("g/app")).rejects.toMatchObject({ fault: "malformed", message: expect.stringContaining("names 2 next pages") });
  });

  it("refuses a list page without its list (no field, or not names); null is an empty list", async () => {
    const answering = (body: unknown) => new RegistryClient({ registry: "registry.test:5000", scheme: "http", dockerConfigDir: "/nonexistent", fetch: (async (input: string | URL) => (String(input).endsWith("/v2/") ? new Response("{}") : new Response(JSON.stringify(body)))) as typeof fetch });
    expect(await answering({ name: "g/app", tags: null }).tags("g/app")).toEqual([]);
    await expect(answering({ name: "g/app" }).tags("g/app")).rejects.toMatchObject({ fault: "malformed", message: 'GET the tag list of g/app at registry.test:5000: the answer has no "tags" list of names (no such field), so Strata cannot tell what it holds' });
    await expect(answering({ tags: "1.0" }).tags("g/app")).rejects.toThrow(/no "tags" list of names \(a string\)/);
    await expect(answering({ tags: [1] }).tags("g/app")).rejects.toThrow(/no "tags" list of names \(a list holding other than names\)/);
    await expect(answering({}).repositories()).rejects.toThrow(/GET the repository list at registry\.test:5000: the answer has no "repositories" list/);
  });

  it("takes a 404 as not found only from the registry's own origin, not from where a redirect took the request", async () => {
    const redirected = (target: string) => new RegistryClient({
      registry: "registry.test:5000", scheme: "http", dockerConfigDir: "/nonexistent", attempts: 1,
      fetch: (async (input: string | URL) => {
        const url = String(input);
        if (url.endsWith("/v2/")) return new Response("{}");
        // As fetch answers after following the registry's redirect: the last address's answer, with that address.
        return Object.defineProperty(new Response("no such page", { status: 404 }), "url", { value: `${target}${new URL(url).pathname}` });
      }) as typeof fetch,
    });
    await expect(redirected("https://sso.test").manifest("g/app", "1.0")).rejects.toMatchObject({ status: 404, fault: "elsewhere", message: "GET manifest g/app:1.0 at registry.test:5000: a redirect took it to https://sso.test, which answered HTTP 404; only the registry itself can say that something does not exist, so Strata cannot tell (check what redirects the registry's requests there)" });
    await expect(redirected("https://sso.test").tags("g/app")).rejects.toMatchObject({ fault: "elsewhere", message: expect.stringMatching(/^GET the tag list of g\/app at registry\.test:5000: a redirect took it to https:\/\/sso\.test/) });
    await expect(redirected("https://sso.test").deleteManifest("g/app", `sha256:${"a".repeat(64)}`)).rejects.toMatchObject({ fault: "elsewhere", message: expect.stringMatching(/^DELETE g\/app@sha256:a+ at registry\.test:5000: a redirect took it to https:\/\/sso\.test/) });
    await expect(redirected("https://sso.test").blobExists("g/app", `sha256:${"a".repeat(64)}`)).rejects.toMatchObject({ fault: "elsewhere" });
    // Redirected within the registry's own origin, its 404 is its own answer.
    expect(await redirected("http://registry.test:5000/moved").manifest("g/app", "1.0")).toBeUndefined();
    expect(await redirected("http://registry.test:5000/moved").tags("g/app")).toEqual([]);
    await redirected("http://registry.test:5000/moved").deleteManifest("g/app", `sha256:${"a".repeat(64)}`);
    expect(await redirected("http://registry.test:5000/moved").blobExists("g/app", `sha256:${"a".repeat(64)}`)).toBe(false);
  });
});

describe("the scheme, asked once", () => {
  /** A loopback registry that speaks plain HTTP: an HTTPS attempt fails as a TLS client's would against it. */
  function plainLoopback(failHttpProbes = 0): { client: RegistryClient; probes: string[] } {
    const probes: string[] = [];
    return { client: new RegistryClient({ registry: "127.0.0.1:5999", fetch: plainLoopbackFetch(probes, failHttpProbes), sleep: async () => undefined, attempts: 1, dockerConfigDir: "/nonexistent" }), probes };
  }

  /** Its fetch: records each probe; the first `failHttpProbes` HTTP probes are refused, as a registry still starting would. */
  function plainLoopbackFetch(probes: string[], failHttpProbes: number): typeof fetch {
    let httpFailures = failHttpProbes;
    return (async (input: string | URL) => {
      const url = String(input);
      if (url.endsWith("/v2/")) {
        probes.push(url);
        if (url.startsWith("https:")) throw Object.assign(new TypeError("fetch failed"), { cause: { code: "EPROTO", message: "write EPROTO 40E7:error:0A00010B:SSL routines:ssl3_get_record:wrong version number" } });
        if (httpFailures > 0) {
          httpFailures -= 1;
          throw Object.assign(new TypeError("fetch failed"), { cause: { code: "ECONNREFUSED" } });
        }
        return new Response("{}");
      }
      if (url.startsWith("https:")) throw new Error(`asked over HTTPS after the probe: ${url}`);
      return found();
    }) as typeof fetch;
  }

  it("requests that start together share one probe (HTTPS, then HTTP), and later ones ask none", async () => {
    const { client, probes } = plainLoopback();
    const answers = await Promise.all(Array.from({ length: 8 }, () => client.manifest("g/img", digestOf(manifestBytes))));
    expect(answers.every((answer) => answer?.digest === digestOf(manifestBytes))).toBe(true);
    expect(probes).toEqual(["https://127.0.0.1:5999/v2/", "http://127.0.0.1:5999/v2/"]);
    await client.manifest("g/img", digestOf(manifestBytes));
    expect(probes).toHaveLength(2);
  });

  it("requests that joined a probe that failed all fail; a request with attempts left probes again and gets through", async () => {
    const { client, probes } = plainLoopback(1);
    const joined = await Promise.allSettled(Array.from({ length: 4 }, () => client.manifest("g/img", digestOf(manifestBytes))));
    expect(joined.map((result) => result.status)).toEqual(["rejected", "rejected", "rejected", "rejected"]);
    expect(probes).toHaveLength(2);
    const retrying = new RegistryClient({ registry: "127.0.0.1:5999", fetch: plainLoopbackFetch(probes, 1), sleep: async () => undefined, attempts: 3, dockerConfigDir: "/nonexistent" });
    probes.length = 0;
    expect((await retrying.manifest("g/img", digestOf(manifestBytes)))?.digest).toBe(digestOf(manifestBytes));
    expect(probes).toEqual(["https://127.0.0.1:5999/v2/", "http://127.0.0.1:5999/v2/", "https://127.0.0.1:5999/v2/", "http://127.0.0.1:5999/v2/"]);
  });

  it("a registry that answers HTTPS is asked over HTTPS, probed once", async () => {
    const probes: string[] = [];
    const asked: string[] = [];
    const fetcher = (async (input: string | URL) => {
      const url = String(input);
      if (url.endsWith("/v2/")) {
        probes.push(url);
        return new Response("{}");
      }
      asked.push(url);
      return found();
    }) as typeof fetch;
    const client = new RegistryClient({ registry: "registry.test:5000", fetch: fetcher, sleep: async () => undefined, dockerConfigDir: "/nonexistent" });
    await Promise.all([client.manifest("g/img", digestOf(manifestBytes)), client.manifest("g/img", digestOf(manifestBytes))]);
    expect(probes).toEqual(["https://registry.test:5000/v2/"]);
    expect(asked.every((url) => url.startsWith("https://registry.test:5000/v2/g/img/manifests/"))).toBe(true);
  });

  it("a probe that failed is not kept: the next request asks again", async () => {
    const { client, probes } = plainLoopback(1);
    await expect(client.manifest("g/img", digestOf(manifestBytes))).rejects.toThrow(/over HTTPS or HTTP/);
    expect(await client.manifest("g/img", digestOf(manifestBytes))).toBeDefined();
    expect(probes).toEqual(["https://127.0.0.1:5999/v2/", "http://127.0.0.1:5999/v2/", "https://127.0.0.1:5999/v2/", "http://127.0.0.1:5999/v2/"]);
  });
});

describe("a failed delete says whether it may still have been carried out (for ci-clean's lock)", () => {
  const timeout = (): never => {
    throw Object.assign(new Error("The operation was aborted due to timeout"), { name: "TimeoutError" });
  };
  const refused = (): never => {
    throw Object.assign(new TypeError("fetch failed"), { cause: { code: "ECONNREFUSED" } });
  };
  const status = (code: number) => (): Response => new Response("{}", { status: code });
  const DIGEST = `sha256:${"ab".repeat(32)}`;
  const failure = async (answers: (() => Response)[]): Promise<RegistryError> => {
    const error = await scripted(answers).client.deleteManifest("g/app", DIGEST).then(() => undefined, (thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(RegistryError);
    return error as RegistryError;
  };

  it("unsettled: an attempt sent without an answer, even when later attempts were answered; a 5xx (a proxy's 504 too)", async () => {
    expect(await failure([timeout, status(503), status(503)])).toMatchObject({ status: 503, unsettled: true });
    expect(await failure([status(504)])).toMatchObject({ status: 504, unsettled: true });
    expect(await failure([timeout])).toMatchObject({ status: undefined, unsettled: true });
    expect(await failure([timeout, refused, refused])).toMatchObject({ status: undefined, unsettled: true });
    expect(await failure([status(500)])).toMatchObject({ status: 500, unsettled: true });
    // An earlier attempt lost, whatever the last answer: a 4xx, a 401.
    expect(await failure([timeout, status(400)])).toMatchObject({ status: 400, unsettled: true });
    expect(await failure([status(503), status(401)])).toMatchObject({ status: 401, unsettled: true });
    // A kept-alive connection that broke: the request may have been written; a TLS failure on an established connection too.
    const stale = (): never => {
      throw Object.assign(new Error("socket hang up"), { stale: true, code: "ECONNRESET" });
    };
    expect(await failure([stale, status(400)])).toMatchObject({ status: 400, unsettled: true });
    const badRecord = (): never => {
      throw Object.assign(new TypeError("fetch failed"), { cause: { code: "ERR_SSL_DECRYPTION_FAILED_OR_BAD_RECORD_MAC" }, tlsEstablished: true });
    };
    expect(await failure([badRecord])).toMatchObject({ unsettled: true });
  });

  it("a read is never unsettled: nothing it sends changes the registry", async () => {
    for (const answers of [[timeout, status(503), status(503)], [timeout], [timeout, status(401)]]) {
      const read = await scripted(answers).client.manifest("g/app", DIGEST).then(() => undefined, (thrown: unknown) => thrown);
      expect(read).toBeInstanceOf(RegistryError);
      expect(read).toMatchObject({ unsettled: false });
    }
  });

  it("settled: refused before sending, or an answer that is not a 5xx; and a delete that succeeds after a lost attempt throws nothing", async () => {
    expect(await failure([refused])).toMatchObject({ unsettled: false });
    const certificateRefused = (): never => {
      throw Object.assign(new TypeError("fetch failed"), { cause: { code: "CERT_HAS_EXPIRED" } });
    };
    expect(await failure([certificateRefused])).toMatchObject({ unsettled: false });
    expect(await failure([status(400)])).toMatchObject({ status: 400, unsettled: false });
    expect(await failure([status(429), status(405)])).toMatchObject({ status: 405, unsettled: false });
    await expect(scripted([status(202)]).client.deleteManifest("g/app", DIGEST)).resolves.toBeUndefined();
    await expect(scripted([refused, status(202)]).client.deleteManifest("g/app", DIGEST)).resolves.toBeUndefined();
  });

  it("done on a retry after a lost attempt is unsettled too: the lost one may still be carried out later", async () => {
    for (const last of [202, 404]) {
      const error = await failure([timeout, status(last)]);
      expect(error).toMatchObject({ status: last, unsettled: true });
      expect(error.message).toMatch(new RegExp(`answered ${last} on attempt 2, after an earlier attempt that got no answer or a 5xx; that one may still be carried out`));
    }
    expect(await failure([status(504), status(202)])).toMatchObject({ unsettled: true });
  });

  it("settled: the scheme probe failing sends no delete at all", async () => {
    const probeFails = (async (input: string | URL) => {
      if (String(input).endsWith("/v2/")) timeout();
      throw new Error(`the delete was sent: ${String(input)}`);
    }) as typeof fetch;
    const client = new RegistryClient({ registry: "registry.test:5000", fetch: probeFails, sleep: async () => undefined, dockerConfigDir: "/nonexistent" });
    const error = await client.deleteManifest("g/app", DIGEST).then(() => undefined, (thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(RegistryError);
    expect(error).toMatchObject({ unsettled: false });
    expect(String((error as Error).message)).toMatch(/cannot reach the registry at https:\/\/registry\.test:5000\/v2/);
  });
});
