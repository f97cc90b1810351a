/**
 * A small client for the OCI distribution API (registry v2): enough to list
 * what a registry holds, read an image's config, put and delete manifests and
 * mount blobs (copy.ts builds copies by digest from these).
 * Like Docker, it speaks HTTPS, and falls back to plain HTTP only for
 * loopback registries. Credentials (HTTP basic, as htpasswd registries use)
 * come from the caller or, failing that, from the Docker config file
 * (logins.ts: credential helpers, then inline auths).
 *
 * Every answer is "found", "not found" (404), or an error: a transient one
 * (retry.ts) is asked again a bounded number of times; a manifest or config
 * whose bytes do not match their digest is an error too, never a "found".
 * Bodies are read whole (manifests and configs are a few KiB), over node:http (transport.ts), but
 * for blobStream (image layers), which streams them through `fetch`.
 */
import { createHash } from "node:crypto";
import LinkHeader from "http-link-header";
import { UserError } from "../core/problems.js";
import { isDigest, isLoopbackHost, isPathComponent, isTag } from "../core/reference.js";
import { bearerChallenge, type BearerChallenge, type BearerToken, refreshTokenRequest, rotatedRefreshToken, scopeKey, tokenAddress, tokenOf } from "./bearer.js";
import { type BlobCache, sha256Digest } from "./blob-cache.js";
import { dockerConfigLogin, type FoundLogin, type RegistryCredentials } from "./logins.js";
import { describeStatus, isTransientCode, isTransientStatus, REGISTRY_ATTEMPTS, requestTimeoutMs, retryDelayMs } from "./retry.js";
import { fetchTransport, httpTransport, isStaleConnection, type Transport, type TransportAnswer } from "./transport.js";

export type { RegistryCredentials } from "./logins.js";

const MANIFEST_TYPES = [
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
].join(", ");

export interface RegistryOptions {
  /** `host[:port]` */
  readonly registry: string;
  /** Forces a scheme; by default HTTPS, with HTTP as a fallback on loopback. */
  readonly scheme?: "http" | "https";
  readonly credentials?: RegistryCredentials;
  /** Sends every request instead of `node:http` and Node's `fetch` (transport.ts): tests pass a fake registry. */
  readonly fetch?: typeof fetch;
  /** Where to look for a Docker config file (default: $DOCKER_CONFIG or ~/.docker). */
  readonly dockerConfigDir?: string;
  /** The Docker config's login for this registry as the caller just read it (null: it has none), so it is not read again (`dockerConfigDir` is then not looked at); without `credentials` only. */
  readonly dockerLogin?: FoundLogin | null;
  /** Manifests and configs already read, by digest (blob-cache.ts); none: every read is a request. */
  readonly blobCache?: BlobCache;
  /** Milliseconds one request may take (default: $STRATA_REGISTRY_TIMEOUT seconds, else 20 s). */
  readonly timeoutMs?: number;
  /** Attempts per request for transient failures (default REGISTRY_ATTEMPTS). */
  readonly attempts?: number;
  /** How to wait between attempts (tests pass one that does not sleep). */
  readonly sleep?: (ms: number) => Promise<void>;
}

export interface ManifestResult {
  /** The registry's `Docker-Content-Digest`, checked against the bytes. */
  readonly digest: string;
  readonly mediaType: string;
  readonly manifest: {
    /** As the manifest's bytes say (the registry's Content-Type is `mediaType` above). */
    readonly mediaType?: string;
    readonly config?: { readonly digest: string; readonly mediaType?: string };
    /** An image manifest's layers, in the order they apply; `size` is the blob's length in bytes. */
    readonly layers?: readonly { readonly digest: string; readonly mediaType?: string; readonly size?: number }[];
    /** An image index's (or manifest list's) entries. */
    readonly manifests?: readonly { readonly digest: string; readonly platform?: { readonly os?: string; readonly architecture?: string; readonly variant?: string } }[];
  };
}

export interface ImageConfig {
  /** When the image was made (RFC 3339); optional in OCI. */
  readonly created?: string;
  readonly os?: string;
  readonly architecture?: string;
  readonly variant?: string;
  readonly config?: { readonly Labels?: Readonly<Record<string, string>> | null };
}

/** What went wrong beyond the HTTP status, where the fix depends on it: content that fails its digest, an answer that is not a registry's, TLS that Strata cannot accept, or a login asked for on another origin the registry sent a request to (the message says why and what to do). */
export type RegistryFault = "integrity" | "malformed" | "tls" | "elsewhere";

/**
 * A registry answer that is neither "found" nor "not found", after any retries. `answer` says
 * what the registry did, in a user's words (`HTTP 500 (a server error)`, `connection reset`).
 */
export class RegistryError extends UserError {
  /**
   * Whether a write (a DELETE, PUT, POST, PATCH; never a GET or HEAD) may have been carried out
   * though no success came back: an attempt was sent and no answer came (a timeout, a reset; a
   * timeout while connecting counts, as it cannot be told apart), or a 5xx answered it (a proxy's
   * 502/504 may stand for a registry that went on). Set by the client for what it sends; a caller
   * that must know whether a write landed (a delete under a lock) reads it.
   */
  unsettled = false;

  constructor(message: string, readonly status?: number, readonly answer: string = message, readonly fault?: RegistryFault) {
    super(message);
    this.name = "RegistryError";
  }
}

/** Failures of an attempt that was never sent: no connection, no name, a TLS handshake refused. */
const NOT_SENT_CODES = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "UND_ERR_CONNECT_TIMEOUT"]);

/**
 * Whether a failed attempt was never sent: no connection, or a TLS handshake refused; a TLS failure
 * on a connection already established (transport.ts marks it) may come after the request was written.
 */
function neverSent(error: unknown): boolean {
  const code = error instanceof RegistryError ? causeCode((error as { cause?: unknown }).cause) : causeCode(error);
  return code !== undefined && (NOT_SENT_CODES.has(code) || (tlsRefusal(code) && (error as { tlsEstablished?: unknown }).tlsEstablished !== true));
}

/**
 * A request's own copy of an error from a token ask it shared with others (askToken): what one
 * request adds to it (unsettled) must not reach the others.
 */
function ownCopy(error: unknown): RegistryError {
  if (!(error instanceof RegistryError)) return networkError("a token ask", error, 0);
  const copy = new RegistryError(error.message, error.status, error.answer, error.fault);
  copy.stack = error.stack;
  return copy;
}

function withUnsettled(error: RegistryError, unsettled: boolean): RegistryError {
  if (unsettled) error.unsettled = true;
  return error;
}

/** An address the registry answered with, as a 401 from it tells the fix: an upload's location, or a list's next page. */
type SentBy = { readonly kind: "upload" } | { readonly kind: "next page"; readonly of: string };

