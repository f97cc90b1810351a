/**
 * Which registry answers are worth asking again, and how long to wait first. Pure.
 *
 * A registry answer is "found", "not found" (404), or neither. Neither is never read as "absent":
 * a transient one (5xx, 429, a reset or refused connection, a timeout) is asked again a bounded
 * number of times, with backoff; what still fails after that stops the run (lookups.ts).
 */

/** Attempts in all for one request, the first included. */
export const REGISTRY_ATTEMPTS = 3;

/** Longest wait a registry's Retry-After may ask for before Strata gives up waiting for it. */
const MAX_RETRY_AFTER_MS = 10_000;

/** Network failures (node:http's codes, fetch's cause codes, and our own timeout) a second try may get past. */
const TRANSIENT_CODES = new Set(["ECONNRESET", "ECONNREFUSED", "EPIPE", "ETIMEDOUT", "UND_ERR_SOCKET", "UND_ERR_CLOSED", "UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT", "UND_ERR_CONNECT_TIMEOUT", "TIMEOUT"]);

export function isTransientStatus(status: number): boolean {
  return status >= 500 || status === 429 || status === 408;
}

export function isTransientCode(code: string | undefined): boolean {
  return code !== undefined && TRANSIENT_CODES.has(code);
}

/**
 * Milliseconds to wait before attempt `attempt + 1` (attempt counts from 1): the registry's
 * Retry-After when it gave one (seconds or an HTTP date, capped), else 250 ms, 1 s, 4 s, …
 */
export function retryDelayMs(attempt: number, retryAfter: string | null = null, now: number = Date.now()): number {
  if (retryAfter !== null && retryAfter.trim() !== "") {
    const seconds = Number(retryAfter);
    const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(retryAfter) - now;
    if (Number.isFinite(ms)) return Math.min(Math.max(ms, 0), MAX_RETRY_AFTER_MS);
  }
  return 250 * 4 ** (attempt - 1);
}

/** What an HTTP status means to a user, for messages: `HTTP 500 (a server error)`. */
export function describeStatus(status: number): string {
  const meaning = status === 401 ? "the credentials were refused"
    : status === 403 ? "access denied"
    : status === 429 ? "too many requests"
    : status >= 500 ? "a server error"
    : "an unexpected answer";
  return `HTTP ${status} (${meaning})`;
}

/** Seconds a single registry request may take, headers and body, before it counts as a timeout. */
export function requestTimeoutMs(env: Readonly<Record<string, string | undefined>> = process.env): number {
  const seconds = Number(env.STRATA_REGISTRY_TIMEOUT ?? "");
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 20_000;
}
