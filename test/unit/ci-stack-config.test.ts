import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { ciStackConfigText } from "../../src/core/ci-stack-config.js";
import { NOT_SIGNED, signingConfigProblems, signingDecision, signingKeyConfigured, signingKeyFields, signingKeyProblems } from "../../src/core/signing-config.js";

const CHANNEL = `config:
  strata:channel: dev
  # the registry's login
  strata:registryPassword:
    secure: v1:AAAA:registry-ciphertext
  strata:signingKey:
    secure: v1:BBBB:channel-key-ciphertext
  strata:signingKeyPassphrase:
    secure: v1:CCCC:channel-passphrase-ciphertext
  strata:changeSigningKey:
    secure: v1:DDDD:change-key-ciphertext
  strata:changeSigningKeyPassphrase:
    secure: v1:EEEE:change-passphrase-ciphertext
encryptionsalt: v1:salt:of-the-channel
`;

describe("a change's CI stack never holds its channel's signing key", () => {
  it("takes out the channel's key and passphrase, in either spelling; the change key, every other key, the comments and the salt are kept", () => {
    // Pulumi reads an unqualified key of a stack file as the project's: signingKey is strata:signingKey.
    const withUnqualified = CHANNEL.replace("encryptionsalt", "  signingKey:\n    secure: v1:FFFF:unqualified-key-ciphertext\nencryptionsalt");
    expect(withUnqualified).toContain("unqualified-key-ciphertext");
    const text = ciStackConfigText(withUnqualified, "Pulumi.dev.yaml");
    expect(text).not.toContain("channel-key-ciphertext");
    expect(text).not.toContain("channel-passphrase-ciphertext");
    expect(text).not.toContain("unqualified-key-ciphertext");
    expect(text).toContain("# the registry's login");
    expect(parse(text)).toEqual({
      config: {
        "strata:channel": "dev",
        "strata:registryPassword": { secure: "v1:AAAA:registry-ciphertext" },
        "strata:changeSigningKey": { secure: "v1:DDDD:change-key-ciphertext" },
        "strata:changeSigningKeyPassphrase": { secure: "v1:EEEE:change-passphrase-ciphertext" },
      },
      encryptionsalt: "v1:salt:of-the-channel",
    });
  });

  it("a change's run signs with the change key's fields only, wherever it runs; a channel's own run with its key", () => {
    expect(signingKeyFields({})).toMatchObject({ key: "signingKey", passphrase: "signingKeyPassphrase" });
    expect(signingKeyFields({ ci: { change: 19026 } })).toMatchObject({ key: "changeSigningKey", passphrase: "changeSigningKeyPassphrase" });
    // The key's own checks on a change's run name the change key, never the channel's.
    const changeRun = signingKeyProblems("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", undefined, "Pulumi.dev-ci-19026.yaml", signingKeyFields({ ci: { change: 19026 } }));
    expect(changeRun.map((problem) => problem.field)).toEqual(["strata:changeSigningKeyPassphrase", "strata:changeSigningKey"]);
    expect(JSON.stringify(changeRun)).not.toMatch(/strata:signingKey/);
    expect(signingKeyProblems(undefined, "pw", "Pulumi.dev.yaml").map((problem) => problem.field)).toEqual(["strata:signingKey"]);
  });

  it("without a change key, a change's stack has no key it would sign with (it does not sign, and says why)", () => {
    const withoutChangeKey = CHANNEL.split("\n").filter((line) => !/changeSigning|change-(key|passphrase)-ciphertext/.test(line)).join("\n");
    const config = (parse(ciStackConfigText(withoutChangeKey, "Pulumi.dev.yaml")) as { config: Record<string, unknown> }).config;
    expect(Object.keys(config).sort()).toEqual(["strata:channel", "strata:registryPassword"]);
    const values = { signingKey: { secure: "x" }, signingKeyPassphrase: { secure: "y" } };
    expect(signingKeyConfigured(values, signingKeyFields({ ci: { change: 19026 } }))).toBe(false);
    expect(signingKeyConfigured(values, signingKeyFields({}))).toBe(true);
    expect(signingDecision({ push: true }, false, true)).toEqual({ sign: false, reason: NOT_SIGNED.noChangeKey });
    expect(NOT_SIGNED.noChangeKey).toBe("no strata:changeSigningKey: a change's run never holds the channel's strata:signingKey");
  });

  it("a file without config, and one with only other keys, are copied as they are", () => {
    expect(parse(ciStackConfigText("encryptionsalt: v1:s\n", "Pulumi.dev.yaml"))).toEqual({ encryptionsalt: "v1:s" });
    expect(parse(ciStackConfigText("config:\n  strata:channel: dev\n", "Pulumi.dev.yaml"))).toEqual({ config: { "strata:channel": "dev" } });
    expect(() => ciStackConfigText("config: [1\n", "Pulumi.dev.yaml")).toThrow(/Pulumi\.dev\.yaml is not valid YAML/);
  });

  it("the change key follows the signing key's rules: a secret, with its passphrase", () => {
    expect(signingConfigProblems({ changeSigningKey: "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----", changeSigningKeyPassphrase: { secure: "x" } }, "Pulumi.dev.yaml").map((problem) => [problem.field, problem.message])).toEqual([
      ["strata:changeSigningKey", "is stored in plain text in the stack file, where anyone who reads the repository has the private key"],
    ]);
    expect(signingConfigProblems({ changeSigningKey: { secure: "x" } }, "Pulumi.dev.yaml").map((problem) => problem.field)).toEqual(["strata:changeSigningKeyPassphrase"]);
    expect(signingConfigProblems({ changeSigningKeyPassphrase: { secure: "x" } }, "Pulumi.dev.yaml").map((problem) => problem.field)).toEqual(["strata:changeSigningKey"]);
    expect(signingConfigProblems({ changeSigningKey: { secure: "x" }, changeSigningKeyPassphrase: { secure: "y" } }, "Pulumi.dev.yaml")).toEqual([]);
  });
});
