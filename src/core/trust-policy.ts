/**
 * A channel's trust policy, the stack config value `strata:trust` (issue 29): which public keys the
 * channel trusts, and which git ref says a commit was reviewed. Promotion into the channel admits
 * an image only if one of these keys signed exactly its digest and its provenance names a commit
 * that is an ancestor of `reviewedRef` (source-info.ts asks git).
 *
 *   strata:trust:
 *     keys: [keys/ci.pub]        # PEM public keys, relative to the project folder
 *     reviewedRef: origin/main   # a commit is reviewed when this ref contains it
 *
 * Every problem is collected and names the stack file, the field and the fix (problems.ts).
 */
import { createPublicKey } from "node:crypto";
import { readFileSync, realpathSync } from "node:fs";
import path from "node:path";
import { CONFIG_NAMESPACE } from "./config.js";
import { type Problem } from "./problems.js";

export const TRUST_KEY = "trust";

export interface TrustPolicy {
  /** Paths of PEM public keys as written in the config, relative to the project folder, in the config's order. */
  readonly keys: readonly string[];
  /** A remote-tracking ref or a tag (`origin/main`, `refs/remotes/origin/main`, `v1.2`): a commit it contains is reviewed (reviewedRefProblem). */
  readonly reviewedRef: string;
}

/** A trusted key, read: the path as configured, the absolute path cosign is given, the PEM text. */
export interface TrustedKey {
  readonly configured: string;
  readonly file: string;
  readonly pem: string;
}

const FIELD = `${CONFIG_NAMESPACE}:${TRUST_KEY}`;
const EXAMPLE = `${FIELD}: {keys: [keys/ci.pub], reviewedRef: origin/main}`;
const KEYS_FIX = "list the PEM public keys this channel trusts, relative to the project folder, for example keys: [keys/ci.pub] (make one with cosign generate-key-pair; commit only the .pub)";
/**
 * Why a reviewed ref, by its full name (`git rev-parse --symbolic-full-name`), cannot say what was
 * reviewed; undefined when it can. Only a remote-tracking ref (what the remote's reviewed branch
 * holds, as fetched) or a tag: a local branch moves without review (a local merge, `git branch -f`,
 * a CI system's speculative merge of the changes under test into its local branches), and so would
 * call whatever it was moved to reviewed. Read at parse time for a full name, and by the gate
 * (engine/source-info.ts reviewedTip) for a short one, which only git can expand.
 */
export function reviewedRefProblem(fullName: string): string | undefined {
  if (/^refs\/(remotes|tags)\/[^/]/.test(fullName)) return undefined;
  if (fullName.startsWith("refs/heads/")) return `${fullName} is a local branch: it moves without review (a local merge, git branch -f, a CI system's speculative merge of the changes under test), so it cannot say what was reviewed; name the remote-tracking ref your review system moves (origin/${fullName.slice("refs/heads/".length)}) or a tag`;
  return `${fullName} is neither a remote-tracking ref (refs/remotes/…) nor a tag (refs/tags/…), the refs that say what was reviewed; name one, for example origin/main`;
}

/**
 * Conservative: letters, digits and `._/-@{}^~`, not starting with `-` (git would read it as an
 * option), with none of git's forbidden forms (`..`, `//`, a trailing `/`, `.` or `.lock`).
 */
const REF = /^(?!-)[A-Za-z0-9._/@{}^~-]+$/;

function refProblem(ref: string): string | undefined {
  if (!REF.test(ref) || ref.includes("..") || ref.includes("//") || ref.includes("@{") || /(\/|\.|\.lock)$/.test(ref) || ref.startsWith("/")) {
    return `${JSON.stringify(ref)} is not a git ref name`;
  }
  // HEAD (or a commit of the checkout itself) contains whatever was just built: everything would count as reviewed.
  if (/^(HEAD|@|FETCH_HEAD|ORIG_HEAD)([~^].*)?$/.test(ref)) return `${JSON.stringify(ref)} is the checkout's own position: every commit built from it would count as reviewed`;
  return undefined;
}

