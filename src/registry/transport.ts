/**
 * How the registry client sends a request whose answer it reads whole (every request but a
 * layer's stream): over `node:http`/`node:https` (Node's global keep-alive agents), not Node's `fetch`.
 * Under signing's load `fetch` took about twice this process's CPU a request (0.93 ms against
 * 0.44, README *What signing costs*), and a signing run makes 18 such requests an image.
 * A layer's stream (client.ts `blobStream`) stays on `fetch`: one request an image, and its
 * web stream is what the SBOM's gunzip reads.
 *
 * It answers as `fetch` does where the client looks: the status, headers by lower-case name,
 * the whole body; a failure is an error whose `code` (or whose `cause.name`, "TimeoutError") says
 * what happened, as the retry policy (retry.ts) reads fetch's. Redirects of a GET or HEAD are
 * followed, as `fetch` follows them (a registry may send a blob's GET to its storage), five at
 * most, within the one timeout; once a redirect leaves the origin asked, the login stays behind.
 * A GET or HEAD that fails on a kept-alive connection before any answer (the server had closed it,
 * most likely while it sat idle) is sent again on another connection at once; any other request's
 * failure there is marked `stale` and left to the client, which tries it again whatever its method
 * and counts the attempt (an upload's PUT that landed before the connection broke is then found by
 * its HEAD; without it, an upload's POST, never retried otherwise, would fail the run).
 */
import http from "node:http";
import https from "node:https";

export interface TransportRequest {
  readonly method: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: Uint8Array;
  /** The whole exchange, answer and body, must end within this; else a "TimeoutError". */
  readonly timeoutMs: number;
}

export interface TransportAnswer {
  /** Where the answer came from: the address asked, or the last redirect's. */
  readonly url: string;
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  readonly body: Buffer;
}

export type Transport = (url: string, request: TransportRequest) => Promise<TransportAnswer>;

/** Redirects followed before the answer is taken as it is (fetch follows 20; a registry sends one). */
const MAX_REDIRECTS = 5;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const USER_AGENT = `strata node/${process.versions.node}`;

/** The timeout's error, shaped as `AbortSignal.timeout`'s reason is (client.ts reads its name). */
function timeoutError(): Error {
  return new DOMException("no answer", "TimeoutError");
}

/**
 * A failure on a kept-alive connection before any answer came. Usually the server had closed it
 * while it sat idle and nothing reached it; but a server may also have done the request and then
 * dropped the connection, so only a GET or HEAD is sent again here.
 */
class StaleConnection extends Error {
  constructor(readonly failure: Error) {
    super("a kept-alive connection broke before any answer came");
  }
}

const STALE_CODES = new Set(["ECONNRESET", "EPIPE"]);

/** Whether a transport failure came on a kept-alive connection before any answer (client.ts may try it again, whatever the method). */
export function isStaleConnection(error: unknown): boolean {
  return (error as { stale?: unknown } | undefined)?.stale === true;
}

/** An answer, with the first of its Location headers: the one a redirect follows (several are not joined into one address). */
type Exchanged = Omit<TransportAnswer, "url"> & { readonly location?: string };

