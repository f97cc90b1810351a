import { describe, expect, it } from "vitest";
import { digestOf, isPathComponent, isRegistry, isTag, parseReference, referenceProblems } from "../../src/core/reference.js";

describe("OCI path components", () => {
  it.each(["debian", "debian-mos-ms-keystone", "a.b", "a_b", "a__b", "a---b", "debian8.3-mos9.0-stable", "0"])("accepts %s", (value) => {
    expect(isPathComponent(value)).toBe(true);
  });
  it.each(["Debian", "-a", "a-", "a..b", "a___b", "a b", "", "ké", "a/b", ".a"])("rejects %j", (value) => {
    expect(isPathComponent(value)).toBe(false);
  });
});

describe("tags", () => {
  it.each(["1.0-p5", "1.0-p5-19026", "1.0-p5-19026_2", "_x", "A", "a".repeat(128)])("accepts %s", (tag) => {
    expect(isTag(tag)).toBe(true);
  });
  it.each([".x", "-x", "a".repeat(129), "a:b", "", "a+b"])("rejects %j", (tag) => {
    expect(isTag(tag)).toBe(false);
  });
});

describe("registries", () => {
  it.each(["127.0.0.1:5000", "1.1.1.1:5000", "registry.example.com", "localhost", "[::1]:5000", "reg-1.local:443"])("accepts %s", (value) => {
    expect(isRegistry(value)).toBe(true);
  });
  it.each(["http://127.0.0.1:5000", "host:port", "host:0", "host:70000", "-host", "host/path", "", "host:"])("rejects %j", (value) => {
    expect(isRegistry(value)).toBe(false);
  });
});

describe("full references", () => {
  it("accepts the design note's example and splits it", () => {
    const ref = "1.1.1.1:5000/debian8.3-mos9.0-stable/debian-mos-ms-keystone:1.0-p5";
    expect(referenceProblems(ref)).toEqual([]);
    expect(parseReference(ref)).toEqual({ registry: "1.1.1.1:5000", path: "debian8.3-mos9.0-stable/debian-mos-ms-keystone", tag: "1.0-p5" });
  });
  it("parses digest references", () => {
    const digest = `sha256:${"a".repeat(64)}`;
    expect(parseReference(`r:5000/g/i@${digest}`)).toEqual({ registry: "r:5000", path: "g/i", digest });
    expect(digestOf(`r:5000/g/i@${digest}`)).toBe(digest);
    expect(digestOf(digest)).toBe(digest);
  });
  it("reports every problem at once", () => {
    const problems = referenceProblems("bad_host:1/Group/image:.tag");
    expect(problems).toHaveLength(3);
    expect(problems.join("\n")).toMatch(/registry "bad_host:1"/);
    expect(problems.join("\n")).toMatch(/path component "Group"/);
    expect(problems.join("\n")).toMatch(/tag "\.tag"/);
  });
  it("limits the name to 255 characters", () => {
    const registry = "r:5000";
    const fits = `${registry}/${"a".repeat(255 - registry.length - 1)}`;
    expect(referenceProblems(`${fits}:t`)).toEqual([]);
    expect(referenceProblems(`${fits}a:t`)[0]).toMatch(/256 characters, over the limit of 255/);
  });
  it("requires a registry", () => {
    expect(referenceProblems("image:tag")).toEqual(["no registry: expected <registry>/<path>"]);
    expect(() => parseReference("image:tag")).toThrow(/invalid image reference/);
  });
});
