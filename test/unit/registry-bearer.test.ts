/**
 * Token logins' pure parts (registry/bearer.ts): reading a Bearer challenge, the token server's
 * address and answer, and what a request needs a token for. The exchange itself runs against a
 * real registry with `auth: token` in test/e2e/token-registry.test.ts.
 */
import { describe, expect, it } from "vitest";
import { bearerChallenge, scopeKey, tokenAddress, tokenOf } from "../../src/registry/bearer.js";

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
    expect(scopeKey("https://r.example/v2/g/app/manifests/1.0-p1", "GET")).toEqual({ key: "repository:g/app:pull", extraScopes: [] });
    expect(scopeKey("https://r.example/v2/g/app/blobs/sha256:ab", "HEAD")?.key).toBe("repository:g/app:pull");
    expect(scopeKey("https://r.example/v2/g/app/manifests/1.0-p1", "PUT")?.key).toBe("repository:g/app:push");
    expect(scopeKey("https://r.example/v2/g/app/manifests/sha256:ab", "DELETE")?.key).toBe("repository:g/app:delete");
    expect(scopeKey("https://r.example/v2/g/app/blobs/uploads/?mount=sha256%3Aab&from=g%2Fbase", "POST")).toEqual({ key: "repository:g/app:push repository:g/base:pull", extraScopes: ["repository:g/base:pull"] });
    // An upload's location the registry answered with is the same repository's.
    expect(scopeKey("https://r.example/v2/g/app/blobs/uploads/5f1e?_state=x&digest=sha256%3Aab", "PUT")?.key).toBe("repository:g/app:push");
    expect(scopeKey("https://r.example/v2/g/app/tags/list?n=1000", "GET")?.key).toBe("repository:g/app:pull");
    expect(scopeKey("https://r.example/v2/_catalog?n=1000", "GET")?.key).toBe("registry:catalog:*");
    expect(scopeKey("https://r.example/v2/", "GET")).toBeUndefined();
  });
});
