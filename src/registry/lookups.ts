/**
 * Questions for the registry whose answers the policy core decides on: what a
 * channel already publishes under each layer's tag (with the fingerprint
 * labels), and whether a promotion would move an immutable tag.
 */
import { type CopySource, type PublishedIndex, type PublishedTag, type RegistryView } from "../core/channel.js";
import { type IndexTarget } from "../core/platform-targets.js";
import { formatPlatform } from "../core/platforms.js";
import { copyCandidateTags, type RepositoryTag } from "../core/ci-build.js";
import { mapLimited } from "../core/concurrency.js";
import { CONFIG_NAMESPACE } from "../core/config.js";
import { FINGERPRINT_LABEL, INPUTS_LABEL } from "../core/fingerprint.js";
import { type LayerTarget } from "../core/plan.js";
import { type Problem, UserError } from "../core/problems.js";
import { type PromotionTarget } from "../core/promotion-plan.js";
import { type RegistryClient, RegistryError } from "./client.js";
import { listedTagManifest } from "./copy.js";

/** Requests in flight at once: hundreds at once only queue up in the registry. */
const LOOKUP_CONCURRENCY = 16;

/** One tag as the registry holds it (manifest, then the image config for labels); undefined when absent. */
export async function lookUpTag(client: RegistryClient, repositoryPath: string, tag: string): Promise<PublishedTag | undefined> {
  const manifest = await client.manifest(repositoryPath, tag);
  if (manifest === undefined) return undefined;
  const config = await client.configOf(repositoryPath, manifest);
  const labels = config?.config?.Labels ?? {};
  return {
    digestRef: `${client.registry}/${repositoryPath}@${manifest.digest}`,
    ...(labels[FINGERPRINT_LABEL] === undefined ? {} : { fingerprint: labels[FINGERPRINT_LABEL] }),
    ...(labels[INPUTS_LABEL] === undefined ? {} : { inputsDigest: labels[INPUTS_LABEL] }),
  };
}

/**
 * What a CI run could copy for one target: the release tag, then the change's other patchsets the
 * repository holds. `sought` (the layer's fingerprint) only saves requests: when the release tag
 * holds it, which is most layers of most runs, the tag list is not asked for. The core decides.
 */
async function lookUpCopySources(client: RegistryClient, target: LayerTarget, sought: string | undefined): Promise<CopySource[]> {
  const release = await lookUpTag(client, target.repositoryPath, target.releaseTag);
  const found: CopySource[] = release === undefined ? [] : [{ tag: target.releaseTag, published: release }];
  if (sought !== undefined && release?.fingerprint === sought) return found;
  for (const tag of copyCandidateTags(target, await client.tags(target.repositoryPath)).filter((candidate) => candidate !== target.releaseTag)) {
    const published = await lookUpTag(client, target.repositoryPath, tag);
    if (published !== undefined) found.push({ tag, published });
  }
  return found;
}

/** A layer whose tag the registry could not answer for: neither "found" nor "not found". */
export interface LookupFailure {
  readonly layer: string;
  /** The reference that was asked about. */
  readonly ref: string;
  readonly error: RegistryError;
}

/** What a user does about an answer, by what the registry said. */
export function fixFor(error: RegistryError, registry: string): string {
  if (error.fault === "elsewhere") return `do what is said above of the other origin ${registry} sent the request to, then run again`;
  if (error.status === 401) return `log in to ${registry}: strata:registryUsername and strata:registryPassword (pulumi config set --secret), or docker login ${registry} (a credential helper counts)`;
  if (error.status === 403) return `give the login pull and push rights on this repository of ${registry}, then run again`;
  if (error.status === 429) return `the registry limits requests: wait, then run again (or raise its rate limit)`;
  if (error.fault === "integrity") return `something between Strata and ${registry} (a proxy, or its storage) altered what it serves: check both, then run again`;
  if (error.fault === "malformed") return `${registry} served something that is not a registry answer (a proxy or a login page?): check strata:registry and what sits between, then run again`;
  if (error.fault === "tls") return `Strata cannot speak TLS with ${registry} as it is: do what is said of its TLS above, then run again`;
  return `check that the registry at ${registry} runs and answers (scripts/services.sh status, and its log), then run again`;
}

/**
 * The registry could not say whether some layers' tags exist. Nothing may be built or pushed then,
 * on any channel: an unknown is never "absent" (an immutable tag would be pushed over blind).
 */
export class RegistryLookupError extends UserError {
  constructor(readonly registry: string, readonly failures: readonly LookupFailure[], readonly notAsked: number) {
    const first = failures[0] as LookupFailure;
    const others = failures.length > 1 ? ` (and ${failures.length - 1} more layer(s): ${failures.slice(1, 6).map((failure) => failure.layer).join(", ")}${failures.length > 6 ? ", …" : ""})` : "";
    const skipped = notAsked > 0 ? ` ${notAsked} other layer(s) were not asked after that.` : "";
    super(`registry ${registry} could not answer for layer "${first.layer}" (${first.ref}): ${first.error.message}${others}. Nothing was built or pushed: Strata cannot tell what the channel holds under this tag.${skipped} fix: ${fixFor(first.error, registry)}`);
    this.name = "RegistryLookupError";
  }
}

