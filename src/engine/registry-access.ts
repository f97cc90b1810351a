/**
 * A registry client for the CLI's own look-ups, logged in as the stack's runs are: with
 * strata:registryUsername set, the password is the stack's config secret, decrypted through the
 * engine's workspace (the Automation API); otherwise the Docker config's login (registry/logins.ts).
 */
import { REGISTRY_PASSWORD_KEY, type StackConfig } from "../core/config.js";
import { InputError } from "../core/problems.js";
import { RegistryClient } from "../registry/client.js";

export async function registryClientFor(config: StackConfig, stack: { readonly projectDir: string; readonly stack: string; readonly env: Record<string, string> }): Promise<RegistryClient> {
  if (config.registryUsername === undefined) return new RegistryClient({ registry: config.registry });
  const automation = await import("./automation.js");
  const opened = await automation.openStack(stack);
  const password = (await opened.getConfig(`strata:${REGISTRY_PASSWORD_KEY}`).catch(() => undefined))?.value;
  if (password === undefined) {
    throw new InputError([{ file: `Pulumi.${stack.stack}.yaml`, field: `strata:${REGISTRY_PASSWORD_KEY}`, message: "strata:registryUsername is set but the password is not", fix: `pulumi config set --secret strata:${REGISTRY_PASSWORD_KEY} --stack ${stack.stack}` }]);
  }
  return new RegistryClient({ registry: config.registry, credentials: { username: config.registryUsername, password } });
}
