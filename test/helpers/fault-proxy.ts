/**
 * A fault-injecting HTTP proxy on loopback, between Strata (its registry client, and the Docker
 * engine pushing for docker.Image) and a real registry. Every request is forwarded unchanged
 * unless the current rule returns a fault for it. Loopback only: it listens on 127.0.0.1 and
 * forwards to the registry given (127.0.0.1 too).
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { type Socket } from "node:net";

export type Fault =
  /** Answer with this status and a registry-style error body. */
  | { readonly kind: "status"; readonly status: number; readonly headers?: Readonly<Record<string, string>> }
  /** Forward, then send the headers and half the body, and reset the connection. */
  | { readonly kind: "reset mid-body" }
  /** Hold the request this long with no answer, then drop the connection. */
  | { readonly kind: "stall"; readonly ms: number }
  /** Forward, but change one byte of the body (headers, digest included, unchanged). */
  | { readonly kind: "corrupt body" }
  /** Stop listening and drop every connection: the registry is gone from here on. */
  | { readonly kind: "gone" };

/** Which route of the registry API (distribution spec) a request is. */
export type RequestKind = "version check" | "catalog" | "tag list" | "manifest" | "blob" | "blob upload" | "other";

/** Who sent a request, by its User-Agent: Strata's registry client ("strata node/<v>"; Node's fetch, "node", for layer streams), or the Docker engine pushing for docker.Image. */
export type Sender = "strata" | "docker engine" | "other";

/** A request as the proxy saw it, classified from its method, path and headers (never from what a rule wanted). */
export interface ProxiedRequest {
  readonly method: string;
  /** Path and query, e.g. `/v2/group/image/manifests/1.0-p0`. */
  readonly url: string;
  readonly kind: RequestKind;
  /** `group/image`, for the routes of one repository. */
  readonly repository?: string;
  /** A manifest's tag or digest, or a blob's digest (an upload's session id is left out). */
  readonly reference?: string;
  readonly sender: Sender;
  /** Whether it carried a login (an Authorization header). */
  readonly authorized: boolean;
}

/** A request that got a fault, and which. */
export interface Injection extends ProxiedRequest {
  readonly fault: Fault["kind"];
}

export type FaultRule = (request: ProxiedRequest) => Fault | undefined;

/** Routes of one repository: `/v2/<name>/tags/list`, `/manifests/<ref>`, `/blobs/uploads/[<id>]`, `/blobs/<digest>`; a name has slashes. */
const REPOSITORY_ROUTE = /^\/v2\/(.+)\/(tags\/list|manifests\/([^/]+)|blobs\/uploads\/[^/]*|blobs\/([^/]+))$/;

/** Classifies a request by the registry API's routes and its sender. */
export function classify(method: string, url: string, headers: Readonly<Record<string, string | string[] | undefined>>): ProxiedRequest {
  const pathname = url.replace(/\?.*$/, "");
  const userAgent = String(headers["user-agent"] ?? "");
  // Strata's client sends "strata node/<v>", Node's fetch (undici) "node"; the Docker engine "docker/<version> …".
  const sender: Sender = /^docker\//i.test(userAgent) ? "docker engine" : /^(strata|node|undici)\b/i.test(userAgent) ? "strata" : "other";
  const common = { method, url, sender, authorized: headers.authorization !== undefined };
  if (pathname === "/v2/" || pathname === "/v2") return { ...common, kind: "version check" };
  if (pathname === "/v2/_catalog") return { ...common, kind: "catalog" };
  const route = REPOSITORY_ROUTE.exec(pathname);
  if (route === null) return { ...common, kind: "other" };
  const [, repository, rest, manifestRef, blobDigest] = route as unknown as [string, string, string, string | undefined, string | undefined];
  if (rest === "tags/list") return { ...common, kind: "tag list", repository };
  if (manifestRef !== undefined) return { ...common, kind: "manifest", repository, reference: decodeURIComponent(manifestRef) };
  if (blobDigest !== undefined) return { ...common, kind: "blob", repository, reference: decodeURIComponent(blobDigest) };
  return { ...common, kind: "blob upload", repository };
}

