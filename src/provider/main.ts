/**
 * pulumi-resource-strata: the resource provider behind `strata:index:LayerImage`.
 *
 * It does what pulumi-docker's `docker.Image` does for Strata (build, push,
 * report `repoDigest`; any input change is an in-place update; delete leaves
 * tags in the registry), for machines where the pulumi-docker plugin cannot
 * be installed. The engine starts it like any provider plugin (Pulumi.yaml
 * `plugins.providers`), so previews, diffs and ordering are the engine's own.
 */
import { main, type Provider } from "@pulumi/pulumi/provider/index.js";
import { buildAndPush, type BuildResult } from "./docker-cli.js";
import { diffLayerImage, type LayerImageInputs, parseLayerImageInputs } from "./layer-image-inputs.js";

const provider: Provider = {
  version: "0.1.0",
  async check(_urn, _olds, news) {
    return { inputs: news as Record<string, unknown> };
  },
  async diff(_id, _urn, olds, news) {
    const changed = diffLayerImage(olds as Record<string, unknown>, news as Record<string, unknown>);
    return { changes: changed.length > 0 };
  },
  async create(_urn, inputs) {
    const parsed = parseLayerImageInputs(inputs as Record<string, unknown>);
    return { id: parsed.imageName, outs: { ...(inputs as LayerImageInputs), ...(await produce(parsed)) } };
  },
  async update(_id, _urn, _olds, news) {
    const parsed = parseLayerImageInputs(news as Record<string, unknown>);
    return { outs: { ...(news as LayerImageInputs), ...(await produce(parsed)) } };
  },
  async read(id, _urn, props) {
    return { id, props: props as Record<string, unknown> };
  },
  async delete() {
    // Like docker.Image: tags stay in the registry. An image tag names one content forever.
  },
};

/** Builds and pushes, or adopts an identical image the registry already holds under this tag. */
async function produce(inputs: LayerImageInputs): Promise<BuildResult> {
  if (inputs.reuseDigest !== undefined) return { imageId: "", repoDigest: inputs.reuseDigest };
  return buildAndPush(inputs, inputs.push);
}

await main(provider, process.argv.slice(2));
