/**
 * pulumi-resource-strata: the resource provider behind Strata's resources.
 *
 * `strata:index:LayerImage` does what pulumi-docker's `docker.Image` does for
 * Strata (build, push, report `repoDigest`; any input change is an in-place
 * update; delete leaves tags in the registry), with BuildKit through the
 * Engine API; builder "strata" declares it instead of docker.Image.
 * `strata:index:PromotedImage` and `strata:index:CopiedImage` copy an image by
 * digest inside a registry, server-side (copied-image.ts says which is which);
 * delete removes a tag this stack created. `strata:index:CiCopySet` makes a set
 * of a CI run's copies in one call; its tags stay on delete (strata ci-clean
 * removes them). `strata:index:ImageIndex` puts a multi-platform layer's OCI image
 * index together from its per-platform images; its tags stay on delete, like docker.Image's.
 * `strata:index:ImageAttestationsSet` signs every image a signing stack publishes and attests
 * its SBOM and provenance in cosign's format, in this process (attest-image.ts); an image is
 * signed when its digest is new to the set, never twice; the `.sig`/`.att` tags stay on delete,
 * with the images (and so do those of a state's older per-image `ImageAttestations`).
 *
 * The engine starts it like any provider plugin (Pulumi.yaml
 * `plugins.providers`), so previews, diffs and ordering are the engine's own.
 */
import { main, type Provider } from "@pulumi/pulumi/provider/index.js";
import { keepSecretsFromChildren } from "../secret-env.js";
import { mapLimited } from "../../core/concurrency.js";
import { digestOf } from "../../core/reference.js";
import { CI_COPY_SET_TYPE, IMAGE_ATTESTATIONS_SET_TYPE, IMAGE_ATTESTATIONS_TYPE, IMAGE_INDEX_TYPE, REGISTRY_COPY_TYPES } from "../../core/image-types.js";
import { type CiCopySetInputs, diffCiCopySet, parseCiCopySetInputs } from "./ci-copy-set-inputs.js";
import { type RegistryClient } from "../../registry/client.js";
import { type ClientRequest, RegistryClients } from "../../registry/client-pool.js";
import { diffImageIndex, type ImageIndexInputs, parseImageIndexInputs } from "./image-index-inputs.js";
import { diffLayerImage, parseLayerImageInputs, withoutCredentials } from "./layer-image-inputs.js";
import { diffRegistryCopy, parseRegistryCopyInputs, type RegistryCopyInputs } from "./registry-copy-inputs.js";
import { runIdOf } from "../../engine/run-logs.js";
import { type AttestationContext } from "./attest-image.js";
import { parseImageAttestationsSetInputs } from "./image-attestations-inputs.js";
import { checkImageAttestationsSet, diffImageAttestationsSet, imagesToSign, keptAttestations } from "../../core/attestation-steps.js";

/**
 * What only a step that writes needs — the registry client, the Engine API build, signing — is
 * loaded when the first such step comes, not at start: a run that changes nothing (a no-op) only
 * checks and diffs, and loading these at start (protobufjs for the build, the registry and signature
 * modules) was part of the provider's 1.55 CPU-s on a signed N=200 no-op (1.42 without; README *A signed
 * no-op, by component*).
 * Each is loaded once; `import()` caches the module.
 */
const load = {
  registry: async () => {
    const [client, blobCache, copy, index, files, logins] = await Promise.all([import("../../registry/client.js"), import("../../registry/blob-cache.js"), import("../../registry/copy.js"), import("../../registry/image-index.js"), import("../../registry/image-files.js"), import("../../registry/logins.js")]);
    return { ...client, ...blobCache, ...copy, ...index, ...files, ...logins };
  },
  build: () => import("./docker-cli.js"),
  attest: () => import("./attest-image.js"),
};

/** `urn:pulumi:stack::project::parent$type::name` → `type`. */
function typeOf(urn: string): string {
  const qualified = urn.split("::")[2] ?? "";
  return qualified.split("$").pop() ?? qualified;
}

type Props = Record<string, unknown>;

/** The registry's manifests and configs read by the program's lookups in the same run are on disk already (defaultBlobCache, read once). */
let blobCache: ReturnType<Awaited<ReturnType<typeof load.registry>>["defaultBlobCache"]> | null = null;

