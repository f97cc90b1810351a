import { EventEmitter } from "node:events";
import { type ChildProcess } from "node:child_process";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { passSignalsOn } from "../../src/engine/cli-run.js";

/** A child that records the signals it was sent. */
function fakeChild(): { child: ChildProcess; sent: string[] } {
  const sent: string[] = [];
  const child = Object.assign(new EventEmitter(), { exitCode: null, signalCode: null, kill: (signal: string) => (sent.push(signal), true) });
  return { child: child as unknown as ChildProcess, sent };
}

describe("passSignalsOn: strata up outlives Ctrl-C and SIGTERM while its engine closes", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("passes nothing on when the engine says it received the signal itself (the process group's)", () => {
    const { child, sent } = fakeChild();
    let output = "";
    const stop = passSignalsOn(child, () => output);
    process.emit("SIGINT", "SIGINT");
    output += "\u001b[1m^C received; cancelling. If you would like to terminate immediately, press ^C again.\n";
    vi.advanceTimersByTime(10_000);
    expect(sent).toEqual([]);
    stop();
  });

  it("passes a signal sent to strata alone on after five seconds, and the ones after it at once", () => {
    const { child, sent } = fakeChild();
    const stop = passSignalsOn(child, () => "build log: SIGTERM received; cancelling (a step's own text, not at a line's start)\n");
    process.emit("SIGTERM", "SIGTERM");
    vi.advanceTimersByTime(4_900);
    expect(sent).toEqual([]);
    vi.advanceTimersByTime(200);
    expect(sent).toEqual(["SIGTERM"]);
    process.emit("SIGINT", "SIGINT");
    expect(sent).toEqual(["SIGTERM", "SIGINT"]);
    // Each was sent once: none goes again, said or not.
    vi.advanceTimersByTime(60_000);
    expect(sent).toEqual(["SIGTERM", "SIGINT"]);
    stop();
  });

  it("two signals to strata alone within the window reach the engine one at a time: the second once the engine said it received the first", () => {
    const { child, sent } = fakeChild();
    let output = "";
    const stop = passSignalsOn(child, () => output);
    process.emit("SIGINT", "SIGINT");
    process.emit("SIGINT", "SIGINT");
    vi.advanceTimersByTime(5_000);
    expect(sent).toEqual(["SIGINT"]);
    vi.advanceTimersByTime(3_000);
    expect(sent, "not while the engine has not said it got the first").toEqual(["SIGINT"]);
    output += "^C received; cancelling. If you would like to terminate immediately, press ^C again.\n";
    vi.advanceTimersByTime(100);
    expect(sent).toEqual(["SIGINT", "SIGINT"]);
    output += "^C received; terminating\n";
    vi.advanceTimersByTime(10_000);
    expect(sent).toHaveLength(2);
    stop();
  });

  it("one signal passed on is never sent again, however slow a loaded engine is to say it got it", () => {
    const { child, sent } = fakeChild();
    let output = "";
    const stop = passSignalsOn(child, () => output);
    process.emit("SIGTERM", "SIGTERM");
    vi.advanceTimersByTime(5_000);
    expect(sent).toEqual(["SIGTERM"]);
    vi.advanceTimersByTime(4_900);
    expect(sent).toEqual(["SIGTERM"]);
    output += "SIGTERM received; cancelling\n";
    vi.advanceTimersByTime(20_000);
    expect(sent, "a slow acknowledgement is not a lost signal: Pulumi would terminate on a second").toEqual(["SIGTERM"]);
    stop();
    // An engine that never says it: still one signal (a second would make Pulumi terminate).
    const silent = fakeChild();
    const stopSilent = passSignalsOn(silent.child, () => "");
    process.emit("SIGTERM", "SIGTERM");
    vi.advanceTimersByTime(60_000);
    expect(silent.sent).toEqual(["SIGTERM"]);
    stopSilent();
  });

  it("two signals to strata alone and an engine that says nothing: the second goes five silent seconds after the first", () => {
    const { child, sent } = fakeChild();
    const stop = passSignalsOn(child, () => "");
    process.emit("SIGINT", "SIGINT");
    process.emit("SIGINT", "SIGINT");
    vi.advanceTimersByTime(5_000 + 4_900);
    expect(sent).toEqual(["SIGINT"]);
    vi.advanceTimersByTime(200);
    expect(sent).toEqual(["SIGINT", "SIGINT"]);
    vi.advanceTimersByTime(60_000);
    expect(sent).toHaveLength(2);
    stop();
  });

  it("remembers the first signal that came while an engine ran, which bin/strata.js ends with", async () => {
    vi.resetModules();
    const fresh = await import("../../src/engine/cli-run.js");
    const interruption = await import("../../src/engine/interruption.js");
    expect(interruption.interruptedBy()).toBeUndefined();
    const stop = fresh.passSignalsOn(fakeChild().child, () => "");
    process.emit("SIGTERM", "SIGTERM");
    process.emit("SIGINT", "SIGINT");
    stop();
    expect(interruption.interruptedBy()).toBe("SIGTERM");
  });

  it("starts no later engine call once a signal came during an earlier one (a `stack select` that ended before it was passed on)", async () => {
    vi.resetModules();
    const fresh = await import("../../src/engine/cli-run.js");
    const stop = fresh.passSignalsOn(fakeChild().child, () => "");
    process.emit("SIGTERM", "SIGTERM");
    stop();
    // No checkpoint for this backend and stack: ensureStack would run `pulumi stack select --create`.
    const options = { projectDir: "/nonexistent", stack: "dev", project: "strata", env: { PULUMI_BACKEND_URL: "file:///nonexistent-backend" } };
    const refused = fresh.ensureStack(options);
    await expect(refused).rejects.toThrow("SIGTERM received: pulumi stack was not started (the run stops here)");
    // A user's error: the CLI prints it and returns 1 (no stack trace), and bin/strata.js then ends by the signal.
    await expect(refused).rejects.toSatisfy((error: unknown) => error instanceof Error && error.constructor.name === "UserError");
  });

  it("a Ctrl-C the engine said it got, then a kill of strata alone: that one is passed on five seconds later, once", () => {
    const { child, sent } = fakeChild();
    let output = "";
    const stop = passSignalsOn(child, () => output);
    process.emit("SIGINT", "SIGINT");
    output += "^C received; cancelling. If you would like to terminate immediately, press ^C again.\n";
    vi.advanceTimersByTime(10_000);
    expect(sent).toEqual([]);
    process.emit("SIGTERM", "SIGTERM");
    vi.advanceTimersByTime(4_900);
    expect(sent).toEqual([]);
    vi.advanceTimersByTime(200);
    expect(sent).toEqual(["SIGTERM"]);
    // The engine slow to say it got this second one: still sent once (the group's was said, this one was passed).
    vi.advanceTimersByTime(60_000);
    expect(sent).toEqual(["SIGTERM"]);
    stop();
  });

  it("sends nothing once stopped (the engine has ended), though a pass-on or the next signal was due", () => {
    const { child, sent } = fakeChild();
    const stop = passSignalsOn(child, () => "");
    process.emit("SIGTERM", "SIGTERM");
    stop();
    vi.advanceTimersByTime(30_000);
    expect(sent).toEqual([]);
    const second = fakeChild();
    const stopSecond = passSignalsOn(second.child, () => "");
    process.emit("SIGTERM", "SIGTERM");
    process.emit("SIGTERM", "SIGTERM");
    vi.advanceTimersByTime(5_000);
    expect(second.sent).toEqual(["SIGTERM"]);
    stopSecond();
    vi.advanceTimersByTime(30_000);
    expect(second.sent).toEqual(["SIGTERM"]);
  });

  it("leaves no listener behind once stopped", () => {
    const before = [process.listenerCount("SIGINT"), process.listenerCount("SIGTERM")];
    const stop = passSignalsOn(fakeChild().child, () => "");
    expect([process.listenerCount("SIGINT"), process.listenerCount("SIGTERM")]).toEqual(before.map((count) => count + 1));
    stop();
    expect([process.listenerCount("SIGINT"), process.listenerCount("SIGTERM")]).toEqual(before);
  });
});
