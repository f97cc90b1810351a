/**
 * An image's software bill of materials (issue 29): the packages its filesystem holds, read from the
 * files package managers keep (Debian's dpkg database, Python's distribution metadata), as an SPDX
 * 2.3 JSON document. No scanner: these files are what a scanner reads too (field notes, *Signing,
 * SBOM and provenance offline*: the dpkg database of the Debian rootfs gave the same 88 packages as
 * syft).
 *
 * Byte-reproducible: the same image gives the same bytes. Nothing here reads a clock or draws a
 * random number: the namespace is derived from the image digest and the document name, the creation
 * time is the image config's `created` (see `spdxCreated`), packages are sorted and their SPDX ids
 * are derived from what they are.
 *
 * Fails closed: a dpkg database or a distribution's metadata that cannot be read is an error naming
 * the file and the field, never a shorter SBOM.
 *
 * Which files hold packages is decided here (`isSbomSource`); registry/image-files.ts reads them out
 * of an image's layers.
 */
import { createHash } from "node:crypto";
import { UserError } from "./problems.js";
import { parseReference } from "./reference.js";

/** The dpkg database: one paragraph per package dpkg knows. */
export const DPKG_STATUS = "var/lib/dpkg/status";
/** os-release(5): /etc/os-release first, /usr/lib/os-release when it is absent. */
export const OS_RELEASE_FILES = ["etc/os-release", "usr/lib/os-release"] as const;
/**
 * The folders of the files isSbomSource names at fixed paths (the dpkg database, os-release). A
 * reader that keeps only wanted paths does not see files behind a symlink on the way to one of
 * these (var/lib/dpkg -> elsewhere), so it must refuse such an image, not list no packages.
 */
export const SBOM_FIXED_FOLDERS: readonly string[] = ["var/lib/dpkg", "var/lib/dpkg/status.d", "etc", "usr/lib"];

/**
 * Changes whenever the same image would give other SBOM bytes (new fields, another parser): part of
 * the namespace, so two different documents never share one.
 */
export const SBOM_FORMAT = 1;

/**
 * Whether a file (path inside the image, no leading `/`) is one an SBOM reads: the dpkg database,
 * os-release, and Python distributions' metadata (`*.dist-info/METADATA` of wheels and pip,
 * `*.egg-info/PKG-INFO` of setuptools, `*.egg-info` written as one file by distutils, as
 * Debian's python3 packages still do, and `*.egg/EGG-INFO/PKG-INFO` of an egg installed unzipped by
 * easy_install or `setup.py install`).
 */
export function isSbomSource(path: string): boolean {
  if (path === DPKG_STATUS || isDpkgStatusPart(path) || (OS_RELEASE_FILES as readonly string[]).includes(path)) return true;
  return pythonMetadataKind(path) !== undefined;
}

/**
 * A package's own status file in `var/lib/dpkg/status.d/`: what distroless images keep instead of
 * one `status` (written by their build, not by dpkg: the package's control fields, `dpkg-deb
 * --field`, with no Status line); not the `.md5sums` lists beside them.
 */
function isDpkgStatusPart(path: string): boolean {
  return /^var\/lib\/dpkg\/status\.d\/[^/]+$/.test(path) && !path.endsWith(".md5sums");
}

function pythonMetadataKind(path: string): "dist-info" | "egg-info" | "egg" | undefined {
  if (/(^|\/)[^/]+\.dist-info\/METADATA$/.test(path)) return "dist-info";
  if (/(^|\/)[^/]+\.egg-info(\/PKG-INFO)?$/.test(path)) return "egg-info";
  if (/(^|\/)[^/]+\.egg\/EGG-INFO\/PKG-INFO$/.test(path)) return "egg";
  return undefined;
}