/** One client per registry and login source for the whole process (registry/client-pool.ts: the scheme asked once; the login read for every step). */
const clients = new RegistryClients(async () => {
  const registry = await load.registry();
  if (blobCache === null) blobCache = registry.defaultBlobCache();
  const cache = blobCache;
  return {
    dockerLogin: (name) => registry.dockerConfigLogin(name),
    make: (request, dockerLogin) => new registry.RegistryClient({ registry: request.registry, ...(request.registryAuth === undefined ? { dockerLogin } : { credentials: request.registryAuth }), ...(cache === undefined ? {} : { blobCache: cache }) }),
  };
});

const clientFor = (inputs: ClientRequest): Promise<RegistryClient> => clients.clientFor(inputs);

async function copy(inputs: RegistryCopyInputs): Promise<{ repoDigest: string; created: boolean }> {
  const { created, digest } = await (await load.registry()).copyImage(await clientFor(inputs), inputs);
  return { repoDigest: `${inputs.registry}/${inputs.targetRepository}@${digest}`, created };
}

/** A layer's index over its per-platform images: `registry/repo@digest` of the index, and each platform's. */
async function putLayerIndex(inputs: ImageIndexInputs): Promise<{ repoDigest: string; created: boolean; platformDigests: Record<string, string> }> {
  const { digest, created } = await (await load.registry()).putIndex(await clientFor(inputs), inputs);
  const at = (manifest: string): string => `${inputs.registry}/${inputs.repository}@${manifest}`;
  return { repoDigest: at(digest), created, platformDigests: Object.fromEntries(inputs.entries.map((entry) => [entry.platform, at(entry.digest)])) };
}

/** Copies in flight at once: a registry serves a few dozen requests at once well, hundreds only queue. */
const COPY_CONCURRENCY = 16;

/**
 * Every copy of a CI run; layer → `registry/repo@digest`. Each is one request: the source manifest
 * comes from the blob cache (the lookups read it), and the CI tag, which no other run writes, is put
 * without being read first (the same bytes again on a rerun).
 */
async function copyAll(inputs: CiCopySetInputs): Promise<{ repoDigests: Record<string, string> }> {
  const client = await clientFor(inputs);
  const { copyImage } = await load.registry();
  const copied = await mapLimited(inputs.copies, COPY_CONCURRENCY, async (copy) => {
    const { digest } = await copyImage(client, { sourceRepository: copy.repository, digest: copy.digest, targetRepository: copy.repository, tag: copy.tag, immutable: false, annotations: copy.annotations, unchecked: true });
    return [copy.layer, `${inputs.registry}/${copy.repository}@${digest}`] as const;
  });
  return { repoDigests: Object.fromEntries(copied) };
}

/**
 * What this process keeps across the images it attests: the key, unlocked once (its scrypt is
 * ~0.5 CPU-s), and each layer blob's files, read once (a tree's images share their parents' layers),
 * and each image's package keys, which its children's "packages added" are counted against.
 * Made by the first set that signs, as a promise, so sets that start together share it.
 */
let attestations: Promise<AttestationContext> | undefined;
// The run's id as strata up gives it the engine (and so this plugin); without strata up, this process's start, as the program does.
const runId = process.env.STRATA_RUN_ID ?? runIdOf(new Date());

/** Signs and attests the set's images whose digests its state has not signed (attest-image.ts attestImageSet). */
async function attestSet(state: Props, news: Props): Promise<Props> {
  const parsed = parseImageAttestationsSetInputs(news);
  attestations ??= (async () => ({ runId, keys: new (await load.attest()).KeyUnlocker(), changesets: new (await load.registry()).LayerChangesets(), packageKeys: new Map() }))();
  const { attestImageSet } = await load.attest();
  return attestImageSet(await clientFor(parsed), parsed, imagesToSign(state, news), keptAttestations(state, news), await attestations);
}

