/**
 * scripts/engines.sh's choice of image store (STRATA_ENGINE_STORE), checked before any engine is
 * touched: `hosts` on a state folder of this test's own only lists engines, so nothing is started.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const script = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../scripts/engines.sh");

let state: string;
beforeAll(() => {
  state = mkdtempSync(path.join(tmpdir(), "strata-engines-"));
});
afterAll(() => rmSync(state, { recursive: true, force: true }));

function hosts(env: Record<string, string>): { code: number; stdout: string; stderr: string } {
  const base = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^STRATA_ENGINE_STORE$|^STRATA_DOCKERD$/.test(name)));
  const run = spawnSync(script, ["hosts"], { encoding: "utf8", env: { ...base, STRATA_STATE: state, ...env } as NodeJS.ProcessEnv });
  return { code: run.status ?? -1, stdout: run.stdout, stderr: run.stderr };
}

describe("STRATA_ENGINE_STORE", () => {
  it("takes overlay2 (also when unset) and containerd", () => {
    const cases: Record<string, string>[] = [{}, { STRATA_ENGINE_STORE: "overlay2" }, { STRATA_ENGINE_STORE: "containerd" }];
    for (const env of cases) {
      const run = hosts(env);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toBe("\n");
    }
  });

  it("refuses anything else, naming the variable and the values it takes", () => {
    const run = hosts({ STRATA_ENGINE_STORE: "zfs" });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("STRATA_ENGINE_STORE=zfs: use overlay2 (the classic store, the default) or containerd");
  });

  it("refuses the containerd store on Debian's 20.10 dockerd, which has only the classic store", () => {
    const run = hosts({ STRATA_ENGINE_STORE: "containerd", STRATA_DOCKERD: "debian" });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("STRATA_ENGINE_STORE=containerd needs STRATA_DOCKERD=pinned");
    expect(hosts({ STRATA_DOCKERD: "debian" }).code).toBe(0);
  });
});
