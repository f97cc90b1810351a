/**
 * Errors a user acts on (core/problems.ts's UserError: bad input, a registry that cannot answer, a
 * login that cannot be read) leave the program as Pulumi's RunError: the engine prints its message
 * alone, one paragraph with the fix, instead of "unhandled exception" and a stack trace. Anything
 * else is a bug in Strata and keeps its stack trace.
 */
import * as pulumi from "@pulumi/pulumi";
import { UserError } from "../core/problems.js";

/** Runs `step`; a user's error comes out as a RunError with the same message. */
export async function forUser<T>(step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    if (error instanceof UserError) throw new pulumi.RunError(error.message);
    throw error;
  }
}