/** One exchange with the registry: status, headers and the whole body. */
interface Answer {
  /** Where the answer came from: the address asked, or the last redirect's. */
  readonly url: string;
  readonly status: number;
  readonly headers: TransportAnswer["headers"];
  readonly body: Buffer;
  /** Requests sent for it: more than one when transient failures were tried again. */
  readonly attempts: number;
  /** Whether an earlier attempt may have been carried out without its answer (RegistryError.unsettled). */
  readonly unsettled?: boolean;
}

const sleepFor = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class RegistryClient {
  readonly registry: string;
  private readonly loopback: boolean;
  /** A layer's stream (blobStream). */
  private readonly fetcher: typeof fetch;
  /** Every request whose answer is read whole. */
  private readonly send: Transport;
  private readonly authorization?: string;
  /**
   * The Docker config's identity token (logins.ts), exchanged at a token server for tokens; never
   * sent to the registry itself. Replaced by the one a token server answers with, when it rotates them.
   */
  private identityToken?: string;
  /** The identity token's exchanges, one at a time: a token server that rotates refresh tokens takes each once. */
  private identityExchanges: Promise<unknown> = Promise.resolve();
  private readonly blobCache?: BlobCache;
  private readonly timeoutMs: number;
  private readonly attempts: number;
  private readonly sleep: (ms: number) => Promise<void>;
  /** Where the login came from, for the 401 message (never the secret). */
  private readonly loginSource: string;
  private scheme?: "http" | "https";
  private schemeProbe?: Promise<void> | undefined;
  /** Tokens a token server gave (bearer.ts), by what they are for (scopeKey): a registry that wants them gets one on each request that needs it. */
  private readonly tokens = new Map<string, BearerToken>();
  /** Asks in flight, by the same key: requests that need one scope at once wait for one answer. */
  private readonly tokenAsks = new Map<string, Promise<string>>();

  constructor(options: RegistryOptions) {
    this.registry = options.registry;
    this.loopback = isLoopbackHost(options.registry.replace(/:\d+$/, ""));
    this.fetcher = options.fetch ?? fetch;
    this.send = options.fetch === undefined ? httpTransport : fetchTransport(options.fetch);
    if (options.scheme !== undefined) this.scheme = options.scheme;
    let credentials = options.credentials;
    this.loginSource = "the stack config (strata:registryUsername, strata:registryPassword)";
    if (credentials === undefined) {
      const found = options.dockerLogin !== undefined ? options.dockerLogin ?? undefined : dockerConfigLogin(options.registry, options.dockerConfigDir);
      if (found !== undefined && "identityToken" in found) this.identityToken = found.identityToken;
      else credentials = found?.credentials;
      this.loginSource = found?.source ?? "no login";
    }
    if (credentials !== undefined) this.authorization = `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString("base64")}`;
    if (options.blobCache !== undefined) this.blobCache = options.blobCache;
    this.timeoutMs = options.timeoutMs ?? requestTimeoutMs();
    this.attempts = options.attempts ?? REGISTRY_ATTEMPTS;
    this.sleep = options.sleep ?? sleepFor;
  }

  private get base(): string {
    return `${this.scheme ?? "https"}://${this.registry}/v2`;
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return this.authorization === undefined ? extra : { ...extra, authorization: this.authorization };
  }

  /**
   * The login a request to the registry's own origin carries: a token given for what it does, while
   * it lasts (`token`: one just given for this request), else the Basic login, if any.
   */
  private loginFor(address: string, method: string, extra: Record<string, string> = {}, token?: string): Record<string, string> {
    const key = scopeKey(address, method)?.key;
    const known = key === undefined ? undefined : this.tokens.get(key);
    const bearer = token ?? (known !== undefined && known.expiresAt > Date.now() ? known.token : undefined);
    return bearer === undefined ? this.headers(extra) : { ...extra, authorization: `Bearer ${bearer}` };
  }

  /**
   * Asks the token server a 401's Bearer challenge names for a token for the request to `address`
   * (its scope, and a mount's source too), with the login if there is one, and keeps it for the
   * requests that need the same. The login goes to the token server as Docker sends it there: over
   * TLS, or over plain HTTP to a loopback server only. Requests that ask at once for one scope share
   * one ask (the gate reads sixteen at a time); a transient failure is tried again as a registry
   * request is (retry.ts).
   */
  private askToken(challenge: BearerChallenge, address: string, method: string): Promise<string> {
    const scope = scopeKey(address, method);
    const inFlight = scope === undefined ? undefined : this.tokenAsks.get(scope.key);
    if (inFlight !== undefined) return inFlight;
    const asking = this.fetchToken(challenge, address, method, scope).then((token) => {
      if (scope !== undefined) {
        this.tokens.set(scope.key, token);
        // A mount's token may write the target too: the upload that follows a copied mount uses it.
        if (scope.baseKey !== scope.key) this.tokens.set(scope.baseKey, token);
      }
      return token.token;
    }).finally(() => {
      if (scope !== undefined) this.tokenAsks.delete(scope.key);
    });
    if (scope !== undefined) this.tokenAsks.set(scope.key, asking);
    return asking;
  }

  private async fetchToken(challenge: BearerChallenge, address: string, method: string, scope: ReturnType<typeof scopeKey>): Promise<BearerToken> {
    let server: URL;
    try {
      server = tokenAddress(challenge, scope?.extraScopes);
    } catch {
      throw new RegistryError(`the registry at ${this.registry} asked for a token login from "${challenge.realm}", which is not an address`, 401, "a token server that is no address", "malformed");
    }
    // Named by what the token is for, not by the request that asked first: others may share the ask.
    const asking = `the registry at ${this.registry} asked for a token for ${scope?.key ?? "its API"}, and its token server ${server.origin}${server.pathname}`;
    if (this.hasLogin && server.protocol !== "https:" && !(server.protocol === "http:" && isLoopbackHost(server.hostname))) {
      throw new RegistryError(`${asking} is not reached over TLS, and Strata sends no login over plain HTTP to another machine; fix: serve the token server over HTTPS (its realm in the registry's auth.token config)`, 401, "a token server over plain HTTP", "elsewhere");
    }
    if (this.identityToken === undefined) return this.askTokenServer(challenge, server, scope, asking);
    // One at a time, as the docker client's token handler does (it holds a lock across the exchange).
    const turn = this.identityExchanges.then(() => this.askTokenServer(challenge, server, scope, asking));
    this.identityExchanges = turn.catch(() => undefined);
    return turn;
  }

  /**
   * One token asked of the token server at `server`, tried again on a transient failure. An identity
   * token is exchanged as the docker client does (OAuth2's refresh_token grant, a POST of a form to
   * the realm; the token server's new refresh token, when it gives one, is kept for the next); a user
   * name and password, or none, go with a GET (Basic).
   */
  private async askTokenServer(challenge: BearerChallenge, server: URL, scope: ReturnType<typeof scopeKey>, asking: string): Promise<BearerToken> {
    const identityToken = this.identityToken;
    const exchange = identityToken === undefined
      ? { url: server.toString(), method: "GET", headers: this.headers() }
      : refreshTokenRequest(challenge, identityToken, scope?.extraScopes);
    // An attempt tried again after no answer or a 5xx may have reached the token server all the same:
    // one that takes each refresh token once has then spent the identity token this process holds.
    let retriedUnsettled = false;
    for (let attempt = 1; ; attempt++) {
      const last = attempt >= this.attempts;
      let answer: TransportAnswer;
      try {
        answer = await this.send(exchange.url, { method: exchange.method, headers: exchange.headers, ...("body" in exchange ? { body: exchange.body } : {}), timeoutMs: this.timeoutMs });
      } catch (error) {
        const code = error instanceof RegistryError ? causeCode((error as { cause?: unknown }).cause) : causeCode(error);
        if (!last && (isStaleConnection(error) || isTransientCode(code))) {
          // A connection never made carried no form; one that failed later may have.
          if (!neverSent(error)) retriedUnsettled = true;
          await this.sleep(retryDelayMs(attempt));
          continue;
        }
        if (error instanceof RegistryError) throw error;
        throw networkError(`${asking}${attempt > 1 ? ` (${attempt} attempts)` : ""}`, error, this.timeoutMs);
      }
      if (!last && isTransientStatus(answer.status)) {
        // A 5xx may come after the work was done; a 429 or 408 says it was not.
        if (answer.status >= 500) retriedUnsettled = true;
        await this.sleep(retryDelayMs(attempt, answer.headers.get("retry-after")));
        continue;
      }
      if (answer.status === 401 || answer.status === 403 || (identityToken !== undefined && answer.status === 400 && /invalid_grant/.test(answer.body.toString("utf8")))) {
        const spent = identityToken !== undefined && retriedUnsettled ? ` (an earlier attempt of this exchange lost its connection after it was made, or got a 5xx, and was sent again: a token server that takes each refresh token once may have spent it then, and its answer with the next one was lost)` : "";
        throw new RegistryError(`${asking} refused the credentials (HTTP ${answer.status}${attempt > 1 ? `, attempt ${attempt}` : ""}; ${this.loginSaid()})${spent}: set strata:registryUsername and strata:registryPassword (pulumi config set --secret), or docker login ${this.registry} (a credential helper's login counts)${identityToken === undefined ? "" : "; an identity token runs out: log in again the way it was made (az acr login, say)"}`, answer.status, describeStatus(answer.status));
      }
      // Not the body of an answer to an identity token's exchange: a server that echoes the form would show the token.
      const said = answer.body.length === 0 || identityToken !== undefined ? "" : ` (${answer.body.toString("utf8").slice(0, 200)})`;
      if (answer.status !== 200) throw new RegistryError(`${asking} answered HTTP ${answer.status} where a token was asked for${attempt > 1 ? ` (${attempt} attempts)` : ""}${said}`, answer.status, describeStatus(answer.status));
      const body = answer.body.toString("utf8");
      const token = tokenOf(body, Date.now());
      if (token === undefined) throw new RegistryError(`${asking} answered without a token (no "token" or "access_token" field), so Strata cannot log in`, answer.status, "a token answer without a token", "malformed");
      if (identityToken !== undefined) this.identityToken = rotatedRefreshToken(body) ?? identityToken;
      return token;
    }
  }

  /**
   * HTTPS first; a loopback registry that answers plain HTTP instead is asked
   * over HTTP, as Docker does. Nothing is remembered while neither answers
   * (a registry still starting must not be pinned to the wrong scheme).
   */
  private resolveScheme(): Promise<void> {
    if (this.scheme !== undefined) return Promise.resolve();
    // Requests that start together share one probe; a probe that failed is not kept (the next request asks again).
    this.schemeProbe ??= this.probeScheme().finally(() => {
      this.schemeProbe = undefined;
    });
    return this.schemeProbe;
  }

  private async probeScheme(): Promise<void> {
    try {
      await this.send(`https://${this.registry}/v2/`, { method: "GET", headers: this.headers(), timeoutMs: this.timeoutMs });
      this.scheme = "https";
      return;
    } catch (error) {
      // Only a server that answered, but not in TLS, is asked again over HTTP: a refused connection
      // (nothing listening yet) or a timeout says nothing about the scheme, and anything else (a
      // certificate refused, a TLS alert) came from a registry that speaks TLS, which asked over
      // HTTP would answer 400 and hide why.
      const code = causeCode(error);
      if (!this.loopback || !answeredWithoutTls(code, error)) {
        throw networkError(`${tlsRefusal(code) ? "will not talk to" : "cannot reach"} the registry at https://${this.registry}/v2`, error, this.timeoutMs);
      }
    }
    try {
      await this.send(`http://${this.registry}/v2/`, { method: "GET", headers: this.headers(), timeoutMs: this.timeoutMs });
      this.scheme = "http";
    } catch (error) {
      throw networkError(`cannot reach the registry at ${this.registry} over HTTPS or HTTP`, error, this.timeoutMs);
    }
  }

  /**
   * Sends a request and reads its whole answer. Transient failures (retry.ts) are tried again, up
   * to `attempts` in all, with backoff, for requests that are safe to repeat: reads, manifest puts
   * (the same bytes give the same digest) and deletes by digest. A 401 is an error at once.
   */
  private async request(path: string, init: { method?: string; headers?: Record<string, string>; body?: Uint8Array; sentBy?: SentBy } = {}): Promise<Answer> {
    const method = init.method ?? "GET";
    const repeatable = method === "GET" || method === "HEAD" || method === "PUT" || method === "DELETE";
    // A URL the registry answered with (an upload's Location, a list's next page: `init.sentBy` says
    // which) is whole, on any origin; everything else is a path under /v2.
    const absolute = /^https?:\/\//.test(path);
    const what = `${method} ${(absolute ? new URL(path).pathname.replace(/^\/v2(?=\/)/, "") : path).replace(/\?.*$/, "")}`;
    let address = path;
    /** A write (not a GET or HEAD) may have been carried out without its answer reaching us (RegistryError.unsettled). */
    let unsettled = false;
    const writes = method !== "GET" && method !== "HEAD";
    /** A token a token server gave for this request after a 401 asked for one: asked once a request. */
    let token: string | undefined;
    for (let attempt = 1; ; attempt++) {
      const last = !repeatable || attempt >= this.attempts;
      let answer: Answer;
      /** Whether this attempt got as far as sending (the scheme probe before it sends nothing of it). */
      let sending = false;
      try {
        await this.resolveScheme();
        address = absolute ? path : `${this.base}${path}`;
        // A URL on another origin gets no login, as Docker sends its login only to the registry it
        // logged in to: an answer must not be able to send the password to another host, or over
        // plain HTTP. (The transport keeps it from where a redirect goes, transport.ts.)
        const login = this.isOwnOrigin(address) ? this.loginFor(address, method, init.headers, token) : init.headers ?? {};
        sending = true;
        const response = await this.send(address, { method, headers: login, ...(init.body === undefined ? {} : { body: init.body }), timeoutMs: this.timeoutMs });
        answer = { ...response, attempts: attempt, unsettled };
      } catch (error) {
        const code = error instanceof RegistryError ? causeCode((error as { cause?: unknown }).cause) : causeCode(error);
        if (writes && sending && !neverSent(error)) unsettled = true;
        // A request of any method whose kept-alive connection broke before any answer is tried
        // again (transport.ts), counted: a POST is then not lost to a connection the registry
        // dropped while idle, and a PUT that landed anyway is found as the retried one's is.
        if (attempt < this.attempts && isStaleConnection(error)) continue;
        if (!last && isTransientCode(code)) {
          await this.sleep(retryDelayMs(attempt));
          continue;
        }
        if (error instanceof RegistryError) throw withUnsettled(error, unsettled);
        throw withUnsettled(networkError(`${what} at ${this.registry}${attempt > 1 ? ` (${attempt} attempts)` : ""}`, error, this.timeoutMs), unsettled);
      }
      if (writes && answer.status >= 500) {
        unsettled = true;
        answer = { ...answer, unsettled };
      }
      if (!last && isTransientStatus(answer.status)) {
        await this.sleep(retryDelayMs(attempt, answer.headers.get("retry-after")));
        continue;
      }
      if (answer.status === 401) {
        const next = await this.afterRefusal(answer, address, method, token, init.sentBy);
        if ("error" in next) throw withUnsettled(next.error, unsettled);
        // Sent again with the token: not counted as an attempt (a 401 is an answer, so nothing it asked for was done).
        token = next.token;
        attempt--;
        continue;
      }
      return answer;
    }
  }

  /**
   * `/<repository>/<kind>[/<reference>]`, for a request: each name as the distribution spec spells
   * it, or an error before anything is sent. The URL parser resolves "../" and "%2e%2e" in a path,
   * so a name holding one (a tag read from a stack's outputs) would send the request to another
   * repository: a copy would land where nothing verified it.
   */
  private at(repository: string, kind: "manifests" | "blobs" | "tags/list" | "blobs/uploads/", reference?: string): string {
    const bad = !repository.split("/").every(isPathComponent)
      ? `"${repository}" is not a repository path (lowercase components separated by "/")`
      : reference !== undefined && !(kind === "manifests" ? isTag(reference) || isDigest(reference) : isDigest(reference))
        ? `"${reference}" is not a ${kind === "manifests" ? "tag or digest" : "digest"}`
        : undefined;
    if (bad !== undefined) throw new RegistryError(`Strata sends no request to the registry at ${this.registry} about ${repository}${reference === undefined ? "" : ` ${reference}`}: ${bad}`, undefined, "a name no registry address can hold", "malformed");
    return `/${repository}/${kind}${reference === undefined ? "" : `/${reference}`}`;
  }

  /** Every repository, following pagination. */
  async repositories(): Promise<string[]> {
    return (await this.listPages("/_catalog?n=1000", "repositories", "the repository list", `the repository list of ${this.registry}`)) ?? [];
  }

  /** Tags of one repository, following pagination (a registry may answer a page at a time); empty when the repository does not exist. */
  async tags(repository: string): Promise<string[]> {
    return (await this.listPages(`${this.at(repository, "tags/list")}?n=1000`, "tags", `the tag list of ${repository}`, `the tag list of ${repository}`, { absentOnFirst404: true })) ?? [];
  }

  /**
   * A list the registry answers a page at a time (`n=`, then Link rel=next), sorted; undefined when
   * `absentOnFirst404` and the first page is a 404 (a later page's 404 is an error, like any answer but 200).
   */
  private async listPages(first: string, field: "repositories" | "tags", what: string, parsed: string, options: { absentOnFirst404?: boolean } = {}): Promise<string[] | undefined> {
    const items: string[] = [];
    /** The pages asked: a next link back to one of them would never end. */
    const asked = new Set<string>();
    let next: string | undefined = first;
    for (let page = 0; next !== undefined; page++) {
      const answer = await this.request(next, { sentBy: { kind: "next page", of: what } });
      if (page === 0 && options.absentOnFirst404 === true && this.isNotFound(`GET ${what}`, answer)) return undefined;
      if (answer.status !== 200) throw this.unexpected(`GET ${what}`, answer);
      // null is a list with nothing in it; no field at all is not a list page, whatever else it says.
      const listed = parseJson<Partial<Record<typeof field, unknown>>>(answer.body, parsed)[field];
      if (listed !== null && !(Array.isArray(listed) && listed.every((item) => typeof item === "string"))) {
        throw new RegistryError(`GET ${what} at ${this.registry}: the answer has no "${field}" list of names (${listed === undefined ? "no such field" : `a ${Array.isArray(listed) ? "list holding other than names" : typeof listed}`}), so Strata cannot tell what it holds`, answer.status, `an answer without its "${field}" list`, "malformed");
      }
      items.push(...(listed ?? []));
      asked.add(answer.url);
      next = this.nextLink(answer.headers.get("link"), answer.url, what);
      if (next !== undefined && asked.has(next)) throw new RegistryError(`GET ${what} at ${this.registry}: page ${page + 1}'s next page is ${next}, a page already read: the list would never end (a registry, or what sits in front of it, writing its Link headers wrong)`, answer.status, "a list whose next page is one already read", "malformed");
    }
    return items.sort();
  }

  /** The manifest a tag or digest names, or undefined when there is none (404). Its bytes are checked against its digest. */
  async manifest(repository: string, reference: string): Promise<ManifestResult | undefined> {
    const answer = await this.request(this.at(repository, "manifests", reference), { headers: { accept: MANIFEST_TYPES } });
    if (this.isNotFound(`GET manifest ${repository}:${reference}`, answer)) return undefined;
    if (answer.status !== 200) throw this.unexpected(`GET manifest ${repository}:${reference}`, answer);
    const digest = this.checkedDigest(repository, reference, answer);
    const mediaType = answer.headers.get("content-type") ?? "";
    const manifest = parseJson<ManifestResult["manifest"]>(answer.body, `the manifest of ${repository}:${reference}`);
    this.blobCache?.write(digest, answer.body);
    return { digest, mediaType, manifest };
  }

  /** A manifest's exact bytes (its digest is over these bytes) and media type; by digest, from the cache when it has them. */
  async rawManifest(repository: string, reference: string): Promise<{ bytes: Buffer; mediaType: string }> {
    const cached = this.blobCache?.read(reference);
    // The media type travels in the bytes of every manifest Docker and BuildKit write; one that
    // leaves it out is asked for, since the registry's Content-Type is then the only source.
    const cachedType = cached === undefined ? undefined : (JSON.parse(cached.toString("utf8")) as { mediaType?: unknown }).mediaType;
    if (cached !== undefined && typeof cachedType === "string") return { bytes: cached, mediaType: cachedType };
    const answer = await this.request(this.at(repository, "manifests", reference), { headers: { accept: MANIFEST_TYPES } });
    if (answer.status !== 200) throw this.unexpected(`GET manifest ${repository}@${reference}`, answer);
    const digest = this.checkedDigest(repository, reference, answer);
    this.blobCache?.write(digest, answer.body);
    return { bytes: answer.body, mediaType: answer.headers.get("content-type") ?? "" };
  }

  /**
   * The digest of a manifest answer, checked: the bytes' sha256 must equal the digest asked for (a
   * reference that is a digest) and the one the registry announced. Anything else is an error: a
   * tag whose content cannot be verified is not known, so not "found".
   */
  private checkedDigest(repository: string, reference: string, answer: Answer): string {
    const computed = sha256Digest(answer.body);
    const announced = answer.headers.get("docker-content-digest");
    const expected = reference.startsWith("sha256:") ? reference : announced;
    if ((expected !== null && expected !== computed) || (announced !== null && announced !== computed)) {
      throw new RegistryError(`GET manifest ${repository}:${reference} at ${this.registry}: the manifest's bytes do not match its digest (announced ${expected ?? announced}, computed ${computed})`, answer.status, "a manifest whose bytes do not match its digest", "integrity");
    }
    return computed;
  }

  /**
   * Puts manifest bytes under a tag or digest and returns their digest: the sha256 of the bytes
   * sent, which is what a registry stores them under. A registry that announces another digest
   * (`Docker-Content-Digest`) stored something else: an error. One that announces none is taken at
   * the bytes' digest, for copies and indexes alike.
   */
  async putManifest(repository: string, reference: string, bytes: Buffer, mediaType: string): Promise<string> {
    const answer = await this.request(this.at(repository, "manifests", reference), { method: "PUT", headers: { "content-type": mediaType }, body: bytes });
    if (answer.status !== 201) throw this.unexpected(`PUT manifest ${repository}:${reference}`, answer);
    const sent = sha256Digest(bytes);
    const announced = answer.headers.get("docker-content-digest");
    if (announced !== null && announced !== sent) {
      throw new RegistryError(`PUT manifest ${repository}:${reference} at ${this.registry}: the registry reports ${announced} for bytes whose digest is ${sent}`, answer.status, "a digest other than the bytes sent", "integrity");
    }
    return sent;
  }

  async deleteManifest(repository: string, digest: string): Promise<void> {
    const answer = await this.request(this.at(repository, "manifests", digest), { method: "DELETE" });
    // Gone already (only the registry itself can say so) is done. Any other failure says whether an
    // attempt may still have been carried out (RegistryError.unsettled): a caller's lock must outlive it.
    if (answer.status !== 202 && !this.isNotFound(`DELETE ${repository}@${digest}`, answer)) throw withUnsettled(this.unexpected(`DELETE ${repository}@${digest}`, answer), answer.unsettled === true);
    // Done, but after an attempt that got no answer (or a 5xx): that one may still be carried out
    // later, on whatever the digest holds then (the same bytes pushed again). Said as unsettled.
    if (answer.unsettled === true) {
      throw withUnsettled(new RegistryError(`DELETE ${repository}@${digest} at ${this.registry}: answered ${answer.status} on attempt ${answer.attempts}, after an earlier attempt that got no answer or a 5xx; that one may still be carried out`, answer.status, "an earlier attempt may still be carried out"), true);
    }
  }

  /** Makes a blob of one repository available in another: a cross-repository mount, else a copy through this process. */
  async mountBlob(source: string, target: string, digest: string): Promise<void> {
    // The source's name goes into the query, unchecked by at() there: checked before anything is sent.
    this.at(source, "blobs", digest);
    if (await this.blobExists(target, digest)) return;
    const mount = await this.request(`${this.at(target, "blobs/uploads/")}?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(source)}`, { method: "POST" });
    if (mount.status === 201) return;
    if (mount.status !== 202) throw this.unexpected(`mount ${digest} into ${target}`, mount);
    // The registry opened an upload instead of mounting: the blob is read whole, then put.
    const location = this.uploadLocation(target, mount);
    const blob = await this.request(this.at(source, "blobs", digest));
    if (blob.status !== 200) throw this.unexpected(`GET blob ${source}@${digest}`, blob);
    if (sha256Digest(blob.body) !== digest) throw new RegistryError(`GET blob ${source}@${digest} at ${this.registry}: the bytes do not match the digest`, blob.status, "a blob whose bytes do not match its digest", "integrity");
    await this.finishUpload(target, location, digest, blob.body);
  }

  /** Where an upload the registry opened (202) goes on, resolved against the address that answered. */
  private uploadLocation(repository: string, started: Answer): URL {
    const location = started.headers.get("location");
    if (location === null) throw new RegistryError(`upload into ${repository} at ${this.registry} gave no location`);
    return new URL(location, started.url);
  }

  /**
   * An upload's final PUT, with the blob's digest, through request() like every other: retried on a
   * transient failure, a 401 said as one (on another origin, without the login: request()).
   */
  private async finishUpload(repository: string, location: URL, digest: string, body: Uint8Array): Promise<void> {
    location.searchParams.set("digest", digest);
    const put = await this.request(location.toString(), { method: "PUT", headers: { "content-type": "application/octet-stream" }, body, sentBy: { kind: "upload" } });
    if (put.status === 201) return;
    // A retried PUT whose first attempt landed finds its upload closed: the blob being there is the answer.
    if (put.attempts > 1 && await this.blobExists(repository, digest)) return;
    throw this.unexpected(`PUT blob ${repository}@${digest}`, put);
  }

  /**
   * Uploads a small blob whole (POST, then PUT with its digest): what a signature or an attestation
   * needs. A blob already there is success without an upload (a HEAD first), or, `unchecked`, is
   * uploaded again without asking (the registry accepts a blob it has: 201), for a caller whose
   * blobs are almost never there: a request fewer each. Returns its digest.
   */
  async putBlob(repository: string, bytes: Buffer, options: { unchecked?: boolean } = {}): Promise<string> {
    const digest = sha256Digest(bytes);
    if (options.unchecked !== true && await this.blobExists(repository, digest)) return digest;
    const start = await this.request(this.at(repository, "blobs/uploads/"), { method: "POST" });
    if (start.status !== 202) throw this.unexpected(`start an upload into ${repository}`, start);
    await this.finishUpload(repository, this.uploadLocation(repository, start), digest, bytes);
    return digest;
  }

  /** Whether a blob exists (HEAD: 200 yes, 404 no; anything else is an error). */
  async blobExists(repository: string, digest: string): Promise<boolean> {
    const answer = await this.request(this.at(repository, "blobs", digest), { method: "HEAD" });
    if (this.isNotFound(`HEAD blob ${repository}@${digest}`, answer)) return false;
    if (answer.status !== 200) throw this.unexpected(`HEAD blob ${repository}@${digest}`, answer);
    return true;
  }

  /** The image config (labels and all) behind a tag or digest. */
  async imageConfig(repository: string, reference: string): Promise<ImageConfig | undefined> {
    const found = await this.manifest(repository, reference);
    return found === undefined ? undefined : this.configOf(repository, found);
  }

  /** The image config a manifest points at (one request, none when cached; none for an index). Checked against its digest. */
  async configOf(repository: string, found: ManifestResult): Promise<ImageConfig | undefined> {
    const configDigest = found.manifest.config?.digest;
    if (configDigest === undefined) return undefined;
    let bytes = this.blobCache?.read(configDigest);
    if (bytes === undefined) {
      const answer = await this.request(this.at(repository, "blobs", configDigest));
      if (answer.status !== 200) throw this.unexpected(`GET the config blob of ${repository}@${found.digest}`, answer);
      if (sha256Digest(answer.body) !== configDigest) {
        throw new RegistryError(`GET the config blob of ${repository}@${found.digest} at ${this.registry}: its bytes do not match its digest ${configDigest}`, answer.status, "an image config whose bytes do not match its digest", "integrity");
      }
      bytes = answer.body;
      this.blobCache?.write(configDigest, bytes);
    }
    return parseJson<ImageConfig>(bytes, `the image config of ${repository}@${found.digest}`);
  }

  /**
   * A blob's bytes as a stream, for blobs too large to hold (image layers): the stream checks them
   * as they pass, and ends in an error, never quietly, when their sha256 is not `digest` or their
   * length is not `size` (when given) — a consumer that reads to the end has read exactly the blob.
   * Opening it is tried again like any read (transient failures, with backoff); once bytes flow,
   * a failure (reset, no data for the request timeout) ends the stream in a RegistryError, which
   * the caller may answer by opening it again. A 404 is an error too: the blob was asked for by a
   * manifest that names it.
   */
  async blobStream(repository: string, digest: string, size?: number): Promise<ReadableStream<Uint8Array>> {
    const what = `GET blob ${repository}@${digest}`;
    if (!/^sha256:[0-9a-f]{64}$/.test(digest)) throw new RegistryError(`${what} at ${this.registry}: "${digest}" is not a sha256 digest, so its bytes cannot be checked`, undefined, "a digest that is not sha256", "malformed");
    let address = "";
    /** As request(): a token asked for after a 401, once. */
    let token: string | undefined;
    for (let attempt = 1; ; attempt++) {
      const last = attempt >= this.attempts;
      // The request timeout bounds the wait for an answer, then each wait for more bytes: a large
      // blob may take longer than the timeout to arrive, a stalled one does not hang.
      const abort = new AbortController();
      let timer = setTimeout(() => abort.abort(new DOMException("no answer", "TimeoutError")), this.timeoutMs);
      let response: Response;
      try {
        await this.resolveScheme();
        address = `${this.base}${this.at(repository, "blobs", digest)}`;
        response = await this.fetcher(address, { headers: this.loginFor(address, "GET", {}, token), signal: abort.signal });
      } catch (error) {
        clearTimeout(timer);
        const code = error instanceof RegistryError ? causeCode((error as { cause?: unknown }).cause) : causeCode(error);
        if (!last && isTransientCode(code)) {
          await this.sleep(retryDelayMs(attempt));
          continue;
        }
        if (error instanceof RegistryError) throw error;
        throw networkError(`${what} at ${this.registry}${attempt > 1 ? ` (${attempt} attempts)` : ""}`, error, this.timeoutMs);
      }
      if (response.status !== 200 || response.body === null) {
        let body: Buffer;
        try {
          body = Buffer.from(await response.arrayBuffer());
        } catch {
          body = Buffer.alloc(0);
        } finally {
          clearTimeout(timer);
        }
        const answer: Answer = { url: response.url || address, status: response.status, headers: response.headers, body, attempts: attempt };
        if (!last && isTransientStatus(answer.status)) {
          await this.sleep(retryDelayMs(attempt, answer.headers.get("retry-after")));
          continue;
        }
        if (answer.status === 401) {
          const next = await this.afterRefusal(answer, address, "GET", token);
          if ("error" in next) throw next.error;
          token = next.token;
          attempt--;
          continue;
        }
        throw this.unexpected(what, answer);
      }
      const reader = response.body.getReader();
      const hash = createHash("sha256");
      let received = 0;
      const waitForMore = (): void => {
        clearTimeout(timer);
        timer = setTimeout(() => abort.abort(new DOMException("no more bytes", "TimeoutError")), this.timeoutMs);
      };
      const integrity = (detail: string): RegistryError =>
        new RegistryError(`${what} at ${this.registry}: ${detail}`, 200, "a blob whose bytes do not match its digest", "integrity");
      waitForMore();
      return new ReadableStream<Uint8Array>({
        pull: async (controller) => {
          let chunk: Awaited<ReturnType<typeof reader.read>>;
          try {
            chunk = await reader.read();
          } catch (error) {
            clearTimeout(timer);
            controller.error(networkError(`${what} at ${this.registry}, after ${received} bytes`, error, this.timeoutMs));
            return;
          }
          if (chunk.done) {
            clearTimeout(timer);
            const computed = `sha256:${hash.digest("hex")}`;
            if (size !== undefined && received !== size) controller.error(integrity(`${received} bytes arrived where the manifest says ${size}`));
            else if (computed !== digest) controller.error(integrity(`the blob's bytes do not match its digest (computed ${computed})`));
            else controller.close();
            return;
          }
          waitForMore();
          received += chunk.value.byteLength;
          if (size !== undefined && received > size) {
            clearTimeout(timer);
            await reader.cancel().catch(() => undefined);
            controller.error(integrity(`more than the ${size} bytes the manifest says arrived`));
            return;
          }
          hash.update(chunk.value);
          controller.enqueue(chunk.value);
        },
        cancel: async (reason) => {
          clearTimeout(timer);
          await reader.cancel(reason).catch(() => undefined);
        },
      });
    }
  }

  /**
   * What follows a 401 to a request sent to `address` (`sentToken`: the token it carried, if one was
   * just asked for it): a registry that logs in with tokens, answering from its own origin, gets
   * the token its Bearer challenge's token server gives (once a request), for the request to be
   * sent again; anything else is the error to stop with. A token ask shared with other requests
   * fails with an error of this request's own (ownCopy).
   */
  private async afterRefusal(answer: { readonly url: string; readonly headers: { get(name: string): string | null } }, address: string, method: string, sentToken: string | undefined, sentBy?: SentBy): Promise<{ token: string } | { error: RegistryError }> {
    const challenge = this.isOwnOrigin(answer.url) ? bearerChallenge(answer.headers.get("www-authenticate")) : undefined;
    if (challenge === undefined) return { error: this.refused(address, answer.url, sentBy) };
    if (sentToken !== undefined) return { error: this.refusedToken(address, method, challenge) };
    try {
      return { token: await this.askToken(challenge, address, method) };
    } catch (error) {
      return { error: ownCopy(error) };
    }
  }

  /**
   * A 401 to a request that carried the token just given for it: the login lacks what it asked for,
   * or the registry does not take its token server's tokens at all.
   */
  private refusedToken(address: string, method: string, challenge: BearerChallenge): RegistryError {
    const wanted = challenge.scope ?? scopeKey(address, method)?.key ?? "what this request does";
    const login = this.hasLogin ? `the login from ${this.loginSource}` : "no login was found, so the token is an anonymous one";
    return new RegistryError(`the registry at ${this.registry} refused the token its token server gave for ${method} ${new URL(address).pathname} (HTTP 401, asking for ${wanted}; ${login}): the login may not have those rights, or the registry may not trust the tokens its token server signs; fix: give the login what ${wanted} names (type:name:actions) in the registry, or log in as one that has it; if it has, check that the registry's auth.token settings (issuer, service, rootcertbundle) are its token server's`, 401, describeStatus(401));
  }

  /** Whether a login was found: a user name and password, or an identity token. */
  private get hasLogin(): boolean {
    return this.authorization !== undefined || this.identityToken !== undefined;
  }

  /** What a refusal says of the login: none found, or where the refused one came from (never the secret). */
  private loginSaid(): string {
    return this.hasLogin ? `the login from ${this.loginSource} was refused` : "no login was found";
  }

  /** A 401: the login was refused, or there is none; names where the login came from, never the secret. */
  private refusedLogin(): RegistryError {
    // An identity token is never sent to the registry itself: only a Bearer challenge's token server takes it.
    const login = this.identityToken === undefined ? this.loginSaid() : `the login from ${this.loginSource} is an identity token, which only a registry that logs in with tokens (a Bearer challenge) takes, and this one did not ask for a token`;
    return new RegistryError(`the registry at ${this.registry} refused the credentials (HTTP 401; ${login}): set strata:registryUsername and strata:registryPassword (pulumi config set --secret), or docker login ${this.registry} (a credential helper's login counts)`, 401, describeStatus(401));
  }

  /** A list page's next page (Link rel=next), resolved against the page it came from, as a browser does (`/v2/…?last=`, `?last=`, or whole). */
  private nextLink(header: string | null, page: string, what: string): string | undefined {
    if (header === null) return undefined;
    // Any spelling RFC 8288 allows (rel=next unquoted, other parameters first, "next last", any
    // case): a reader that knew only the distribution registry's would end the list at a page
    // without an error, and a delete trusting the list would take what a later page's tag holds.
    let links: string[];
    try {
      links = LinkHeader.parse(header).rel("next").map((reference) => reference.uri);
    } catch (error) {
      throw new RegistryError(`GET ${what} at ${this.registry}: its Link header "${header.slice(0, 200)}" cannot be read (${(error as Error).message}), so Strata cannot tell whether the list goes on`, undefined, "a Link header that cannot be read", "malformed");
    }
    if (links.length > 1 && new Set(links).size > 1) throw new RegistryError(`GET ${what} at ${this.registry}: its Link header names ${links.length} next pages (${links.join(", ")}), so Strata cannot tell which holds the rest of the list`, undefined, "a Link header with several next pages", "malformed");
    const link = links[0];
    if (link === undefined) return undefined;
    if (!URL.canParse(link, page)) throw new RegistryError(`GET ${what} at ${this.registry}: the next page's link "${link}" is not an address`, undefined, "a next-page link that is not an address", "malformed");
    return new URL(link, page).toString();
  }

  /** Whether an address is the registry's own origin (scheme, host and port), the only one its login is sent to. */
  private isOwnOrigin(address: string): boolean {
    return new URL(address).origin === new URL(this.base).origin;
  }

  /**
   * A 401 to a request sent to `asked`, answered from `answeredFrom` (the same, or where redirects
   * took it). From the registry's own origin, the login's fault (refusedLogin; also when redirects
   * went elsewhere and came back, without the login since they left). From another origin, where no
   * login is sent by design, configured or not: how the request got there (a redirect, or
   * `sentBy`: an address the registry answered with) and the fix for that.
   */
  private refused(asked: string, answeredFrom: string, sentBy?: SentBy): RegistryError {
    if (this.isOwnOrigin(answeredFrom)) return this.refusedLogin();
    const own = new URL(this.base);
    const there = new URL(answeredFrom);
    const redirected = new URL(asked).origin !== there.origin;
    const how = redirected ? "a redirect" : sentBy === undefined ? "a request" : sentBy.kind === "upload" ? "an upload" : `the next page of ${sentBy.of}`;
    const otherName = `when ${there.host} is this registry under another name, set strata:registry to it`;
    const fix = there.host === own.host
      ? `the registry names its own address with ${there.protocol}// though Strata reaches it over ${own.protocol}//: set the distribution registry's http.relativeurls: true (or http.host), or have the TLS proxy in front of it pass X-Forwarded-Proto`
      : redirected
        ? "have its storage's redirects need no login (signed URLs), or turn them off (the distribution registry's storage.redirect.disable: true)"
        : sentBy?.kind === "next page"
          ? `${otherName}; else have the registry, or what sits in front of it, write relative Link headers (the distribution registry does)`
          : `${otherName}; else set the distribution registry's http.relativeurls: true (or http.host), or have the proxy in front of it pass X-Forwarded-Host and X-Forwarded-Proto`;
    return new RegistryError(`the registry at ${this.registry} sent ${how} to ${there.origin}, not its own address ${own.origin}, and ${there.origin} asked for a login (HTTP 401): Strata sends a registry's login only to the registry itself, as Docker does. fix: ${fix}`, 401, `HTTP 401 from ${there.origin}, another origin, where the login is not sent`, "elsewhere");
  }

  /**
   * Whether an answer says "not found": a 404 from the registry's own origin. A 404 from wherever a
   * redirect took the request is an error (notFoundElsewhere); any other status is not "not found".
   */
  private isNotFound(what: string, answer: Answer): boolean {
    if (answer.status !== 404) return false;
    if (this.isOwnOrigin(answer.url)) return true;
    throw this.notFoundElsewhere(what, answer);
  }

  /**
   * A 404 from another origin than the registry's, where a redirect took the request: only the
   * registry can say that what it was asked for does not exist (a login page, a proxy's or a
   * storage's 404 says nothing about it), so this is not "not found".
   */
  private notFoundElsewhere(what: string, answer: Answer): RegistryError {
    const there = new URL(answer.url).origin;
    return new RegistryError(`${what} at ${this.registry}: a redirect took it to ${there}, which answered HTTP 404; only the registry itself can say that something does not exist, so Strata cannot tell (check what redirects the registry's requests there)`, 404, `HTTP 404 from ${there}, another origin`, "elsewhere");
  }

  /** The error for an answer that is neither found nor not found: what was asked, where, what came back. */
  private unexpected(what: string, answer: Answer): RegistryError {
    const tries = answer.attempts > 1 ? ` after ${answer.attempts} attempts` : "";
    const detail = answer.body.toString("utf8").trim().slice(0, 200);
    const code = /"code"\s*:\s*"([A-Z_]+)"/.exec(detail)?.[1];
    return new RegistryError(`${what} at ${this.registry}: ${describeStatus(answer.status)}${code === undefined ? "" : ` ${code}`}${tries}`, answer.status, `${describeStatus(answer.status)}${tries}`);
  }
}

