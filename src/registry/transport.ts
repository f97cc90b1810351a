/**
 * How the registry client sends a request whose answer it reads whole (every request but a
 * layer's stream): over `node:http`/`node:https` with keep-alive agents, not Node's `fetch`.
 * Under signing's load `fetch` took about twice this process's CPU a request (0.93 ms against
 * 0.44, README *What signing costs*), and a signing run makes 18 such requests an image.
 * A layer's stream (client.ts `blobStream`) stays on `fetch`: one request an image, and its
 * web stream is what the SBOM's gunzip reads.
 *
 * It answers as `fetch` does where the client looks: the status, headers by lower-case name,
 * the whole body; a failure is an error whose `code` (or whose `cause.name`, "TimeoutError") says
 * what happened, as the retry policy (retry.ts) reads fetch's. Redirects of a GET or HEAD are
 * followed, as `fetch` follows them (a registry may send a blob's GET to its storage); the login
 * goes only to the registry's own origin.
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
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  readonly body: Buffer;
}

export type Transport = (url: string, request: TransportRequest) => Promise<TransportAnswer>;

/** Redirects followed before the answer is taken as it is (fetch follows 20; a registry sends one). */
const MAX_REDIRECTS = 5;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const USER_AGENT = `strata node/${process.versions.node}`;

// One agent per scheme for the process, as `fetch` keeps one pool: connections are reused across
// clients and requests.
const agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };

/** The timeout's error, shaped as `AbortSignal.timeout`'s reason is (client.ts reads its name). */
function timeoutError(): Error {
  return new DOMException("no answer", "TimeoutError");
}

function exchange(url: URL, request: TransportRequest, deadline: number): Promise<TransportAnswer & { location?: string }> {
  return new Promise((resolve, reject) => {
    const module = url.protocol === "https:" ? https : http;
    const agent = url.protocol === "https:" ? agents.https : agents.http;
    const body = request.body;
    // A body's length is always sent, never chunked (Node says 0 itself for a POST without one, as fetch does).
    // Named, as fetch names itself ("node"), so a registry's log (and the tests' fault proxy) can tell Strata's requests from the engine's.
    const headers = { "user-agent": USER_AGENT, ...request.headers, ...(body === undefined ? {} : { "content-length": String(body.byteLength) }) };
    const outgoing = module.request(url, { method: request.method, headers, agent }, (incoming) => {
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
        const raw = incoming.headers;
        const answer = {
          status: incoming.statusCode ?? 0,
          headers: {
            get(name: string): string | null {
              const value = raw[name.toLowerCase()];
              return value === undefined ? null : Array.isArray(value) ? value.join(", ") : value;
            },
          },
          body: Buffer.concat(chunks),
        };
        resolve(raw.location === undefined ? answer : { ...answer, location: raw.location });
      });
    });
    function fail(error: unknown): void {
      clearTimeout(timer);
      reject(error);
    }
    const timer = setTimeout(() => {
      const error = timeoutError();
      outgoing.destroy(error);
      reject(error);
    }, Math.max(0, deadline - Date.now()));
    outgoing.on("error", fail);
    outgoing.end(body);
  });
}

/** Sends one request and reads its whole answer (see the module comment). */
export const httpTransport: Transport = async (address, request) => {
  const deadline = Date.now() + request.timeoutMs;
  const origin = new URL(address).origin;
  let url = new URL(address);
  for (let redirects = 0; ; redirects++) {
    const sameOrigin = url.origin === origin;
    const headers = sameOrigin ? request.headers : Object.fromEntries(Object.entries(request.headers).filter(([name]) => name.toLowerCase() !== "authorization"));
    const answer = await exchange(url, { ...request, headers }, deadline);
    const follow = REDIRECTS.has(answer.status) && answer.location !== undefined && (request.method === "GET" || request.method === "HEAD") && redirects < MAX_REDIRECTS;
    if (!follow) return { status: answer.status, headers: answer.headers, body: answer.body };
    url = new URL(answer.location as string, url);
  }
};

/** A `fetch` (a test's fake, or the global one) as a Transport: the same request, its body read whole. */
export function fetchTransport(fetcher: typeof fetch): Transport {
  return async (url, request) => {
    const response = await fetcher(url, { method: request.method, headers: request.headers, ...(request.body === undefined ? {} : { body: new Uint8Array(request.body) }), signal: AbortSignal.timeout(request.timeoutMs) });
    const body = request.method === "HEAD" ? Buffer.alloc(0) : Buffer.from(await response.arrayBuffer());
    return { status: response.status, headers: response.headers, body };
  };
}
