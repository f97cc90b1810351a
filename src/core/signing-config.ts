/**
 * Whether a stack signs and attests its images (issue 29), and what its key must look like. Pure: no
 * Pulumi, no processes. The key itself is a stack config secret (`strata:signingKey`, the PEM
 * cosign generate-key-pair writes, and `strata:signingKeyPassphrase`); nothing here ever puts
 * either into a message.
 */
import { CHANGE_SIGNING_KEY_KEY, CHANGE_SIGNING_PASSPHRASE_KEY, CONFIG_NAMESPACE, SIGNING_KEY_KEY, SIGNING_PASSPHRASE_KEY, type StackConfig } from "./config.js";
import { type Problem } from "./problems.js";

const KEY_FIELD = `${CONFIG_NAMESPACE}:${SIGNING_KEY_KEY}`;
const PASSPHRASE_FIELD = `${CONFIG_NAMESPACE}:${SIGNING_PASSPHRASE_KEY}`;
const CHANGE_KEY_FIELD = `${CONFIG_NAMESPACE}:${CHANGE_SIGNING_KEY_KEY}`;
const CHANGE_PASSPHRASE_FIELD = `${CONFIG_NAMESPACE}:${CHANGE_SIGNING_PASSPHRASE_KEY}`;
const SET_KEY = `pulumi config set --secret ${KEY_FIELD} < cosign.key (make the pair with cosign generate-key-pair; keep cosign.pub to verify)`;
const SET_PASSPHRASE = `pulumi config set --secret ${PASSPHRASE_FIELD} '<the passphrase cosign generate-key-pair asked for>' (an empty one if the key has none)`;

/**
 * The PEM types cosign writes and reads for an encrypted private key: v2's own, and the older name.
 * An unencrypted PKCS#8 key is not one of them: cosign reads `--key env://` as its own format only.
 */
export const COSIGN_PRIVATE_KEY_TYPES = ["ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY"] as const;

/** Whether the stack signs, and if not, the reason the summary prints. */
export type SigningDecision =
  | { readonly sign: true }
  | { readonly sign: false; readonly reason: string };

/** The summary's words for an unsigned stack; the first is what a dev laptop without a key sees. */
export const NOT_SIGNED = {
  noKey: `no ${KEY_FIELD}`,
  noChangeKey: `no ${CHANGE_KEY_FIELD}: a change's run never holds the channel's ${KEY_FIELD}`,
  notPushed: "strata:push is false: nothing is in a registry to sign",
  promoted: "a promotion copies images, it does not sign them",
} as const;

/**
 * Signing needs a key and images in a registry (a signature is stored beside the image there). A
 * promoting channel builds nothing, so it signs nothing of its own.
 */
export function signingDecision(config: Pick<StackConfig, "push" | "promoteFrom">, hasKey: boolean, changeRun = false): SigningDecision {
  if (config.promoteFrom !== undefined) return { sign: false, reason: NOT_SIGNED.promoted };
  if (!hasKey) return { sign: false, reason: changeRun ? NOT_SIGNED.noChangeKey : NOT_SIGNED.noKey };
  if (!config.push) return { sign: false, reason: NOT_SIGNED.notPushed };
  return { sign: true };
}

/**
 * Problems with the signing values as a stack file holds them (the CLI reads the file; a secret is
 * `{secure: <ciphertext>}` there): a key or passphrase in plain text, or one without the other.
 * `values` are the `strata:` values, namespace stripped.
 */
export function signingConfigProblems(values: Readonly<Record<string, unknown>>, file: string): Problem[] {
  // The key a change's run signs with instead (signingKeyFields): the same rules.
  return [...keyPairProblems(values, file, CHANNEL_KEY_PAIR), ...keyPairProblems(values, file, CHANGE_KEY_PAIR)];
}

/** A key pair's config names, and what its messages say. */
export interface KeyPair {
  /** The change key's pair, the one a change's run signs with. */
  readonly change: boolean;
  readonly key: string;
  readonly passphrase: string;
  readonly setKey: string;
  readonly setPassphrase: string;
  readonly cannotOpen: string;
  readonly nothingToSign: string;
  readonly withoutKey: string;
}

const CHANNEL_KEY_PAIR: KeyPair = {
  change: false, key: SIGNING_KEY_KEY, passphrase: SIGNING_PASSPHRASE_KEY, setKey: SET_KEY, setPassphrase: SET_PASSPHRASE,
  cannotOpen: "cosign cannot open the key without it", nothingToSign: "there is nothing to sign with", withoutKey: " (a stack without a key does not sign)",
};

const CHANGE_KEY_PAIR: KeyPair = {
  change: true, key: CHANGE_SIGNING_KEY_KEY, passphrase: CHANGE_SIGNING_PASSPHRASE_KEY,
  setKey: `pulumi config set --secret ${CHANGE_KEY_FIELD} < change.key (a pair of its own, made with cosign generate-key-pair, that no strata:trust lists)`,
  setPassphrase: `pulumi config set --secret ${CHANGE_PASSPHRASE_FIELD} '<its passphrase>'`,
  cannotOpen: "a change's run cannot open the key without it", nothingToSign: "a change's run has nothing to sign with", withoutKey: "",
};

