/**
 * Whether a `docker.Image` build names its parent in `cacheFrom`, so that the docker plugin pulls
 * the parent through the engine before it builds. Pure.
 *
 * The pull is there for engines whose BuildKit would fetch a parent it lacks in a way the engine's
 * own pull does not: Docker 20.10's BuildKit speaks plain HTTP to any loopback registry, so a fresh
 * runner building on a parent in a TLS registry on 127.0.0.1 failed without it. It costs every
 * build a pull of an image the engine mostly has, and a cache import BuildKit looks up in the
 * registry too: at N=20, cold, the pulls were 0.6-0.9 s of each layer's step and the run 18 % slower
 * (README, *The parent pull*). On an engine whose BuildKit pulls a missing parent itself with the
 * daemon's registry settings and the build session's login (measured on the project's engine,
 * test/e2e/credentials.test.ts: a fresh runner, TLS on loopback, a login), the pull is left out.
 * Engines Strata cannot ask (TLS, SSH) and older ones keep it, as every engine had it before.
 * (The plugin's pull is best effort: a parent it cannot pull is logged, and BuildKit fetches it.)
 */
import { type Problem } from "./problems.js";

/** The environment variable that forces the pull on every engine (a runner whose registry settings only the engine's pull knows). */
export const PULL_PARENT_FIRST_ENV = "STRATA_PULL_PARENT_FIRST";

/**
 * The Engine API version of the one engine seen to pull a missing parent itself as above: the
 * project's engine (moby v2.0.0-beta.24, API 1.56), with the classic overlay2 store (the
 * containerd store at this version was not run without the pull). Versions between 20.10's 1.41
 * and this one were not measured, so they keep the pull; later ones are taken to do as it does.
 */
export const SELF_PULLING_API_VERSION = "1.56";

export type ParentPullMode = "auto" | "always";

/** Compares two `major.minor` API versions. */
function atLeast(version: string, floor: string): boolean {
  const [major, minor] = version.split(".").map(Number);
  const [floorMajor, floorMinor] = floor.split(".").map(Number);
  if (major === undefined || minor === undefined || Number.isNaN(major) || Number.isNaN(minor)) return false;
  return major !== floorMajor ? major > (floorMajor as number) : minor >= (floorMinor as number);
}

/**
 * Per engine: whether its builds pull the parent first. `apiVersion` undefined = the engine could
 * not be asked (behind TLS or SSH): it keeps the pull.
 */
export function pullsParentFirst(apiVersion: string | undefined, mode: ParentPullMode): boolean {
  if (mode === "always") return true;
  return apiVersion === undefined || !atLeast(apiVersion, SELF_PULLING_API_VERSION);
}

/**
 * Layer → whether its docker.Image names its parent in `cacheFrom`. A layer this run leaves as it
 * is (core/layer-origin.ts builtAsIs) keeps the way its state says it was built, declared with
 * this run's parent digest: the same inputs while the parent stays, so a change of engine or of
 * the mode rebuilds nothing, and if its parent's digest moves all the same (a replaced parent at
 * the same fingerprint), the rebuild pulls that new parent as the layer always did. Every other
 * layer is built the way its engine asks (pullsParentFirst of its engine's API version, by the
 * pool's index; one entry without a pool). So a kept layer that Pulumi rebuilds all the same (a
 * moved parent, `push` turned on) follows its state, not its engine or the mode: one kept from a
 * self-pulling engine and rebuilt so on an engine that needs the pull is built without it.
 */
export function parentPulls(args: {
  readonly layers: readonly string[];
  readonly builtAsIs: ReadonlySet<string>;
  /** From the state: how each layer's docker.Image was built (channel.ts BuiltLayer). */
  readonly builtHere: ReadonlyMap<string, { readonly pulledParentFirst?: boolean }>;
  readonly engineOf?: ReadonlyMap<string, number>;
  /** Each engine's Engine API version (undefined: not asked, or not said). */
  readonly apiVersions: readonly (string | undefined)[];
  readonly mode: ParentPullMode;
}): Map<string, boolean> {
  return new Map(args.layers.map((layer) => {
    const kept = args.builtAsIs.has(layer) ? args.builtHere.get(layer)?.pulledParentFirst : undefined;
    return [layer, kept ?? pullsParentFirst(args.apiVersions[args.engineOf?.get(layer) ?? 0], args.mode)] as const;
  }));
}

/** STRATA_PULL_PARENT_FIRST from the environment: unset or `auto` (by the engine's version), or `always`. */
export function parentPullMode(env: Readonly<Record<string, string | undefined>>): { mode: ParentPullMode; problems: Problem[] } {
  const value = env[PULL_PARENT_FIRST_ENV];
  if (value === undefined || value === "" || value === "auto") return { mode: "auto", problems: [] };
  if (value === "always") return { mode: "always", problems: [] };
  return {
    mode: "auto",
    problems: [{ file: "environment", field: PULL_PARENT_FIRST_ENV, message: `is "${value}"`, fix: `set ${PULL_PARENT_FIRST_ENV} to always (every build pulls its parent through the engine first) or auto (the default: by the engine's version), or unset it` }],
  };
}
