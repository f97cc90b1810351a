/**
 * Keeps the stack's decrypted config out of the processes a program or provider starts.
 *
 * Why: the Node.js language host starts the program with `PULUMI_CONFIG` holding every config
 * value decrypted (`strata:signingKey`, its passphrase, `strata:registryPassword`), and the engine
 * starts Strata's provider with its package's config the same way; `PULUMI_CONFIG_PASSPHRASE`
 * (what decrypts the stack file's secrets) comes along from the CLI's environment. Every child
 * inherits them: git and the filter drivers or hooks it runs, a registry's credential helper,
 * docker, tar, cosign. The program's SDK has read its config into its own store by the time the
 * program runs, and a provider gets its config over Configure, so neither needs them afterwards.
 */
export const ENGINE_SECRET_VARIABLES: readonly string[] = ["PULUMI_CONFIG", "PULUMI_CONFIG_SECRET_KEYS", "PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE"];

/** Removes ENGINE_SECRET_VARIABLES from `env` (this process's by default), so no child started after this inherits them. */
export function keepSecretsFromChildren(env: NodeJS.ProcessEnv = process.env): void {
  for (const name of ENGINE_SECRET_VARIABLES) Reflect.deleteProperty(env, name);
}
