/**
 * `strata verify`'s output (issue 29, item 7): one row per image the stack exports (layer, platform,
 * digest, the trusted key that signed it, the provenance's commit, whether it is reviewed, its SBOM's
 * package count, the verdict), then one paragraph per refused image (what failed, the fix); or the
 * same as data. Pure.
 */
import { type ImageVerdict, refusalParagraph } from "../core/trust-verdict.js";
import { renderTable } from "./table.js";

const shortDigest = (digestRef: string): string => {
  const at = digestRef.lastIndexOf("@");
  return at < 0 ? digestRef : digestRef.slice(at + 1, at + 1 + "sha256:".length + 12);
};

const verdictLabel = (verdict: ImageVerdict): string => (verdict.admitted ? "pass" : `REFUSED (${verdict.failures.length} failure${verdict.failures.length === 1 ? "" : "s"})`);

/** The commit, marked when its tree was dirty (a dirty build is refused, and the table says why at a glance). */
const commitCell = (verdict: ImageVerdict): string => (verdict.commit === undefined ? "-" : `${verdict.commit.slice(0, 12)}${verdict.clean === false ? " (dirty)" : ""}`);

/** The reviewed ref and the commit it named when it was read (every image was judged against that one). */
export interface ReviewedAt {
  readonly ref: string;
  readonly commit: string;
}

export function renderVerify(verdicts: readonly ImageVerdict[], stack: string, trustedBy: string, reviewed?: ReviewedAt): string {
  const rows = verdicts.map((verdict) => [
    verdict.layer, verdict.platform ?? "-", shortDigest(verdict.digestRef), verdict.signedBy ?? "-", commitCell(verdict), verdict.reviewed,
    verdict.packages === undefined ? "-" : String(verdict.packages), verdictLabel(verdict),
  ]);
  const refused = verdicts.filter((verdict) => !verdict.admitted);
  const lines = [
    `verify stack ${stack} against ${trustedBy}${reviewed === undefined ? "" : ` (reviewed: in ${reviewed.ref} at ${reviewed.commit.slice(0, 12)})`}:`,
    renderTable(["layer", "platform", "digest", "signed by", "commit", "reviewed", "packages", "verdict"], rows),
    refused.length === 0 ? `${verdicts.length} image${verdicts.length === 1 ? "" : "s"} verified` : `${refused.length} of ${verdicts.length} images refused:`,
    ...refused.map((verdict) => `\n${refusalParagraph(verdict)}`),
  ];
  return lines.join("\n");
}

export function renderVerifyJson(verdicts: readonly ImageVerdict[], stack: string, trustedBy: string, reviewed: ReviewedAt | undefined): string {
  return JSON.stringify({
    stack, trustedBy, reviewedRef: reviewed?.ref ?? null, reviewedCommit: reviewed?.commit ?? null, ok: verifyExitCode(verdicts) === 0,
    images: verdicts.map((verdict) => ({
      layer: verdict.layer, platform: verdict.platform ?? null, digestRef: verdict.digestRef, admitted: verdict.admitted, signedBy: verdict.signedBy ?? null,
      commit: verdict.commit ?? null, clean: verdict.clean ?? null, reviewed: verdict.reviewed, packages: verdict.packages ?? null, failures: verdict.failures,
    })),
  }, null, 2);
}

/** 1 when any image is refused, or when there was nothing to pass. */
export function verifyExitCode(verdicts: readonly ImageVerdict[]): number {
  return verdicts.length > 0 && verdicts.every((verdict) => verdict.admitted) ? 0 : 1;
}
