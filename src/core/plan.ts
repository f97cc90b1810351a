/**
 * Catalog + stack config → what each layer is called and tagged in this
 * channel. Pure: the LayerTree and the CLI both read from here, so the names
 * a user previews with `strata tags` are the names the program pushes.
 */
import { type Catalog, type Layer } from "./catalog.js";
import { withAncestors } from "./graph.js";
import { type Problem, throwIfAny } from "./problems.js";
import { referenceProblems } from "./reference.js";
import { type StackConfig, CONFIG_NAMESPACE } from "./config.js";
import { formatReference, formatRepository, formatTag } from "./version.js";

export interface LayerTarget {
  readonly layer: Layer;
  /** `registry/group/image` */
  readonly repository: string;
  /** `group/image`: the repository's name inside the registry (its API paths). */
  readonly repositoryPath: string;
  /** The tag this run pushes: the release tag, plus `-CHANGE[_PATCHSET]` in a CI run. */
  readonly tag: string;
  /** `MAJOR.MINOR-pPATCH`: the channel's tag for this version, the same in a CI run. */
  readonly releaseTag: string;
  /** `registry/group/image:tag` */
  readonly ref: string;
  /** The parent layer's name, absent for a root. */
  readonly parent?: string;
  /** Set on a multi-platform stack's per-platform targets (core/platform-targets.ts); else the stack's one platform. */
  readonly platform?: string;
  /**
   * Build arguments of this layer alone. The parent's reference and digest
   * are added by the tree from the parent's output; they enter the
   * fingerprint through the parent's fingerprint instead.
   */
  readonly ownBuildArgs: Readonly<Record<string, string>>;
}

/** Build arguments Strata passes; Dockerfiles declare the ones they use. BASE_IMAGE is mandatory below the root. */
export const BUILD_ARGS = {
  baseImage: "BASE_IMAGE",
  baseDigest: "STRATA_BASE_DIGEST",
  baseName: "STRATA_BASE_NAME",
  version: "STRATA_VERSION",
  source: "STRATA_SOURCE",
  /** Carried into the org.strata.* labels by the lines dockerfile.ts appends. */
  fingerprint: "STRATA_FINGERPRINT",
  inputs: "STRATA_INPUTS",
} as const;

/**
 * Targets for every selected layer (and its ancestors), parents first.
 * Throws an InputError naming the config file for unknown selections and
 * references that break the OCI grammar.
 */
export function planTargets(catalog: Catalog, config: StackConfig, configFile: string): LayerTarget[] {
  const problems: Problem[] = [];
  const known = new Set(catalog.layers.map((layer) => layer.name));
  for (const name of config.layers ?? []) {
    if (!known.has(name)) {
      problems.push({ file: configFile, field: `${CONFIG_NAMESPACE}:layers`, message: `no layer named "${name}"`, fix: `name layer folders from the catalog (${[...known].sort().join(", ")})` });
    }
  }
  throwIfAny(problems);
  const selected = config.layers === undefined ? [...catalog.layers] : withAncestors(catalog.layers, config.layers);
  const targets = selected.map((layer): LayerTarget => {
    const tag = formatTag(layer.version, config.ci);
    const releaseTag = formatTag(layer.version);
    const repository = formatRepository(config.registry, config.group, layer.image);
    const ref = formatReference(config.registry, config.group, layer.image, tag);
    for (const message of referenceProblems(ref)) {
      problems.push({ file: configFile, field: `reference of layer "${layer.name}"`, message: `${ref}: ${message}`, fix: "shorten the layer folder names or the group parts (osRelease, productVersion, channel)" });
    }
    // The version goes in without the CI suffix: a CI run's layer has the channel's fingerprint
    // unless its content changed, so the channel's image can be copied instead of rebuilt, and a
    // second patchset shares the first one's fingerprints.
    const ownBuildArgs = { [BUILD_ARGS.version]: releaseTag, [BUILD_ARGS.source]: config.source };
    const repositoryPath = `${config.group}/${layer.image}`;
    return { layer, repository, repositoryPath, tag, releaseTag, ref, ...(layer.parent === undefined ? {} : { parent: layer.parent }), ownBuildArgs };
  });
  throwIfAny(problems);
  return targets;
}