/** One package the image holds. */
export interface ImagePackage {
  readonly type: "deb" | "pypi";
  readonly name: string;
  readonly version: string;
  /** Debian's `Architecture` (`amd64`, `all`). */
  readonly architecture?: string;
  /** Debian's source package and its version, when the binary package was built from one. */
  readonly source?: { readonly name: string; readonly version: string };
  /** Who supplies it, as SPDX writes it (`Person: name (mail)`): Debian's Maintainer, Python's Maintainer or Author. */
  readonly supplier?: string;
  readonly purl: string;
  /** The file it was read from, inside the image. */
  readonly foundIn: string;
}

// ---------------------------------------------------------------------------------------------
// purl (package-url specification, "Character encoding"): everything but letters, digits, `.-_~`
// and the colon is percent-encoded (a Debian epoch's `:` stays, a `+` becomes `%2B`).

function purlEncode(value: string, keep: RegExp = /[A-Za-z0-9.\-_~:]/): string {
  let encoded = "";
  for (const character of value) {
    if (keep.test(character)) {
      encoded += character;
      continue;
    }
    for (const byte of Buffer.from(character, "utf8")) encoded += `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return encoded;
}

/** `pkg:type/[namespace/]name@version?qualifiers`, qualifiers sorted by key and empty ones left out (the canonical form). */
function purl(type: string, namespace: string | undefined, name: string, version: string, qualifiers: Readonly<Record<string, string | undefined>>): string {
  const pairs = Object.entries(qualifiers)
    .filter((pair): pair is [string, string] => pair[1] !== undefined && pair[1] !== "")
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    // A qualifier value keeps its slashes, as the specification's own examples write repository_url.
    .map(([key, value]) => `${key}=${purlEncode(value, /[A-Za-z0-9.\-_~:/]/)}`);
  const path = namespace === undefined ? purlEncode(name) : `${purlEncode(namespace)}/${purlEncode(name)}`;
  return `pkg:${type}/${path}@${purlEncode(version)}${pairs.length === 0 ? "" : `?${pairs.join("&")}`}`;
}

// ---------------------------------------------------------------------------------------------
// os-release

export interface OsRelease {
  /** `ID`, lowercase (`debian`, `ubuntu`). */
  readonly id?: string;
  readonly versionId?: string;
}

/** The `ID` and `VERSION_ID` of an os-release file (shell-style `KEY=value`, the value quoted or not). */
export function parseOsRelease(text: string): OsRelease {
  const values = new Map<string, string>();
  for (const line of text.split("\n")) {
    const match = /^\s*([A-Z0-9_]+)=(.*?)\s*$/.exec(line);
    if (match === null) continue;
    let value = match[2] ?? "";
    const quote = value[0];
    if ((quote === '"' || quote === "'") && value.endsWith(quote) && value.length >= 2) value = value.slice(1, -1);
    // Inside double quotes, os-release(5) allows the shell's escapes of `"`, `\`, `$` and backquote.
    if (quote === '"') value = value.replace(/\\([\\"$`])/g, "$1");
    values.set(match[1] as string, value);
  }
  const id = values.get("ID")?.toLowerCase();
  const versionId = values.get("VERSION_ID");
  return { ...(id ? { id } : {}), ...(versionId ? { versionId } : {}) };
}

// ---------------------------------------------------------------------------------------------
// Debian: var/lib/dpkg/status

/** One deb822 paragraph: field names lowercased, continuation lines joined with `\n`. */
type Paragraph = { readonly fields: Map<string, string>; readonly line: number };

function deb822Paragraphs(text: string, file: string): Paragraph[] {
  const paragraphs: Paragraph[] = [];
  let fields: Map<string, string> | undefined;
  let start = 0;
  let last: string | undefined;
  const lines = text.split("\n");
  for (let index = 0; index < lines.length; index++) {
    const line = (lines[index] as string).replace(/\r$/, "");
    if (line.trim() === "") {
      if (fields !== undefined) paragraphs.push({ fields, line: start });
      fields = undefined;
      last = undefined;
      continue;
    }
    if (fields === undefined) {
      fields = new Map();
      start = index + 1;
    }
    if (line.startsWith(" ") || line.startsWith("\t")) {
      if (last === undefined) throw new UserError(`${file}, line ${index + 1}: a continuation line before any field; the dpkg database is damaged (dpkg --audit says more), so the SBOM cannot list the image's packages`);
      fields.set(last, `${fields.get(last) ?? ""}\n${line.trim()}`);
      continue;
    }
    const colon = line.indexOf(":");
    if (colon <= 0) throw new UserError(`${file}, line ${index + 1}: "${line.slice(0, 60)}" is not a "Field: value" line; the dpkg database is damaged (dpkg --audit says more), so the SBOM cannot list the image's packages`);
    last = line.slice(0, colon).toLowerCase();
    fields.set(last, line.slice(colon + 1).trim());
  }
  if (fields !== undefined) paragraphs.push({ fields, line: start });
  return paragraphs;
}

/**
 * dpkg states in which a package's files are in the filesystem: what an SBOM lists. `not-installed`
 * and `config-files` (removed, only its conffiles left) are not; a package on hold (`hold ok
 * installed`) or whose triggers have not run yet is.
 */
const FILES_PRESENT = new Set(["installed", "triggers-pending", "triggers-awaited", "half-configured", "unpacked", "half-installed"]);
const DPKG_STATES = new Set([...FILES_PRESENT, "not-installed", "config-files"]);

/**
 * The packages of a dpkg database whose files are in the image. `distro` (os-release) gives the
 * purl's namespace (`debian`, `ubuntu`) and `distro` qualifier (`debian-12`).
 */
export function parseDpkgStatus(text: string, osRelease: OsRelease = {}, file: string = DPKG_STATUS, statusRequired = true): ImagePackage[] {
  const vendor = osRelease.id ?? "debian";
  const distro = osRelease.id !== undefined && osRelease.versionId !== undefined ? `${osRelease.id}-${osRelease.versionId}` : undefined;
  const packages: ImagePackage[] = [];
  for (const { fields, line } of deb822Paragraphs(text, file)) {
    const where = `${file}, the paragraph at line ${line}`;
    const name = fields.get("package");
    // A status.d file is a package's control fields, written by the image's build, not by dpkg: no
    // Status line, the package installed by being there.
    const status = fields.get("status") ?? (statusRequired ? undefined : "install ok installed");
    if (name === undefined || status === undefined) {
      throw new UserError(`${where}: no ${name === undefined ? "Package" : "Status"} field; the dpkg database is damaged (dpkg --audit says more), so the SBOM cannot list the image's packages`);
    }
    const state = status.split(/\s+/)[2];
    if (state === undefined || !DPKG_STATES.has(state)) throw new UserError(`${where} (${name}): Status "${status}" is not "<want> <flag> <state>" with a state dpkg knows; the dpkg database is damaged, so the SBOM cannot list the image's packages`);
    if (!FILES_PRESENT.has(state)) continue;
    const version = fields.get("version");
    const architecture = fields.get("architecture");
    if (version === undefined || version === "" || architecture === undefined || architecture === "") {
      throw new UserError(`${where} (${name}): no ${version ? "Architecture" : "Version"} field for a package in state ${state}; the dpkg database is damaged (dpkg --audit says more), so the SBOM cannot list the image's packages`);
    }
    // `Source: glibc` or `Source: glibc (2.36-9)`; without the field the source is the package itself.
    const sourceText = fields.get("source");
    const sourceField = sourceText === undefined ? null : /^(\S+)(?:\s+\((\S+)\))?$/.exec(sourceText);
    if (sourceText !== undefined && sourceField === null) throw new UserError(`${where} (${name}): Source "${sourceText}" is not "<package>" or "<package> (<version>)"; the dpkg database is damaged, so the SBOM cannot list the image's packages`);
    const source = sourceField === null ? undefined : { name: sourceField[1] as string, version: sourceField[2] ?? version };
    const supplier = supplierOf(fields.get("maintainer"));
    packages.push({
      type: "deb",
      name,
      version,
      architecture,
      ...(source === undefined ? {} : { source }),
      ...(supplier === undefined ? {} : { supplier }),
      purl: purl("deb", vendor, name.toLowerCase(), version, { arch: architecture, distro }),
      foundIn: file,
    });
  }
  return packages;
}

// ---------------------------------------------------------------------------------------------
// Python distributions: core metadata (RFC 822 headers) in METADATA or PKG-INFO

/** PEP 503: runs of `-`, `_` and `.` become one `-`, lowercase. */
export function normalizePythonName(name: string): string {
  return name.replace(/[-_.]+/g, "-").toLowerCase();
}

/** The distribution a METADATA or PKG-INFO file describes. */
export function parsePythonMetadata(text: string, file: string): ImagePackage {
  const headers = new Map<string, string>();
  for (const line of text.split("\n")) {
    const clean = line.replace(/\r$/, "");
    // The headers end at the first empty line; the description follows.
    if (clean === "") break;
    if (clean.startsWith(" ") || clean.startsWith("\t")) continue;
    const colon = clean.indexOf(":");
    if (colon <= 0) continue;
    const key = clean.slice(0, colon).toLowerCase();
    // A field that repeats (Classifier, Requires-Dist) keeps its first value; Name and Version occur once.
    if (!headers.has(key)) headers.set(key, clean.slice(colon + 1).trim());
  }
  const name = headers.get("name");
  const version = headers.get("version");
  if (!name || !version) {
    throw new UserError(`${file}: no ${name ? "Version" : "Name"} field in the distribution's metadata, so the SBOM cannot say which distribution it is; reinstall it (pip install --force-reinstall) or remove the stale ${file.replace(/\/(METADATA|PKG-INFO)$/, "")}`);
  }
  // Core metadata names a person in Maintainer/Author, or only a mail address in *-email.
  const supplier = supplierOf(headers.get("maintainer") || headers.get("author") || headers.get("maintainer-email") || headers.get("author-email") || undefined);
  return { type: "pypi", name, version, ...(supplier === undefined ? {} : { supplier }), purl: purl("pypi", undefined, normalizePythonName(name), version, {}), foundIn: file };
}

// ---------------------------------------------------------------------------------------------
// The packages of one image

/**
 * The packages in an image's files (path inside the image → contents, only the files `isSbomSource`
 * accepts, symlinks already resolved), sorted by purl, then by the file they were read from.
 */
export function imagePackages(files: ReadonlyMap<string, Uint8Array | string>): ImagePackage[] {
  const text = (path: string): string | undefined => {
    const content = files.get(path);
    return content === undefined ? undefined : typeof content === "string" ? content : Buffer.from(content).toString("utf8");
  };
  const osReleaseText = OS_RELEASE_FILES.map(text).find((found) => found !== undefined);
  const osRelease = osReleaseText === undefined ? {} : parseOsRelease(osReleaseText);
  const packages: ImagePackage[] = [];
  const status = text(DPKG_STATUS);
  if (status !== undefined) packages.push(...parseDpkgStatus(status, osRelease));
  for (const path of files.keys()) {
    if (isDpkgStatusPart(path)) packages.push(...parseDpkgStatus(text(path) as string, osRelease, path, false));
    else if (pythonMetadataKind(path) !== undefined) packages.push(parsePythonMetadata(text(path) as string, path));
  }
  return packages.sort(comparePackages);
}

function comparePackages(a: ImagePackage, b: ImagePackage): number {
  return compareStrings(a.purl, b.purl) || compareStrings(a.foundIn, b.foundIn);
}

/** Code-unit order: the same on every machine and locale, unlike localeCompare. */
function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// SPDX 2.3

export interface SbomSubject {
  /** The image reference the document is named by: `registry/path:tag`. */
  readonly ref: string;
  /** `sha256:…` of the image manifest the packages were read from. */
  readonly digest: string;
  /** The image config's `architecture` (and `variant`), for the image's purl. */
  readonly architecture?: string;
  /** The image config's `created` (RFC 3339), when it has one. */
  readonly created?: string;
  /** Who made the document: `Strata-<version>`. */
  readonly tool: string;
}

export interface SpdxChecksum { readonly algorithm: string; readonly checksumValue: string }
export interface SpdxExternalRef { readonly referenceCategory: string; readonly referenceType: string; readonly referenceLocator: string }
export interface SpdxPackage {
  readonly SPDXID: string;
  readonly name: string;
  readonly versionInfo: string;
  readonly downloadLocation: string;
  readonly filesAnalyzed: boolean;
  readonly licenseConcluded: string;
  readonly licenseDeclared: string;
  readonly copyrightText: string;
  readonly supplier?: string;
  readonly sourceInfo?: string;
  readonly primaryPackagePurpose?: string;
  readonly checksums?: readonly SpdxChecksum[];
  readonly externalRefs: readonly SpdxExternalRef[];
}
export interface SpdxRelationship { readonly spdxElementId: string; readonly relationshipType: string; readonly relatedSpdxElement: string }
export interface SpdxDocument {
  readonly spdxVersion: "SPDX-2.3";
  readonly dataLicense: "CC0-1.0";
  readonly SPDXID: "SPDXRef-DOCUMENT";
  readonly name: string;
  readonly documentNamespace: string;
  readonly creationInfo: { readonly created: string; readonly creators: readonly string[] };
  readonly packages: readonly SpdxPackage[];
  readonly relationships: readonly SpdxRelationship[];
}

const SHA256_DIGEST = /^sha256:([0-9a-f]{64})$/;
/** SPDX's time format: UTC, whole seconds. */
const SPDX_TIME = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
const ROOT_ID = "SPDXRef-Image";

/**
 * The document's `created`: the image config's `created`, whole seconds in UTC. It is part of the
 * config, so of the digest: the same image always gives the same time, and the time is the one
 * that matters to a reader (when the filesystem listed was made). An image without one (OCI makes
 * it optional; reproducible builds set it to the epoch) gets the epoch, which SPDX accepts and no
 * reader takes for a real time. A `created` that is not RFC 3339 is refused, not replaced.
 */
export function spdxCreated(created: string | undefined, ref: string): string {
  if (created === undefined || created === "") return "1970-01-01T00:00:00Z";
  const match = SPDX_TIME.exec(created);
  const time = match === null || !realTime(match[1] as string, match[2] as string) ? Number.NaN : Date.parse(`${match[1]}${match[2]}`);
  // In UTC the year may leave 0000–9999 (0000-01-01T00:30+01:00), which SPDX's time cannot say.
  const utc = Number.isNaN(time) ? undefined : `${new Date(time).toISOString().slice(0, 19)}Z`;
  if (utc === undefined || !/^\d{4}-/.test(utc)) throw new UserError(`the image config of ${ref} has created "${created}", which is not an RFC 3339 time${utc === undefined ? "" : " in the years 0000–9999 once in UTC"}; the SBOM takes its creation time from it (so the same image gives the same bytes) and cannot make one up: rebuild the image, or fix the tool that wrote its config`);
  return utc;
}

/** Whether a date, time and offset name a moment as written: Date.parse rolls 02-30 over to 03-01 and 24:00 to the next day. */
function realTime(dateTime: string, offset: string): boolean {
  const [year, month, day, hour, minute, second] = dateTime.split(/[-T:]/).map(Number) as [number, number, number, number, number, number];
  // Not Date.UTC, which reads the years 0–99 as 1900–1999: Go's zero time, 0001-01-01, is a created that tools write.
  const written = new Date(0);
  written.setUTCFullYear(year, month - 1, day);
  written.setUTCHours(hour, minute, second, 0);
  const sameFields = written.getUTCFullYear() === year && written.getUTCMonth() === month - 1 && written.getUTCDate() === day && written.getUTCHours() === hour && written.getUTCMinutes() === minute && written.getUTCSeconds() === second;
  const [offsetHours, offsetMinutes] = offset === "Z" ? [0, 0] : offset.slice(1).split(":").map(Number) as [number, number];
  return sameFields && offsetHours <= 23 && offsetMinutes <= 59;
}

/**
 * SPDX ids: letters, digits, `.` and `-`. A readable part (type and name) and a hash of what makes
 * the package unique (purl and file), so two packages never share an id and the same package
 * always gets the same one.
 */
function packageId(found: ImagePackage): string {
  const readable = `${found.type}-${found.name}${found.architecture === undefined ? "" : `-${found.architecture}`}`.replace(/[^A-Za-z0-9.-]+/g, "-");
  const unique = createHash("sha256").update(`${found.purl}\0${found.foundIn}`).digest("hex").slice(0, 16);
  return `SPDXRef-Package-${readable}-${unique}`;
}

/** SPDX's supplier from `Name <mail>`, a bare name or a bare mail address; a value "UNKNOWN" (setuptools' default) is none. */
function supplierOf(maintainer: string | undefined): string | undefined {
  const value = maintainer?.split("\n")[0]?.trim();
  if (value === undefined || value === "" || value.toUpperCase() === "UNKNOWN") return undefined;
  const match = /^(.*?)\s*<([^>]*)>\s*$/.exec(value);
  if (match === null) return `Person: ${value}`;
  return match[1] === "" ? `Person: ${match[2]}` : `Person: ${match[1]} (${match[2]})`;
}

/** The SPDX 2.3 document of one image: the image as the root package, which CONTAINS each package found. */
export function spdxDocument(subject: SbomSubject, packages: readonly ImagePackage[]): SpdxDocument {
  const hex = SHA256_DIGEST.exec(subject.digest)?.[1];
  if (hex === undefined) throw new UserError(`the SBOM of ${subject.ref} needs the image's sha256 digest, not "${subject.digest}"`);
  const reference = parseReference(subject.ref);
  const imageName = reference.path.split("/").pop() as string;
  const root: SpdxPackage = {
    SPDXID: ROOT_ID,
    name: subject.ref,
    versionInfo: subject.digest,
    downloadLocation: "NOASSERTION",
    filesAnalyzed: false,
    licenseConcluded: "NOASSERTION",
    licenseDeclared: "NOASSERTION",
    copyrightText: "NOASSERTION",
    primaryPackagePurpose: "CONTAINER",
    checksums: [{ algorithm: "SHA256", checksumValue: hex }],
    externalRefs: [{
      referenceCategory: "PACKAGE-MANAGER",
      referenceType: "purl",
      referenceLocator: purl("oci", undefined, imageName, subject.digest, { arch: subject.architecture, repository_url: `${reference.registry}/${reference.path}`, tag: reference.tag }),
    }],
  };
  const sorted = [...packages].sort(comparePackages);
  const entries = sorted.map((found): SpdxPackage => ({
    SPDXID: packageId(found),
    name: found.name,
    versionInfo: found.version,
    downloadLocation: "NOASSERTION",
    filesAnalyzed: false,
    licenseConcluded: "NOASSERTION",
    licenseDeclared: "NOASSERTION",
    copyrightText: "NOASSERTION",
    supplier: found.supplier ?? "NOASSERTION",
    sourceInfo: found.source === undefined
      ? `read from ${found.foundIn}`
      : `read from ${found.foundIn}; built from source package ${found.source.name} ${found.source.version}`,
    externalRefs: [{ referenceCategory: "PACKAGE-MANAGER", referenceType: "purl", referenceLocator: found.purl }],
  }));
  // Sorted, so a package listed twice by its database (same purl, same file) is next to itself.
  const twice = sorted.find((found, index) => index > 0 && comparePackages(found, sorted[index - 1] as ImagePackage) === 0);
  if (twice !== undefined) throw new UserError(`${twice.foundIn} lists ${twice.purl} twice; the package database is damaged, so the SBOM of ${subject.ref} cannot list its packages`);
  return {
    spdxVersion: "SPDX-2.3",
    dataLicense: "CC0-1.0",
    SPDXID: "SPDXRef-DOCUMENT",
    name: subject.ref,
    documentNamespace: spdxNamespace(subject.ref, subject.digest),
    creationInfo: { created: spdxCreated(subject.created, subject.ref), creators: [`Tool: ${subject.tool}`] },
    packages: [root, ...entries],
    relationships: [
      { spdxElementId: "SPDXRef-DOCUMENT", relationshipType: "DESCRIBES", relatedSpdxElement: ROOT_ID },
      ...entries.map((entry) => ({ spdxElementId: ROOT_ID, relationshipType: "CONTAINS", relatedSpdxElement: entry.SPDXID })),
    ],
  };
}

/**
 * SPDX asks for a URI unique to each document. Derived from what determines the bytes: the image
 * digest, the document name, and SBOM_FORMAT. The host is under `.invalid` (RFC 2606), so the URI
 * claims no web site and never resolves: SPDX needs it unique, not fetchable.
 */
export function spdxNamespace(ref: string, digest: string): string {
  return `https://strata.invalid/spdx/v${SBOM_FORMAT}/${digest.replace(":", "-")}/${encodeURIComponent(ref)}`;
}

/**
 * The document's bytes: keys in a fixed (sorted) order at every level, two-space indentation, a
 * final newline. The same document, however it was put together or read back, gives the same bytes.
 */
export function serializeSpdx(document: SpdxDocument): string {
  return `${JSON.stringify(sortedKeys(document), null, 2)}\n`;
}

function sortedKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortedKeys);
  if (value === null || typeof value !== "object") return value;
  const record = value as Record<string, unknown>;
  return Object.fromEntries(Object.keys(record).sort(compareStrings).filter((key) => record[key] !== undefined).map((key) => [key, sortedKeys(record[key])]));
}

/** The SBOM of one image from its files: the document and its bytes. */
export function imageSbom(subject: SbomSubject, files: ReadonlyMap<string, Uint8Array | string>): { document: SpdxDocument; bytes: string; packages: readonly ImagePackage[] } {
  const packages = imagePackages(files);
  const document = spdxDocument(subject, packages);
  return { document, bytes: serializeSpdx(document), packages };
}

// ---------------------------------------------------------------------------------------------
// What a layer added

/**
 * One key per package an SBOM lists (the image itself left out): its purl and where it was read
 * (`sourceInfo`), so a second copy of a package elsewhere in the image (a virtualenv's beside the
 * system's) counts as one more, as it does in the SBOM's own count of packages.
 */
export function sbomPackageKeys(document: SpdxDocument): Set<string> {
  const described = new Set(document.relationships.filter((relation) => relation.relationshipType === "DESCRIBES").map((relation) => relation.relatedSpdxElement));
  const keys = new Set<string>();
  for (const entry of document.packages) {
    if (described.has(entry.SPDXID)) continue;
    for (const ref of entry.externalRefs) if (ref.referenceType === "purl") keys.add(`${ref.referenceLocator}\n${entry.sourceInfo ?? ""}`);
  }
  return keys;
}

export interface PackageDelta {
  /** Packages in the layer's image. */
  readonly total: number;
  /** Packages the layer's image has and its parent's has not, by purl and place (a new version counts here, and its old one in `removed`). */
  readonly added: number;
  readonly removed: number;
}

/** How many packages a layer added over its parent (by purl and place); a layer without a parent added every one. */
export function packageDelta(parent: SpdxDocument | undefined, layer: SpdxDocument): PackageDelta {
  return packageKeyDelta(parent === undefined ? undefined : sbomPackageKeys(parent), sbomPackageKeys(layer));
}

/** packageDelta over the package keys of the two SBOMs (what a process that keeps keys, not documents, compares). */
export function packageKeyDelta(parent: ReadonlySet<string> | undefined, mine: ReadonlySet<string>): PackageDelta {
  const theirs = parent ?? new Set<string>();
  let added = 0;
  for (const found of mine) if (!theirs.has(found)) added++;
  let removed = 0;
  for (const found of theirs) if (!mine.has(found)) removed++;
  return { total: mine.size, added, removed };
}
