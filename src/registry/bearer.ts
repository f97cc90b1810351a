/**
 * Token logins (the distribution token spec, RFC 6750's Bearer scheme): a registry that answers 401
 * with `WWW-Authenticate: Bearer realm=…,service=…,scope=…` wants each request to carry a token
 * that its token server (the realm) gives for that scope, in exchange for the login (Basic) or for
 * nothing (anonymous pulls). Harbor, GitLab, Quay and a distribution registry with `auth: token`
 * work this way; Docker, BuildKit and cosign do the exchange themselves, so Strata's client must too.
 * This file reads challenges and answers and names the scope a request needs; client.ts asks.
 */

/** What a Bearer challenge asks for: where the token server is, for which service and scope. */
export interface BearerChallenge {
  readonly realm: string;
  readonly service?: string;
  readonly scope?: string;
}

/** A token and when to stop using it (milliseconds since the epoch). */
export interface BearerToken {
  readonly token: string;
  readonly expiresAt: number;
}

/** The spec's default lifetime when the token server gives none. */
const DEFAULT_EXPIRES_IN_S = 60;
/** Asked for anew this long before it runs out, so a request in flight never carries a dead one. */
const EXPIRY_MARGIN_MS = 10_000;

/**
 * The Bearer challenge of a `WWW-Authenticate` header, or undefined when it has none (a Basic
 * registry, or no header). Parameters are `name="quoted"` (a scope holds commas) or `name=token`.
 */
export function bearerChallenge(header: string | null): BearerChallenge | undefined {
  if (header === null) return undefined;
  const start = /(?:^|,\s*)bearer\s+/i.exec(header);
  if (start === null) return undefined;
  const params: Record<string, string> = {};
  const pattern = /\s*([A-Za-z_][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))\s*(?:,|$)/y;
  pattern.lastIndex = start.index + start[0].length;
  for (let match = pattern.exec(header); match !== null; match = pattern.exec(header)) {
    params[(match[1] as string).toLowerCase()] = match[2] !== undefined ? match[2].replace(/\\(.)/g, "$1") : (match[3] ?? "");
    if (pattern.lastIndex >= header.length) break;
  }
  const realm = params.realm;
  if (realm === undefined || realm === "") return undefined;
  return { realm, ...(params.service === undefined ? {} : { service: params.service }), ...(params.scope === undefined ? {} : { scope: params.scope }) };
}

/** The scopes a token is asked for: the challenge's own and `extraScopes` (a mount also reads the repository it mounts from), each once. */
function scopesOf(challenge: BearerChallenge, extraScopes: readonly string[]): string[] {
  return [...new Set([...(challenge.scope === undefined ? [] : challenge.scope.split(" ")), ...extraScopes])].filter((scope) => scope !== "");
}

/** The token server's address for a challenge, with its service and scopes (scopesOf) asked. */
export function tokenAddress(challenge: BearerChallenge, extraScopes: readonly string[] = []): URL {
  const address = new URL(challenge.realm);
  if (challenge.service !== undefined) address.searchParams.append("service", challenge.service);
  for (const scope of scopesOf(challenge, extraScopes)) address.searchParams.append("scope", scope);
  return address;
}

/**
 * The exchange of an identity token (an OAuth2 refresh token) for a token, as the docker client
 * makes it (distribution's fetchTokenWithOAuth): a form POSTed to the realm as the challenge names
 * it, with the challenge's service and scopes (and a mount's source: space-separated, each once)
 * and the refresh_token grant. The token is in the body, never in the address (which error
 * messages and proxies' logs may show).
 */
export function refreshTokenRequest(challenge: BearerChallenge, identityToken: string, extraScopes: readonly string[] = []): { url: string; method: "POST"; headers: Record<string, string>; body: Uint8Array } {
  const form = new URLSearchParams();
  form.set("grant_type", "refresh_token");
  form.set("refresh_token", identityToken);
  if (challenge.service !== undefined) form.set("service", challenge.service);
  const scopes = scopesOf(challenge, extraScopes);
  if (scopes.length > 0) form.set("scope", scopes.join(" "));
  form.set("client_id", "strata");
  return { url: new URL(challenge.realm).toString(), method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: Buffer.from(form.toString(), "utf8") };
}

/** The refresh token a token server's answer to an identity token's exchange gives for the next one (OAuth2 servers that rotate them), if any. */
export function rotatedRefreshToken(body: string): string | undefined {
  try {
    const parsed = JSON.parse(body) as unknown;
    const value = typeof parsed === "object" && parsed !== null ? (parsed as Record<string, unknown>).refresh_token : undefined;
    return typeof value === "string" && value !== "" ? value : undefined;
  } catch {
    return undefined;
  }
}

/** The token of a token server's answer (`token`, or OAuth's `access_token`), and when it runs out; undefined when it holds none. */
export function tokenOf(body: string, now: number): BearerToken | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (typeof parsed !== "object" || parsed === null) return undefined;
  const fields = parsed as Record<string, unknown>;
  const token = typeof fields.token === "string" && fields.token !== "" ? fields.token : typeof fields.access_token === "string" && fields.access_token !== "" ? fields.access_token : undefined;
  if (token === undefined) return undefined;
  const expiresIn = typeof fields.expires_in === "number" && fields.expires_in > 0 ? fields.expires_in : DEFAULT_EXPIRES_IN_S;
  return { token, expiresAt: now + Math.max(expiresIn * 1000 - EXPIRY_MARGIN_MS, expiresIn * 500) };
}

/**
 * What a request needs a token for, as a key of the tokens already given: the repository its path
 * names (or the catalog) and whether it reads, writes or deletes; a mount's source too (`key`), and
 * the same without it (`baseKey`: a mount's token serves the upload that follows when the registry
 * copies instead). Undefined for a path that names neither (the `/v2/` ping): its token is not kept.
 * The repository is what comes before a known ending, matched whole: a name may hold `blobs`,
 * `manifests` or `tags` as a component.
 */
export function scopeKey(address: string, method: string): { key: string; baseKey: string; extraScopes: string[] } | undefined {
  const url = new URL(address);
  const action = method === "GET" || method === "HEAD" ? "pull" : method === "DELETE" ? "delete" : "push";
  if (/^\/v2\/_catalog\/?$/.test(url.pathname)) return { key: "registry:catalog:*", baseKey: "registry:catalog:*", extraScopes: [] };
  const repository = ENDINGS.map((ending) => ending.exec(url.pathname)?.[1]).find((name) => name !== undefined);
  if (repository === undefined) return undefined;
  const baseKey = `repository:${repository}:${action}`;
  const from = action === "push" ? url.searchParams.get("from") : null;
  const extraScopes = from === null || from === "" ? [] : [`repository:${from}:pull`];
  return { key: [baseKey, ...extraScopes].join(" "), baseKey, extraScopes };
}

/** The distribution API's paths under a repository: an upload (opened, or its location), a blob, a manifest, the tag list. */
const ENDINGS: readonly RegExp[] = [
  /^\/v2\/(.+)\/blobs\/uploads\/[^/]*$/,
  /^\/v2\/(.+)\/blobs\/[^/]+$/,
  /^\/v2\/(.+)\/manifests\/[^/]+$/,
  /^\/v2\/(.+)\/tags\/list$/,
];