/**
 * The policy from the config value as either source gives it: a YAML mapping (the CLI reads the
 * stack file) or a string holding its JSON (Pulumi config stores structured values so). Absent: no
 * policy (undefined, no problems). Present but empty or wrong: every problem, never a half-policy.
 */
export function parseTrustPolicy(value: unknown, stackFile: string): { policy?: TrustPolicy; problems: Problem[] } {
  if (value === undefined) return { problems: [] };
  // Set, but to nothing: a stack file line left empty (or a template's empty value) would otherwise turn an immutable channel's gate off unseen.
  if (value === null || (typeof value === "string" && value.trim() === "")) {
    return { problems: [{ file: stackFile, field: FIELD, message: "is set but empty: a channel without a trust policy leaves it out, and an empty one is not taken for none", fix: `write the policy (${EXAMPLE}), or remove the line (pulumi config rm ${FIELD}) if this channel admits images unchecked` }] };
  }
  const problem = (field: string, message: string, fix: string): Problem => ({ file: stackFile, field, message, fix });
  let raw: unknown = value;
  if (typeof value === "string") {
    try {
      raw = JSON.parse(value);
    } catch {
      return { problems: [problem(FIELD, `${JSON.stringify(value)} is neither a mapping nor a JSON object`, `write it as a mapping, for example ${EXAMPLE}`)] };
    }
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    return { problems: [problem(FIELD, `is ${JSON.stringify(raw)}, not a mapping with keys and reviewedRef`, `write it as a mapping, for example ${EXAMPLE}`)] };
  }
  const record = raw as Record<string, unknown>;
  const problems: Problem[] = [];
  for (const key of Object.keys(record).filter((key) => key !== "keys" && key !== "reviewedRef").sort()) {
    problems.push(problem(`${FIELD}.${key}`, "unknown field", `remove it or correct its spelling; the fields are keys and reviewedRef (${EXAMPLE})`));
  }

  const keys: string[] = [];
  if (record.keys === undefined) {
    problems.push(problem(`${FIELD}.keys`, "is missing: a trust policy with no key would admit nothing", KEYS_FIX));
  } else if (!Array.isArray(record.keys)) {
    problems.push(problem(`${FIELD}.keys`, `is ${JSON.stringify(record.keys)}, not a list`, KEYS_FIX));
  } else if (record.keys.length === 0) {
    problems.push(problem(`${FIELD}.keys`, "is an empty list: a trust policy with no key would admit nothing", KEYS_FIX));
  } else {
    record.keys.forEach((entry: unknown, index: number) => {
      const field = `${FIELD}.keys[${index}]`;
      if (typeof entry !== "string" || entry.trim() === "") {
        problems.push(problem(field, `is ${JSON.stringify(entry)}, not a file path`, KEYS_FIX));
      } else if (path.isAbsolute(entry) || path.normalize(entry).split(path.sep)[0] === "..") {
        // A key outside the project is not under review with the policy that names it.
        problems.push(problem(field, `"${entry}" is outside the project folder`, "put the public key in the project (for example keys/ci.pub), commit it, and name it relative to the project"));
      } else if (keys.includes(path.normalize(entry))) {
        problems.push(problem(field, `"${entry}" is listed twice`, "list each key once"));
      } else {
        keys.push(path.normalize(entry));
      }
    });
  }

  let reviewedRef: string | undefined;
  if (record.reviewedRef === undefined) {
    problems.push(problem(`${FIELD}.reviewedRef`, "is missing: nothing says which commits were reviewed", "name the ref that holds reviewed commits, for example reviewedRef: origin/main"));
  } else if (typeof record.reviewedRef !== "string" || record.reviewedRef.trim() === "") {
    problems.push(problem(`${FIELD}.reviewedRef`, `is ${JSON.stringify(record.reviewedRef)}, not a git ref`, "name the ref that holds reviewed commits, for example reviewedRef: origin/main"));
  } else {
    const wrong = refProblem(record.reviewedRef) ?? (record.reviewedRef.startsWith("refs/") ? reviewedRefProblem(record.reviewedRef) : undefined);
    if (wrong === undefined) reviewedRef = record.reviewedRef;
    else problems.push(problem(`${FIELD}.reviewedRef`, wrong, "name the remote-tracking ref or tag that only reviewed commits reach, for example origin/main"));
  }

  if (problems.length > 0 || reviewedRef === undefined) return { problems };
  return { policy: { keys, reviewedRef }, problems: [] };
}

