/**
 * Questions for the registry whose answers the policy core decides on: what a
 * channel already publishes under each layer's tag (with the fingerprint
 * labels), and whether a promotion would move an immutable tag.
 */
import { type PublishedTag, type RegistryView } from "../core/channel.js";
import { mapLimited } from "../core/concurrency.js";
import { CONFIG_NAMESPACE } from "../core/config.js";
import { FINGERPRINT_LABEL, INPUTS_LABEL } from "../core/fingerprint.js";
import { type LayerTarget } from "../core/plan.js";
import { type Problem } from "../core/problems.js";
import { type PromotionTarget } from "../core/promotion-plan.js";
import { type RegistryClient, RegistryError } from "./client.js";

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

/** Looks every target's tag up in the registry. */
export async function lookUpPublished(targets: readonly LayerTarget[], client: RegistryClient): Promise<RegistryView> {
  const published = new Map<string, PublishedTag>();
  try {
    // A bounded number of requests in flight: hundreds at once only queue up in the registry.
    const found = await mapLimited(targets, LOOKUP_CONCURRENCY, async (target) => {
      const tag = await lookUpTag(client, target.repositoryPath, target.tag);
      return tag === undefined ? undefined : ([target.layer.name, tag] as const);
    });
    for (const entry of found) if (entry !== undefined) published.set(entry[0], entry[1]);
    return { published };
  } catch (error) {
    // A refused login is not "unpublished": an immutable channel must not build blind.
    if (error instanceof RegistryError && error.status !== 401) return { published, unreachable: error.message };
    throw error;
  }
}

/** Tags an immutable target already holds at another digest: promotion must stop before copying anything. */
export async function promotionConflicts(targets: readonly PromotionTarget[], client: RegistryClient, stackFile: string, stack: string): Promise<Problem[]> {
  const problems: Problem[] = [];
  for (const target of targets) {
    const existing = await client.manifest(target.targetRepository, target.tag);
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
