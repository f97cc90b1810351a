/**
 * The SBOM of an image (core/sbom.ts): packages from a dpkg database and Python metadata, purls as
 * the package-url specification writes them, an SPDX 2.3 document whose bytes depend only on the
 * image, and what a layer added over its parent. The real Debian rootfs' SBOM equals the package
 * list make-rootfs.sh wrote beside it.
 */
import { createReadStream, existsSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { UserError } from "../../src/core/problems.js";
import {
  type ImagePackage, imagePackages, imageSbom, isSbomSource, normalizePythonName, packageDelta, parseDpkgStatus, parseOsRelease, parsePythonMetadata,
  type SbomSubject, serializeSpdx, spdxCreated, spdxDocument, type SpdxDocument,
} from "../../src/core/sbom.js";
import { filesOfLayers } from "../../src/registry/image-files.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const fixture = (name: string): string => readFileSync(path.join(root, "test/fixtures/sbom", name), "utf8");
const DEBIAN_12 = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_ID="12"\nID=debian\n';
const digestA = `sha256:${"a".repeat(64)}`;
const digestB = `sha256:${"b".repeat(64)}`;
const subject = (overrides: Partial<SbomSubject> = {}): SbomSubject => ({
  ref: "127.0.0.1:5000/mos9.0-dev/debian:12.4-p0", digest: digestA, architecture: "amd64", created: "2026-12-02T15:17:03.123456789Z", tool: "Strata-0.1.0", ...overrides,
});

describe("which files an SBOM reads", () => {
  it("the dpkg database, os-release and Python distributions' metadata, nothing else", () => {
    for (const yes of ["var/lib/dpkg/status", "etc/os-release", "usr/lib/os-release", "usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA",
      "opt/venv/lib/python3.11/site-packages/pip-23.0.1.dist-info/METADATA", "usr/lib/python3/dist-packages/python_apt-2.6.0.egg-info",
      "usr/lib/python3/dist-packages/foo.egg-info/PKG-INFO", "usr/local/lib/python3.11/site-packages/foo-1.0-py3.11.egg/EGG-INFO/PKG-INFO"]) expect(isSbomSource(yes), yes).toBe(true);
    for (const no of ["var/lib/dpkg/status-old", "var/lib/dpkg/available", "etc/os-release.d/x", "srv/os-release", "usr/lib/python3/six.dist-info/RECORD",
      "usr/lib/python3/METADATA", "foo.egg-info/SOURCES.txt", "/var/lib/dpkg/status", "x/foo-1.0.egg/EGG-INFO/SOURCES.txt", "x/foo-1.0.egg/PKG-INFO"]) expect(isSbomSource(no), no).toBe(false);
  });
});

describe("Debian packages (var/lib/dpkg/status)", () => {
  const packages = parseDpkgStatus(fixture("status"), parseOsRelease(DEBIAN_12));
  const byName = new Map(packages.map((found) => [found.name, found]));

  it("lists the packages whose files are in the image: installed, held, triggers pending; not removed ones", () => {
    expect([...byName.keys()].sort()).toEqual(["base-files", "libc6", "libgmp10", "man-db", "tzdata"]);
  });
  it("purls as the specification writes them: epoch's colon kept, + as %2B, arch and distro qualifiers in key order", () => {
    expect(byName.get("base-files")?.purl).toBe("pkg:deb/debian/base-files@12.4%2Bdeb12u15?arch=amd64&distro=debian-12");
    expect(byName.get("libgmp10")?.purl).toBe("pkg:deb/debian/libgmp10@2:6.2.1%2Bdfsg1-1.1%2Bb1?arch=amd64&distro=debian-12");
    expect(byName.get("tzdata")?.purl).toBe("pkg:deb/debian/tzdata@2026b-0%2Bdeb12u1?arch=all&distro=debian-12");
  });
  it("the source package in both forms, and none when the package is its own source", () => {
    expect(byName.get("libc6")?.source).toEqual({ name: "glibc", version: "2.36-9+deb12u14" });
    expect(byName.get("libgmp10")?.source).toEqual({ name: "gmp", version: "2:6.2.1+dfsg1-1.1" });
    expect(byName.get("tzdata")?.source).toBeUndefined();
    expect(byName.get("libc6")?.supplier).toBe("Person: GNU Libc Maintainers (debian-glibc@lists.debian.org)");
  });
  it("a description line that looks like a field is part of the description", () => {
    // base-files's description ends with " Package: not-a-field (…)": read as a field, it would rename base-files.
    expect(packages.filter((found) => found.name.startsWith("not-a-field"))).toEqual([]);
    expect(byName.get("base-files")).toMatchObject({ name: "base-files", version: "12.4+deb12u15" });
  });
  it("the distro comes from os-release: another vendor and version, or no qualifier when the image has none", () => {
    const ubuntu = parseDpkgStatus(fixture("status"), parseOsRelease("ID=ubuntu\nVERSION_ID='22.04'\n"));
    expect(ubuntu.find((found) => found.name === "libc6")?.purl).toBe("pkg:deb/ubuntu/libc6@2.36-9%2Bdeb12u14?arch=amd64&distro=ubuntu-22.04");
    expect(parseDpkgStatus(fixture("status")).find((found) => found.name === "libc6")?.purl).toBe("pkg:deb/debian/libc6@2.36-9%2Bdeb12u14?arch=amd64");
  });
  it("a damaged database is refused with the file and line, never read as fewer packages", () => {
    expect(() => parseDpkgStatus("Package: a\nStatus: install ok installed\nArchitecture: amd64\n")).toThrow(/var\/lib\/dpkg\/status, the paragraph at line 1 \(a\): no Version field/);
    expect(() => parseDpkgStatus("Package: a\nStatus: install ok installed\nVersion: 1\nArchitecture: amd64\n\nPackage: b\nStatus: install ok weird\n")).toThrow(/line 6 \(b\): Status "install ok weird"/);
    expect(() => parseDpkgStatus("Package: a\nthis is not a field\n")).toThrow(UserError);
    expect(() => parseDpkgStatus("Version: 1\nStatus: install ok installed\n")).toThrow(/no Package field/);
    // A Source field that is neither "<package>" nor "<package> (<version>)" is damage too, not a package without its source (review 134).
    expect(() => parseDpkgStatus("Package: a\nStatus: install ok installed\nVersion: 1\nArchitecture: amd64\nSource: glibc (2.36-9) extra\n")).toThrow(/\(a\): Source "glibc \(2\.36-9\) extra" is not "<package>" or "<package> \(<version>\)"/);
    expect(parseDpkgStatus("Package: a\nStatus: install ok installed\nVersion: 1\nArchitecture: amd64\nSource: glibc (2.36-9)\n")[0]?.source).toEqual({ name: "glibc", version: "2.36-9" });
  });
});

describe("Python distributions", () => {
  it("METADATA: the name normalised (PEP 503), the version encoded; headers end at the first empty line", () => {
    const found = parsePythonMetadata(fixture("METADATA"), "opt/venv/lib/python3.11/site-packages/typing_extensions-4.12.2.dist-info/METADATA");
    expect(found).toMatchObject({ type: "pypi", name: "Typing_Extensions", version: "4.12.2+local.1", purl: "pkg:pypi/typing-extensions@4.12.2%2Blocal.1" });
    expect(normalizePythonName("Foo__Bar.-baz")).toBe("foo-bar-baz");
  });
  it("PKG-INFO (egg-info): the author as supplier, setuptools' UNKNOWN as none", () => {
    const found = parsePythonMetadata(fixture("PKG-INFO"), "usr/lib/python3/dist-packages/python_apt-2.6.0.egg-info");
    expect(found).toMatchObject({ name: "python-apt", version: "2.6.0", purl: "pkg:pypi/python-apt@2.6.0", supplier: "Person: APT Development Team" });
  });
  it("metadata without a name or a version is refused, naming the file", () => {
    expect(() => parsePythonMetadata("Metadata-Version: 2.1\nName: six\n", "x/six.dist-info/METADATA")).toThrow(/x\/six.dist-info\/METADATA: no Version field/);
    expect(() => parsePythonMetadata("Version: 1\n", "x/y.egg-info/PKG-INFO")).toThrow(/no Name field/);
  });
});

describe("an image's packages", () => {
  it("reads the dpkg database with the distro of etc/os-release (else usr/lib/os-release) and every Python distribution, sorted by purl", () => {
    const files = new Map<string, string>([
      ["usr/lib/os-release", DEBIAN_12],
      ["var/lib/dpkg/status", fixture("status")],
      ["usr/lib/python3/dist-packages/python_apt-2.6.0.egg-info", fixture("PKG-INFO")],
      ["opt/venv/lib/python3.11/site-packages/typing_extensions-4.12.2.dist-info/METADATA", fixture("METADATA")],
    ]);
    const packages = imagePackages(files);
    expect(packages.map((found) => found.purl)).toEqual([...packages.map((found) => found.purl)].sort());
    expect(packages.filter((found) => found.type === "pypi").map((found) => found.name)).toEqual(["python-apt", "Typing_Extensions"]);
    expect(packages.find((found) => found.name === "libc6")?.purl).toContain("distro=debian-12");
    files.set("etc/os-release", "ID=debian\nVERSION_ID=13\n");
    expect(imagePackages(files).find((found) => found.name === "libc6")?.purl).toContain("distro=debian-13");
    // An egg installed unzipped (easy_install, setup.py install): its EGG-INFO/PKG-INFO (review 134).
    files.set("usr/local/lib/python3.11/site-packages/Old_Thing-0.3-py3.11.egg/EGG-INFO/PKG-INFO", "Metadata-Version: 1.1\nName: Old_Thing\nVersion: 0.3\n");
    expect(imagePackages(files).find((found) => found.name === "Old_Thing")).toMatchObject({ type: "pypi", purl: "pkg:pypi/old-thing@0.3", foundIn: "usr/local/lib/python3.11/site-packages/Old_Thing-0.3-py3.11.egg/EGG-INFO/PKG-INFO" });
  });

  it("reads a distroless image's var/lib/dpkg/status.d (one file a package, no status), not the .md5sums beside them", () => {
    const files = new Map<string, string>([
      ["etc/os-release", DEBIAN_12],
      // As distroless writes them (dpkg-deb --field): no Status line; one with one is read as dpkg would.
      ["var/lib/dpkg/status.d/base-files", "Package: base-files\nArchitecture: amd64\nVersion: 12.4+deb12u15\nMaintainer: Santiago Vila <sanvila@debian.org>\nDescription: Debian base system miscellaneous files\n This package contains the basic filesystem hierarchy.\n"],
      ["var/lib/dpkg/status.d/libssl3", "Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\nSource: openssl\nVersion: 3.0.17-1~deb12u2\n"],
      ["var/lib/dpkg/status.d/libssl3.md5sums", "0123456789abcdef0123456789abcdef  usr/lib/x86_64-linux-gnu/libssl.so.3\n"],
    ]);
    expect([...files.keys()].filter(isSbomSource)).toEqual([...files.keys()].filter((name) => !name.endsWith(".md5sums")));
    expect(imagePackages(files).map((found) => [found.purl, found.foundIn])).toEqual([
      ["pkg:deb/debian/base-files@12.4%2Bdeb12u15?arch=amd64&distro=debian-12", "var/lib/dpkg/status.d/base-files"],
      ["pkg:deb/debian/libssl3@3.0.17-1~deb12u2?arch=amd64&distro=debian-12", "var/lib/dpkg/status.d/libssl3"],
    ]);
    expect(isSbomSource("var/lib/dpkg/status.d/sub/x")).toBe(false);
    // The one status file dpkg writes still needs its Status lines.
    expect(() => imagePackages(new Map([["var/lib/dpkg/status", "Package: base-files\nArchitecture: amd64\nVersion: 12.4\n"]]))).toThrow(/no Status field/);
  });
});

describe("the SPDX document", () => {
  const files = new Map<string, string>([["etc/os-release", DEBIAN_12], ["var/lib/dpkg/status", fixture("status")], ["a/b-1.dist-info/METADATA", fixture("METADATA")]]);

  it("the same image gives the same bytes, whatever order its packages came in", () => {
    const first = imageSbom(subject(), files);
    const again = imageSbom(subject(), new Map([...files].reverse()));
    expect(again.bytes).toBe(first.bytes);
    const shuffled = spdxDocument(subject(), [...first.packages].reverse());
    expect(serializeSpdx(shuffled)).toBe(first.bytes);
    // Read back and written again: the same bytes (keys sorted at every level).
    expect(serializeSpdx(JSON.parse(first.bytes) as SpdxDocument)).toBe(first.bytes);
  });
  it("another digest gives another namespace (and bytes); the namespace holds the digest and the name", () => {
    const a = imageSbom(subject(), files).document;
    const b = imageSbom(subject({ digest: digestB }), files).document;
    expect(a.documentNamespace).not.toBe(b.documentNamespace);
    expect(a.documentNamespace).toBe(`https://strata.invalid/spdx/v1/sha256-${"a".repeat(64)}/127.0.0.1%3A5000%2Fmos9.0-dev%2Fdebian%3A12.4-p0`);
    expect(imageSbom(subject({ ref: "127.0.0.1:5000/mos9.0-stable/debian:12.4-p0" }), files).document.documentNamespace).not.toBe(a.documentNamespace);
  });
  it("created is the image config's created in whole UTC seconds; the epoch without one; a time that is not RFC 3339 is refused", () => {
    expect(imageSbom(subject(), files).document.creationInfo).toEqual({ created: "2026-12-02T15:17:03Z", creators: ["Tool: Strata-0.1.0"] });
    expect(spdxCreated("2026-12-02T16:17:03+01:00", "r")).toBe("2026-12-02T15:17:03Z");
    expect(spdxCreated(undefined, "r")).toBe("1970-01-01T00:00:00Z");
    // A time that is no moment as written is refused, not rolled over to another (review 134); a leap day is one.
    for (const impossible of ["2024-02-30T00:00:00Z", "2023-02-29T00:00:00Z", "2024-01-01T24:00:00Z", "2024-01-01T10:60:00Z", "2024-13-01T00:00:00Z", "2024-01-01T00:00:00+24:00"]) {
      expect(() => spdxCreated(impossible, "r"), impossible).toThrow(/which is not an RFC 3339 time/);
    }
    expect(spdxCreated("2024-02-29T23:59:59.5-00:30", "r")).toBe("2024-03-01T00:29:59Z");
    // Years before 100 are years (review 135): Go's zero time is what go-containerregistry, ko and crane write.
    expect(spdxCreated("0001-01-01T00:00:00Z", "r")).toBe("0001-01-01T00:00:00Z");
    expect(spdxCreated("0099-06-01T12:00:00+01:00", "r")).toBe("0099-06-01T11:00:00Z");
    // One that leaves the years 0000–9999 once in UTC is refused, not written as "-000001-…" (review 136).
    for (const outside of ["0000-01-01T00:30:00+01:00", "9999-12-31T23:30:00-01:00"]) expect(() => spdxCreated(outside, "r"), outside).toThrow(/not an RFC 3339 time in the years 0000–9999 once in UTC/);
    expect(spdxCreated("0000-01-01T00:30:00Z", "r")).toBe("0000-01-01T00:30:00Z");
    expect(() => spdxCreated("yesterday", "127.0.0.1:5000/g/debian:1")).toThrow(/the image config of 127.0.0.1:5000\/g\/debian:1 has created "yesterday"/);
  });
  it("the image is the root package (digest as checksum, pkg:oci purl) the document DESCRIBES and which CONTAINS every package", () => {
    const { document, packages } = imageSbom(subject(), files);
    expect(document).toMatchObject({ spdxVersion: "SPDX-2.3", dataLicense: "CC0-1.0", SPDXID: "SPDXRef-DOCUMENT", name: "127.0.0.1:5000/mos9.0-dev/debian:12.4-p0" });
    const rootPackage = document.packages[0];
    expect(rootPackage).toMatchObject({ SPDXID: "SPDXRef-Image", versionInfo: digestA, primaryPackagePurpose: "CONTAINER", checksums: [{ algorithm: "SHA256", checksumValue: "a".repeat(64) }] });
    expect(rootPackage?.externalRefs[0]?.referenceLocator).toBe(`pkg:oci/debian@${digestA}?arch=amd64&repository_url=127.0.0.1:5000/mos9.0-dev/debian&tag=12.4-p0`);
    expect(document.packages).toHaveLength(packages.length + 1);
    const ids = document.packages.map((entry) => entry.SPDXID);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(/^SPDXRef-[A-Za-z0-9.-]+$/);
    expect(document.relationships[0]).toEqual({ spdxElementId: "SPDXRef-DOCUMENT", relationshipType: "DESCRIBES", relatedSpdxElement: "SPDXRef-Image" });
    expect(document.relationships.slice(1).map((relation) => relation.relatedSpdxElement)).toEqual(ids.slice(1));
    expect(document.relationships.slice(1).every((relation) => relation.spdxElementId === "SPDXRef-Image" && relation.relationshipType === "CONTAINS")).toBe(true);
    expect(document.packages.find((entry) => entry.name === "libc6")?.sourceInfo).toBe("read from var/lib/dpkg/status; built from source package glibc 2.36-9+deb12u14");
  });
  it("a package its database lists twice is refused", () => {
    const twice = `${fixture("status")}\n\nPackage: tzdata\nStatus: install ok installed\nArchitecture: all\nVersion: 2026b-0+deb12u1\n`;
    expect(() => imageSbom(subject(), new Map([["var/lib/dpkg/status", twice]]))).toThrow(/var\/lib\/dpkg\/status lists pkg:deb\/debian\/tzdata@2026b-0%2Bdeb12u1\?arch=all twice/);
  });
  it("a digest that is not sha256 is refused", () => {
    expect(() => imageSbom(subject({ digest: "md5:abc" }), files)).toThrow(/needs the image's sha256 digest/);
  });
});

describe("what a layer added", () => {
  const parentFiles = new Map([["var/lib/dpkg/status", fixture("status")]]);
  const parent = imageSbom(subject(), parentFiles).document;
  it("counts purls the layer's image has and its parent's has not; an upgrade is one added and one removed", () => {
    const upgraded = fixture("status").replace("Version: 2026b-0+deb12u1", "Version: 2026c-0+deb12u1");
    const childFiles = new Map<string, string>([["var/lib/dpkg/status", upgraded], ["a/six-1.16.0.dist-info/METADATA", "Name: six\nVersion: 1.16.0\n"]]);
    const child = imageSbom(subject({ digest: digestB }), childFiles).document;
    expect(packageDelta(parent, child)).toEqual({ total: 6, added: 2, removed: 1 });
    expect(packageDelta(undefined, parent)).toEqual({ total: 5, added: 5, removed: 0 });
    expect(packageDelta(parent, parent)).toEqual({ total: 5, added: 0, removed: 0 });
  });

  it("counts a second copy of a package in another place as one added, as the SBOM's own count does (review 118)", () => {
    const system = new Map<string, string>([["usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA", "Name: six\nVersion: 1.16.0\n"]]);
    const withVenv = new Map<string, string>([...system, ["opt/venv/lib/python3.11/site-packages/six-1.16.0.dist-info/METADATA", "Name: six\nVersion: 1.16.0\n"]]);
    const before = imageSbom(subject(), system).document;
    const after = imageSbom(subject({ digest: digestB }), withVenv).document;
    expect(after.packages.length - 1).toBe(2);
    expect(packageDelta(before, after)).toEqual({ total: 2, added: 1, removed: 0 });
    expect(packageDelta(after, before)).toEqual({ total: 1, added: 0, removed: 1 });
    // A root layer: every package, as many as the SBOM lists.
    expect(packageDelta(undefined, after)).toEqual({ total: 2, added: 2, removed: 0 });
  });
});

describe("the real Debian base (layers/debian/rootfs.tar from scripts/make-rootfs.sh)", () => {
  const tarball = path.join(root, "layers/debian/rootfs.tar");
  it("its SBOM lists exactly the packages and versions of rootfs.tar.packages", async () => {
    // Not made by the unit tests (debootstrap needs root and a mirror): its absence is a failure that says how to make it.
    expect(existsSync(tarball), `${tarball} is missing: make it with scripts/make-rootfs.sh debian layers/debian/rootfs.tar`).toBe(true);
    const started = performance.now();
    const files = await filesOfLayers("layers/debian/rootfs.tar", [{
      name: "rootfs.tar",
      mediaType: "application/vnd.oci.image.layer.v1.tar",
      open: async () => Readable.toWeb(createReadStream(tarball)) as ReadableStream<Uint8Array>,
    }]);
    const { document, packages } = imageSbom(subject(), files);
    const elapsed = performance.now() - started;
    const expected = readFileSync(`${tarball}.packages`, "utf8").trim().split("\n");
    const listed = packages.filter((found: ImagePackage) => found.type === "deb").map((found) => `${found.name}=${found.version}`).sort();
    expect(listed).toEqual([...expected].sort());
    expect(expected.length).toBeGreaterThan(50);
    // etc/os-release is a symlink to ../usr/lib/os-release in Debian's base-files.
    expect(files.get("etc/os-release")?.toString()).toContain('VERSION_ID="12"');
    expect(packages.every((found) => found.purl.endsWith("&distro=debian-12"))).toBe(true);
    expect(document.packages).toHaveLength(packages.length + 1);
    console.log(`[sbom] SBOM of the Debian rootfs (${packages.length} packages) from its ${Math.round(statSync(tarball).size / 2 ** 20)} MiB tar: ${Math.round(elapsed)} ms`);
  });
});
