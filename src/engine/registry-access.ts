/**
 * A registry client for the CLI's own look-ups, logged in as the stack's runs are: with
 * strata:registryUsername set, the password is the stack's config secret, decrypted through the
 * engine's workspace (the Automation API); otherwise the Docker config's login (registry/logins.ts).
 * A config that cannot be read (a wrong passphrase, a backend that does not answer) is said as
 * such: only a config read in full without the key means the password is not set.
 */
import { REGISTRY_PASSWORD_KEY, type StackConfig } from "../core/config.js";
import { InputError, UserError } from "../core/problems.js";
import { RegistryClient } from "../registry/client.js";
import { type RegistryCredentials } from "../registry/logins.js";

/**
 * What the Pulumi CLI said when a command failed: its last `error:` line (the Automation API's
 * CommandError puts stderr after ` stderr: `), else the message's first line.
 */
export function pulumiFailure(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const said = message.split("\n").map((line) => /^\s*(?:stderr:\s*)?error:\s*(.+)$/.exec(line)?.[1]).filter((line) => line !== undefined).pop();
  return (said ?? message.split("\n").find((line) => line.trim() !== "") ?? "no message").trim();
}

export async function registryClientFor(config: StackConfig, stack: StackAt): Promise<RegistryClient> {
  return (await registryAccessFor(config, stack)).client;
}

/** The client, and the stack's own login it was given (none: the Docker config's), for what else must read the registry as it does (cosign). */
export async function registryAccessFor(config: StackConfig, stack: StackAt): Promise<{ client: RegistryClient; credentials?: RegistryCredentials }> {
  const credentials = await registryCredentialsFor(config, stack);
  if (credentials === undefined) return { client: new RegistryClient({ registry: config.registry }) };
  return { client: new RegistryClient({ registry: config.registry, credentials }), credentials };
}

interface StackAt {
  readonly projectDir: string;
  readonly stack: string;
  readonly env: Record<string, string>;
}

/** The stack's own registry login (strata:registryUsername and its secret password), or undefined when it has none (the Docker config's login is then used). */
async function registryCredentialsFor(config: StackConfig, stack: StackAt): Promise<RegistryCredentials | undefined> {
  if (config.registryUsername === undefined) return undefined;
  const key = `strata:${REGISTRY_PASSWORD_KEY}`;
  const automation = await import("./automation.js");
  let values: Record<string, { readonly value: string } | undefined>;
  try {
    values = await (await automation.openStack(stack)).getAllConfig();
  } catch (error) {
    throw new UserError(`cannot read ${key} of stack ${stack.stack} (strata:registryUsername is set, so the registry login needs it): Pulumi could not read the stack's config: ${pulumiFailure(error)}. Nothing was looked up. fix: check PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE) is the passphrase the stack's secrets were set with, and that the state backend (PULUMI_BACKEND_URL) answers; then run the command again`);
  }
  const password = values[key]?.value;
  if (password === undefined) {
    throw new InputError([{ file: `Pulumi.${stack.stack}.yaml`, field: key, message: "strata:registryUsername is set but the password is not", fix: `pulumi config set --secret ${key} --stack ${stack.stack}` }]);
  }
  return { username: config.registryUsername, password };
}
