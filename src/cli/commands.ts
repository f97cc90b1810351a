/**
 * `strata`: the command table. Each command reads its options, calls the flow that does the work
 * (src/engine: the project's inputs, the plan and up flows, the registry's login; src/core: the
 * policy) and prints what comes back. Commands that only read the catalog and the version policy
 * (validate, tree, tags, graph without a stack) need no Docker engine and no Pulumi engine.
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { Command, Option } from "commander";
import { parse } from "yaml";
import { type Catalog } from "../core/catalog.js";
import { parseCount, parseSeconds } from "../core/config.js";
import { type LayerTarget, planTargets } from "../core/plan.js";
import { buildTargets } from "../core/platform-targets.js";
import { gather, InputError, type Problem, UserError } from "../core/problems.js";
import { DEFAULT_PARALLEL } from "../core/concurrency.js";
import { renderTable } from "./table.js";
import { formatTag, formatVersion } from "../core/version.js";
import { topologicalOrder } from "../core/graph.js";
import { applyBumps, type BumpLevel, planBumps } from "../core/bump.js";
import { fingerprintTargets } from "../core/fingerprint.js";
import { type PlanRow, planExitCode, planRows, type PreviousLayer, promotionRows, registryBlockedRows, renderPlanJson, renderPlanMarkdown, renderPlanText } from "./plan-status.js";
import { renderSummary, summaryExitCode, summaryRows } from "./summary.js";
import { graphNodes, renderDot, renderMermaid } from "./graph-render.js";
import { lookUpPublished } from "../registry/lookups.js";
import { ciStackName } from "../core/ci-build.js";
import { imageSet, writeImageSet } from "./image-set.js";
import { refRows } from "./refs.js";
import { catalogOf, engineEnv, inputsOf, projectDirOf, type ProjectContext, type ProjectOptions, stackConfigOf, stateDirOf } from "../engine/project.js";
import { registryClientFor } from "../engine/registry-access.js";

export interface CliIo extends ProjectContext {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  /** Reads standard input (for commands that take stack outputs piped in). */
  readonly readStdin?: () => Promise<string>;
}

type CommonOptions = ProjectOptions;

export interface TagRow {
  readonly layer: string;
  readonly kind: string;
  readonly image: string;
  readonly tag: string;
  readonly ref: string;
  readonly parent: string | null;
}

export function tagRows(targets: readonly LayerTarget[]): TagRow[] {
  return targets.map((target) => ({
    layer: target.layer.name,
    kind: target.layer.kind,
    image: target.layer.image,
    tag: target.tag,
    ref: target.ref,
    parent: target.parent ?? null,
  }));
}

/** The tree as indented text: name, kind, version and image per line. */
export function renderTree(catalog: Catalog): string {
  const lines: string[] = [];
  const depthOf = new Map<string, number>();
  for (const layer of topologicalOrder(catalog.layers)) {
    const depth = layer.parent === undefined ? 0 : (depthOf.get(layer.parent) ?? 0) + 1;
    depthOf.set(layer.name, depth);
    const indent = depth === 0 ? "" : `${"   ".repeat(depth - 1)}└─ `;
    lines.push(`${indent}${layer.name} [${layer.kind}] ${formatVersion(layer.version)} (tag ${formatTag(layer.version)}) → ${layer.image}`);
  }
  return lines.join("\n");
}

/** `strata plan`'s rows: the plan flow's evidence decided by plan-status (a promoting channel's: what it would copy, and what its trust policy refuses), or every layer blocked by the registry. */
export async function computePlan(options: CommonOptions & { stack: string; config?: string }, io: CliIo): Promise<PlanRow[]> {
  const { planOutcome } = await import("../engine/plan-flow.js");
  const outcome = await planOutcome<PreviousLayer>(options, io);
  if ("blocked" in outcome) {
    io.err(`${outcome.blocked.message}\n`);
    return registryBlockedRows(outcome.targets, outcome.blocked.registry, outcome.blocked.failures);
  }
  if ("promotion" in outcome) return promotionRows(outcome.promotion);
  if (outcome.note !== undefined) io.err(`${outcome.note}\n`);
  return planRows(outcome.evidence);
}

