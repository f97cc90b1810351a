/**
 * The catalog checkout's state (engine/source-info.ts sourceState), handed from `strata up` to the
 * Pulumi program it runs, in one environment variable. No Pulumi import.
 *
 * Why: a signing run's program needs the state for every image's provenance, and reading it there
 * cost the program a dozen git processes, each spawn about 15 ms of its own CPU on a signed N=200
 * no-op, where the program is the run's critical path. `strata up` reads it instead, while the
 * Pulumi engine starts. The program takes it only when it names the same catalog folder and this
 * very run (STRATA_RUN_ID, which `strata up` sets anew for every run), and is whole; anything else
 * (a direct `pulumi up`, a value left in a shell, a malformed one) and the program reads git
 * itself, as before: a handoff can only save the program work, never change what it records.
 */
import { type SourceState } from "./provenance.js";

/** The variable `strata up` sets for the program; the program reads it (pulumi/image-attestations.ts). */
export const SOURCE_STATE_ENV = "STRATA_SOURCE_STATE";

/** A checkout's state, with the first difference found when it is not clean (for the run's warning). */
export type CheckedSource = SourceState & { readonly difference?: string };

const COMMIT = /^([a-f0-9]{40}|[a-f0-9]{64})$/;

/** The variable's value: the state of the checkout `catalogDir` is in, for the run `runId`. */
export function sourceStateHandoff(catalogDir: string, runId: string, state: CheckedSource): string {
  return JSON.stringify({ catalogDir, runId, repository: state.repository, commit: state.commit, clean: state.clean, ...(state.difference === undefined ? {} : { difference: state.difference }) });
}

/**
 * The state handed over for `catalogDir` and the run `runId`, or undefined when there is none for
 * them: absent, for another folder or run, or not whole (then the program reads git itself).
 */
export function handedSourceState(value: string | undefined, catalogDir: string, runId: string | undefined): CheckedSource | undefined {
  if (value === undefined || runId === undefined || runId === "") return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return undefined;
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return undefined;
  const { catalogDir: handedDir, runId: handedRun, repository, commit, clean, difference } = parsed as Record<string, unknown>;
  if (handedDir !== catalogDir || handedRun !== runId) return undefined;
  if (typeof repository !== "string" || repository === "" || typeof commit !== "string" || !COMMIT.test(commit) || typeof clean !== "boolean") return undefined;
  // Clean exactly when no difference was found: a value that says otherwise is not sourceState's.
  if (clean ? difference !== undefined : typeof difference !== "string" || difference === "") return undefined;
  return { repository, commit, clean, ...(typeof difference === "string" ? { difference } : {}) };
}
