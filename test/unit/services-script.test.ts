/**
 * scripts/services.sh's functions, sourced (the script then only defines them) and called on folders
 * of this test's own: the PostgreSQL cluster's folder (never a mode changed on a folder Strata did not
 * make) and emulation's registration (STRATA_BINFMT_DIR, the one table of platforms). `mount` and
 * `apt-get` are stubbed to fail, so nothing here changes the machine.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { platformTable, qemuBinfmtName } from "../../src/core/platforms.js";
import { hostPlatform } from "../../src/engine/emulation.js";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const script = path.join(repoRoot, "scripts/services.sh");

let scratch: string;
/** A state folder closed to the postgres user (0700, as a clone under root's home is). */
let state: string;
let stubLog: string;

beforeAll(() => {
  scratch = mkdtempSync(path.join(tmpdir(), "strata-services-"));
  chmodSync(scratch, 0o755);
  state = path.join(scratch, "state");
  mkdirSync(state, { mode: 0o700 });
  stubLog = path.join(scratch, "stubs.log");
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Sources services.sh and runs `commands` in the same bash, with `env` over this process's. */
function inServices(commands: string, env: Record<string, string> = {}): { code: number; stdout: string; stderr: string } {
  const stubs = 'mount() { echo "mount $*" >> "$STUB_LOG"; return 1; }; apt-get() { echo "apt-get $*" >> "$STUB_LOG"; return 1; }';
  const result = spawnSync("bash", ["-c", `${stubs}; source "$1"; ${commands}`, "bash", script], {
    encoding: "utf8",
    env: { ...process.env, STRATA_STATE: state, STUB_LOG: stubLog, STRATA_POSTGRES_DIR: "", STRATA_BINFMT_DIR: "", ...env },
  });
  return { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

const mode = (folder: string): number => statSync(folder).mode & 0o777;

describe("the PostgreSQL cluster's folder", () => {
  beforeAll(() => {
    // The server's user is checked for real (runuser -u postgres), as services.sh does as root.
    expect(process.getuid?.(), "these tests run as root, as services.sh's cluster set-up does").toBe(0);
    expect(spawnSync("id", ["postgres"]).status, "the postgres user exists (Debian's postgresql)").toBe(0);
  });

  it("never opens a folder the user named: one closed to the postgres user stops the start, naming it and the fix", () => {
    // STRATA_POSTGRES_DIR=/root/pg: the parent is the user's, closed (0700), and stays so.
    const home = path.join(scratch, "home");
    mkdirSync(home, { mode: 0o700 });
    const named = path.join(home, "pg");
    const run = inServices("open_pg_dir", { STRATA_POSTGRES_DIR: named });
    expect(run.code, run.stderr).not.toBe(0);
    expect(mode(home)).toBe(0o700);
    expect(run.stderr).toContain(`the postgres user cannot enter ${named} (STRATA_POSTGRES_DIR)`);
    expect(run.stderr).toContain(`${home} is closed to it`);
    expect(run.stderr).toMatch(/Strata changes no mode of a folder it did not create.*fix: /);
  });

  it("leaves a named folder's own mode alone too", () => {
    const own = path.join(scratch, "own-pg");
    mkdirSync(own, { mode: 0o700 });
    const run = inServices("open_pg_dir", { STRATA_POSTGRES_DIR: own });
    expect(run.code, run.stderr).not.toBe(0);
    expect(mode(own)).toBe(0o700);
    expect(run.stderr).toContain(`${own} is closed to it`);
  });

  it("makes a named folder that does not exist yet enterable, whatever the caller's umask, and touches nothing above it", () => {
    const open = path.join(scratch, "open");
    mkdirSync(open, { mode: 0o755 });
    chmodSync(open, 0o755);
    const named = path.join(open, "a/pg");
    const run = inServices("umask 077; open_pg_dir", { STRATA_POSTGRES_DIR: named });
    expect(run.code, run.stderr).toBe(0);
    expect(mode(open)).toBe(0o755);
    expect(mode(path.join(open, "a"))).toBe(0o755);
    expect(mode(named)).toBe(0o755);
    expect(spawnSync("runuser", ["-u", "postgres", "--", "test", "-x", named]).status).toBe(0);
  });
});

describe("emulation's registration", () => {
  const foreign = hostPlatform() === "linux/amd64" ? "linux/arm64" : "linux/amd64";
  const foreignName = qemuBinfmtName(foreign) as string;

  it("reads STRATA_BINFMT_DIR: an enabled entry there is enough, and nothing is installed or mounted", () => {
    const binfmt = mkdtempSync(path.join(scratch, "binfmt-"));
    writeFileSync(path.join(binfmt, foreignName), "enabled\ninterpreter /usr/libexec/qemu-binfmt/x-binfmt-P\n");
    writeFileSync(path.join(binfmt, "register"), "");
    const run = inServices(`register_emulation ${foreign}`, { STRATA_BINFMT_DIR: binfmt });
    expect(run.code, run.stderr).toBe(0);
    expect(existsSync(stubLog) ? readFileSync(stubLog, "utf8") : "").toBe("");
    expect(readFileSync(path.join(binfmt, "register"), "utf8")).toBe("");
  });

  it("acts on the entry in STRATA_BINFMT_DIR, not the machine's: a disabled one there is enabled there", () => {
    // The machine's own entry may well be enabled (the e2e suite registers it): a script that ignored
    // STRATA_BINFMT_DIR would find that one and do nothing, leaving this folder's entry disabled.
    const binfmt = mkdtempSync(path.join(scratch, "binfmt-"));
    writeFileSync(path.join(binfmt, foreignName), "disabled\ninterpreter /usr/libexec/qemu-binfmt/x-binfmt-P\n");
    writeFileSync(path.join(binfmt, "register"), "");
    const run = inServices(`register_emulation ${foreign}`, { STRATA_BINFMT_DIR: binfmt });
    expect(run.code, run.stderr).toBe(0);
    expect(readFileSync(path.join(binfmt, foreignName), "utf8").split("\n")[0]).toBe("1");
    expect(run.stderr).toContain(`registered in ${binfmt}`);
  });

  it("never mounts over a STRATA_BINFMT_DIR that is not binfmt_misc: it stops, naming the folder and the fix", () => {
    const binfmt = mkdtempSync(path.join(scratch, "binfmt-"));
    const run = inServices(`register_emulation ${foreign}`, { STRATA_BINFMT_DIR: binfmt });
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain(`STRATA_BINFMT_DIR=${binfmt} is not where binfmt_misc is mounted`);
    expect(run.stderr).toContain(`mount -t binfmt_misc binfmt_misc ${binfmt}`);
    expect(existsSync(stubLog) ? readFileSync(stubLog, "utf8") : "").toBe("");
  });

  it("names each platform's interpreter as the program does, from the one table (linux/amd64 included)", () => {
    const platforms = [...platformTable().map((row) => row.platform), "linux/mips64", "linux/arm/v8", "windows/amd64"];
    const run = inServices(`for platform in ${platforms.join(" ")}; do printf '%s=%s\\n' "$platform" "$(qemu_name "$platform" || true)"; done; printf 'native=%s\\n' "$(native_platform)"`);
    expect(run.code, run.stderr).toBe(0);
    const script = Object.fromEntries(run.stdout.trim().split("\n").map((line) => line.split("=") as [string, string]));
    expect(script).toEqual({ ...Object.fromEntries(platforms.map((platform) => [platform, qemuBinfmtName(platform) ?? ""])), native: hostPlatform() });
    expect(script["linux/amd64"]).toBe("qemu-x86_64");
  });
});

describe("the Docker engine", () => {
  const envScript = path.join(repoRoot, "scripts/env.sh");
  /** Sources env.sh (twice when `commands` says so) in a bash with only `env` set of Strata's variables. */
  function inEnv(commands: string, env: Record<string, string> = {}): { code: number; stdout: string; stderr: string } {
    const base = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(DOCKER_HOST|STRATA_|PULUMI_BACKEND_URL)/.test(name)));
    const result = spawnSync("bash", ["-c", commands, "bash", envScript], { encoding: "utf8", env: { ...base, STRATA_STATE: state, ...env } as NodeJS.ProcessEnv });
    return { code: result.status ?? -1, stdout: result.stdout.trim(), stderr: result.stderr };
  }

  it("without a DOCKER_HOST of the caller's, env.sh points at the project's engine, and a nested env.sh keeps it", () => {
    const project = `unix://${state}/engine/`;
    const run = inEnv('source "$1"; echo "$DOCKER_HOST"; STRATA_STATE=/elsewhere; source "$1"; echo "$DOCKER_HOST"');
    expect(run.code, run.stderr).toBe(0);
    const [first, nested] = run.stdout.split("\n");
    expect(first).toMatch(new RegExp(`^${project.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}v[^/]+/docker\\.sock$`));
    expect(nested).toBe(first);
    expect(inEnv('source "$1"; echo "$DOCKER_HOST"', { STRATA_DOCKERD: "debian" }).stdout).toBe(`unix://${state}/engine/debian/docker.sock`);
  });

  it("a DOCKER_HOST of the caller's wins, also one set after env.sh chose the project's engine", () => {
    expect(inEnv('source "$1"; echo "$DOCKER_HOST"', { DOCKER_HOST: "tcp://builder:2376" }).stdout).toBe("tcp://builder:2376");
    const later = inEnv('source "$1"; DOCKER_HOST=unix:///var/run/docker.sock; source "$1"; echo "$DOCKER_HOST"');
    expect(later.stdout).toBe("unix:///var/run/docker.sock");
  });

  it("an unknown STRATA_DOCKERD stops with the values it takes", () => {
    const run = inEnv('source "$1"', { STRATA_DOCKERD: "docker29" });
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain("STRATA_DOCKERD=docker29: use pinned");
  });

  it("services.sh start with a DOCKER_HOST naming an engine that does not answer refuses, and starts nothing in its place", () => {
    const own = mkdtempSync(path.join(scratch, "engine-state-"));
    const down = `unix://${path.join(own, "nobody-listens.sock")}`;
    const base = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(DOCKER_HOST|STRATA_|PULUMI_BACKEND_URL)/.test(name)));
    const run = spawnSync(script, ["start"], { encoding: "utf8", env: { ...base, STRATA_STATE: own, DOCKER_HOST: down, STRATA_REGISTRY_PORT: "1" } as NodeJS.ProcessEnv });
    expect(run.status, run.stderr).toBe(1);
    expect(run.stderr).toContain(`DOCKER_HOST=${down} names a Docker engine that does not answer. fix: start that engine, or unset DOCKER_HOST`);
    // Neither the project's engine nor the registry was started instead.
    expect(existsSync(path.join(own, "run", "engine.started"))).toBe(false);
    expect(existsSync(path.join(own, "engine"))).toBe(false);
    expect(existsSync(path.join(own, "logs", "engine.log"))).toBe(false);
    expect(existsSync(path.join(own, "logs", "registry.log"))).toBe(false);
  });
});