export function buildProgram(io: CliIo): Command {
  let exitCode = 0;
  const program = new Command("strata")
    .description("Layered Docker images under one version policy, published per release channel")
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .exitOverride();
  const withCommon = (command: Command): Command =>
    command
      .option("--catalog <dir>", "the layer catalog folder (default: <project>/layers)")
      .option("--project <dir>", "the Pulumi project folder holding Pulumi.yaml and the stack files", ".");

  withCommon(program.command("validate"))
    .description("check the catalog and every stack config; list all problems")
    .addOption(new Option("--stack <name>", "check only this stack's config"))
    .option("--config <file>", "check this stack config file (instead of the project's stack files)")
    .action((options: CommonOptions & { stack?: string; config?: string }) => {
      const read = gather(() => catalogOf(options, io));
      const catalog = read.value;
      const problems: Problem[] = [...read.problems];
      const projectDir = projectDirOf(options, io);
      const stacks = options.stack !== undefined || options.config !== undefined ? [options.stack ?? "given"]
        : readdirSync(projectDir).map((file) => /^Pulumi\.(.+)\.yaml$/.exec(file)?.[1]).filter((name): name is string => name !== undefined).sort();
      for (const stack of stacks) {
        problems.push(...gather(() => {
          const { config, file } = stackConfigOf({ ...options, stack }, io);
          if (catalog !== undefined) planTargets(catalog, config, file);
        }).problems);
      }
      if (problems.length > 0) throw new InputError(problems);
      io.out(`ok: ${catalog?.layers.length ?? 0} layers, stacks checked: ${stacks.join(", ") || "none"}\n`);
    });

  withCommon(program.command("tree"))
    .description("print the layer tree with kinds, versions and image names")
    .option("--json", "print data instead of text")
    .action((options: CommonOptions & { json?: boolean }) => {
      const catalog = catalogOf(options, io);
      if (options.json) {
        const rows = catalog.layers.map((layer) => ({ layer: layer.name, kind: layer.kind, parent: layer.parent ?? null, version: formatVersion(layer.version), image: layer.image }));
        io.out(`${JSON.stringify(rows, null, 2)}\n`);
      } else {
        io.out(`${renderTree(catalog)}\n`);
      }
    });

  withCommon(program.command("tags"))
    .description("print every layer's image, tag and full reference for a stack")
    .requiredOption("--stack <name>", "the stack (release channel), read from Pulumi.<name>.yaml")
    .option("--config <file>", "a stack config file to read instead of Pulumi.<stack>.yaml")
    .option("--json", "print data instead of a table")
    .action((options: CommonOptions & { stack: string; config?: string; json?: boolean }) => {
      const { catalog, config, file } = inputsOf(options, io);
      const rows = tagRows(planTargets(catalog, config, file));
      if (options.json) {
        io.out(`${JSON.stringify(rows, null, 2)}\n`);
      } else {
        io.out(`${renderTable(["layer", "image", "tag", "ref", "parent"], rows.map((row) => [row.layer, row.image, row.tag, row.ref, row.parent ?? "-"]))}\n`);
      }
    });
  withCommon(program.command("bump"))
    .description("bump the version of every layer whose published tag holds other content, and of its descendants")
    .requiredOption("--stack <name>", "the channel whose registry tags to compare with")
    .option("--config <file>", "a stack config file to read instead of Pulumi.<stack>.yaml")
    .option("--dry-run", "print the plan, change no file")
    .option("--minor <layers...>", "bump these layers' minor version")
    .option("--major <layers...>", "bump these layers' major version")
    .option("--json", "print data instead of a table")
    .action(async (options: CommonOptions & { stack: string; config?: string; dryRun?: boolean; minor?: string[]; major?: string[]; json?: boolean }) => {
      const { catalog, config, file } = inputsOf(options, io);
      const targets = planTargets(catalog, config, file);
      const requested = new Map<string, Exclude<BumpLevel, "patch">>();
      const known = new Set(targets.map((target) => target.layer.name));
      const unknown: Problem[] = [];
      for (const [level, names] of [["minor", options.minor ?? []], ["major", options.major ?? []]] as const) {
        for (const name of names) {
          if (known.has(name)) requested.set(name, level);
          else unknown.push({ file: "command line", field: `--${level}`, message: `no layer named "${name}"`, fix: `name layer folders (${[...known].sort().join(", ")})` });
        }
      }
      if (unknown.length > 0) throw new InputError(unknown);
      // Per platform on a multi-platform stack: each platform's tags are compared with its own fingerprints.
      const { builds } = buildTargets(targets, config);
      const fingerprints = await fingerprintTargets(builds, config.platform);
      const view = await lookUpPublished(builds, await registryClientFor(config, { projectDir: projectDirOf(options, io), stack: options.stack, env: engineEnv(io) }), fingerprints);
      const bumps = planBumps({ targets: builds, fingerprints, view, requested, ...(config.ci === undefined ? {} : { ci: config.ci }) });
      if (!options.dryRun) applyBumps(bumps, targets);
      if (options.json) {
        io.out(`${JSON.stringify(bumps.map((bump) => ({ layer: bump.layer, oldTag: bump.oldTag, newTag: bump.newTag, reason: bump.reason })), null, 2)}\n`);
        return;
      }
      if (bumps.length === 0) {
        io.out(`nothing to bump: every published tag of ${options.stack} matches the catalog\n`);
        return;
      }
      io.out(`${renderTable(["layer", "old tag", "new tag", "reason"], bumps.map((bump) => [bump.layer, bump.oldTag, bump.newTag, bump.reason]))}\n`);
      io.out(options.dryRun ? "dry run: no file changed\n" : `bumped ${bumps.length} layer.yaml file(s)\n`);
    });

  withCommon(program.command("plan"))
    .description("preview which layers a stack's next up would build, and why (no build, no push)")
    .requiredOption("--stack <name>", "the stack (release channel)")
    .option("--config <file>", "a stack config file to read instead of Pulumi.<stack>.yaml")
    .option("--json", "print data for CI bots")
    .option("--markdown", "print a table to post on a code review")
    .action(async (options: CommonOptions & { stack: string; config?: string; json?: boolean; markdown?: boolean }) => {
      const rows = await computePlan(options, io);
      io.out(`${options.json ? renderPlanJson(rows) : options.markdown ? renderPlanMarkdown(rows, options.stack) : renderPlanText(rows, options.stack)}\n`);
      exitCode = planExitCode(rows);
    });

  withCommon(program.command("up"))
    .description("build and push (or promote) a stack through the Pulumi engine, then print a summary per layer")
    .requiredOption("--stack <name>", "the stack (release channel)")
    .option("--summary-json <file>", "also write the summary as JSON")
    .option("--image-set <dir>", "write every layer's reference and digest to DIR/images.json and DIR/images.txt (CI runs: default .strata/image-sets/<stack>/<tag suffix>)")
    .option("--parallel <n>", "resource operations at once", String(DEFAULT_PARALLEL))
    .action(async (options: CommonOptions & { stack: string; summaryJson?: string; imageSet?: string; parallel: string }) => {
      const parallel = parseCount(options.parallel);
      if (parallel === undefined) throw new InputError([{ file: "command line", field: "--parallel", message: `"${options.parallel}" is not a positive whole number`, fix: `give how many resource operations may run at once, for example --parallel ${DEFAULT_PARALLEL}` }]);
      const { upFlow } = await import("../engine/up-flow.js");
      const startedAt = Date.now();
      const outcome = await upFlow({ ...options, parallel }, io, io.err);
      const { run, runStack, config } = outcome;
      const summary = summaryRows(outcome.layers, run.events, run.error);
      exitCode = summaryExitCode(summary, run.error);
      const set = outcome.imageSetDir !== undefined && exitCode === 0 ? imageSet({ stack: runStack, channelStack: options.stack, group: config.group, ...(config.ci === undefined ? {} : { ci: config.ci }) }, summary) : undefined;
      // Every run leaves its per-layer logs and its report (cli/run-record.ts).
      const { recordRun } = await import("./run-record.js");
      const { keptRuns, runIdOf } = await import("../engine/run-logs.js");
      const record = recordRun({
        stateDir: stateDirOf(options, io), stack: runStack, channelStack: options.stack, runId: runIdOf(new Date(startedAt)), startedAt, finishedAt: Date.now(),
        rows: summary, parents: new Map(outcome.layers.map((layer) => [layer.layer, layer.parent] as const)), run,
        ...(set === undefined ? {} : { imageSet: set }), keep: keptRuns(io.env),
      });
      const rows = summary.map((row) => (record.logs.has(row.layer) ? { ...row, log: record.logs.get(row.layer) as string } : row));
      io.out(`${renderSummary(rows)}\n`);
      io.out(`report: ${record.report}${record.logs.size > 0 ? ` (layer logs beside it)` : ""}\n`);
      if (run.error !== undefined) io.err(`pulumi up failed:\n${run.error.split("\n").slice(-30).join("\n")}\n`);
      if (outcome.lockHeld) {
        io.err(`stack ${runStack} is being updated by another run (its lock is held): wait for that run to end and try again; if it was killed, scripts/strata recover --stack ${runStack} releases the lock\n`);
      }
      for (const row of rows.filter((candidate) => candidate.result === "failed")) {
        const output = run.events.get(row.layer)?.output ?? [];
        const whole = row.log === undefined ? "" : `\n  (its whole log: ${row.log})`;
        if (output.length > 0 || row.log !== undefined) io.err(`${row.layer} failed; its last output:\n${output.map((line) => `  ${line}`).join("\n")}${whole}\n`);
      }
      if (options.summaryJson !== undefined) writeFileSync(path.resolve(io.cwd, options.summaryJson), `${JSON.stringify({ stack: runStack, channelStack: options.stack, ok: run.error === undefined, report: record.report, layers: rows }, null, 2)}\n`);
      if (outcome.imageSetDir !== undefined) {
        if (set === undefined) {
          io.err("no image set written: not every layer has an image in the registry\n");
        } else {
          const written = writeImageSet(outcome.imageSetDir, set);
          io.out(`image set: ${written.json} and ${written.text}\n`);
        }
      }
    });

  withCommon(program.command("verify"))
    .description("verify every image a stack exports against its trust policy (strata:trust) or one key: signature, provenance (reviewed commit, clean tree), SBOM")
    .requiredOption("--stack <name>", "the stack whose exported images to verify")
    .option("--config <file>", "a stack config file to read instead of Pulumi.<stack>.yaml")
    .option("--key <file>", "verify against this PEM public key alone (reviewed is then not checked)")
    .option("--json", "print data instead of a table")
    .action(async (options: CommonOptions & { stack: string; config?: string; key?: string; json?: boolean }) => {
      const { verifyFlow } = await import("../engine/verify-flow.js");
      const { renderVerify, renderVerifyJson, verifyExitCode } = await import("./verify.js");
      const outcome = await verifyFlow(options, io, io.err);
      io.out(`${options.json ? renderVerifyJson(outcome.verdicts, options.stack, outcome.trustedBy, outcome.reviewed) : renderVerify(outcome.verdicts, options.stack, outcome.trustedBy, outcome.reviewed)}\n`);
      exitCode = verifyExitCode(outcome.verdicts);
    });

  withCommon(program.command("report"))
    .description("print the path of a run's report page (the newest run of the stack, or --run ID), rendered again from its data")
    .requiredOption("--stack <name>", "the stack the run was on (a CI run's own stack, e.g. dev-ci-19026)")
    .option("--run <id>", "the run's id (its folder name under the stack's logs)")
    .action(async (options: CommonOptions & { stack: string; run?: string }) => {
      const { rerenderReport } = await import("./run-record.js");
      io.out(`${rerenderReport(stateDirOf(options, io), options.stack, options.run)}\n`);
    });

  withCommon(program.command("ci-clean"))
    .description("delete one Gerrit change's CI tags from the channel's registry group (never a release tag) and its CI stack")
    .requiredOption("--stack <name>", "the channel stack the CI runs built against")
    .requiredOption("--change <number>", "the Gerrit change number")
    .option("--dry-run", "print what would be deleted, delete nothing")
    .option("--json", "print data instead of a table")
    .option("--wait <seconds>", "while a run of the channel holds its lock, keep trying this long (default: refuse at once)")
    .action(async (options: CommonOptions & { stack: string; change: string; dryRun?: boolean; json?: boolean; wait?: string }) => {
      const change = parseCount(options.change);
      if (change === undefined) throw new InputError([{ file: "command line", field: "--change", message: `"${options.change}" is not a positive whole number`, fix: "give the Gerrit change number, for example --change 19026" }]);
      const waitSeconds = options.wait === undefined ? 0 : parseSeconds(options.wait);
      if (waitSeconds === undefined) throw new InputError([{ file: "command line", field: "--wait", message: `"${options.wait}" is not a whole number of seconds`, fix: "give the seconds to keep trying while the channel is being built, for example --wait 1800" }]);
      const { config } = stackConfigOf(options, io);
      const client = await registryClientFor(config, { projectDir: projectDirOf(options, io), stack: options.stack, env: engineEnv(io) });
      const ciStack = ciStackName(options.stack, { change });
      const { ciCleanFlow } = await import("../engine/ci-clean-flow.js");
      const lock = { backendUrl: engineEnv(io).PULUMI_BACKEND_URL, project: (await import("../engine/lock-owner.js")).projectName(projectDirOf(options, io)), stack: options.stack, env: engineEnv(io), purpose: "strata ci-clean", waitMs: waitSeconds * 1000 };
      const { value: outcome, releaseFailed } = await ciCleanFlow(client, { group: config.group, change, ciStack, dryRun: options.dryRun === true }, lock, io.err);
      // With the channel's lock left behind, the CI stack is left too: what was deleted, and why the lock stays, come first.
      const stackRemoved = options.dryRun || releaseFailed !== undefined ? false : await (await import("../engine/ci-stack.js")).removeCiStack(projectDirOf(options, io), ciStack, engineEnv(io));
      const { renderCiCleanJson, renderCiCleanText } = await import("./ci-clean.js");
      const run = { change, group: config.group, registry: config.registry, ciStack, dryRun: options.dryRun === true, stackRemoved, ...(releaseFailed === undefined ? {} : { stackKept: "not removed (the channel's lock could not be released; run ci-clean again after strata recover)" }) };
      io.out(options.json ? `${renderCiCleanJson(outcome, run)}\n` : renderCiCleanText(outcome, run));
      if (releaseFailed !== undefined) {
        io.err(`${releaseFailed}\n`);
        exitCode = 1;
      }
    });

  withCommon(program.command("recover"))
    .description("after a killed run: make the stack readable again, release its stale lock, clear pending operations")
    .requiredOption("--stack <name>", "the stack (release channel)")
    .option("--force", "also release a lock whose owner cannot be proved gone from here: another host's, another container's, one Strata holds no record of (only once you know that run has ended)")
    .action(async (options: CommonOptions & { stack: string; force?: boolean }) => {
      const { recoverStack } = await import("../engine/recover.js");
      const { projectName } = await import("../engine/lock-owner.js");
      const projectDir = projectDirOf(options, io);
      const project = projectName(projectDir);
      const steps = await recoverStack({ projectDir, project, stack: options.stack, env: engineEnv(io), force: options.force === true });
      if (steps.length === 0) io.out(`stack ${options.stack}: readable, not locked, no pending operations; nothing to do\n`);
      else io.out(`${renderTable(["done", "detail"], steps.map((step) => [step.action, step.detail]))}\n`);
      io.out(`next: scripts/strata up --stack ${options.stack} (what a killed run pushed is adopted, not rebuilt)\n`);
    });

  withCommon(program.command("graph"))
    .description("draw the layer tree (kind, image, tag), coloured by plan status when a stack is given")
    .option("--stack <name>", "colour by this stack's plan (runs a preview)")
    .option("--config <file>", "a stack config file to read instead of Pulumi.<stack>.yaml")
    .addOption(new Option("--format <format>", "output format").choices(["mermaid", "dot", "svg"]).default("mermaid"))
    .action(async (options: CommonOptions & { stack?: string; config?: string; format: "mermaid" | "dot" | "svg" }) => {
      const catalog = catalogOf(options, io);
      let statuses: Map<string, { status: PlanRow["status"]; tag: string }> | undefined;
      if (options.stack !== undefined) {
        const rows = await computePlan({ ...options, stack: options.stack }, io);
        statuses = new Map(rows.filter((row) => row.newRef !== null).map((row) => [row.layer, { status: row.status, tag: (row.newRef as string).slice((row.newRef as string).lastIndexOf(":") + 1) }]));
      }
      const nodes = graphNodes(catalog.layers, statuses);
      if (options.format === "mermaid") io.out(`${renderMermaid(nodes)}\n`);
      else if (options.format === "dot") io.out(`${renderDot(nodes)}\n`);
      else {
        const { Graphviz } = await import("@hpcc-js/wasm-graphviz");
        io.out((await Graphviz.load()).dot(renderDot(nodes)));
      }
    });

  program.command("refs")
    .description("print layer, ref and digest from stack outputs piped in (pulumi stack output --json layers | strata refs)")
    .option("--json", "print data instead of a table")
    .action(async (options: { json?: boolean }) => {
      const text = io.readStdin === undefined ? "" : await io.readStdin();
      const rows = refRows(text);
      if (options.json) io.out(`${JSON.stringify(rows, null, 2)}\n`);
      else io.out(`${renderTable(["layer", "ref", "digest"], rows.map((row) => [row.layer, row.ref, row.digest]))}\n`);
    });
  program.hook("postAction", () => {
    program.setOptionValue("exitCode", exitCode);
  });
  return program;
}

/** Runs the CLI; returns the exit code (1 for bad input, 2 for usage). */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync([...argv], { from: "user" });
    return Number(program.getOptionValue("exitCode") ?? 0);
  } catch (error) {
    if (error instanceof UserError) {
      io.err(`${error.message}\n`);
      return 1;
    }
    if (error instanceof Error && "exitCode" in error && typeof error.exitCode === "number") {
      // commander already printed its message (help, unknown option, missing argument).
      return error.exitCode === 0 ? 0 : 2;
    }
    throw error;
  }
}