/** One key and its passphrase as a stack file holds them: each a secret, and both or neither. */
function keyPairProblems(values: Readonly<Record<string, unknown>>, file: string, pair: KeyPair): Problem[] {
  const problems: Problem[] = [];
  const keyField = `${CONFIG_NAMESPACE}:${pair.key}`;
  const passphraseField = `${CONFIG_NAMESPACE}:${pair.passphrase}`;
  const key = values[pair.key];
  const passphrase = values[pair.passphrase];
  // The value is never quoted back: it is the secret.
  if (typeof key === "string" && key !== "") problems.push({ file, field: keyField, message: "is stored in plain text in the stack file, where anyone who reads the repository has the private key", fix: `remove it (pulumi config rm ${keyField}), make a new key pair (this one is exposed), and set it as a secret: ${pair.setKey}` });
  if (typeof passphrase === "string" && passphrase !== "") problems.push({ file, field: passphraseField, message: "is stored in plain text in the stack file", fix: `remove it and set it as a secret: ${pair.setPassphrase}` });
  if (isSet(key) && !isSet(passphrase)) problems.push({ file, field: passphraseField, message: `is missing, but ${keyField} is set: ${pair.cannotOpen}`, fix: pair.setPassphrase });
  if (!isSet(key) && isSet(passphrase)) problems.push({ file, field: keyField, message: `is missing, but ${passphraseField} is set: ${pair.nothingToSign}`, fix: `${pair.setKey}; or remove ${passphraseField}${pair.withoutKey}` });
  return problems;
}

/**
 * The config keys a run signs with: a change's run (config.ci set, however it came to be — its own
 * CI stack, a stack file naming a change, --config) only ever the change key; never the channel's
 * key, which a trust policy may list and a change's own code must not hold.
 */
export function signingKeyFields(config: Pick<StackConfig, "ci">): KeyPair {
  return config.ci === undefined ? CHANNEL_KEY_PAIR : CHANGE_KEY_PAIR;
}

/** Whether a stack file's values name the key a run signs with (signingKeyFields), as a secret or not. */
export function signingKeyConfigured(values: Readonly<Record<string, unknown>>, pair: KeyPair): boolean {
  return isSet(values[pair.key]);
}

function isSet(value: unknown): boolean {
  return value !== undefined && value !== null && value !== "";
}

/**
 * Problems with the key's value, read through the engine (decrypted): it must be one PEM block of a
 * type cosign reads. The message says what the value is not, never what it is.
 */
export function signingKeyProblems(privateKeyPem: string | undefined, passphrase: string | undefined, file: string, pair: KeyPair = CHANNEL_KEY_PAIR): Problem[] {
  const problems: Problem[] = [];
  const keyField = `${CONFIG_NAMESPACE}:${pair.key}`;
  const passphraseField = `${CONFIG_NAMESPACE}:${pair.passphrase}`;
  if (privateKeyPem === undefined && passphrase === undefined) return problems;
  if (privateKeyPem === undefined || privateKeyPem.trim() === "") {
    problems.push({ file, field: keyField, message: `is missing, but ${passphraseField} is set: ${pair.nothingToSign}`, fix: `${pair.setKey}; or remove ${passphraseField}` });
    return problems;
  }
  if (passphrase === undefined) problems.push({ file, field: passphraseField, message: `is missing, but ${keyField} is set: ${pair.cannotOpen}`, fix: pair.setPassphrase });
  const types = [...privateKeyPem.matchAll(/-----BEGIN ([A-Z0-9 ]+)-----/g)].map((match) => match[1] as string);
  const ends = [...privateKeyPem.matchAll(/-----END ([A-Z0-9 ]+)-----/g)].map((match) => match[1] as string);
  const expected = COSIGN_PRIVATE_KEY_TYPES.map((type) => `"${type}"`).join(" or ");
  if (types.length !== 1 || ends.length !== 1 || types[0] !== ends[0]) {
    problems.push({ file, field: keyField, message: `is not one PEM block (it holds ${types.length} BEGIN and ${ends.length} END lines); cosign reads one ${expected} block`, fix: `set it to the whole of the private key file, BEGIN and END lines included: ${pair.setKey}` });
  } else if (!(COSIGN_PRIVATE_KEY_TYPES as readonly string[]).includes(types[0] as string)) {
    problems.push({ file, field: keyField, message: `is a PEM block of type "${types[0] as string}", not a cosign private key (${expected})`, fix: `give the private key cosign generate-key-pair wrote (cosign.key; cosign import-key-pair turns a PEM EC key into one), never the .pub: ${pair.setKey}` });
  }
  return problems;
}
