/**
 * The Docker engine's API at its most basic: where it listens (DOCKER_HOST as
 * the docker CLI reads it), one GET, and the message for an engine that is not
 * running. The program asks it before declaring a single build, so a stopped
 * engine is one clear line instead of an error per layer.
 */
import http from "node:http";
import { type PoolEngine } from "../core/config.js";
import { UserError } from "../core/problems.js";

/** Where the engine listens, from DOCKER_HOST as the docker CLI reads it. */
export type EngineEndpoint = { readonly socketPath: string } | { readonly host: string; readonly port: number };

export function engineEndpoint(dockerHost: string | undefined = process.env.DOCKER_HOST): EngineEndpoint {
  if (dockerHost === undefined || dockerHost === "") return { socketPath: "/var/run/docker.sock" };
  if (dockerHost.startsWith("unix://")) return { socketPath: dockerHost.slice("unix://".length) };
  const tcp = /^tcp:\/\/([^:/]+):(\d+)\/?$/.exec(dockerHost);
  if (tcp !== null) return { host: tcp[1] as string, port: Number(tcp[2]) };
  throw new UserError(`DOCKER_HOST=${dockerHost} is not supported by Strata's BuildKit builder (unix:// or tcp://host:port); set STRATA_DOCKER_BUILDER=legacy to build through the docker CLI`);
}

/** API version every engine since 20.10 speaks. */
export const API = "/v1.41";

export const ENGINE_DOWN_HINT = "The Docker engine is not running: start it with scripts/services.sh start (or systemctl start docker).";

export function engineError(error: NodeJS.ErrnoException, endpoint: EngineEndpoint): Error {
  const where = "socketPath" in endpoint ? endpoint.socketPath : `${endpoint.host}:${endpoint.port}`;
  const down = error.code === "ENOENT" || error.code === "ECONNREFUSED";
  return new UserError(`cannot reach the Docker engine at ${where} (${error.code ?? error.message}).${down ? ` ${ENGINE_DOWN_HINT}` : " fix: check DOCKER_HOST and that the engine answers there"}`);
}

/** GET on the engine API; resolves with the status code and body. */
export function engineGet(pathAndQuery: string, endpoint: EngineEndpoint = engineEndpoint()): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.request({ ...endpoint, method: "GET", path: `${API}${pathAndQuery}` }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (body += chunk));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
    });
    request.on("error", (error: NodeJS.ErrnoException) => reject(engineError(error, endpoint)));
    request.end();
  });
}

/**
 * Throws the engine-down message when the engine does not answer its ping.
 * Engines behind TLS or SSH are left to the docker provider, which has their
 * certificates and helpers.
 */
export async function checkEngine(dockerHost: string | undefined = process.env.DOCKER_HOST): Promise<void> {
  const plain = dockerHost === undefined || dockerHost === "" || dockerHost.startsWith("unix://") || (dockerHost.startsWith("tcp://") && !process.env.DOCKER_TLS_VERIFY);
  if (!plain) return;
  const { status } = await engineGet("/_ping", engineEndpoint(dockerHost));
  if (status !== 200) throw new UserError(`the Docker engine answered its ping with HTTP ${status}; fix: check that DOCKER_HOST points at a Docker engine and that it is healthy`);
}

/** Pings every engine of a pool (those with TLS certificates are left to the provider); without a pool, DOCKER_HOST's. */
export async function checkEngines(pool: readonly PoolEngine[] | undefined): Promise<void> {
  if (pool === undefined) return checkEngine();
  await Promise.all(pool.filter((engine) => engine.certPath === undefined).map((engine) => checkEngine(engine.host)));
}