export interface FaultProxy {
  /** `127.0.0.1:<port>`: use it as the registry. */
  readonly address: string;
  /** Sets the rule (undefined: forward everything). */
  setRule(rule: FaultRule | undefined): void;
  /** Every request that got a fault, in order. */
  readonly injected: Injection[];
  /** Listens again after a "gone" fault (same port). */
  revive(): Promise<void>;
  close(): Promise<void>;
}

export async function startFaultProxy(upstream: { host: string; port: number }): Promise<FaultProxy> {
  let rule: FaultRule | undefined;
  const injected: Injection[] = [];
  const sockets = new Set<Socket>();
  let server: Server;
  let port = 0;

  const forward = (incoming: IncomingMessage, onAnswer: (answer: IncomingMessage) => void, onError: (error: Error) => void): void => {
    // The Host header as sent, the proxy's: the suite's registry (no http.host or relativeurls,
    // scripts/services.sh) builds its absolute upload locations from it, so an upload's PATCH and PUT
    // come back through the proxy (where a fault can reach them) instead of going round it.
    const outgoing = httpRequest({ host: upstream.host, port: upstream.port, method: incoming.method, path: incoming.url, headers: incoming.headers }, onAnswer);
    outgoing.on("error", onError);
    incoming.pipe(outgoing);
  };

  const handle = (incoming: IncomingMessage, response: ServerResponse): void => {
    const request = classify(incoming.method ?? "GET", incoming.url ?? "/", incoming.headers);
    const fault = rule?.(request);
    const fail = (): void => {
      if (!response.headersSent) response.writeHead(502).end();
      else response.destroy();
    };
    if (fault === undefined) {
      forward(incoming, (answer) => {
        response.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(response);
      }, fail);
      return;
    }
    injected.push({ ...request, fault: fault.kind });
    switch (fault.kind) {
      case "status":
        incoming.resume();
        response.writeHead(fault.status, { "content-type": "application/json", ...fault.headers });
        response.end(JSON.stringify({ errors: [{ code: fault.status === 401 ? "UNAUTHORIZED" : "UNKNOWN", message: `injected HTTP ${fault.status}` }] }));
        return;
      case "stall": {
        incoming.resume();
        const timer = setTimeout(() => response.destroy(), fault.ms);
        response.on("close", () => clearTimeout(timer));
        return;
      }
      case "gone":
        response.destroy();
        void closeServer();
        return;
      case "reset mid-body":
      case "corrupt body":
        forward(incoming, (answer) => {
          const chunks: Buffer[] = [];
          answer.on("data", (chunk: Buffer) => chunks.push(chunk));
          answer.on("end", () => {
            const body = Buffer.concat(chunks);
            if (fault.kind === "reset mid-body") {
              response.writeHead(answer.statusCode ?? 502, { ...answer.headers, "content-length": String(body.length) });
              response.write(body.subarray(0, Math.floor(body.length / 2)));
              // A reset, not a clean close: the client sees the connection die mid-body.
              setTimeout(() => response.socket?.resetAndDestroy(), 10);
              return;
            }
            const altered = Buffer.from(body);
            // Whitespace inside the JSON: it still parses, only its digest is wrong.
            const at = altered.indexOf(0x7b);
            const changed = at < 0 ? Buffer.concat([altered, Buffer.from(" ")]) : Buffer.concat([altered.subarray(0, at + 1), Buffer.from(" "), altered.subarray(at + 1)]);
            response.writeHead(answer.statusCode ?? 502, { ...answer.headers, "content-length": String(changed.length) });
            response.end(changed);
          });
        }, fail);
        return;
    }
  };

  const listen = (): Promise<void> => new Promise((resolve) => {
    server = createServer(handle);
    server.on("connection", (socket) => {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
    });
    server.listen(port, "127.0.0.1", () => {
      port = (server.address() as { port: number }).port;
      resolve();
    });
  });
  const closeServer = (): Promise<void> => new Promise((resolve) => {
    server.close(() => resolve());
    for (const socket of sockets) socket.destroy();
  });

  await listen();
  return {
    address: `127.0.0.1:${port}`,
    setRule(next) {
      rule = next;
    },
    injected,
    revive: async () => {
      if (!server.listening) await listen();
    },
    close: closeServer,
  };
}
