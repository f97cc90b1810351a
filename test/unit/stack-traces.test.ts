import { afterEach, describe, expect, it } from "vitest";
import { usePlainStackTraces } from "../../src/pulumi/stack-traces.js";

describe("usePlainStackTraces", () => {
  const installed = Error.prepareStackTrace;
  afterEach(() => {
    Error.prepareStackTrace = installed;
  });

  it("takes out a stack formatter installed before the program (as source-map-support is): stacks no longer go through it", () => {
    let formatted = 0;
    Error.prepareStackTrace = (error, frames) => {
      formatted += 1;
      return `mapped ${String(error)} (${frames.length} frames)`;
    };
    expect(new Error("before").stack).toMatch(/^mapped Error: before/);
    expect(formatted).toBe(1);

    usePlainStackTraces();

    const stack = new Error("after").stack ?? "";
    expect(formatted).toBe(1);
    expect(stack).toMatch(/^Error: after\n\s+at /);
    expect(Error.prepareStackTrace).toBeUndefined();
  });
});