/** JSON from a registry answer; bytes that do not parse are an error, not an empty answer. */
export function parseJson<T>(bytes: Buffer, what: string): T {
  try {
    return JSON.parse(bytes.toString("utf8")) as T;
  } catch (error) {
    throw new RegistryError(`${what} is not valid JSON (${(error as Error).message})`, undefined, "an answer that does not parse", "malformed");
  }
}

/** The code of a network failure: node:http's (ECONNRESET, …), fetch's cause's (UND_ERR_SOCKET, …), or TIMEOUT for our own. */
function causeCode(error: unknown): string | undefined {
  const failure = error as { name?: string; code?: string; cause?: { code?: string; name?: string } } | undefined;
  if (failure?.name === "TimeoutError" || failure?.cause?.name === "TimeoutError") return "TIMEOUT";
  return failure?.cause?.code ?? failure?.code;
}

/** A TLS failure in a user's words: plain HTTP where TLS was asked for, or OpenSSL's reason for a handshake refused. */
function tlsFailure(code: string, error: unknown): string {
  const text = messageOf(error);
  if (code === "ERR_SSL_WRONG_VERSION_NUMBER" || /wrong version number/i.test(text)) return `the answer was not TLS (${code}): the registry may speak plain HTTP, which Strata uses only for a loopback registry`;
  const reason = /SSL routines:[^:]*:([^:]+):/.exec(text)?.[1] ?? text.trim();
  return `the TLS handshake failed (${code}): ${reason}`;
}