/** The PEM types a trust key file may hold: SPKI, or PKCS#1 (RSA). */
type KeyBlockLabel = "PUBLIC KEY" | "RSA PUBLIC KEY";

/**
 * The one public key block of a key file (PUBLIC KEY, or RSA PUBLIC KEY: PKCS#1, which cosign
 * takes too), as its own text, and its type; undefined unless the file holds exactly one BEGIN and one END line
 * and they frame a base64 body of the same type. cosign reads a file's first block with
 * Go's PEM decoder, whose rules changed between Go releases (CVE-2025-61723: which BEGIN an END
 * closes, header lines, a lone `\r`), so a file with anything more could be read as another key
 * by the cosign at hand than by Strata, which checks signatures with this block too: such a file is
 * the policy's problem, whichever Go built cosign.
 */
export function soleKeyBlock(text: string): { block: string; label: KeyBlockLabel } | undefined {
  if (text.split("-----BEGIN").length !== 2 || text.split("-----END").length !== 2) return undefined;
  const found = /(?:^|\n)(-----BEGIN ((?:RSA )?PUBLIC KEY)-----\r?\n[A-Za-z0-9+/=\r\n]+?\r?\n-----END \2-----[ \t]*(?:\r?\n|$))/.exec(text);
  return found === null ? undefined : { block: found[1] as string, label: found[2] as KeyBlockLabel };
}

/**
 * The curves of the ECDSA keys Strata takes, by Node's names: P-256, P-384, P-521. cosign (Go)
 * verifies with P-224 keys too, but Node cannot write one out as JWK, which the canonical-encoding
 * check below needs: such a key is refused, saying it is Strata that refuses it.
 */
const COSIGN_CURVES: ReadonlySet<string> = new Set(["prime256v1", "secp384r1", "secp521r1"]);

/**
 * A key file's key as cosign reads it (its one block), or why it cannot be a key cosign verifies
 * with, and the fix: one public key block and nothing else that looks like one (soleKeyBlock), whose
 * bytes are an ECDSA P-256/384/521, RSA (SPKI or PKCS#1) or Ed25519 key (cosign refuses DSA, X25519,
 * secp256k1), in the one DER encoding Go's x509 parser takes, and for RSA a key Go's crypto/rsa
 * verifies with. Node (OpenSSL) reads more than Go does; each of these would otherwise refuse every
 * image for "the registry or cosign" or "another key", or leave the key silently out of a batch.
 */
