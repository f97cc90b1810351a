/**
 * The config file of a change's CI stack (`<stack>-ci-<change>`), made from its channel's. Pure.
 *
 * Everything is copied (the same encryption salt, so the channel's secrets read the same) but the
 * channel's signing key and its passphrase: a change's run executes the change's own code, and
 * whoever holds the key a `strata:trust` lists can sign anything and name any commit in its
 * provenance. A change's run signs only with `strata:changeSigningKey` (signing-config.ts
 * signingKeyFields; the program enforces it for every change run), which stays in the file.
 * Pulumi reads a key without a namespace in a stack file as the project's (`signingKey` is
 * `strata:signingKey`): both spellings are taken out.
 */
import { isMap, parseDocument } from "yaml";
import { CONFIG_NAMESPACE, SIGNING_KEY_KEY, SIGNING_PASSPHRASE_KEY } from "./config.js";

/** The CI stack's file text from the channel's. Throws on a file that is not YAML with a `config` mapping (when it has one). */
export function ciStackConfigText(channelText: string, channelFile: string): string {
  const document = parseDocument(channelText);
  if (document.errors.length > 0) throw new Error(`${channelFile} is not valid YAML: ${document.errors[0]?.message ?? ""}`);
  const config = document.get("config");
  if (config === undefined || config === null) return document.toString();
  if (!isMap(config)) throw new Error(`${channelFile}: config is not a mapping`);
  for (const key of [SIGNING_KEY_KEY, SIGNING_PASSPHRASE_KEY]) {
    config.delete(`${CONFIG_NAMESPACE}:${key}`);
    config.delete(key);
  }
  return document.toString();
}