/** Node's codes (OpenSSL's verify results) for a certificate chain that no CA Node trusts signed. */
const UNTRUSTED_CERTIFICATE = new Set(["DEPTH_ZERO_SELF_SIGNED_CERT", "SELF_SIGNED_CERT_IN_CHAIN", "UNABLE_TO_GET_ISSUER_CERT", "UNABLE_TO_GET_ISSUER_CERT_LOCALLY", "UNABLE_TO_VERIFY_LEAF_SIGNATURE", "CERT_UNTRUSTED"]);

/**
 * Whether an HTTPS attempt's failure says the port does not speak TLS at all: OpenSSL read
 * something that is not a TLS record (a plain-HTTP server's answer reads as a wrong version
 * number; bytes that look like an HTTP request, as "http request"), or the connection ended before
 * TLS was set up. Only then is a loopback registry asked over HTTP; a reset after the TLS
 * handshake (transport.ts marks it `tlsEstablished`) came from a server that speaks TLS.
 */
function answeredWithoutTls(code: string | undefined, error: unknown): boolean {
  if (code === "ECONNRESET") return (error as { tlsEstablished?: unknown }).tlsEstablished !== true;
  if (code !== "EPROTO" && code?.startsWith("ERR_SSL_") !== true) return false;
  return code === "ERR_SSL_WRONG_VERSION_NUMBER" || code === "ERR_SSL_PACKET_LENGTH_TOO_LONG" || code === "ERR_SSL_HTTP_REQUEST"
    || /wrong version number|packet length too long|http request/i.test(messageOf(error));
}

