/**
 * What the SBOMs of a signed tree cost with and without LayerChangesets (registry/image-files.ts):
 * every image of a group in the registry gets its SBOM made as ImageAttestations makes it
 * (attest-image.ts sbomOf), first with every layer blob read for every image (what the provider
 * did before), then with each blob's changeset read once for the whole group (what one provider
 * process does now). Measured in this process: wall time, this process's CPU, and layer blobs read.
 *   node dist/bench/sbom-reads.js --group <group> [--registry host:port]
 */
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { sbomOf } from "../src/pulumi/provider/attest-image.js";
import { RegistryClient } from "../src/registry/client.js";
import { type ImageFilesRegistry, LayerChangesets } from "../src/registry/image-files.js";
import { groupTags } from "../src/registry/lookups.js";

export interface SbomReadsPass {
  readonly seconds: number;
  readonly cpuSeconds: number;
  readonly blobsRead: number;
  readonly blobMiB: number;
}

export interface SbomReads {
  readonly group: string;
  readonly images: number;
  /** Every layer blob read for every image. */
  readonly everyBlobPerImage: SbomReadsPass;
  /** Each blob read once for the group (one LayerChangesets). */
  readonly eachBlobOnce: SbomReadsPass;
  /** The packages counted in all SBOMs, the same in both passes (or the measurement is void). */
  readonly packages: number;
}

/** The SBOM of every image tag of `group` (not the cosign tags), twice: without and with LayerChangesets. */
export async function measureSbomReads(registry: string, group: string): Promise<SbomReads> {
  const client = new RegistryClient({ registry, scheme: "http" });
  const images = (await groupTags(client, group)).filter((entry) => !/\.(sig|att)$/.test(entry.tag) && entry.children === undefined);
  const pass = async (changesets: LayerChangesets | undefined): Promise<SbomReadsPass & { packages: number }> => {
    let blobsRead = 0;
    let bytes = 0;
    const counting: ImageFilesRegistry = {
      registry: client.registry,
      manifest: (repository, reference) => client.manifest(repository, reference),
      configOf: (repository, found) => client.configOf(repository, found),
      blobStream: async (repository, digest, size) => {
        blobsRead++;
        bytes += size ?? 0;
        return client.blobStream(repository, digest, size);
      },
    };
    const cpu = process.cpuUsage();
    const started = process.hrtime.bigint();
    let packages = 0;
    for (const image of images) packages += (await sbomOf(counting, { registry, repository: image.repository, digest: image.digest, tag: image.tag }, "Strata-bench", changesets)).packages;
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const used = process.cpuUsage(cpu);
    return { seconds: Number(seconds.toFixed(2)), cpuSeconds: Number(((used.user + used.system) / 1e6).toFixed(2)), blobsRead, blobMiB: Number((bytes / 2 ** 20).toFixed(1)), packages };
  };
  // Layer blobs only: configs come through configOf (and the client's blob cache), alike in both passes.
  const { packages, ...everyBlobPerImage } = await pass(undefined);
  const { packages: again, ...eachBlobOnce } = await pass(new LayerChangesets());
  if (again !== packages) throw new Error(`sbom-reads: the two passes counted ${packages} and ${again} packages in ${group}: the measurement is void`);
  return { group, images: images.length, everyBlobPerImage, eachBlobOnce, packages };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { group: { type: "string" }, registry: { type: "string", default: `127.0.0.1:${process.env.STRATA_REGISTRY_PORT ?? "5000"}` } } });
  if (values.group === undefined) throw new Error("--group <group> is needed: the image group whose SBOMs are made");
  process.stdout.write(`${JSON.stringify(await measureSbomReads(values.registry, values.group), null, 2)}\n`);
}
