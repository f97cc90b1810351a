/**
 * pulumi-resource-strata: the resource provider behind Strata's resources.
 *
 * `strata:index:LayerImage` does what pulumi-docker's `docker.Image` does for
 * Strata (build, push, report `repoDigest`; any input change is an in-place
 * update; delete leaves tags in the registry), for machines where the
 * pulumi-docker plugin cannot be installed.
 * `strata:index:PromotedImage` copies an image by digest between groups of a
 * registry, server-side; delete removes a tag this stack created.
 *
 * The engine starts it like any provider plugin (Pulumi.yaml
 * `plugins.providers`), so previews, diffs and ordering are the engine's own.
 */
import { main, type Provider } from "@pulumi/pulumi/provider/index.js";
import { lookUpTag } from "../channel.js";
import { FINGERPRINT_LABEL } from "../fingerprint.js";
import { parseReference } from "../reference.js";
import { copyImage, RegistryClient } from "../registry.js";
import { buildAndPush, type BuildResult, traced } from "./docker-cli.js";
import { diffLayerImage, type LayerImageInputs, parseLayerImageInputs, withoutCredentials } from "./layer-image-inputs.js";
import { diffPromotedImage, parsePromotedImageInputs, type PromotedImageInputs } from "./promoted-image-inputs.js";

const PROMOTED_IMAGE = "strata:index:PromotedImage";

/** `urn:pulumi:stack::project::parent$type::name` → `type`. */
function typeOf(urn: string): string {
  const qualified = urn.split("::")[2] ?? "";
  return qualified.split("$").pop() ?? qualified;
}

type Props = Record<string, unknown>;

/**
 * Builds and pushes, or adopts the image the registry already holds under this
 * tag when its fingerprint label is ours (same inputs, same ancestry): a tag
 * pushed by another stack or CI runner, or by a run interrupted before the
 * engine recorded it. Asked here, at build time, rather than passed in by the
 * program: inputs that follow the registry's state would differ on the run
 * after every build, and the engine then rewrites its checkpoint once per
 * unchanged layer (seconds at N=200).
 */
async function produce(inputs: LayerImageInputs): Promise<BuildResult & { adopted: boolean }> {
  const fingerprint = inputs.labels[FINGERPRINT_LABEL];
  if (inputs.push && fingerprint !== undefined) {
    const published = await traced("lookup", inputs.imageName, () => publishedDigest(inputs, fingerprint));
    if (published !== undefined) return { imageId: "", repoDigest: published, adopted: true };
  }
  return { ...(await buildAndPush(inputs, inputs.push)), adopted: false };
}

/** `repo@digest` of the tag when it holds this fingerprint; undefined otherwise. */
async function publishedDigest(inputs: LayerImageInputs, fingerprint: string): Promise<string | undefined> {
  const { registry, path, tag } = parseReference(inputs.imageName);
  if (tag === undefined) return undefined;
  const client = new RegistryClient({ registry, ...(inputs.registryAuth === undefined ? {} : { credentials: inputs.registryAuth }) });
  try {
    const published = await lookUpTag(client, path, tag);
    return published?.fingerprint === fingerprint ? published.digestRef : undefined;
  } catch {
    // Not knowing is not a reason to fail here: build, and the push reports what is wrong with the registry.
    return undefined;
  }
}

async function promote(inputs: PromotedImageInputs): Promise<{ repoDigest: string; created: boolean }> {
  const client = new RegistryClient({ registry: inputs.registry, ...(inputs.registryAuth === undefined ? {} : { credentials: inputs.registryAuth }) });
  const { created } = await copyImage(client, inputs);
  return { repoDigest: `${inputs.registry}/${inputs.targetRepository}@${inputs.digest}`, created };
}

const provider: Provider = {
  version: "0.1.0",
  async check(_urn, _olds, news) {
    return { inputs: news as Props };
  },
  async diff(_id, urn, olds, news) {
    const changed = typeOf(urn) === PROMOTED_IMAGE ? diffPromotedImage(olds as Props, news as Props) : diffLayerImage(olds as Props, news as Props);
    return { changes: changed.length > 0 };
  },
  async create(urn, inputs) {
    if (typeOf(urn) === PROMOTED_IMAGE) {
      const parsed = parsePromotedImageInputs(inputs as Props);
      // Credentials stay in this resource's outputs (marked secret by the resource) because delete needs them.
      return { id: `${parsed.targetRepository}:${parsed.tag}`, outs: { ...(inputs as Props), ...(await promote(parsed)) } };
    }
    const parsed = parseLayerImageInputs(inputs as Props);
    return { id: parsed.imageName, outs: { ...withoutCredentials(inputs as Props), ...(await produce(parsed)) } };
  },
  async update(_id, urn, olds, news) {
    if (typeOf(urn) === PROMOTED_IMAGE) {
      const result = await promote(parsePromotedImageInputs(news as Props));
      // A tag this stack created stays "created" across updates, so destroy still removes it.
      return { outs: { ...(news as Props), ...result, created: result.created || (olds as Props).created === true } };
    }
    return { outs: { ...withoutCredentials(news as Props), ...(await produce(parseLayerImageInputs(news as Props))) } };
  },
  async read(id, _urn, props) {
    return { id, props: props as Props };
  },
  async delete(_id, urn, props) {
    if (typeOf(urn) !== PROMOTED_IMAGE) return; // LayerImage: tags stay in the registry, like docker.Image.
    const inputs = parsePromotedImageInputs(props as Props);
    if ((props as Props).created !== true) return; // The tag was there before this stack: not ours to remove.
    await new RegistryClient({ registry: inputs.registry, ...(inputs.registryAuth === undefined ? {} : { credentials: inputs.registryAuth }) }).deleteManifest(inputs.targetRepository, inputs.digest);
  },
};

await main(provider, process.argv.slice(2));
