/**
 * The OCI distribution reference grammar, as far as Strata needs it.
 *
 * Transcribed from distribution/reference (regexp.go): the npm registry has no
 * maintained package that implements this grammar strictly (the popular
 * parsers accept uppercase paths and any tag), and a wrong "yes" here means a
 * push that the registry refuses halfway through a tree.
 */

/** One path component: lowercase alphanumerics joined by `.`, `_`, `__` or runs of `-`. */
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;

/** A tag: at most 128 characters, word characters, dots and dashes, not starting with `.` or `-`. */
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

/** A domain component (RFC 1123 label). */
const DOMAIN_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";

/** host[:port], where host is a dotted name or an IPv6 literal in brackets. */
const REGISTRY = new RegExp(
  `^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[0-9A-Fa-f:.]+\\])(?::[0-9]+)?$`,
);

const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}$/;

/** The longest repository name (registry and path) the distribution spec allows. */
export const MAX_NAME_LENGTH = 255;

export function isPathComponent(value: string): boolean {
  return PATH_COMPONENT.test(value);
}

export function isTag(value: string): boolean {
  return TAG.test(value);
}

export function isDigest(value: string): boolean {
  return DIGEST.test(value);
}

/**
 * Whether a host (no port; IPv6 in brackets, as URL.hostname gives it) is this machine's loopback:
 * `localhost`, an IPv4 address in 127.0.0.0/8, or `[::1]`. Exact, never a prefix: `127.example.org`
 * is another machine. What may be spoken to over plain HTTP (a registry, its token server) rests on it.
 */
export function isLoopbackHost(host: string): boolean {
  return host === "localhost" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) || host === "[::1]";
}

/** Whether a registry (`host[:port]`) is on this machine's loopback (isLoopbackHost). */
export function isLoopbackRegistry(registry: string): boolean {
  return isLoopbackHost(registry.replace(/:\d+$/, ""));
}

/** A registry address `host[:port]`; the port, when present, must be 1..65535. */
export function isRegistry(value: string): boolean {
  if (!REGISTRY.test(value)) return false;
  const portMatch = /:(\d+)$/.exec(value);
  if (portMatch && !value.endsWith("]")) {
    const port = Number(portMatch[1]);
    return port >= 1 && port <= 65535;
  }
  return true;
}

/** The parts of `registry/path:tag` or `registry/path@digest`. */
export interface ParsedReference {
  readonly registry: string;
  readonly path: string;
  readonly tag?: string;
  readonly digest?: string;
}

/** Splits `<registry>/<path>[:<tag>][@<digest>]` without judging the parts; undefined without a registry. */
function splitReference(reference: string): ParsedReference | undefined {
  const at = reference.indexOf("@");
  const digest = at >= 0 ? reference.slice(at + 1) : undefined;
  const named = at >= 0 ? reference.slice(0, at) : reference;
  const slash = named.indexOf("/");
  if (slash < 0) return undefined;
  const remainder = named.slice(slash + 1);
  const colon = remainder.lastIndexOf(":");
  return {
    registry: named.slice(0, slash),
    path: colon >= 0 ? remainder.slice(0, colon) : remainder,
    ...(colon >= 0 ? { tag: remainder.slice(colon + 1) } : {}),
    ...(digest === undefined ? {} : { digest }),
  };
}

/**
 * Checks a full reference `<registry>/<path>[:<tag>][@<digest>]` and returns
 * every problem found (empty when valid). The registry is mandatory here:
 * Strata never pushes to an implicit Docker Hub.
 */
export function referenceProblems(reference: string): string[] {
  const parts = splitReference(reference);
  const problems: string[] = [];
  const digest = reference.includes("@") ? reference.slice(reference.indexOf("@") + 1) : undefined;
  if (digest !== undefined && !isDigest(digest)) problems.push(`digest "${digest}" is not algorithm:hex`);
  if (parts === undefined) return [...problems, "no registry: expected <registry>/<path>"];
  const { registry, path, tag } = parts;
  if (tag !== undefined && !isTag(tag)) problems.push(`tag "${tag}" must match [A-Za-z0-9_][A-Za-z0-9._-]{0,127}`);
  if (!isRegistry(registry)) problems.push(`registry "${registry}" is not host[:port]`);
  for (const component of path.split("/")) {
    if (!isPathComponent(component)) {
      problems.push(`path component "${component}" must be lowercase letters and digits joined by ".", "_", "__" or "-"`);
    }
  }
  const nameLength = registry.length + 1 + path.length;
  if (nameLength > MAX_NAME_LENGTH) {
    problems.push(`name "${registry}/${path}" is ${nameLength} characters, over the limit of ${MAX_NAME_LENGTH}`);
  }
  return problems;
}

/** Splits a valid reference; throws on an invalid one. */
export function parseReference(reference: string): ParsedReference {
  const problems = referenceProblems(reference);
  const parts = splitReference(reference);
  if (problems.length > 0 || parts === undefined) {
    throw new Error(`invalid image reference "${reference}": ${problems.join("; ")}`);
  }
  return parts;
}

/** `sha256:…` from `repo@sha256:…`, or the input itself when it is already a bare digest. */
export function digestOf(digestReference: string): string {
  const at = digestReference.lastIndexOf("@");
  return at >= 0 ? digestReference.slice(at + 1) : digestReference;
}
