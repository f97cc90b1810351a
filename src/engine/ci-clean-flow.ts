/**
 * `strata ci-clean`'s order: a dry run only reads; a clean-up reads and deletes holding the channel
 * stack's lock from its first read to its last delete (stack-lock.ts says why), stopping between
 * two deletes at a signal, and keeping the lock after a delete whose outcome it cannot know.
 */
import { type CiCleanOutcome, type CiCleanRequest, cleanChange } from "../registry/ci-clean.js";
import { type RegistryClient, RegistryError } from "../registry/client.js";
import { type HoldOptions, type LockedResult, withStackLock } from "./stack-lock.js";

export async function ciCleanFlow(client: RegistryClient, request: CiCleanRequest, lock: HoldOptions, note: (text: string) => void): Promise<LockedResult<CiCleanOutcome>> {
  if (request.dryRun) return { value: await cleanChange(client, request) };
  // A delete that got no answer may still land: the lock outlives it (recover releases it later).
  return withStackLock(lock, (stop) => cleanChange(client, request, stop), { note, keepLockOn: (error) => error instanceof RegistryError && error.unsettled });
}