function cosignKey(pem: string): { block: string } | { message: string; fix: string } {
  const sole = soleKeyBlock(pem);
  if (sole === undefined) {
    const begins = pem.split("-----BEGIN").length - 1;
    return {
      message: `it is not one PUBLIC KEY block alone (${begins} BEGIN line${begins === 1 ? ", not framing a PUBLIC KEY's base64 as cosign writes it" : "s"}): cosign reads a file's first PEM block, and which one that is in a file of several depends on the Go it was built with, so Strata and cosign could trust different keys`,
      fix: "keep each public key in a file of its own, exactly as cosign generate-key-pair wrote cosign.pub (one BEGIN PUBLIC KEY block, nothing else), and list each file in strata:trust.keys",
    };
  }
  const { block, label } = sole;
  const rewrite = label === "RSA PUBLIC KEY"
    ? "write the key out again canonically: openssl rsa -RSAPublicKey_in -in key.pub -RSAPublicKey_out (or -pubout for the PUBLIC KEY form cosign writes)"
    : "write the key out again canonically: openssl pkey -pubin -in key.pub -pubout (an EC key: add -ec_conv_form uncompressed -ec_param_enc named_curve), or cosign public-key --key cosign.key";
  let key: ReturnType<typeof createPublicKey>;
  try {
    key = createPublicKey(block);
  } catch (error) {
    return { message: `its BEGIN ${label} block is no public key Strata reads (${(error as Error).message.split("\n")[0]})`, fix: label === "RSA PUBLIC KEY" ? "put back the whole key file (this one is cut short or damaged), or write it out again from its private key (openssl rsa -in key.pem -RSAPublicKey_out, or -pubout for the PUBLIC KEY form cosign writes)" : "put back the whole cosign.pub that cosign generate-key-pair wrote (this one is cut short or damaged)" };
  }
  // A key OpenSSL takes but cannot write out (an EC point at infinity) aborts Node when its details
  // are read: asked first, where it is an error (Go refuses such a key too).
  try {
    key.export({ type: "spki", format: "der" });
  } catch (error) {
    return { message: `its BEGIN ${label} block holds no usable key (${(error as Error).message.split("\n")[0]})`, fix: "trust the public key cosign generate-key-pair wrote (cosign.pub), or write it out again from its private key (cosign public-key --key cosign.key)" };
  }
  const type = key.asymmetricKeyType ?? "unknown";
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (!(type === "rsa" || type === "ed25519" || (type === "ec" && curve !== undefined && COSIGN_CURVES.has(curve)))) {
    return {
      message: curve === "secp224r1"
        ? "it is an ECDSA key on the curve secp224r1 (P-224), which cosign verifies with but Strata does not take (ECDSA P-256, P-384 or P-521, RSA or Ed25519)"
        : `it is ${type === "ec" ? `an ECDSA key on ${curve === undefined || curve === "UNDEF" ? "a curve given by explicit parameters, not by name" : `the curve ${curve}`}` : `a key of type ${type}`}, which cosign does not verify with (ECDSA P-256, P-384 or P-521, RSA or Ed25519)`,
      fix: "sign with a key cosign takes (cosign generate-key-pair makes an ECDSA P-256 pair) and trust its .pub",
    };
  }
  // OpenSSL reads encodings Go's x509 refuses (bytes after the key, non-minimal lengths and numbers,
  // an RSA key without its NULL parameters, a compressed EC point), and Go some that OpenSSL does
  // not. The canonical one, the key written out again from its numbers (what cosign and openssl
  // write), both read alike: the only one Strata takes.
  const jwk = key.export({ format: "jwk" });
  const canonical = createPublicKey({ key: jwk, format: "jwk" }).export({ type: label === "RSA PUBLIC KEY" ? "pkcs1" : "spki", format: "der" });
  const body = Buffer.from(block.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, ""), "base64");
  if (!body.equals(canonical)) {
    return {
      message: `its BEGIN ${label} block is not in the canonical DER encoding that cosign and openssl write, the only one Strata takes (it holds bytes after the key, a non-minimal length or number, an RSA key without its NULL parameters, explicit curve parameters or a compressed EC point; Go refuses most of these, and Strata and cosign could read such a key apart)`,
      fix: rewrite,
    };
  }
  if (type === "rsa") {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    const exponent = key.asymmetricKeyDetails?.publicExponent ?? 0n;
    const modulusOdd = (Buffer.from(jwk.n ?? "", "base64url").at(-1) ?? 0) % 2 === 1;
    // Go's crypto/rsa verifies with no key under 1024 bits (unless GODEBUG=rsa1024min=0, which the
    // pinned cosign is not built with), an even modulus, or an exponent that is even, under 3 or over
    // 2^31-1 (its PKCS#1 parser takes none over that either); OpenSSL, which checks Strata's own
    // signatures, none over 16384 bits.
    const wrong =
      bits < 1024 ? `${bits} bits, under the 1024 Go's crypto/rsa verifies with`
      : bits > 16384 ? `${bits} bits, over the 16384 OpenSSL (which checks Strata's signatures) verifies with`
      : !modulusOdd ? "an even modulus, which Go's crypto/rsa refuses"
      : exponent < 3n || exponent % 2n === 0n || exponent > 2n ** 31n - 1n ? `the public exponent ${exponent > 2n ** 64n ? `of ${exponent.toString(2).length} bits` : exponent}, where Go (cosign) takes only an odd one from 3 to 2^31-1`
      : undefined;
    if (wrong !== undefined) return { message: `it is an RSA key with ${wrong}`, fix: "sign with a key cosign takes (cosign generate-key-pair makes an ECDSA P-256 pair; an RSA pair of 2048, 3072 or 4096 bits with exponent 65537, as cosign import-key-pair takes) and trust its .pub" };
  }
  return { block };
}

