/**
 * The signing key of the benchmark's signing sides (--signing): the TEST-ONLY pair that cosign
 * v2.6.5's `generate-key-pair` made for the unit tests (test/fixtures/cosign/README.md), so a
 * benchmark unlocks exactly what a user's cosign.key costs (scrypt with cosign's parameters) and
 * needs no cosign binary to make one. It signs throwaway benchmark images only.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { type BenchSigningKey } from "./strata-side.js";
import { projectRoot } from "./stats.js";

/** The passphrase the fixture key was made with (test/fixtures/cosign/README.md). */
const FIXTURE_PASSPHRASE = "test-only-passphrase";

export function benchSigningKey(): BenchSigningKey {
  return { privateKeyPem: readFileSync(path.join(projectRoot, "test/fixtures/cosign/cosign.key"), "utf8"), passphrase: FIXTURE_PASSPHRASE };
}
