/**
 * Builds and pushes one image through the docker CLI against the local engine.
 * The legacy builder is used on purpose: the CLI on our machines has no buildx
 * plugin, and the legacy builder honours FROM <repo@digest> and --iidfile.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

export interface BuildRequest {
  readonly imageName: string;
  readonly context: string;
  readonly dockerfile: string;
  readonly platform: string;
  readonly buildArgs: Readonly<Record<string, string>>;
  readonly labels: Readonly<Record<string, string>>;
}

export interface BuildResult {
  /** `sha256:…`, the local image id. */
  readonly imageId: string;
  /** `repo@sha256:…` after a push; the image id when not pushed. */
  readonly repoDigest: string;
}

/** Runs docker; on failure the error carries the last lines of its output. */
export function docker(args: readonly string[], options: { env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile("docker", [...args], { env: { ...process.env, DOCKER_BUILDKIT: "0", ...options.env }, maxBuffer: 256 << 20 }, (error, stdout, stderr) => {
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

export async function buildImage(request: BuildRequest): Promise<string> {
  const scratch = mkdtempSync(path.join(tmpdir(), "strata-build-"));
  const iidFile = path.join(scratch, "iid");
  try {
    const args = ["build", "--iidfile", iidFile, "--platform", request.platform, "-f", request.dockerfile, "-t", request.imageName];
    for (const name of Object.keys(request.buildArgs).sort()) args.push("--build-arg", `${name}=${request.buildArgs[name] ?? ""}`);
    for (const name of Object.keys(request.labels).sort()) args.push("--label", `${name}=${request.labels[name] ?? ""}`);
    args.push(request.context);
    await docker(args);
    return readFileSync(iidFile, "utf8").trim();
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** Pushes the tag and returns `repository@digest` as the registry reported it. */
export async function pushImage(imageName: string): Promise<string> {
  const output = await docker(["push", imageName]);
  const repository = imageName.replace(/:[^:/]*$/, "");
  const digest = /digest: (sha256:[a-f0-9]{64})/.exec(output)?.[1];
  if (digest !== undefined) return `${repository}@${digest}`;
  const inspected = JSON.parse(await docker(["image", "inspect", "--format", "{{json .RepoDigests}}", imageName])) as string[] | null;
  const match = (inspected ?? []).find((entry) => entry.startsWith(`${repository}@`));
  if (match === undefined) throw new Error(`pushed ${imageName} but the engine reports no digest for ${repository}`);
  return match;
}

export async function buildAndPush(request: BuildRequest, push: boolean): Promise<BuildResult> {
  const imageId = await buildImage(request);
  const repoDigest = push ? await pushImage(request.imageName) : imageId;
  return { imageId, repoDigest };
}
