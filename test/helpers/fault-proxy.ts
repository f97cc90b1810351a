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

export interface ProxiedRequest {
  readonly method: string;
  /** Path and query, e.g. `/v2/group/image/manifests/1.0-p0`. */
  readonly url: string;
}

export type FaultRule = (request: ProxiedRequest) => Fault | undefined;

export interface FaultProxy {
  /** `127.0.0.1:<port>`: use it as the registry. */
  readonly address: string;
  /** Sets the rule (undefined: forward everything). */
  setRule(rule: FaultRule | undefined): void;
  /** Requests that got a fault, as `METHOD url → kind`. */
  readonly injected: string[];
  /** Listens again after a "gone" fault (same port). */
  revive(): Promise<void>;
  close(): Promise<void>;
}

export async function startFaultProxy(upstream: { host: string; port: number }): Promise<FaultProxy> {
  let rule: FaultRule | undefined;
  const injected: string[] = [];
  const sockets = new Set<Socket>();
  let server: Server;
  let port = 0;

  const forward = (incoming: IncomingMessage, onAnswer: (answer: IncomingMessage) => void, onError: (error: Error) => void): void => {
    const outgoing = httpRequest({ host: upstream.host, port: upstream.port, method: incoming.method, path: incoming.url, headers: { ...incoming.headers, host: `${upstream.host}:${upstream.port}` } }, onAnswer);
    outgoing.on("error", onError);
    incoming.pipe(outgoing);
  };

  const handle = (incoming: IncomingMessage, response: ServerResponse): void => {
    const request = { method: incoming.method ?? "GET", url: incoming.url ?? "/" };
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
    injected.push(`${request.method} ${request.url} → ${fault.kind}`);
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