/**
 * Asks the registry about each item, a bounded number at once. Any answer other than found or not
 * found (after the client's retries) ends in one RegistryLookupError with every failure; once one
 * item fails, no further item is asked (a registry that is down would otherwise cost every item
 * its retries and timeouts), and the error says how many were not.
 */
async function askEach<T>(client: RegistryClient, items: readonly T[], named: (item: T) => { readonly layer: string; readonly ref: string }, ask: (item: T) => Promise<void>): Promise<void> {
  const failures: LookupFailure[] = [];
  let notAsked = 0;
  await mapLimited(items, LOOKUP_CONCURRENCY, async (item) => {
    if (failures.length > 0) {
      notAsked += 1;
      return;
    }
    try {
      await ask(item);
    } catch (error) {
      if (!(error instanceof RegistryError)) throw error;
      failures.push({ ...named(item), error });
    }
  });
  if (failures.length > 0) throw new RegistryLookupError(client.registry, failures, notAsked);
}

/**
 * Looks every target's tag up in the registry; in a CI run (tags with a change), also what it
 * could copy. `fingerprints`, when given, spares requests: for copy sources (see
 * lookUpCopySources), and for the CI tag of a layer that has a copy source with its fingerprint.
 * Fails closed as askEach says.
 */
export async function lookUpPublished(targets: readonly LayerTarget[], client: RegistryClient, fingerprints?: ReadonlyMap<string, { readonly fingerprint: string }>): Promise<RegistryView> {
  const published = new Map<string, PublishedTag>();
  const copySources = new Map<string, CopySource[]>();
  await askEach(client, targets, (target) => ({ layer: target.layer.name, ref: target.ref }), async (target) => {
    const sought = fingerprints?.get(target.layer.name)?.fingerprint;
    if (target.tag !== target.releaseTag) {
      const sources = await lookUpCopySources(client, target, sought);
      copySources.set(target.layer.name, sources);
      // A CI tag matters only where nothing can be copied (a rerun adopts what it built before):
      // with a copy at hand the core copies, whatever the CI tag holds (layer-origin.ts).
      if (sought !== undefined && sources.some((source) => source.published.fingerprint === sought)) return;
    }
    const tag = await lookUpTag(client, target.repositoryPath, target.tag);
    if (tag !== undefined) published.set(target.layer.name, tag);
  });
  return { published, ...(copySources.size === 0 ? {} : { copySources }) };
}

/** What each multi-platform layer's own tag holds (an index's entries, or a single image); fails closed as askEach says. */
export async function lookUpIndexes(indexes: readonly IndexTarget[], client: RegistryClient): Promise<Map<string, PublishedIndex>> {
  const found = new Map<string, PublishedIndex>();
  await askEach(client, indexes, (index) => ({ layer: index.layer, ref: index.target.ref }), async (index) => {
    const manifest = await client.manifest(index.target.repositoryPath, index.target.tag);
    if (manifest === undefined) return;
    const entries = manifest.manifest.manifests?.map((entry) => ({ platform: formatPlatform(entry.platform ?? {}), digest: entry.digest }));
    found.set(index.layer, { digest: manifest.digest, ...(entries === undefined ? {} : { entries }) });
  });
  return found;
}

/** Tags an immutable target already holds at another digest: promotion must stop before copying anything. */
export async function promotionConflicts(targets: readonly PromotionTarget[], client: RegistryClient, stackFile: string, stack: string): Promise<Problem[]> {
  const problems: Problem[] = [];
  for (const target of targets) {
    let existing;
    try {
      existing = await client.manifest(target.targetRepository, target.tag);
    } catch (error) {
      if (!(error instanceof RegistryError)) throw error;
      throw new RegistryLookupError(client.registry, [{ layer: target.source.layer, ref: target.ref, error }], 0);
    }
    if (existing !== undefined && existing.digest !== target.digest) {
      problems.push({
        file: stackFile,
        field: `${CONFIG_NAMESPACE}:immutable`,
        message: `layer "${target.source.layer}": ${target.ref} already holds ${existing.digest}; promoting ${target.digest} would move an immutable tag`,
        fix: `bump the layer's version (scripts/strata bump --stack ${stack}), rebuild the source channel, then promote`,
      });
    }
  }
  return problems;
}

/** Every tag of every repository of a group (`group/…`), with its manifest digest (and an index's entries). */
export async function groupTags(client: RegistryClient, group: string): Promise<RepositoryTag[]> {
  const repositories = (await client.repositories()).filter((name) => name.startsWith(`${group}/`));
  const perRepository = await mapLimited(repositories, LOOKUP_CONCURRENCY, async (repository) => {
    const found: RepositoryTag[] = [];
    for (const tag of await client.tags(repository)) {
      // A tag deleted since the list was read is left out; one whose answers disagree stops the
      // clean-up: left out, it would no longer keep it from deleting what the tag holds.
      const manifest = await listedTagManifest(client, repository, tag);
      if (manifest === undefined) continue;
      const children = manifest.manifest.manifests?.map((entry) => entry.digest);
      found.push({ repository, tag, digest: manifest.digest, ...(children === undefined ? {} : { children }) });
    }
    return found;
  });
  return perRepository.flat();
}
