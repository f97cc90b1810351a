/**
 * The config file of a change's CI stack (`<stack>-ci-<change>`), made from its channel's. Pure.
 *
 * Everything is copied (the same encryption salt, so the channel's secrets read the same) but the
 * signing key: a change's run executes the change's own code, and whoever holds the key a
 * `strata:trust` lists can sign anything and name any commit in its provenance. So the channel's
 * `strata:signingKey` never reaches a change's stack; the channel's `strata:changeSigningKey` (a
 * key no trust policy lists) takes its place, and without one a change's run does not sign.
 */
import { isMap, parseDocument } from "yaml";
import { CHANGE_SIGNING_KEY_KEY, CHANGE_SIGNING_PASSPHRASE_KEY, CONFIG_NAMESPACE, SIGNING_KEY_KEY, SIGNING_PASSPHRASE_KEY } from "./config.js";

const field = (key: string): string => `${CONFIG_NAMESPACE}:${key}`;

/** The CI stack's file text from the channel's. Throws on a file that is not YAML with a `config` mapping (when it has one). */
export function ciStackConfigText(channelText: string, channelFile: string): string {
  const document = parseDocument(channelText);
  if (document.errors.length > 0) throw new Error(`${channelFile} is not valid YAML: ${document.errors[0]?.message ?? ""}`);
  const config = document.get("config");
  if (config === undefined || config === null) return document.toString();
  if (!isMap(config)) throw new Error(`${channelFile}: config is not a mapping`);
  for (const [from, to] of [[CHANGE_SIGNING_KEY_KEY, SIGNING_KEY_KEY], [CHANGE_SIGNING_PASSPHRASE_KEY, SIGNING_PASSPHRASE_KEY]] as const) {
    const changeValue = config.get(field(from), true);
    config.delete(field(to));
    config.delete(field(from));
    if (changeValue !== undefined) config.set(field(to), changeValue);
  }
  return document.toString();
}