function exchange(url: URL, request: TransportRequest, deadline: number): Promise<Exchanged> {
  return new Promise((resolve, reject) => {
    const module = url.protocol === "https:" ? https : http;
    const body = request.body;
    // A body's length is always sent, never chunked (Node says 0 itself for a POST without one, as fetch does).
    // Named, as fetch names itself ("node"), so a registry's log (and the tests' fault proxy) can tell Strata's requests from the engine's.
    const headers = { "user-agent": USER_AGENT, ...request.headers, ...(body === undefined ? {} : { "content-length": String(body.byteLength) }) };
    let answered = false;
    // No agent of its own: Node's global one, as `fetch` keeps one pool for the process. Connections
    // are reused across clients and requests, an idle one is closed after 5 s (before a server that
    // closes idle connections without saying so does, most of the time), and NODE_USE_ENV_PROXY
    // applies as it does to `fetch`.
    const outgoing = module.request(url, { method: request.method, headers }, (incoming) => {
      answered = true;
      const chunks: Buffer[] = [];
      incoming.on("data", (chunk: Buffer) => chunks.push(chunk));
      const brokeOff = (): void => fail(Object.assign(new Error("the answer broke off"), { code: "ECONNRESET" }));
      incoming.on("error", fail);
      // An answer cut short ends in "close" without "end" (or in an "end" that is not complete).
      incoming.on("close", () => {
        if (!incoming.complete) brokeOff();
      });
      incoming.on("end", () => {
        if (!incoming.complete) {
          brokeOff();
          return;
        }
        clearTimeout(timer);
        // Every value of a repeated header, joined as fetch joins them (node's `headers` keeps only the first of some).
        const raw = incoming.headersDistinct;
        const answer = {
          status: incoming.statusCode ?? 0,
          headers: {
            get(name: string): string | null {
              return raw[name.toLowerCase()]?.join(", ") ?? null;
            },
          },
          body: Buffer.concat(chunks),
        };
        const location = incoming.headers.location;
        resolve(location === undefined ? answer : { ...answer, location });
      });
    });
    // Whether TLS was set up on the connection before it failed (a kept-alive one was): a reset
    // then came from a server that speaks TLS, which the client's scheme probe must not take for
    // a plain-HTTP port (client.ts answeredWithoutTls).
    let tlsEstablished = false;
    outgoing.on("socket", (socket) => {
      if (outgoing.reusedSocket) tlsEstablished = module === https;
      else socket.once("secureConnect", () => (tlsEstablished = true));
    });
    function fail(error: unknown): void {
      clearTimeout(timer);
      if (tlsEstablished && typeof error === "object" && error !== null) Object.assign(error, { tlsEstablished: true });
      reject(error);
    }
    const timer = setTimeout(() => {
      const error = timeoutError();
      outgoing.destroy(error);
      reject(error);
    }, Math.max(0, deadline - Date.now()));
    outgoing.on("error", (error: Error & { code?: string }) => {
      fail(!answered && outgoing.reusedSocket && STALE_CODES.has(error.code ?? "") ? new StaleConnection(error) : error);
    });
    outgoing.end(body);
  });
}

/** Sends one request and reads its whole answer (see the module comment). */
export const httpTransport: Transport = async (address, request) => {
  const deadline = Date.now() + request.timeoutMs;
  const origin = new URL(address).origin;
  let url = new URL(address);
  let headers = request.headers;
  for (let redirects = 0; ; redirects++) {
    // Once a redirect leaves the registry's origin the login stays behind, for the rest of the chain too (as fetch does).
    if (url.origin !== origin) headers = Object.fromEntries(Object.entries(headers).filter(([name]) => name.toLowerCase() !== "authorization"));
    const answer = await exchangeOnLiveConnection(url, { ...request, headers }, deadline);
    const follow = REDIRECTS.has(answer.status) && answer.location !== undefined && (request.method === "GET" || request.method === "HEAD") && redirects < MAX_REDIRECTS;
    if (!follow) return { url: url.toString(), status: answer.status, headers: answer.headers, body: answer.body };
    url = new URL(answer.location as string, url);
  }
};

/**
 * An exchange; a GET or HEAD is sent again while it fails on a kept-alive connection (each such
 * failure drops that connection, and a new one is never stale). Another method's such failure is
 * passed on marked `stale` (isStaleConnection).
 */
async function exchangeOnLiveConnection(url: URL, request: TransportRequest, deadline: number): Promise<Exchanged> {
  for (;;) {
    try {
      return await exchange(url, request, deadline);
    } catch (error) {
      if (!(error instanceof StaleConnection)) throw error;
      if (request.method !== "GET" && request.method !== "HEAD") throw Object.assign(error.failure, { stale: true });
    }
  }
}

/** A `fetch` (a test's fake, or the global one) as a Transport: the same request, its body read whole. */
export function fetchTransport(fetcher: typeof fetch): Transport {
  return async (url, request) => {
    const response = await fetcher(url, { method: request.method, headers: request.headers, ...(request.body === undefined ? {} : { body: new Uint8Array(request.body) }), signal: AbortSignal.timeout(request.timeoutMs) });
    const body = request.method === "HEAD" ? Buffer.alloc(0) : Buffer.from(await response.arrayBuffer());
    // A fake's Response has no address of its own: the one asked, as no redirect was followed.
    return { url: response.url || url, status: response.status, headers: response.headers, body };
  };
}
