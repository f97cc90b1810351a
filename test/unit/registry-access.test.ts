/**
 * The CLI's registry login from the stack config (strata:registryUsername + the secret
 * strata:registryPassword): a config that cannot be read is said as such, never as "the password is
 * not set". The Automation API's stack is a stand-in here, answering as Pulumi does.
 */
import { beforeEach, describe, expect, it, vi } from "vitest";
import { resolveStackConfig, type StackConfig } from "../../src/core/config.js";
import { InputError, UserError } from "../../src/core/problems.js";
import { RegistryClient } from "../../src/registry/client.js";

/** What the stand-in stack's config reads do: answer with these values, or fail with this error. */
const answer: { values?: Record<string, { value: string; secret: boolean }>; failure?: Error; openFailure?: Error } = {};

vi.mock("../../src/engine/automation.js", () => ({
  openStack: () => {
    if (answer.openFailure !== undefined) return Promise.reject(answer.openFailure);
    const read = (): Promise<Record<string, { value: string; secret: boolean }>> => (answer.failure === undefined ? Promise.resolve(answer.values ?? {}) : Promise.reject(answer.failure));
    return Promise.resolve({
      getAllConfig: read,
      getConfig: async (key: string) => {
        const value = (await read())[key];
        if (value === undefined) throw new Error(`code: 255\n stdout: \n stderr: error: configuration key '${key}' not found for stack 'stable'\n`);
        return value;
      },
    });
  },
}));

const { registryClientFor } = await import("../../src/engine/registry-access.js");

/** A failed Pulumi CLI command as the Automation API reports it (CommandError's message). */
const commandError = (stderr: string): Error => new Error(`code: 255\n stdout: \n stderr: ${stderr}\n err?: \n`);

function config(): StackConfig {
  const values = { registry: "127.0.0.1:5000", osRelease: "debian8.3", productVersion: "mos9.0", channel: "stable", registryUsername: "ci" };
  const { config: resolved, problems } = resolveStackConfig({ values, file: "Pulumi.stable.yaml", env: {} });
  if (resolved === undefined) throw new Error(JSON.stringify(problems));
  return resolved;
}
const stack = { projectDir: "/nowhere", stack: "stable", env: {} };
const failureOf = (promise: Promise<unknown>): Promise<unknown> => promise.then(() => "resolved", (error: unknown) => error);

describe("the registry password from the stack config", () => {
  beforeEach(() => {
    delete answer.values;
    delete answer.failure;
    delete answer.openFailure;
  });

  it("logs in with the password when the config holds it", async () => {
    answer.values = { "strata:registryPassword": { value: "s3cret", secret: true } };
    expect(await registryClientFor(config(), stack)).toBeInstanceOf(RegistryClient);
  });

  it("says the password is not set only when the config was read and has none", async () => {
    answer.values = { "strata:registryUsername": { value: "ci", secret: false } };
    const error = await failureOf(registryClientFor(config(), stack));
    expect(error).toBeInstanceOf(InputError);
    expect((error as Error).message).toMatch(/strata:registryUsername is set but the password is not.*pulumi config set --secret strata:registryPassword --stack stable/s);
  });

  it("says a wrong passphrase is what failed, not that the password is missing", async () => {
    answer.failure = commandError('error: constructing secrets manager of type "passphrase": incorrect passphrase, please set PULUMI_CONFIG_PASSPHRASE to the correct passphrase or set PULUMI_CONFIG_PASSPHRASE_FILE to a file containing the passphrase');
    const error = await failureOf(registryClientFor(config(), stack));
    expect(error).toBeInstanceOf(UserError);
    expect(error).not.toBeInstanceOf(InputError);
    const message = (error as Error).message;
    expect(message).not.toMatch(/password is not/);
    expect(message).toMatch(/^cannot read strata:registryPassword of stack stable .*: Pulumi could not read the stack's config: constructing secrets manager of type "passphrase": incorrect passphrase, .* fix: check PULUMI_CONFIG_PASSPHRASE/);
    expect(message).not.toMatch(/code: 255|stdout:/);
  });

  it("says a backend that does not answer is what failed", async () => {
    answer.openFailure = commandError("error: could not connect to the PostgreSQL backend: dial tcp 127.0.0.1:5433: connect: connection refused");
    const message = ((await failureOf(registryClientFor(config(), stack))) as Error).message;
    expect(message).toMatch(/cannot read strata:registryPassword of stack stable .*: could not connect to the PostgreSQL backend: dial tcp 127\.0\.0\.1:5433: connect: connection refused\. .*PULUMI_BACKEND_URL/);
  });
});
