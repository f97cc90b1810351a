/**
 * Builds and pushes one image through the docker CLI against the local engine.
 * The legacy builder is used on purpose: the CLI on our machines has no buildx
 * plugin, and the legacy builder honours FROM <repo@digest> and --iidfile.
 */
import { execFile, spawn } from "node:child_process";
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { type RegistryCredentials } from "../registry.js";

export interface BuildRequest {
  readonly imageName: string;
  readonly context: string;
  readonly dockerfile: string;
  readonly platform: string;
  readonly buildArgs: Readonly<Record<string, string>>;
  readonly labels: Readonly<Record<string, string>>;
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
        const hint = daemonDown ? "\nThe Docker engine is not running: start it with scripts/services.sh start (or systemctl start docker)." : "";
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

export async function buildImage(request: BuildRequest, configDir?: string): Promise<string> {
  const scratch = mkdtempSync(path.join(tmpdir(), "strata-build-"));
  const iidFile = path.join(scratch, "iid");
  try {
    const args = ["build", "--iidfile", iidFile, "--platform", request.platform, "-f", request.dockerfile, "-t", request.imageName];
    for (const name of Object.keys(request.buildArgs).sort()) args.push("--build-arg", `${name}=${request.buildArgs[name] ?? ""}`);
    for (const name of Object.keys(request.labels).sort()) args.push("--label", `${name}=${request.labels[name] ?? ""}`);
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
async function traced<T>(phase: string, imageName: string, task: () => Promise<T>): Promise<T> {
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
    const imageId = await traced("build", request.imageName, () => buildImage(request, configDir));
    const repoDigest = push ? await traced("push", request.imageName, () => pushImage(request.imageName, configDir)) : imageId;
    return { imageId, repoDigest };
  } finally {
    if (configDir !== undefined) rmSync(configDir, { recursive: true, force: true });
  }
}