/**
 * Reads the policy's keys from the project folder: each must exist and be a PEM public key. A
 * private key is refused by name (it must not sit in the project, and trusting it says nothing).
 */
export function readTrustedKeys(policy: TrustPolicy, projectDir: string, stackFile: string, options: { readonly inProjectOnly?: boolean } = {}): { keys: TrustedKey[]; problems: Problem[] } {
  // A policy's keys are reviewed with the policy, so they must be files of the project; a key an
  // auditor names on the command line (strata verify --key) may be anywhere.
  const inProjectOnly = options.inProjectOnly ?? true;
  const keys: TrustedKey[] = [];
  const problems: Problem[] = [];
  policy.keys.forEach((configured, index) => {
    const field = `${FIELD}.keys[${index}]`;
    const file = path.resolve(projectDir, configured);
    let pem: string;
    try {
      // The path was checked to stay in the project; a symlink there must not lead out of it (the
      // key a policy trusts is reviewed with the policy only if it is in the project itself).
      const real = realpathSync(file);
      const projectReal = realpathSync(projectDir);
      if (inProjectOnly && real !== projectReal && !real.startsWith(`${projectReal}${path.sep}`)) {
        problems.push({ file: stackFile, field, message: `"${configured}" leads outside the project folder (to ${real})`, fix: "put the public key file itself in the project (for example keys/ci.pub), not a link to one elsewhere, and commit it" });
        return;
      }
      pem = readFileSync(real, "utf8");
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      problems.push({ file: stackFile, field, message: `cannot read "${configured}" (${file}): ${code === "ENOENT" ? "no such file" : (code ?? String(error))}`, fix: "add the public key at that path (cosign generate-key-pair writes cosign.pub) or correct the path" });
      return;
    }
    if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) {
      problems.push({ file: stackFile, field, message: `"${configured}" is a private key`, fix: "name the public half (cosign.pub) instead, and remove the private key from the project: it belongs in a stack secret (strata:signingKey)" });
    } else if (!/-----BEGIN (?:RSA )?PUBLIC KEY-----[\s\S]+-----END (?:RSA )?PUBLIC KEY-----/.test(pem)) {
      problems.push({ file: stackFile, field, message: `"${configured}" is not a PEM public key (no BEGIN PUBLIC KEY block)`, fix: "name the .pub file cosign generate-key-pair wrote" });
    } else {
      // A key cosign cannot use (cut short, edited, of a type it does not take) would make every
      // verification "could not tell", each image refused for the registry or cosign: said here, as the config error it is.
      const read = cosignKey(pem);
      if ("message" in read) problems.push({ file: stackFile, field, message: `"${configured}" is not a key cosign verifies with: ${read.message}`, fix: read.fix });
      // The key as cosign reads it, the file's one block (Strata checks signatures with it too).
      else keys.push({ configured, file, pem: read.block });
    }
  });
  return { keys, problems };
}
