import { generateKeyPairSync, type KeyObject, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { formatProblem } from "../../src/core/problems.js";
import { parseTrustPolicy, readTrustedKeys } from "../../src/core/trust-policy.js";

const file = "Pulumi.stable.yaml";
const parse = (value: unknown) => parseTrustPolicy(value, file);

describe("strata:trust", () => {
  it("takes a mapping as the stack file gives it, and the JSON Pulumi config stores", () => {
    expect(parse({ keys: ["keys/ci.pub"], reviewedRef: "origin/main" })).toEqual({ policy: { keys: ["keys/ci.pub"], reviewedRef: "origin/main" }, problems: [] });
    expect(parse('{"keys":["keys/ci.pub","./keys/release.pub"],"reviewedRef":"refs/remotes/origin/main"}').policy).toEqual({ keys: ["keys/ci.pub", "keys/release.pub"], reviewedRef: "refs/remotes/origin/main" });
    expect(parse({ keys: ["keys/ci.pub"], reviewedRef: "refs/tags/v1.2" }).policy).toEqual({ keys: ["keys/ci.pub"], reviewedRef: "refs/tags/v1.2" });
  });

  it("is no policy when absent, and an error when set but empty (an empty line must not turn a gate off unseen)", () => {
    expect(parse(undefined)).toEqual({ problems: [] });
    for (const empty of ["", "  ", null]) {
      expect(parse(empty)).toEqual({ problems: [{ file, field: "strata:trust", message: expect.stringContaining("is set but empty"), fix: expect.stringContaining("pulumi config rm strata:trust") }] });
    }
  });

  it("names the stack file, the field and the fix for every problem at once", () => {
    const { policy, problems } = parse({ keys: [], reviewedRef: "-upload-pack=x", key: "keys/ci.pub" });
    expect(policy).toBeUndefined();
    expect(problems.map((problem) => problem.field)).toEqual(["strata:trust.key", "strata:trust.keys", "strata:trust.reviewedRef"]);
    for (const problem of problems) {
      expect(problem.file).toBe(file);
      expect(problem.fix).not.toBe("");
    }
    expect(formatProblem(problems[1]!)).toMatch(/^Pulumi\.stable\.yaml: strata:trust\.keys: is an empty list.*\n {4}fix: list the PEM public keys/);
  });

  it("refuses a missing keys list or reviewedRef: no half-policy", () => {
    expect(parse({ keys: ["keys/ci.pub"] }).problems).toMatchObject([{ field: "strata:trust.reviewedRef", message: expect.stringContaining("is missing") }]);
    expect(parse({ reviewedRef: "origin/main" }).problems).toMatchObject([{ field: "strata:trust.keys", message: expect.stringContaining("is missing") }]);
  });

  it.each([
    [["/etc/strata/ci.pub"], "outside the project"],
    [["../other/ci.pub"], "outside the project"],
    [[""], "not a file path"],
    [[3], "not a file path"],
    [["keys/ci.pub", "./keys/ci.pub"], "listed twice"],
    ["keys/ci.pub", "not a list"],
  ])("refuses keys %j", (keys, message) => {
    expect(parse({ keys, reviewedRef: "origin/main" }).problems).toMatchObject([{ field: expect.stringMatching(/^strata:trust\.keys/), message: expect.stringContaining(message) }]);
  });

  it.each(["HEAD", "HEAD~1", "@", "origin/main..HEAD", "-x", "main.lock", "a b", "refs/heads/", 7])("refuses reviewedRef %j", (reviewedRef) => {
    expect(parse({ keys: ["keys/ci.pub"], reviewedRef }).problems).toMatchObject([{ field: "strata:trust.reviewedRef" }]);
  });

  it("refuses a reviewedRef named in full that is no remote-tracking ref or tag: a local branch moves without review (the gate refuses a short name git expands to one)", () => {
    expect(parse({ keys: ["keys/ci.pub"], reviewedRef: "refs/heads/main" }).problems).toMatchObject([{ field: "strata:trust.reviewedRef", message: expect.stringContaining("is a local branch"), fix: expect.stringContaining("origin/main") }]);
    expect(parse({ keys: ["keys/ci.pub"], reviewedRef: "refs/notes/commits" }).problems).toMatchObject([{ field: "strata:trust.reviewedRef", message: expect.stringContaining("neither a remote-tracking ref") }]);
  });

  it("says what to write when the value is not a mapping", () => {
    for (const value of ["origin/main", "[1]", 5, ["keys/ci.pub"]]) {
      expect(parse(value).problems).toMatchObject([{ field: "strata:trust", fix: expect.stringContaining("reviewedRef: origin/main") }]);
    }
  });
});

describe("trusted keys", () => {
  const project = mkdtempSync(path.join(tmpdir(), "strata-trust-"));
  afterAll(() => rmSync(project, { recursive: true, force: true }));
  mkdirSync(path.join(project, "keys"));
  // The fixtures' test-only pair (test/fixtures/cosign/README.md).
  const publicPem = readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), "../fixtures/cosign/cosign.pub"), "utf8");
  writeFileSync(path.join(project, "keys/ci.pub"), publicPem);
  writeFileSync(path.join(project, "keys/ci.key"), "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nsecret-key-body-4711\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n");
  writeFileSync(path.join(project, "keys/notes.txt"), "hello\n");
  // A PEM block cut short: the form of a key, no key in it.
  writeFileSync(path.join(project, "keys/cut.pub"), "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n");

  it("reads each key from the project folder", () => {
    const { keys, problems } = readTrustedKeys({ keys: ["keys/ci.pub"], reviewedRef: "origin/main" }, project, file);
    expect(problems).toEqual([]);
    expect(keys).toEqual([{ configured: "keys/ci.pub", file: path.join(project, "keys/ci.pub"), pem: publicPem }]);
  });

  it("refuses a missing file, a private key and a file that is no PEM public key, each by its index", () => {
    const { keys, problems } = readTrustedKeys({ keys: ["keys/gone.pub", "keys/ci.key", "keys/notes.txt", "keys/cut.pub", "keys/ci.pub"], reviewedRef: "origin/main" }, project, file);
    expect(keys.map((key) => key.configured)).toEqual(["keys/ci.pub"]);
    expect(problems).toMatchObject([
      { file, field: "strata:trust.keys[0]", message: expect.stringContaining("no such file") },
      { file, field: "strata:trust.keys[1]", message: expect.stringContaining("is a private key") },
      { file, field: "strata:trust.keys[2]", message: expect.stringContaining("not a PEM public key") },
      { file, field: "strata:trust.keys[3]", message: expect.stringContaining("is no public key"), fix: expect.stringContaining("cosign.pub") },
    ]);
    // The private key's content is never repeated in a message.
    // (A body no temporary folder's name can hold: "xx" was, now and then, in the project's path.)
    expect(JSON.stringify(problems)).not.toContain("secret-key-body-4711");
  });

  it("refuses a PKCS#1 block that is no key, as damage (what Node cannot read, cosign cannot either)", () => {
    writeFileSync(path.join(project, "keys/rsa-cut.pub"), "-----BEGIN RSA PUBLIC KEY-----\nMIIBCgKCAQEA\n-----END RSA PUBLIC KEY-----\n");
    const { keys, problems } = readTrustedKeys({ keys: ["keys/rsa-cut.pub"], reviewedRef: "origin/main" }, project, file);
    expect(keys).toEqual([]);
    expect(problems).toMatchObject([{ field: "strata:trust.keys[0]", message: expect.stringContaining("its BEGIN RSA PUBLIC KEY block is no public key"), fix: expect.stringContaining("-RSAPublicKey_out") }]);
  });

  it("refuses a key OpenSSL reads but Go's x509 or crypto/rsa (cosign's) does not, each by what is wrong (review 138)", () => {
    // DER by hand: lengths, INTEGERs (minimal, positive), a SEQUENCE; a PEM block of 64-character lines.
    const length = (n: number): Buffer => (n < 128 ? Buffer.from([n]) : n < 256 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]));
    const tlv = (tag: number, body: Buffer): Buffer => Buffer.concat([Buffer.from([tag]), length(body.length), body]);
    const integer = (bytes: Buffer): Buffer => {
      let start = 0;
      while (start < bytes.length - 1 && bytes[start] === 0) start++;
      const value = bytes.subarray(start);
      return tlv(0x02, (value[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), value]) : value);
    };
    const sequence = (...parts: Buffer[]): Buffer => tlv(0x30, Buffer.concat(parts));
    const pemOf = (label: string, der: Buffer): string => `-----BEGIN ${label}-----\n${der.toString("base64").replace(/(.{64})/g, "$1\n").replace(/\n$/, "")}\n-----END ${label}-----\n`;
    const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey;
    const modulus = Buffer.from(rsa.export({ format: "jwk" }).n as string, "base64url");
    const pkcs1Of = (n: Buffer, e: bigint): Buffer => sequence(integer(n), integer(Buffer.from(e.toString(16).padStart(e.toString(16).length + (e.toString(16).length % 2), "0"), "hex")));
    const pkcs1 = rsa.export({ type: "pkcs1", format: "der" });
    /** An odd number of exactly `bits` bits: the modulus of a key whose size alone is under test. */
    const oddNumber = (bits: number): Buffer => {
      const bytes = randomBytes(Math.ceil(bits / 8));
      const top = (bits - 1) % 8;
      bytes[0] = ((bytes[0] ?? 0) & ((1 << top) - 1)) | (1 << top);
      bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) | 1;
      return bytes;
    };
    const spkiRsa = rsa.export({ type: "spki", format: "der" });
    const rsaEncryption = Buffer.from("06092a864886f70d010101", "hex");
    const ec = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ type: "spki", format: "der" });
    const point = ec.subarray(-65);
    const compressed = Buffer.concat([Buffer.from("3039301306072a8648ce3d020106082a8648ce3d030107032200", "hex"), Buffer.from([0x02 + ((point[64] ?? 0) & 1)]), point.subarray(1, 33)]);
    const evenModulus = Buffer.from(modulus);
    evenModulus[evenModulus.length - 1] = (evenModulus[evenModulus.length - 1] ?? 0) & 0xfe;
    const refused: Record<string, [string, RegExp]> = {
      // Go: "asn1: syntax error: trailing data", "x509: trailing data after ASN.1 of public-key".
      "pkcs1-trailing.pub": [pemOf("RSA PUBLIC KEY", Buffer.concat([pkcs1, Buffer.from([0, 0])])), /not in the canonical DER encoding that cosign and openssl write/],
      "spki-trailing.pub": [pemOf("PUBLIC KEY", Buffer.concat([spkiRsa, Buffer.from([0, 0])])), /not in the canonical DER encoding that cosign and openssl write/],
      // Go: "x509: RSA key missing NULL parameters".
      "spki-no-null.pub": [pemOf("PUBLIC KEY", sequence(sequence(rsaEncryption), tlv(0x03, Buffer.concat([Buffer.from([0]), pkcs1])))), /not in the canonical DER encoding that cosign and openssl write/],
      // Go: "ecdsa: invalid uncompressed public key".
      "ec-compressed.pub": [pemOf("PUBLIC KEY", compressed), /not in the canonical DER encoding that cosign and openssl write/],
      // Go's crypto/rsa: "public exponent is even", "public modulus is even"; x509: "large public exponent".
      "e-even.pub": [pemOf("RSA PUBLIC KEY", pkcs1Of(modulus, 65538n)), /an RSA key with the public exponent 65538, where Go \(cosign\) takes only an odd one from 3 to 2\^31-1/],
      "e-one.pub": [pemOf("RSA PUBLIC KEY", pkcs1Of(modulus, 1n)), /the public exponent 1,/],
      "e-large.pub": [pemOf("RSA PUBLIC KEY", pkcs1Of(modulus, 2n ** 32n + 1n)), /the public exponent 4294967297,/],
      "n-even.pub": [pemOf("RSA PUBLIC KEY", pkcs1Of(evenModulus, 65537n)), /an RSA key with an even modulus/],
      // Go's crypto/rsa: "512-bit keys are insecure"; 1023 bits too.
      "rsa512.pub": [pemOf("RSA PUBLIC KEY", pkcs1Of(oddNumber(512), 65537n)), /an RSA key with 512 bits, under the 1024/],
      "rsa1023.pub": [pemOf("RSA PUBLIC KEY", pkcs1Of(oddNumber(1023), 65537n)), /an RSA key with 1023 bits, under the 1024/],
      // Go's crypto/rsa: "public exponent too large" (and no PKCS#1 key with one over 2^31-1).
      "e-over-int32.pub": [pemOf("RSA PUBLIC KEY", pkcs1Of(modulus, 2n ** 31n + 1n)), /the public exponent 2147483649,/],
      // Go verifies with it; OpenSSL, which checks Strata's own signatures, does not (review 139).
      "rsa16385.pub": [pemOf("RSA PUBLIC KEY", pkcs1Of(oddNumber(16385), 65537n)), /an RSA key with 16385 bits, over the 16384 OpenSSL/],
      // An exponent far over the bound is said by its size, not printed whole.
      "e-huge.pub": [pemOf("RSA PUBLIC KEY", pkcs1Of(modulus, 2n ** 4095n + 1n)), /the public exponent of 4096 bits,/],
      // An EC point at infinity (the byte 00), on each curve: OpenSSL takes it, and reading its details
      // would abort Node; Go refuses it (review 139).
      "ec-infinity-p256.pub": ["-----BEGIN PUBLIC KEY-----\nMBkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDAgAA\n-----END PUBLIC KEY-----\n", /holds no usable key/],
      "ec-infinity-p384.pub": ["-----BEGIN PUBLIC KEY-----\nMBYwEAYHKoZIzj0CAQYFK4EEACIDAgAA\n-----END PUBLIC KEY-----\n", /holds no usable key/],
      "ec-infinity-p521.pub": ["-----BEGIN PUBLIC KEY-----\nMBYwEAYHKoZIzj0CAQYFK4EEACMDAgAA\n-----END PUBLIC KEY-----\n", /holds no usable key/],
    };
    for (const [name, [pem]] of Object.entries(refused)) writeFileSync(path.join(project, "keys", name), pem);
    // The same numbers written canonically are taken (the checks are of the encoding and the key, nothing else).
    writeFileSync(path.join(project, "keys/pkcs1-canonical.pub"), pemOf("RSA PUBLIC KEY", pkcs1Of(modulus, 65537n)));
    writeFileSync(path.join(project, "keys/e3.pub"), pemOf("RSA PUBLIC KEY", pkcs1Of(modulus, 3n)));
    writeFileSync(path.join(project, "keys/e-int32.pub"), pemOf("RSA PUBLIC KEY", pkcs1Of(modulus, 2n ** 31n - 1n)));
    writeFileSync(path.join(project, "keys/rsa1024.pub"), pemOf("RSA PUBLIC KEY", pkcs1Of(oddNumber(1024), 65537n)));
    writeFileSync(path.join(project, "keys/rsa16384.pub"), pemOf("RSA PUBLIC KEY", pkcs1Of(oddNumber(16384), 65537n)));
    const taken = ["pkcs1-canonical.pub", "e3.pub", "e-int32.pub", "rsa1024.pub", "rsa16384.pub"];
    const names = [...Object.keys(refused), ...taken];
    const { keys, problems } = readTrustedKeys({ keys: names.map((name) => `keys/${name}`), reviewedRef: "origin/main" }, project, file);
    expect(keys.map((key) => key.configured)).toEqual(taken.map((name) => `keys/${name}`));
    // Each fix says how to write such a key out again, by its own form.
    expect(problems[0]?.fix).toContain("openssl rsa -RSAPublicKey_in -in key.pub -RSAPublicKey_out");
    expect(problems[3]?.fix).toContain("openssl pkey -pubin -in key.pub -pubout (an EC key: add -ec_conv_form uncompressed");
    expect(problems.map((found) => found.field)).toEqual(Object.keys(refused).map((_, index) => `strata:trust.keys[${index}]`));
    Object.values(refused).forEach(([, said], index) => expect(problems[index]?.message, Object.keys(refused)[index]).toMatch(said));
  });

  it("refuses a key cosign cannot verify with, and a file cosign would read another way than Node (review 133); takes the types cosign takes", () => {
    const spki = (key: KeyObject): string => key.export({ type: "spki", format: "pem" }).toString();
    const pkcs1 = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ type: "pkcs1", format: "pem" }).toString();
    const refused: Record<string, [string, RegExp]> = {
      "dsa.pub": [spki(generateKeyPairSync("dsa", { modulusLength: 2048, divisorLength: 256 }).publicKey), /it is a key of type dsa, which cosign does not verify with/],
      "x25519.pub": [spki(generateKeyPairSync("x25519").publicKey), /it is a key of type x25519, which cosign does not verify with/],
      // cosign takes P-224; Strata does not, and says it is Strata (review 140).
      "p224.pub": [spki(generateKeyPairSync("ec", { namedCurve: "P-224" }).publicKey), /an ECDSA key on the curve secp224r1 \(P-224\), which cosign verifies with but Strata does not take/],
      "k1.pub": [spki(generateKeyPairSync("ec", { namedCurve: "secp256k1" }).publicKey), /an ECDSA key on the curve secp256k1, which cosign does not verify with/],
      // cosign reads a file's first block, and which that is depends on the Go that built it: one block alone (reviews 133, 136, 137).
      "two.pub": [publicPem + spki(generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey), /it is not one PUBLIC KEY block alone \(2 BEGIN lines\)/],
      "cert-first.pub": ["-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n" + publicPem, /it is not one PUBLIC KEY block alone \(2 BEGIN lines\)/],
      "lower-first.pub": ["-----BEGIN x509-cert-----\nMIIB\n-----END x509-cert-----\n" + publicPem, /it is not one PUBLIC KEY block alone/],
      "with-comment.pub": [`${publicPem}-----BEGIN COMMENT-----\nbWFkZSBieSBDSQ==\n-----END COMMENT-----\n`, /it is not one PUBLIC KEY block alone/],
      "unended-before.pub": [`  -----BEGIN CERTIFICATE-----\nMIIB\n${publicPem}`, /it is not one PUBLIC KEY block alone/],
      // Go before 1.24.8 reads the second line as a header and key B; Strata would have read key A (review 137).
      "header-trick.pub": [`-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----:\n${spki(generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey).split("\n").slice(1).join("\n")}${publicPem}`, /it is not one PUBLIC KEY block alone/],
      // An END line with a lone carriage return and no newline: no Go decoder reads it.
      "lone-cr.pub": [publicPem.replace(/\n$/, "\r"), /it is not one PUBLIC KEY block alone \(1 BEGIN line, not framing a PUBLIC KEY's base64 as cosign writes it\)/],
      // A PKCS#1 body whose END line names the other type: no Go decoder ends the block there.
      "rsa-mixed.pub": [pkcs1.replace("-----END RSA PUBLIC KEY-----", "-----END PUBLIC KEY-----"), /it is not one PUBLIC KEY block alone \(1 BEGIN line/],
    };
    const accepted: Record<string, string> = {
      "p384.pub": spki(generateKeyPairSync("ec", { namedCurve: "P-384" }).publicKey),
      "p521.pub": spki(generateKeyPairSync("ec", { namedCurve: "P-521" }).publicKey),
      "rsa.pub": spki(generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey),
      "ed25519.pub": spki(generateKeyPairSync("ed25519").publicKey),
      // PKCS#1 (BEGIN RSA PUBLIC KEY), as openssl rsa -RSAPublicKey_out writes it: cosign takes it too.
      "rsa-pkcs1.pub": pkcs1,
      // cosign.pub with CRLF line ends, without its last newline, with a note around it.
      "crlf.pub": publicPem.replace(/\n/g, "\r\n"),
      "no-last-newline.pub": publicPem.replace(/\n$/, ""),
      "noted.pub": `CI's key, 2026\n${publicPem}rotated yearly\n`,
    };
    for (const [name, [pem]] of Object.entries(refused)) writeFileSync(path.join(project, "keys", name), pem);
    for (const [name, pem] of Object.entries(accepted)) writeFileSync(path.join(project, "keys", name), pem);
    const names = [...Object.keys(refused), ...Object.keys(accepted)];
    const { keys, problems } = readTrustedKeys({ keys: names.map((name) => `keys/${name}`), reviewedRef: "origin/main" }, project, file);
    expect(keys.map((key) => key.configured)).toEqual(Object.keys(accepted).map((name) => `keys/${name}`));
    // Each key as cosign reads it: the block alone, whatever is around it.
    expect(keys.find((key) => key.configured === "keys/noted.pub")?.pem).toBe(publicPem);
    expect(keys.find((key) => key.configured === "keys/rsa-pkcs1.pub")?.pem).toBe(pkcs1);
    expect(keys.find((key) => key.configured === "keys/crlf.pub")?.pem).toBe(publicPem.replace(/\n/g, "\r\n"));
    expect(problems.map((found) => found.field)).toEqual(Object.keys(refused).map((_, index) => `strata:trust.keys[${index}]`));
    Object.values(refused).forEach(([, said], index) => {
      expect(problems[index]?.message).toMatch(said);
      expect(problems[index]?.message).toContain("is not a key cosign verifies with");
      // The fix for the case, not "put back the whole cosign.pub" for a key that was never damaged.
      expect(problems[index]?.fix).not.toContain("put back");
    });
  });

  it("refuses a key that is a link leading out of the project; a link within it is read", () => {
    const outside = mkdtempSync(path.join(tmpdir(), "strata-trust-outside-"));
    try {
      writeFileSync(path.join(outside, "anyone.pub"), publicPem);
      symlinkSync(path.join(outside, "anyone.pub"), path.join(project, "keys/linked.pub"));
      symlinkSync("ci.pub", path.join(project, "keys/alias.pub"));
      const { keys, problems } = readTrustedKeys({ keys: ["keys/linked.pub", "keys/alias.pub"], reviewedRef: "origin/main" }, project, file);
      expect(problems).toMatchObject([{ file, field: "strata:trust.keys[0]", message: expect.stringContaining("leads outside the project folder") }]);
      expect(keys.map((key) => key.configured)).toEqual(["keys/alias.pub"]);
      // A key named on the command line (strata verify --key) may be anywhere.
      const named = readTrustedKeys({ keys: [path.join(outside, "anyone.pub")], reviewedRef: "unused" }, project, "command line", { inProjectOnly: false });
      expect(named.problems).toEqual([]);
      expect(named.keys.map((key) => key.pem)).toEqual([publicPem]);
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });
});
