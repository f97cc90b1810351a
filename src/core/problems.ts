/**
 * Problems found in user input. Every check collects all of them instead of
 * stopping at the first, so a user fixes a catalog in one pass; each names the
 * file, the field (or line) and the fix.
 */
export interface Problem {
  /** Path of the offending file, relative to where the user stands when possible. */
  readonly file: string;
  /** The field (`kind`, `parent`, `strata:registry`) or a location such as `line 3, column 7`. */
  readonly field?: string;
  readonly message: string;
  readonly fix: string;
}

export function formatProblem(problem: Problem): string {
  const where = problem.field === undefined ? problem.file : `${problem.file}: ${problem.field}`;
  return `${where}: ${problem.message}\n    fix: ${problem.fix}`;
}

/**
 * An error the user acts on, not a bug: its message is one paragraph that says what happened and
 * names the fix, and it is printed alone (no stack trace) by the CLI and by the program.
 */
export class UserError extends Error {}

/** Thrown when input is invalid; carries every problem found. */
export class InputError extends UserError {
  readonly problems: readonly Problem[];

  constructor(problems: readonly Problem[]) {
    const count = problems.length === 1 ? "1 problem" : `${problems.length} problems`;
    super(`${count} in the Strata input (nothing was built or pushed):\n${problems.map(formatProblem).join("\n")}`);
    this.name = "InputError";
    this.problems = problems;
  }
}

/** Runs a step that reports bad input by throwing an InputError: its value, or its problems. */
export function gather<T>(step: () => T): { value?: T; problems: readonly Problem[] } {
  try {
    return { value: step(), problems: [] };
  } catch (error) {
    if (error instanceof InputError) return { problems: error.problems };
    throw error;
  }
}

/** Throws an InputError when there is anything to report. */
export function throwIfAny(problems: readonly Problem[]): void {
  if (problems.length > 0) throw new InputError(problems);
}

/** Schema alternatives (anyOf) fail once per branch: a user needs one line per field. */
export function onePerField(problems: readonly Problem[]): Problem[] {
  const seen = new Set<string>();
  return problems.filter((problem) => {
    const key = `${problem.file}\0${problem.field ?? ""}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** A YAML parser error as the yaml package reports it (message, and the position it starts at). */
export interface YamlError {
  readonly message: string;
  readonly linePos?: readonly { line: number; col: number }[] | undefined;
}

/** One problem per YAML syntax error, at its line and column. */
export function yamlSyntaxProblems(file: string, errors: readonly YamlError[]): Problem[] {
  return errors.map((error) => {
    const position = error.linePos?.[0];
    return {
      file,
      ...(position ? { field: `line ${position.line}, column ${position.col}` } : {}),
      message: `YAML syntax error: ${error.message.split("\n")[0] ?? error.message}`,
      fix: "correct the YAML at that position",
    };
  });
}
