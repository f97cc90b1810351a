/**
 * Builds one image with BuildKit through the Docker Engine API (`POST /build`,
 * `version=2`), sending the context as a tar like the docker CLI does.
 *
 * Why not the docker CLI: the CLI on our machines has no buildx plugin, so
 * `docker build` falls back to the legacy builder, which creates and commits a
 * container for every instruction. BuildKit inside the engine needs no plugin
 * and no client session for a tar context, and it builds the same layer in
 * about half the time (README *Performance*, the builder comparison). Legacy stays available with
 * STRATA_DOCKER_BUILDER=legacy.
 */
import { spawn } from "node:child_process";
import http from "node:http";
import path from "node:path";
import protobuf from "protobufjs";
import { type EngineEndpoint, engineEndpoint, engineError, API } from "../docker-engine.js";
import { listContext } from "../../core/hash.js";

// BuildKit's progress arrives as base64 `moby.buildkit.v1.StatusResponse`
// messages; only the fields needed for a readable failure are declared here
// (protobuf skips the rest). Field numbers from moby/buildkit api/services/control.
const statusTypes = protobuf.Root.fromJSON({
  nested: {
    StatusResponse: {
      fields: {
        vertexes: { rule: "repeated", type: "Vertex", id: 1 },
        logs: { rule: "repeated", type: "VertexLog", id: 3 },
      },
    },
    Vertex: { fields: { digest: { type: "string", id: 1 }, name: { type: "string", id: 3 }, error: { type: "string", id: 7 } } },
    VertexLog: { fields: { vertex: { type: "string", id: 1 }, msg: { type: "bytes", id: 4 } } },
  },
});
const StatusResponse = statusTypes.lookupType("StatusResponse");

interface DecodedStatus {
  readonly vertexes?: readonly { digest?: string; name?: string; error?: string }[];
  readonly logs?: readonly { vertex?: string; msg?: Uint8Array }[];
}

/** Collects a build's step names and output, to show the tail of the failing step. */
export class BuildProgress {
  private readonly names = new Map<string, string>();
  private readonly output = new Map<string, string>();
  private readonly failed: string[] = [];

  /** One `moby.buildkit.trace` aux value (base64 protobuf). */
  addTrace(base64: string): void {
    const status = StatusResponse.toObject(StatusResponse.decode(Buffer.from(base64, "base64"))) as DecodedStatus;
    for (const vertex of status.vertexes ?? []) {
      if (vertex.digest === undefined) continue;
      if (vertex.name !== undefined) this.names.set(vertex.digest, vertex.name);
      if (vertex.error !== undefined && vertex.error !== "" && !this.failed.includes(vertex.digest)) this.failed.push(vertex.digest);
    }
    for (const log of status.logs ?? []) {
      if (log.vertex === undefined || log.msg === undefined) continue;
      this.output.set(log.vertex, (this.output.get(log.vertex) ?? "") + Buffer.from(log.msg).toString("utf8"));
    }
  }

  /** The failing steps with the last lines of their output (stdout and stderr as BuildKit interleaves them). */
  failureReport(maxLines = 25): string {
    return this.failed.map((digest) => {
      const lines = (this.output.get(digest) ?? "").trimEnd().split("\n").filter((line) => line !== "").slice(-maxLines);
      return [`step: ${this.names.get(digest) ?? digest}`, ...lines.map((line) => `  ${line}`)].join("\n");
    }).join("\n");
  }
}

/** Every path the tar must carry: the files Docker would send and the folders above them. */
export function contextTarPaths(contextDir: string, dockerfileName: string): string[] {
  const files = listContext(contextDir).entries.map((entry) => entry.path);
  // The docker CLI always sends the Dockerfile, even when .dockerignore names it.
  if (!files.includes(dockerfileName)) files.push(dockerfileName);
  const folders = new Set<string>();
  for (const file of files) {
    for (let folder = path.posix.dirname(file); folder !== "."; folder = path.posix.dirname(folder)) folders.add(folder);
  }
  return [...[...folders].sort(), ...files.sort()];
}

