/**
 * The first SIGINT or SIGTERM a command took over from Node's default (to stop its work cleanly:
 * an engine that closes, a clean-up that deletes no more), if any. bin/strata.js ends with it once
 * the command is over, so a shell's loop or a CI job sees an interrupted command, not one that
 * failed (exit 1), and stops.
 */
let firstInterruption: NodeJS.Signals | undefined;

export function noteInterruption(signal: NodeJS.Signals): void {
  firstInterruption ??= signal;
}

export function interruptedBy(): NodeJS.Signals | undefined {
  return firstInterruption;
}
