/**
 * Starts the services the end-to-end suite needs, on their own: a registry on
 * its own port with storage in a temp folder, and the Docker engine if it is
 * not running. Teardown stops what setup started and removes the folder, so
 * the suite leaves no daemon, registry or temp folder behind.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { removeScratch } from "../helpers/mounts.js";
import { freePort } from "../helpers/net.js";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const services = path.join(repoRoot, "scripts/services.sh");
let stateDir: string | undefined;

export async function setup(): Promise<void> {
  stateDir = mkdtempSync(path.join(tmpdir(), "strata-e2e-services-"));
  process.env.STRATA_STATE = stateDir;
  process.env.STRATA_REGISTRY_PORT = process.env.STRATA_E2E_REGISTRY_PORT ?? String(await freePort());
  execFileSync(services, ["start"], { stdio: "inherit", env: process.env });
}

export function teardown(): void {
  if (stateDir === undefined) return;
  try {
    execFileSync(services, ["stop"], { stdio: "inherit", env: { ...process.env, STRATA_STATE: stateDir } });
  } finally {
    // A dockerd that did not stop keeps its overlays and network namespaces mounted under it.
    removeScratch(stateDir);
  }
}
