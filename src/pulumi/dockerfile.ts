/**
 * The Dockerfile a layer is built from: the catalog's own, plus the lines that
 * put Strata's fingerprint labels on the image. docker.Image has no `labels`
 * input, and asking every catalog Dockerfile to carry these lines would make
 * a forgotten line a silent hole in the immutability check; so Strata writes
 * the extended Dockerfile beside the project, outside the build context
 * (docker.Image sends a Dockerfile from outside the context along with it).
 */
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { writeFileWhole } from "../core/files.js";
import { FINGERPRINT_LABEL, INPUTS_LABEL } from "../core/fingerprint.js";
import { BUILD_ARGS } from "../core/plan.js";

/** Where the extended Dockerfiles go, relative to the Pulumi project folder (the program's working folder). */
export const GENERATED_DOCKERFILES = ".strata/dockerfiles";

/** The catalog Dockerfile with the label lines appended: they land in the final stage, the image that is pushed. */
export function labelledDockerfile(original: string): string {
  const body = original.endsWith("\n") ? original : `${original}\n`;
  return `${body}# Added by Strata: what this image was built from (org.strata.*), read back by later runs.
ARG ${BUILD_ARGS.fingerprint}
ARG ${BUILD_ARGS.inputs}
LABEL ${FINGERPRINT_LABEL}="\${${BUILD_ARGS.fingerprint}}" ${INPUTS_LABEL}="\${${BUILD_ARGS.inputs}}"
`;
}

/**
 * Writes the labelled Dockerfile of one layer and returns its path relative to
 * `projectDir`. The name carries a digest of the content, so a file once
 * written never changes (concurrent runs of two stacks cannot see a half
 * write) and the path moves only when the Dockerfile does. Relative, so that
 * runners with their clones in different folders declare the same inputs.
 */
export function writeLabelledDockerfile(layerName: string, dockerfile: string, projectDir: string): string {
  const content = labelledDockerfile(readFileSync(dockerfile, "utf8"));
  const digest = createHash("sha256").update(content).digest("hex").slice(0, 16);
  const relative = path.join(GENERATED_DOCKERFILES, `${layerName}-${digest}.Dockerfile`);
  const absolute = path.join(projectDir, relative);
  // Written once: a file there already is read, not written again (a rename per layer was 0.05-0.2
  // CPU-s of an N=200 no-op), unless its bytes are not these (edited by hand: the build must not use them).
  if (readIfThere(absolute) === content) return relative;
  mkdirSync(path.dirname(absolute), { recursive: true });
  writeFileWhole(absolute, content);
  return relative;
}

function readIfThere(file: string): string | undefined {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
}