export interface EngineBuildRequest {
  readonly imageName: string;
  readonly context: string;
  readonly dockerfile: string;
  readonly platform: string;
  readonly buildArgs: Readonly<Record<string, string>>;
  readonly labels: Readonly<Record<string, string>>;
  /** `host` or `none` (core/config.ts BUILD_NETWORKS); absent: the engine's default network. */
  readonly network?: string;
}

/** Builds and tags the image; resolves with the image id (`sha256:…`). Errors start with "docker build failed: ". */
export function engineBuild(request: EngineBuildRequest, endpoint: EngineEndpoint = engineEndpoint()): Promise<string> {
  const contextDir = path.resolve(request.context);
  const dockerfileName = path.relative(contextDir, path.resolve(request.dockerfile)).split(path.sep).join("/");
  if (dockerfileName.startsWith("../")) return Promise.reject(new Error(`docker build failed: the Dockerfile ${request.dockerfile} is outside its context ${request.context}`));
  const query = new URLSearchParams({
    version: "2",
    t: request.imageName,
    dockerfile: dockerfileName,
    platform: request.platform,
    buildargs: JSON.stringify(request.buildArgs),
    labels: JSON.stringify(request.labels),
    rm: "1",
    forcerm: "1",
    ...(request.network === undefined ? {} : { networkmode: request.network }),
  });
  return new Promise((resolve, reject) => {
    let settled = false;
    // The first line stands alone (summaries show only it); the failing step's output follows.
    const fail = (message: string, details = ""): void => {
      if (settled) return;
      settled = true;
      reject(new Error(`docker build failed: ${message}${details === "" ? "" : `\n${details}`}`));
    };
    const tar = spawn("tar", ["-c", "-f", "-", "--no-recursion", "--owner=0", "--group=0", "--numeric-owner", "-C", contextDir, "--null", "-T", "-"], { stdio: ["pipe", "pipe", "pipe"] });
    let tarErrors = "";
    tar.stderr.on("data", (chunk: Buffer) => (tarErrors += chunk.toString()));
    const request_ = http.request({ ...endpoint, method: "POST", path: `${API}/build?${query.toString()}`, headers: { "Content-Type": "application/x-tar" } }, (response) => {
      const progress = new BuildProgress();
      let imageId: string | undefined;
      let engineMessage: string | undefined;
      let buffered = "";
      let body = "";
      const handleLine = (line: string): void => {
        if (line.trim() === "") return;
        const message = JSON.parse(line) as { id?: string; aux?: unknown; error?: string; stream?: string };
        if (message.id === "moby.buildkit.trace" && typeof message.aux === "string") progress.addTrace(message.aux);
        else if (message.id === "moby.image.id" && typeof message.aux === "object" && message.aux !== null) imageId = (message.aux as { ID?: string }).ID;
        if (message.error !== undefined) engineMessage = message.error;
      };
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => {
        if (response.statusCode !== 200) {
          body += chunk;
          return;
        }
        buffered += chunk;
        for (let newline = buffered.indexOf("\n"); newline >= 0; newline = buffered.indexOf("\n")) {
          handleLine(buffered.slice(0, newline));
          buffered = buffered.slice(newline + 1);
        }
      });
      response.on("end", () => {
        if (response.statusCode !== 200) {
          let text = body.trim();
          try {
            text = (JSON.parse(body) as { message?: string }).message ?? text;
          } catch {
            // not JSON: keep the body as it is
          }
          fail(`the engine answered ${response.statusCode ?? "?"}: ${text}`);
          return;
        }
        handleLine(buffered);
        if (engineMessage !== undefined) {
          fail(engineMessage, progress.failureReport());
        } else if (imageId === undefined) {
          fail("the engine reported no image id");
        } else if (!settled) {
          settled = true;
          resolve(imageId);
        }
      });
    });
    request_.on("error", (error: NodeJS.ErrnoException) => {
      tar.kill();
      fail(engineError(error, endpoint).message);
    });
    tar.on("close", (code) => {
      if (code !== 0) {
        request_.destroy();
        fail(`tar of ${contextDir} failed: ${tarErrors.trim()}`);
      }
    });
    tar.stdout.pipe(request_);
    tar.stdin.end(`${contextTarPaths(contextDir, dockerfileName).join("\0")}\0`);
  });
}