/** Whether a failure is TLS refusing the registry: its certificate (OpenSSL's verify results, Node's host name check) or the handshake. */
function tlsRefusal(code: string | undefined): code is string {
  if (code === undefined) return false;
  return code === "EPROTO" || code.startsWith("ERR_SSL_") || code === "UNSPECIFIED" || UNTRUSTED_CERTIFICATE.has(code)
    || /^(CERT_|ERR_TLS_CERT_|UNABLE_TO_|ERROR_IN_CERT_|INVALID_|PATH_LENGTH_)/.test(code);
}

/** A failure's own words: fetch's cause's, else its own. */
function messageOf(error: unknown): string {
  return (error as { cause?: { message?: string }; message?: string }).cause?.message ?? (error as { message?: string }).message ?? "";
}

/**
 * A certificate Node refused, with the fix: a registry behind its own CA is the usual case, and
 * Node does not read the Docker engine's certs.d, so the CA has to be given to Strata too
 * (README, registry logins). Other refusals keep Node's own words and name what to look at.
 */
function certificateFailure(code: string, error: unknown): string {
  const message = messageOf(error);
  if (UNTRUSTED_CERTIFICATE.has(code)) {
    const intermediate = code === "UNABLE_TO_VERIFY_LEAF_SIGNATURE" ? ", or, if that CA is trusted already, make the registry send its intermediate certificates with its own" : "";
    return `the registry's TLS certificate is not signed by a CA this machine trusts (${code}: ${message}): give Strata the CA that signed it, NODE_EXTRA_CA_CERTS=<ca.pem> (the Docker engine takes the same CA as /etc/docker/certs.d/<host:port>/ca.crt)${intermediate}`;
  }
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID") return `the registry's TLS certificate is for another host name (${code}: ${message}): use the registry address the certificate names, or issue it for this one`;
  if (code === "CERT_HAS_EXPIRED" || code === "CERT_NOT_YET_VALID") return `the registry's TLS certificate is not valid now (${code}: ${message}): renew it, or check this machine's clock`;
  return `the registry's TLS certificate was refused (${code}: ${message}): issue it as a server certificate from a CA this machine trusts`;
}

/** A network failure as a RegistryError that says what happened in a user's words. */
function networkError(what: string, error: unknown, timeoutMs: number): RegistryError {
  const code = causeCode(error);
  const tls = tlsRefusal(code);
  const answer = code === "TIMEOUT" ? `no answer within ${timeoutMs / 1000} s`
    : code === "ECONNREFUSED" ? "connection refused (nothing listening)"
    : code === "ECONNRESET" || code === "UND_ERR_SOCKET" || code === "UND_ERR_CLOSED" ? `connection reset (${code})`
    : code === "EPROTO" || code?.startsWith("ERR_SSL_") === true ? tlsFailure(code, error)
    : tls ? certificateFailure(code, error)
    : `${(error as Error).message} (${code ?? (error as { cause?: { message?: string } }).cause?.message ?? "no detail"})`;
  const wrapped = new RegistryError(`${what}: ${answer}`, undefined, answer, tls ? "tls" : undefined);
  (wrapped as { cause?: unknown }).cause = error;
  return wrapped;
}
