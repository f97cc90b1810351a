/**
 * The Docker engine's API at its most basic: where it listens (DOCKER_HOST as
 * the docker CLI reads it), one GET, and the message for an engine that is not
 * running. The program asks it before declaring a single build, so a stopped
 * engine is one clear line instead of an error per layer.
 */
import { execFile } from "node:child_process";
import http from "node:http";
import { type Builder, type PoolEngine } from "../core/config.js";
import { enginePlatform, isLocalEngine, qemuBinfmtName } from "../core/platforms.js";
import { UserError } from "../core/problems.js";
import { credentialStoreProblem, dockerConfigDir } from "../registry/logins.js";
import { BINFMT_DIR, emulationRegistered } from "../engine/emulation.js";

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

export const ENGINE_DOWN_HINT = "The Docker engine is not running: start it with scripts/services.sh start (the project's engine, when DOCKER_HOST is unset), or start the engine DOCKER_HOST names.";

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

/** An engine Strata's own Engine API client speaks to: a unix socket, or tcp:// without TLS (the default socket when unset). */
function plainEndpoint(dockerHost: string | undefined): boolean {
  return dockerHost === undefined || dockerHost === "" || dockerHost.startsWith("unix://") || (dockerHost.startsWith("tcp://") && !process.env.DOCKER_TLS_VERIFY);
}

/**
 * Throws the engine-down message when the engine does not answer its ping; otherwise the Engine
 * API version it speaks (its /version), or undefined when it does not say. Engines behind TLS or
 * SSH are left to the docker provider, which has their certificates and helpers: undefined.
 */
export async function checkEngine(dockerHost: string | undefined = process.env.DOCKER_HOST): Promise<string | undefined> {
  if (!plainEndpoint(dockerHost)) return undefined;
  const endpoint = engineEndpoint(dockerHost);
  const { status } = await engineGet("/_ping", endpoint);
  if (status !== 200) throw new UserError(`the Docker engine answered its ping with HTTP ${status}; fix: check that DOCKER_HOST points at a Docker engine and that it is healthy`);
  const version = await engineGet("/version", endpoint);
  if (version.status !== 200) return undefined;
  try {
    const apiVersion = (JSON.parse(version.body) as { ApiVersion?: unknown }).ApiVersion;
    return typeof apiVersion === "string" && apiVersion !== "" ? apiVersion : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Pings every engine of a pool (those with TLS certificates are left to the provider); without a
 * pool, DOCKER_HOST's. For docker.Image builds, that the Docker client config's credential store
 * answers `list` (checkCredentialStore). Then, for each platform the stack builds, that an engine can
 * run its build steps (checkPlatforms): before anything is declared, so nothing is built or pushed otherwise.
 * Returns each engine's Engine API version, in the pool's order (undefined: not asked or not said).
 */
export async function checkEngines(pool: readonly PoolEngine[] | undefined, platforms: readonly string[] = [], builder: Builder = "docker"): Promise<(string | undefined)[]> {
  const engines = pool ?? [{ host: process.env.DOCKER_HOST ?? "" }];
  const apiVersions = await Promise.all(engines.map((engine) => (engine.certPath === undefined ? checkEngine(engine.host) : Promise.resolve(undefined))));
  if (builder === "docker") checkCredentialStore();
  await checkPlatforms(engines, platforms);
  return apiVersions;
}

/**
 * The docker plugin asks the Docker config's credential store for every login it holds before each
 * docker.Image build, whatever login the stack has, and stops with a bare "error: EOF" when the
 * helper answers `list` with nothing. Asked here first. (Strata's own builder does not stop on it:
 * it asks a helper for the registry's login only, with `get`, and `docker build` ignores `list` failures.)
 */
export function checkCredentialStore(configDir: string = dockerConfigDir(), env: NodeJS.ProcessEnv = process.env): void {
  const found = credentialStoreProblem(configDir, env);
  if (found !== undefined) throw new UserError(`${found.problem}. Nothing was built or pushed. fix: ${found.fix}`);
}

/**
 * The platform an engine runs natively, from its info: over the API for a plain socket or port,
 * through the docker CLI (which has the TLS and SSH support) otherwise; undefined when it cannot tell.
 */
async function engineArchitecture(engine: PoolEngine): Promise<string | undefined> {
  let info: { OSType?: string; Architecture?: string } | undefined;
  if (engine.certPath === undefined && plainEndpoint(engine.host)) {
    const { status, body } = await engineGet("/info", engineEndpoint(engine.host === "" ? undefined : engine.host));
    if (status === 200) info = JSON.parse(body) as typeof info;
  } else {
    const tls = engine.certPath === undefined ? [] : ["--tlsverify", "--tlscacert", `${engine.certPath}/ca.pem`, "--tlscert", `${engine.certPath}/cert.pem`, "--tlskey", `${engine.certPath}/key.pem`];
    info = await new Promise((resolve) => {
      execFile("docker", ["-H", engine.host, ...tls, "info", "--format", "{{json .}}"], { timeout: 30_000, maxBuffer: 16 << 20 }, (error, stdout) => {
        try {
          resolve(error === null ? (JSON.parse(stdout) as typeof info) : undefined);
        } catch {
          resolve(undefined);
        }
      });
    });
  }
  return info?.Architecture === undefined ? undefined : enginePlatform(info.OSType ?? "linux", info.Architecture);
}

/**
 * Each platform needs an engine that builds it natively (one naming it in strata:engines, or whose
 * own architecture it is) or an engine on this machine with qemu-user-static registered for it.
 * Strata cannot see an engine elsewhere's binfmt_misc, so a remote engine counts only for its own
 * platform: an unknown is not a yes.
 */
export async function checkPlatforms(engines: readonly PoolEngine[], platforms: readonly string[]): Promise<void> {
  if (platforms.length === 0) return;
  const native = await Promise.all(engines.map((engine) => engine.platform ?? engineArchitecture(engine)));
  for (const platform of platforms) {
    // Builds of a platform go to the engines naming it, else to those naming none (core/placement.ts).
    const named = engines.some((engine) => engine.platform === platform);
    if (named) continue;
    const candidates = engines.map((engine, index) => ({ engine, native: native[index] })).filter(({ engine }) => engine.platform === undefined);
    if (candidates.length === 0) {
      throw new UserError(`no engine of strata:engines builds ${platform}: each names another platform. Nothing was built or pushed. fix: add an engine for it ({host, platform: "${platform}"}) or one naming no platform`);
    }
    for (const { engine, native: enginePlatformName } of candidates) {
      if (enginePlatformName === platform) continue;
      const where = engine.host === "" ? "this machine's Docker engine" : engine.host;
      if (!isLocalEngine(engine.host)) {
        throw new UserError(`${platform} builds would run on ${where} (${enginePlatformName ?? "its platform unknown"}) under emulation, which Strata cannot check on another machine. Nothing was built or pushed. fix: name the platform that engine builds in strata:engines ({host: "${engine.host}", platform: "…"}), or add an engine that builds ${platform} natively`);
      }
      if (!emulationRegistered(platform)) {
        const name = qemuBinfmtName(platform);
        throw new UserError(`${platform} build steps need emulation on ${where} (a ${enginePlatformName ?? "?"} engine), and ${name === undefined ? `no qemu-user-static interpreter exists for ${platform}` : `${name} is not registered in binfmt_misc (${BINFMT_DIR})`}. Nothing was built or pushed. fix: scripts/services.sh emulation ${platform} (registers Debian's qemu-user-static; root), or name an engine that builds ${platform} natively in strata:engines ({host, platform: "${platform}"})`);
      }
    }
  }
}
