/**
 * Builds and pushes one image against the local engine. Builds go through
 * BuildKit in the engine (engine-build.ts); pushes, pulls and logins through
 * the docker CLI, which handles registry credentials. STRATA_DOCKER_BUILDER=legacy
 * builds with `docker build` and the legacy builder instead (the CLI on our
 * machines has no buildx plugin, so that is what plain `docker build` does here).
 */
import { execFile, spawn } from "node:child_process";
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { BUILD_ARGS } from "../../core/plan.js";
import { type RegistryCredentials } from "../../registry/client.js";
import { ENGINE_DOWN_HINT, engineGet } from "../docker-engine.js";
import { engineBuild, type EngineBuildRequest } from "./engine-build.js";

export interface BuildRequest extends EngineBuildRequest {
  /** For a registry that wants a login; absent: the Docker config file's credentials, if any. */
  readonly registryAuth?: RegistryCredentials;
}

export interface BuildResult {
  /** `sha256:…`, the local image id. */
  readonly imageId: string;
  /** `repo@sha256:…` after a push; the image id when not pushed. */
  readonly repoDigest: string;
}

/** Runs docker; on failure the error carries the last lines of its output. */
export function docker(args: readonly string[], options: { env?: NodeJS.ProcessEnv; configDir?: string } = {}): Promise<string> {
  const fullArgs = options.configDir === undefined ? [...args] : ["--config", options.configDir, ...args];
  return new Promise((resolve, reject) => {
    execFile("docker", fullArgs, { env: { ...process.env, DOCKER_BUILDKIT: "0", ...options.env }, maxBuffer: 256 << 20 }, (error, stdout, stderr) => {
      if (error) {
        const output = `${stdout}\n${stderr}`.trim().split("\n").slice(-25).join("\n");
        const daemonDown = /Cannot connect to the Docker daemon|Is the docker daemon running/.test(output);
        const hint = daemonDown ? `\n${ENGINE_DOWN_HINT}` : "";
        reject(new Error(`docker ${args[0] ?? ""} failed:\n${output}${hint}`));
        return;
      }
      resolve(stdout);
    });
  });
}

/** `docker login` into a private config folder; the password goes through stdin, never argv or logs. */
function login(configDir: string, registry: string, auth: RegistryCredentials): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("docker", ["--config", configDir, "login", "--username", auth.username, "--password-stdin", registry], { stdio: ["pipe", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`docker login to ${registry} as ${auth.username} failed: ${stderr.trim().split("\n").pop() ?? ""}`))));
    child.stdin.end(auth.password);
  });
}

/** `legacy` (docker build, legacy builder) or `buildkit` (the engine's BuildKit, the default). */
export function builderKind(setting: string | undefined = process.env.STRATA_DOCKER_BUILDER): "legacy" | "buildkit" {
  if (setting === undefined || setting === "" || setting === "buildkit") return "buildkit";
  if (setting === "legacy") return "legacy";
  throw new Error(`STRATA_DOCKER_BUILDER=${setting} is not a builder: use buildkit (the default) or legacy`);
}

/**
 * BuildKit resolves FROM from the engine's images, but without a client
 * session it cannot log in to a registry; so a parent that is not on this
 * engine (an unchanged parent built on another machine) is pulled first,
 * with the same credentials as the push.
 */
async function ensureParentPresent(request: BuildRequest, configDir?: string): Promise<void> {
  const parentRef = request.buildArgs[BUILD_ARGS.baseImage];
  if (parentRef === undefined || parentRef === "") return;
  const { status } = await engineGet(`/images/${parentRef}/json`);
  if (status === 200) return;
  await docker(["pull", "--platform", request.platform, parentRef], configDir === undefined ? {} : { configDir });
}

/** Legacy builder through the docker CLI. */
export async function buildImageLegacy(request: BuildRequest, configDir?: string): Promise<string> {
  const scratch = mkdtempSync(path.join(tmpdir(), "strata-build-"));
  const iidFile = path.join(scratch, "iid");
  try {
    const args = ["build", "--iidfile", iidFile, "--platform", request.platform, "-f", request.dockerfile, "-t", request.imageName];
    for (const name of Object.keys(request.buildArgs).sort()) args.push("--build-arg", `${name}=${request.buildArgs[name] ?? ""}`);
    for (const name of Object.keys(request.labels).sort()) args.push("--label", `${name}=${request.labels[name] ?? ""}`);
    if (request.network !== undefined) args.push("--network", request.network);
    args.push(request.context);
    await docker(args, configDir === undefined ? {} : { configDir });
    return readFileSync(iidFile, "utf8").trim();
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** Pushes the tag and returns `repository@digest` as the registry reported it. */
export async function pushImage(imageName: string, configDir?: string): Promise<string> {
  const options = configDir === undefined ? {} : { configDir };
  const output = await docker(["push", imageName], options);
  const repository = imageName.replace(/:[^:/]*$/, "");
  const digest = /digest: (sha256:[a-f0-9]{64})/.exec(output)?.[1];
  if (digest !== undefined) return `${repository}@${digest}`;
  const inspected = JSON.parse(await docker(["image", "inspect", "--format", "{{json .RepoDigests}}", imageName], options)) as string[] | null;
  const match = (inspected ?? []).find((entry) => entry.startsWith(`${repository}@`));
  if (match === undefined) throw new Error(`pushed ${imageName} but the engine reports no digest for ${repository}`);
  return match;
}

/** With STRATA_TRACE=<file>, one JSON line per phase (for profiling; off by default). */
export async function traced<T>(phase: string, imageName: string, task: () => Promise<T>): Promise<T> {
  const file = process.env.STRATA_TRACE;
  if (file === undefined) return task();
  const start = Date.now();
  try {
    return await task();
  } finally {
    appendFileSync(file, `${JSON.stringify({ phase, image: imageName, start, end: Date.now() })}\n`);
  }
}

export async function buildAndPush(request: BuildRequest, push: boolean): Promise<BuildResult> {
  // With credentials, log in to a throwaway config folder: nothing lands in the user's Docker config.
  const configDir = request.registryAuth === undefined ? undefined : mkdtempSync(path.join(tmpdir(), "strata-docker-config-"));
  try {
    if (configDir !== undefined && request.registryAuth !== undefined) {
      await login(configDir, request.imageName.slice(0, request.imageName.indexOf("/")), request.registryAuth);
    }
    const imageId = await traced("build", request.imageName, async () => {
      if (builderKind() === "legacy") return buildImageLegacy(request, configDir);
      await ensureParentPresent(request, configDir);
      return engineBuild(request);
    });
    const repoDigest = push ? await traced("push", request.imageName, () => pushImage(request.imageName, configDir)) : imageId;
    return { imageId, repoDigest };
  } finally {
    if (configDir !== undefined) rmSync(configDir, { recursive: true, force: true });
  }
}
