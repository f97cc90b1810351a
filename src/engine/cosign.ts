/**
 * cosign, run as a process (issue 29): sign image digests, attest an SBOM or provenance, and verify
 * both, offline with a key, in cosign's classic `.sig`/`.att` tags. The binary is the pinned one
 * scripts/cosign-tools.sh provides (or an explicit path).
 *
 * The private key never touches argv, a file or a log: cosign reads it from its environment
 * (`--key env://STRATA_COSIGN_PRIVATE_KEY`, the passphrase from COSIGN_PASSWORD); a process's
 * environment is readable by its own user alone (/proc/<pid>/environ is 0400). Whatever cosign
 * writes to stderr is scrubbed of both before it reaches an error message.
 *
 * Verification fails closed: only exit 0 is "verified"; exit 10 (no signature) and 12 (wrong key or
 * annotation mismatch) are refusals of their own; anything else (a registry failing, cosign
 * missing, a timeout, an answer cosign could not read) is "could not tell", which a caller refuses
 * like the others and never takes for "unsigned but fine".
 */
import { execFile } from "node:child_process";
import { copyFileSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { checkoutFile } from "../core/checkout.js";
import { UserError } from "../core/problems.js";
import { isLoopbackRegistry, parseReference } from "../core/reference.js";
import { type RegistryCredentials } from "../registry/logins.js";

/** The environment variable cosign reads the private key from (`--key env://…`). */
export const PRIVATE_KEY_VARIABLE = "STRATA_COSIGN_PRIVATE_KEY";
/** Milliseconds one cosign call may take by default: one digest signs or verifies in about a second here. */
export const COSIGN_TIMEOUT_MS = 120_000;
/**
 * Milliseconds more for each further digest of a call over several (a gate's batch: every image of
 * a release, 190 layers and their platforms): each adds its reads of the registry, about 0.05 s on
 * a local one, more over a network. A fixed limit would stop a healthy batch of a large release,
 * and the one call per digest that follows a failed batch would take many minutes.
 */
export const COSIGN_PER_REFERENCE_MS = 1_000;
/** Bytes of a call's output Strata reads (image-verify.ts sizes its batches to stay under it). */
export const COSIGN_OUTPUT_BYTES = 64 << 20;

/** A private key as a stack secret holds it: cosign's encrypted PEM and its passphrase. Never logged. */
export interface SigningKey {
  readonly privateKeyPem: string;
  readonly password: string;
  /** The change key (`strata:changeSigningKey`, a change's run), so a message names the fields the run read. */
  readonly change?: true;
}

/** cosign's predicate types Strata attests with: an SPDX SBOM, and SLSA provenance v1. */
export type AttestationType = "spdxjson" | "slsaprovenance1";

export type VerifyResult =
  /** Exit 0. `payloads`: what cosign printed, one JSON document a line (signature payloads or DSSE envelopes). */
  | { readonly kind: "verified"; readonly payloads: readonly string[] }
  /** Exit 10: the digest has no signature (or no attestation) at all. */
  | { readonly kind: "no signature"; readonly detail: string }
  /** Exit 12: signed, but not by this key, or the annotations asked for differ. */
  | { readonly kind: "mismatch"; readonly detail: string }
  /** Anything else: the registry failing, cosign missing or timing out (`timedOut`). Refused like the others. */
  | { readonly kind: "could not tell"; readonly detail: string; readonly timedOut?: true };

export interface CosignOptions {
  /** The cosign binary; default: what `scripts/cosign-tools.sh path` prints (see locateCosign). */
  readonly binary: string;
  /** The limit of a call about one digest (COSIGN_TIMEOUT_MS). */
  readonly timeoutMs?: number;
  /** Added to it for each further digest of a call (COSIGN_PER_REFERENCE_MS). */
  readonly perReferenceMs?: number;
  /** Environment for cosign on top of this process's (DOCKER_CONFIG for registry logins). */
  readonly env?: Readonly<Record<string, string>>;
  /** The stack's own registry login (strata:registryUsername and its secret password), for the registry it names (cosignAccess). */
  readonly registryLogin?: RegistryLogin;
}

/** A registry login for one registry (`host[:port]`), as the stack's config gives it. */
export interface RegistryLogin extends RegistryCredentials {
  readonly registry: string;
}

/** Where Go looks for CA certificates on Linux when SSL_CERT_DIR is not set (crypto/x509's root_linux.go). */
const GO_CERT_DIRECTORIES = ["/etc/ssl/certs", "/etc/pki/tls/certs"];

/** The folders cosignAccess makes: `<prefix><pid of the process that made it>-<random>`. */
const ACCESS_PREFIX = "strata-cosign-access-";

/** An access folder this old is past any cosign call (a batch's limit is minutes): one whose process is gone is left over. */
const LEFT_ACCESS_AGE_MS = 60 * 60_000;

/** Whether this process has looked for left folders: those of processes gone before it started; a later process finds any left meanwhile. */
let leftAccessSwept = false;

/**
 * Removes the access folders of processes that are gone, once a process: one killed while cosign ran (SIGKILL, a
 * Ctrl-C the CLI does not catch) never removed its own, and a login would stay on disk (0600, its
 * user's alone) until a later call on this machine. Only a folder older than any call: a process
 * this one cannot see (another container's, sharing /tmp) may still be using a younger one. Only
 * this user's own folders (a name, a time and a pid anyone can fake): a process that lives, or that
 * this user cannot signal, keeps its folder, and so does one this user cannot remove.
 */
function removeLeftAccess(): void {
  if (leftAccessSwept) return;
  leftAccessSwept = true;
  let names: string[];
  try {
    names = readdirSync(tmpdir());
  } catch {
    return;
  }
  const named = new RegExp(`^${ACCESS_PREFIX}(\\d+)-`);
  for (const name of names) {
    const owner = named.exec(name)?.[1];
    if (owner === undefined || Number(owner) === process.pid) continue;
    const folder = path.join(tmpdir(), name);
    try {
      // This user's own folders only, never what a link points at: /tmp is everyone's, and root may remove anything.
      const found = lstatSync(folder);
      if (!found.isDirectory() || found.uid !== process.getuid?.() || found.mtimeMs > Date.now() - LEFT_ACCESS_AGE_MS) continue;
      process.kill(Number(owner), 0);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ESRCH") continue;
      try {
        rmSync(folder, { recursive: true, force: true });
      } catch {
        // Another user's, or going as this runs: not this call's to remove.
      }
    }
  }
}

/**
 * The environment that lets cosign reach the registry as Strata's own client does, and the folder
 * (made here, 0700; the caller removes it when cosign has run) that holds what it needs, if anything:
 * - the stack's login (`login`), which otherwise only Strata's client and docker.Image have: a
 *   Docker config file of its own (0600) with that registry's auth, pointed at by DOCKER_CONFIG.
 *   Never argv: cosign's --registry-password would be on its command line, which any user of the
 *   machine can read. Without a login, the caller's DOCKER_CONFIG (a docker login, a credential
 *   helper) stays what cosign reads, as before.
 * - the CA the registry's certificate needs (NODE_EXTRA_CA_CERTS, which Strata's messages ask for):
 *   Go does not read Node's variable, so the file is copied into a folder of its own that
 *   SSL_CERT_DIR adds to the folders Go reads anyway (the system's, or the caller's SSL_CERT_DIR;
 *   the system's bundle file, or SSL_CERT_FILE, is read as before).
 * - the same route: Strata's client (node:http) never goes through an HTTP proxy, and Go's does
 *   when HTTPS_PROXY/HTTP_PROXY is set (a CI runner's), so the registries a call reads
 *   (`registries`) are added to NO_PROXY: cosign reaches the registry Strata's client reached, not a
 *   proxy that may not reach it (and a refusal would then blame the registry).
 * `secrets`: what cosign's output is scrubbed of (the password, and the auth it is encoded in).
 */
export function cosignAccess(login: RegistryLogin | undefined, env: Readonly<Record<string, string | undefined>>, registries: readonly string[] = []): { env: Record<string, string>; folder?: string; secrets: string[] } {
  const proxied = ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"].some((name) => (env[name] ?? "") !== "");
  const direct: Record<string, string> = {};
  if (proxied && registries.length > 0) {
    // Go reads NO_PROXY, else no_proxy: both are set, to what the caller had and these registries.
    const given = [env.NO_PROXY, env.no_proxy].find((value) => value !== undefined && value !== "");
    direct.NO_PROXY = direct.no_proxy = [...(given === undefined ? [] : [given]), ...new Set(registries)].join(",");
  }
  const extraCa = env.NODE_EXTRA_CA_CERTS;
  if (login === undefined && (extraCa === undefined || extraCa === "")) return { env: direct, secrets: [] };
  removeLeftAccess();
  const folder = mkdtempSync(path.join(tmpdir(), `${ACCESS_PREFIX}${process.pid}-`));
  const access: Record<string, string> = { ...direct };
  const secrets: string[] = [];
  try {
    if (login !== undefined) {
      const auth = Buffer.from(`${login.username}:${login.password}`).toString("base64");
      const configDir = path.join(folder, "docker");
      mkdirSync(configDir, { mode: 0o700 });
      writeFileSync(path.join(configDir, "config.json"), `${JSON.stringify({ auths: { [login.registry]: { auth } } })}\n`, { mode: 0o600 });
      access.DOCKER_CONFIG = configDir;
      secrets.push(login.password, auth);
    }
    if (extraCa !== undefined && extraCa !== "") {
      const certs = path.join(folder, "certs");
      mkdirSync(certs, { mode: 0o700 });
      // A file that cannot be read is passed over, as Node passes over it (with a warning at every
      // start of Strata's processes): what the registry's certificate needs then fails in cosign's
      // own words, as it does in Strata's client.
      let copied = true;
      try {
        copyFileSync(extraCa, path.join(certs, "node-extra-ca-certs.pem"));
      } catch {
        copied = false;
      }
      const given = env.SSL_CERT_DIR;
      if (copied) access.SSL_CERT_DIR = [...(given === undefined || given === "" ? GO_CERT_DIRECTORIES : [given]), certs].join(":");
    }
  } catch (error) {
    rmSync(folder, { recursive: true, force: true });
    throw error;
  }
  return { env: access, folder, secrets };
}

/** The flags every registry-touching call shares: plain HTTP for loopback registries only (the only kind cosign is allowed to reach so). */
function registryFlags(refs: readonly string[]): string[] {
  const registries = [...new Set(refs.map((ref) => parseReference(ref).registry))];
  const loopback = registries.filter(isLoopbackRegistry);
  if (loopback.length > 0 && loopback.length < registries.length) {
    // One flag covers the whole call: a remote registry must never ride along over plain HTTP.
    throw new Error(`cosign: one call mixes loopback and remote registries (${registries.join(", ")}); call once per registry`);
  }
  return loopback.length > 0 ? ["--allow-http-registry=true"] : [];
}

/** A digest reference (`repo@sha256:…`): cosign signs what a tag points at now, and a tag can move. */
function requireDigestRef(ref: string): void {
  if (parseReference(ref).digest === undefined) throw new Error(`cosign: "${ref}" is not a digest reference (repository@sha256:…)`);
}

/** One reference or several, each a digest reference; at least one. */
function listOf(refs: string | readonly string[]): readonly string[] {
  const list = typeof refs === "string" ? [refs] : refs;
  if (list.length === 0) throw new Error("cosign: no reference given");
  list.forEach(requireDigestRef);
  return list;
}

function annotationFlags(annotations: Readonly<Record<string, string>> = {}): string[] {
  return Object.keys(annotations).sort().flatMap((key) => ["-a", `${key}=${annotations[key] ?? ""}`]);
}

/**
 * The argv of each call, built in one place so a test can hold that no secret is in it. Keys are
 * given as `env://…` (private) or a file path (public).
 */
export const cosignArgs = {
  generateKeyPair: (): string[] => ["generate-key-pair"],
  sign: (refs: readonly string[], annotations?: Readonly<Record<string, string>>): string[] => {
    listOf(refs);
    return ["sign", "--key", `env://${PRIVATE_KEY_VARIABLE}`, "--tlog-upload=false", "--yes", ...registryFlags(refs), ...annotationFlags(annotations), ...refs];
  },
  attest: (ref: string, type: AttestationType, predicateFile: string): string[] => {
    requireDigestRef(ref);
    return ["attest", "--key", `env://${PRIVATE_KEY_VARIABLE}`, "--tlog-upload=false", "--yes", "--type", type, "--predicate", predicateFile, ...registryFlags([ref]), ref];
  },
  verify: (refs: string | readonly string[], publicKeyFile: string, annotations?: Readonly<Record<string, string>>): string[] => {
    const list = listOf(refs);
    return ["verify", "--key", publicKeyFile, "--insecure-ignore-tlog=true", "--output", "json", ...registryFlags(list), ...annotationFlags(annotations), ...list];
  },
  verifyAttestation: (refs: string | readonly string[], publicKeyFile: string, type: AttestationType): string[] => {
    const list = listOf(refs);
    return ["verify-attestation", "--key", publicKeyFile, "--insecure-ignore-tlog=true", "--type", type, "--output", "json", ...registryFlags(list), ...list];
  },
};

interface Exit {
  /** Undefined when cosign did not run to an exit (missing, killed on timeout). */
  readonly code?: number;
  readonly stdout: string;
  /** Scrubbed of the key and passphrase. */
  readonly stderr: string;
  readonly failure?: string;
  /** Stopped for taking longer than its limit. */
  readonly timedOut?: true;
  readonly wallMs: number;
}

/** Replaces every secret (and every line of a PEM body) in cosign's output with [redacted]. */
export function scrub(text: string, secrets: readonly string[]): string {
  let scrubbed = text;
  for (const secret of secrets) {
    if (secret.length < 4) continue; // A one-letter passphrase would redact every such letter; it is not worth hiding in cosign's stderr.
    scrubbed = scrubbed.split(secret).join("[redacted]");
    // A PEM body can come back re-wrapped or line by line: each of its lines goes too.
    for (const line of secret.split("\n").map((part) => part.trim()).filter((part) => part.length >= 16)) scrubbed = scrubbed.split(line).join("[redacted]");
  }
  return scrubbed;
}

/** What cosign said went wrong: its error lines, each once (it prints the error twice, with two prefixes). */
function lastWords(exit: Exit): string {
  if (exit.failure !== undefined) return exit.failure;
  const lines = exit.stderr.split("\n").map((line) => line.trim().replace(/^(Error|error during command execution): /, "")).filter((line) => line !== "");
  return [...new Set(lines)].slice(-2).join(" / ") || `exit ${String(exit.code)}`;
}

export class Cosign {
  readonly binary: string;
  private readonly timeoutMs: number;
  private readonly perReferenceMs: number;
  private readonly env: Readonly<Record<string, string>>;
  private readonly registryLogin: RegistryLogin | undefined;

  constructor(options: CosignOptions) {
    this.binary = options.binary;
    this.timeoutMs = options.timeoutMs ?? COSIGN_TIMEOUT_MS;
    this.perReferenceMs = options.perReferenceMs ?? COSIGN_PER_REFERENCE_MS;
    this.env = options.env ?? {};
    this.registryLogin = options.registryLogin;
  }

  /** The limit of one call about `refs`: the one-digest limit, and more for each further digest. */
  private limitFor(refs: string | readonly string[]): number {
    return this.timeoutMs + this.perReferenceMs * Math.max(0, (typeof refs === "string" ? 1 : refs.length) - 1);
  }

  /**
   * Runs cosign with `args` and `secretEnv` on top of a clean environment: no COSIGN_* or SIGSTORE_*
   * variable of the caller's reaches it (COSIGN_REPOSITORY alone would store signatures elsewhere).
   * `refs`: the digests the call is about, which set its limit (limitFor; none: one digest's).
   */
  private run(args: readonly string[], { secretEnv = {}, cwd, refs = [] }: { readonly secretEnv?: Readonly<Record<string, string>>; readonly cwd?: string; readonly refs?: string | readonly string[] } = {}): Promise<Exit> {
    const timeoutMs = this.limitFor(refs);
    const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(COSIGN_|SIGSTORE_|TUF_)/.test(name) && name !== PRIVATE_KEY_VARIABLE));
    // Made for each call and removed when it ends: the login is on disk only while cosign runs.
    let access: ReturnType<typeof cosignAccess>;
    try {
      access = cosignAccess(this.registryLogin, { ...inherited, ...this.env }, (typeof refs === "string" ? [refs] : refs).map((ref) => parseReference(ref).registry));
    } catch (error) {
      return Promise.resolve({ stdout: "", stderr: "", failure: (error as Error).message, wallMs: 0 });
    }
    const secrets = [...Object.values(secretEnv), ...access.secrets];
    const started = Date.now();
    return new Promise<Exit>((resolve) => {
      execFile(this.binary, args, { cwd, timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: COSIGN_OUTPUT_BYTES, env: { ...inherited, ...this.env, ...access.env, ...secretEnv } }, (error, stdout, stderr) => {
        const wallMs = Date.now() - started;
        const clean = { stdout: scrub(stdout, secrets), stderr: scrub(stderr, secrets), wallMs };
        if (error === null) return resolve({ code: 0, ...clean });
        const code = (error as { code?: unknown }).code;
        if (typeof code === "number") return resolve({ code, ...clean });
        const killed = (error as { killed?: boolean }).killed === true;
        // Ended by a signal this process did not send (the OOM killer, an operator): Node's message says only "Command failed".
        const signal = (error as { signal?: unknown }).signal;
        const failure = code === "ENOENT" ? `cosign is not at ${this.binary} (scripts/cosign-tools.sh ensure builds it)`
          : killed ? `cosign ${args[0] ?? ""} took longer than ${timeoutMs < 1000 ? `${timeoutMs} ms` : `${Math.round(timeoutMs / 1000)} s`} and was stopped`
          : typeof signal === "string" ? `cosign ${args[0] ?? ""} was ended by ${signal} before it answered${stderr.trim() === "" ? "" : ` (${scrub(stderr.trim().split("\n").pop() ?? "", secrets)})`}`
          : scrub(error.message, secrets);
        resolve({ ...clean, failure, ...(killed ? { timedOut: true as const } : {}) });
      });
    }).finally(() => {
      if (access.folder !== undefined) rmSync(access.folder, { recursive: true, force: true });
    });
  }

  /** The environment that hands cosign a private key: the variable `--key env://` names, and the passphrase. */
  private static keyEnv(key: SigningKey): Record<string, string> {
    return { [PRIVATE_KEY_VARIABLE]: key.privateKeyPem, COSIGN_PASSWORD: key.password };
  }

  /** A new ECDSA P-256 key pair in `dir` (cosign.key, encrypted with `password`, and cosign.pub): for tests and the README's first steps. */
  async generateKeyPair(dir: string, password: string): Promise<{ privateKeyFile: string; publicKeyFile: string; key: SigningKey }> {
    const exit = await this.run(cosignArgs.generateKeyPair(), { secretEnv: { COSIGN_PASSWORD: password }, cwd: dir });
    if (exit.code !== 0) throw new UserError(`cosign generate-key-pair in ${dir} failed: ${lastWords(exit)}`);
    const privateKeyFile = path.join(dir, "cosign.key");
    return { privateKeyFile, publicKeyFile: path.join(dir, "cosign.pub"), key: { privateKeyPem: readFileSync(privateKeyFile, "utf8"), password } };
  }

  /**
   * Signs each digest reference, in one cosign call (it takes several), with `annotations` in every
   * signature's payload. Signing a digest again appends a second signature: callers sign once.
   */
  async sign(refs: readonly string[], key: SigningKey, annotations?: Readonly<Record<string, string>>): Promise<{ wallMs: number }> {
    const exit = await this.run(cosignArgs.sign(refs, annotations), { secretEnv: Cosign.keyEnv(key), refs });
    if (exit.code !== 0) throw new UserError(`cosign could not sign ${refs.length === 1 ? refs[0] : `${refs.length} images (${refs[0]}, …)`}: ${lastWords(exit)}. Check the registry is up and accepts pushes, and that strata:signingKey and its passphrase belong together (a wrong passphrase reads as "decryption failed" here). cosign signs in the order given and stops at the first failure: the references before it may be signed already.`);
    return { wallMs: exit.wallMs };
  }

  /** Attests `predicate` (the bytes of an SPDX document or a SLSA provenance predicate) about one digest. */
  async attest(ref: string, key: SigningKey, type: AttestationType, predicate: Buffer): Promise<{ wallMs: number }> {
    // The predicate is not secret, but it goes into a folder of this process's own (0700) all the same.
    const dir = mkdtempSync(path.join(tmpdir(), "strata-attest-"));
    try {
      const predicateFile = path.join(dir, "predicate.json");
      writeFileSync(predicateFile, predicate, { mode: 0o600 });
      const exit = await this.run(cosignArgs.attest(ref, type, predicateFile), { secretEnv: Cosign.keyEnv(key), refs: ref });
      if (exit.code !== 0) throw new UserError(`cosign could not attest ${type} for ${ref}: ${lastWords(exit)}. Check the registry is up and accepts pushes, and that strata:signingKey and its passphrase belong together.`);
      return { wallMs: exit.wallMs };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /**
   * Whether a signature by `publicKeyFile` covers exactly this digest (and carries `annotations`, if
   * given). Several references verify in one call, which costs about what one does (cosign's start
   * dominates: 20 digests 0.2 CPU-s in one call, 3.1 in twenty); cosign stops at the first that
   * fails, so a verdict other than "verified" says only that one of them failed: verify each then,
   * to name it.
   */
  async verify(refs: string | readonly string[], publicKeyFile: string, annotations?: Readonly<Record<string, string>>): Promise<VerifyResult> {
    return classify(await this.run(cosignArgs.verify(refs, publicKeyFile, annotations), { refs }), `signature of ${describe(refs)}`);
  }

  /** Whether an attestation of `type` signed by `publicKeyFile` covers exactly each digest; their DSSE envelopes, a line each, when it does. As verify for several references. */
  async verifyAttestation(refs: string | readonly string[], publicKeyFile: string, type: AttestationType): Promise<VerifyResult> {
    return classify(await this.run(cosignArgs.verifyAttestation(refs, publicKeyFile, type), { refs }), `${type} attestation of ${describe(refs)}`, ATTESTATION_VERDICTS);
  }
}

function describe(refs: string | readonly string[]): string {
  if (typeof refs === "string") return refs;
  return refs.length === 1 ? (refs[0] ?? "") : `one of ${refs.length} images (${refs[0] ?? ""}, …)`;
}

/**
 * `verify-attestation` of v2.6.5 exits 1 for every refusal (its ErrNoMatchingAttestations has no
 * exit code of its own), so its verdicts are told apart by cosign's message, which the e2e test
 * holds for the pinned version. A message not listed here stays "could not tell".
 */
const ATTESTATION_VERDICTS: readonly { readonly pattern: RegExp; readonly kind: "no signature" | "mismatch" }[] = [
  // Attestations exist, none signed by this key (or a payload altered after signing).
  { pattern: /no matching attestations: accepted signatures do not match threshold/, kind: "mismatch" },
  // No `.att` at all: cosign's error ends right after the colon.
  { pattern: /no matching attestations: *$/m, kind: "no signature" },
  // Attestations by this key, none of whose in-toto subjects is the image's digest (one moved under another image's .att tag).
  { pattern: /no matching attestations: no matching subject digest found/, kind: "mismatch" },
  // Attestations by this key, but none of the type asked for.
  { pattern: /none of the attestations matched the predicate type/, kind: "no signature" },
];

function isJson(line: string): boolean {
  try {
    JSON.parse(line);
    return true;
  } catch {
    return false;
  }
}

/**
 * cosign's exit codes (cmd/cosign/errors/exit_codes.go), and for exit 1 the messages `verdicts`
 * lists, as a verdict; every other answer is "could not tell".
 */
function classify(exit: Exit, what: string, verdicts: typeof ATTESTATION_VERDICTS = []): VerifyResult {
  if (exit.code === 0) {
    const payloads = exit.stdout.split("\n").map((line) => line.trim()).filter((line) => line !== "");
    // cosign said yes but printed nothing to check: not a yes Strata can act on.
    if (payloads.length === 0) return { kind: "could not tell", detail: `cosign verified the ${what} but printed no payload` };
    // Every line it prints on stdout is a JSON document: anything else is output Strata cannot read,
    // not a "verified" whose payloads would then be read as naming no digest (another key's, another image's).
    const unreadable = payloads.find((line) => !isJson(line));
    if (unreadable !== undefined) return { kind: "could not tell", detail: `cosign verified the ${what} but printed a line that is not JSON (${JSON.stringify(unreadable.slice(0, 80))}), so what it verified cannot be read` };
    return { kind: "verified", payloads };
  }
  if (exit.code === 10) return { kind: "no signature", detail: `no ${what}: ${lastWords(exit)}` };
  if (exit.code === 12) return { kind: "mismatch", detail: `the ${what} is not by the trusted key, or its annotations differ: ${lastWords(exit)}` };
  const verdict = exit.code === 1 ? verdicts.find((known) => known.pattern.test(exit.stderr)) : undefined;
  if (verdict?.kind === "no signature") return { kind: "no signature", detail: `no ${what}: ${lastWords(exit)}` };
  if (verdict?.kind === "mismatch") return { kind: "mismatch", detail: `the ${what} is not by the trusted key: ${lastWords(exit)}` };
  return { kind: "could not tell", detail: `cannot verify the ${what}: ${lastWords(exit)}`, ...(exit.timedOut === true ? { timedOut: true as const } : {}) };
}

/**
 * The pinned cosign's path, from `scripts/cosign-tools.sh path` (which builds it the first time,
 * 12–15 minutes on 2 busy cores). STRATA_COSIGN, when set, names a binary to use instead.
 */
export function locateCosign(env: Readonly<Record<string, string | undefined>> = process.env): Promise<string> {
  const explicit = env.STRATA_COSIGN;
  if (explicit !== undefined && explicit !== "") return Promise.resolve(explicit);
  const script = checkoutFile("scripts/cosign-tools.sh");
  if (script === undefined) return Promise.reject(new UserError("scripts/cosign-tools.sh is not in this Strata checkout, so cosign cannot be found: set STRATA_COSIGN to a cosign binary"));
  return new Promise((resolve, reject) => {
    execFile(script, ["path"], { env: { ...process.env, ...env }, timeout: 60 * 60_000 }, (error, stdout, stderr) => {
      const found = stdout.trim();
      if (error === null && found !== "") resolve(found);
      else reject(new UserError(`cosign is needed to sign or verify and could not be provided: ${stderr.trim().split("\n").pop() ?? error?.message ?? "no path printed"}`));
    });
  });
}