const provider: Provider = {
  version: "0.1.0",
  async check(urn, olds, news) {
    if (typeOf(urn) === IMAGE_ATTESTATIONS_SET_TYPE) return { inputs: checkImageAttestationsSet(olds as Props, news as Props) };
    return { inputs: news as Props };
  },
  async diff(_id, urn, olds, news) {
    // A new digest under a name is another image: signed beside the old one, which keeps its signature (an update, never a replacement).
    if (typeOf(urn) === IMAGE_ATTESTATIONS_SET_TYPE) return { changes: diffImageAttestationsSet(olds as Props, news as Props) };
    if (typeOf(urn) === IMAGE_INDEX_TYPE) return { changes: diffImageIndex(olds as Props, news as Props).length > 0 };
    if (typeOf(urn) === CI_COPY_SET_TYPE) return { changes: diffCiCopySet(olds as Props, news as Props).length > 0 };
    const changed = REGISTRY_COPY_TYPES.has(typeOf(urn)) ? diffRegistryCopy(olds as Props, news as Props) : diffLayerImage(olds as Props, news as Props);
    return { changes: changed.length > 0 };
  },
  async create(urn, inputs) {
    if (typeOf(urn) === IMAGE_ATTESTATIONS_SET_TYPE) return { id: urn.split("::").pop() ?? urn, outs: await attestSet({}, inputs as Props) };
    if (typeOf(urn) === IMAGE_INDEX_TYPE) {
      const parsed = parseImageIndexInputs(inputs as Props);
      return { id: `${parsed.repository}:${parsed.tag}`, outs: { ...withoutCredentials(inputs as Props), ...(await putLayerIndex(parsed)) } };
    }
    if (typeOf(urn) === CI_COPY_SET_TYPE) return { id: "ci-copies", outs: { ...withoutCredentials(inputs as Props), ...(await copyAll(parseCiCopySetInputs(inputs as Props))) } };
    if (REGISTRY_COPY_TYPES.has(typeOf(urn))) {
      const parsed = parseRegistryCopyInputs(inputs as Props);
      // Credentials stay in this resource's outputs (marked secret by the resource) because delete needs them.
      return { id: `${parsed.targetRepository}:${parsed.tag}`, outs: { ...(inputs as Props), ...(await copy(parsed)) } };
    }
    const parsed = parseLayerImageInputs(inputs as Props);
    return { id: parsed.imageName, outs: { ...withoutCredentials(inputs as Props), ...(await (await load.build()).buildAndPush(parsed, parsed.push)) } };
  },
  async update(_id, urn, olds, news) {
    if (typeOf(urn) === IMAGE_ATTESTATIONS_SET_TYPE) return { outs: await attestSet(olds as Props, news as Props) };
    if (typeOf(urn) === IMAGE_INDEX_TYPE) return { outs: { ...withoutCredentials(news as Props), ...(await putLayerIndex(parseImageIndexInputs(news as Props))) } };
    if (typeOf(urn) === CI_COPY_SET_TYPE) return { outs: { ...withoutCredentials(news as Props), ...(await copyAll(parseCiCopySetInputs(news as Props))) } };
    if (REGISTRY_COPY_TYPES.has(typeOf(urn))) {
      const result = await copy(parseRegistryCopyInputs(news as Props));
      // A tag this stack created stays "created" across updates, so destroy still removes it; but
      // only while it is the same copy: an adoption that took over a promotion's resource (an
      // alias, pulumi/tree.ts promotedBefore) found the tag there, and its delete leaves it alone.
      const sameCopy = (["sourceRepository", "targetRepository", "tag"] as const).every((key) => (olds as Props)[key] === (news as Props)[key]);
      return { outs: { ...(news as Props), ...result, created: result.created || (sameCopy && (olds as Props).created === true) } };
    }
    const parsed = parseLayerImageInputs(news as Props);
    return { outs: { ...withoutCredentials(news as Props), ...(await (await load.build()).buildAndPush(parsed, parsed.push)) } };
  },
  async read(id, _urn, props) {
    return { id, props: props as Props };
  },
  async delete(_id, urn, props) {
    if (typeOf(urn) === IMAGE_ATTESTATIONS_SET_TYPE || typeOf(urn) === IMAGE_ATTESTATIONS_TYPE) return; // The .sig/.att tags stay with the images they are about.
    if (typeOf(urn) === IMAGE_INDEX_TYPE) return; // Its tag stays, like a docker.Image's (strata ci-clean removes CI ones).
    if (typeOf(urn) === CI_COPY_SET_TYPE) return; // CI tags stay until strata ci-clean (the resource retains them anyway).
    if (!REGISTRY_COPY_TYPES.has(typeOf(urn))) return; // LayerImage: tags stay in the registry, like docker.Image.
    const inputs = parseRegistryCopyInputs(props as Props);
    if ((props as Props).created !== true) return; // The tag was there before this stack: not ours to remove.
    // The digest the copy put there: an annotated copy's own, not its source's.
    const repoDigest = (props as Props).repoDigest;
    const digest = typeof repoDigest === "string" && repoDigest.includes("@") ? digestOf(repoDigest) : inputs.digest;
    // Not when another tag holds the same manifest: deleting it by digest would take that tag too.
    await (await load.registry()).deleteCopy(await clientFor(inputs), inputs.targetRepository, inputs.tag, digest);
  },
};

// Its config comes over Configure (and the key as a secret input): the engine's copy in the environment is dropped before any child starts.
keepSecretsFromChildren();
await main(provider, process.argv.slice(2));
