/**
 * Registry logins from the Docker config file, found the way the docker CLI finds them:
 * `credHelpers[host]`, then `credsStore`, then inline `auths`. A helper is the program
 * `docker-credential-<name>`, asked with `get` and the server on standard input; it answers
 * `{"ServerURL", "Username", "Secret"}`, or says "credentials not found". The stack config's
 * login, when set, wins over all of these (client.ts). The docker client also asks the credential
 * store to `list` every login it holds before each build (credentialStoreProblem).
 */
import { execFileSync } from "node:child_process";
import { accessSync, constants, existsSync, readFileSync, statSync } from "node:fs";
import { homedir } from "node:os";
import path from "node:path";
import { UserError } from "../core/problems.js";

export interface RegistryCredentials {
  readonly username: string;
  readonly password: string;
}

/**
 * A login and where it came from (for messages: never the secret itself): a user name and password,
 * or an identity token (an OAuth2 refresh token: what `az acr login` and some credential helpers
 * keep), which only a registry that logs in with tokens takes, exchanged at its token server.
 */
export type FoundLogin =
  | { readonly credentials: RegistryCredentials; readonly source: string }
  | { readonly identityToken: string; readonly source: string };

/** A login source that exists but could not be read: never treated as "no login". */
export class LoginError extends UserError {
  constructor(message: string) {
    super(message);
    this.name = "LoginError";
  }
}

interface DockerConfigFile {
  readonly auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  readonly credsStore?: string;
  readonly credHelpers?: Record<string, string>;
}

export function dockerConfigDir(env: Readonly<Record<string, string | undefined>> = process.env): string {
  return env.DOCKER_CONFIG ?? path.join(homedir(), ".docker");
}

/** The keys a login for `registry` may be stored under: the docker CLI writes a bare host, older ones a URL. */
function serverKeys(registry: string): string[] {
  return [registry, `https://${registry}`, `http://${registry}`];
}

/** Runs one credential helper; undefined when it holds nothing for the server. */
export function helperLogin(helper: string, registry: string, env: NodeJS.ProcessEnv = process.env): FoundLogin | undefined {
  const program = `docker-credential-${helper}`;
  for (const server of serverKeys(registry)) {
    let answer: string;
    try {
      answer = execFileSync(program, ["get"], { input: server, encoding: "utf8", timeout: 15_000, env, stdio: ["pipe", "pipe", "pipe"] });
    } catch (error) {
      const failure = error as { code?: string; stdout?: string; stderr?: string; status?: number | null };
      if (failure.code === "ENOENT") {
        throw new LoginError(`the Docker config names the credential helper "${helper}", but ${program} is not on PATH: install it or put it on PATH, or remove "${helper}" from the Docker config`);
      }
      const said = `${failure.stdout ?? ""} ${failure.stderr ?? ""}`.trim();
      if (/credentials not found/i.test(said)) continue;
      throw new LoginError(`the credential helper ${program} failed for ${server} (${failure.code === "ETIMEDOUT" ? "no answer in 15 s" : `exit ${failure.status ?? "?"}`}${said === "" ? "" : `: ${said.split("\n")[0]}`}): unlock or fix the helper, or log in again with docker login ${registry}`);
    }
    let parsed: { Username?: unknown; Secret?: unknown };
    try {
      parsed = JSON.parse(answer) as typeof parsed;
    } catch {
      throw new LoginError(`the credential helper ${program} answered something that is not JSON for ${server}: fix the helper, or log in again with docker login ${registry}`);
    }
    if (typeof parsed.Username !== "string" || typeof parsed.Secret !== "string" || parsed.Secret === "") continue;
    // The docker client's convention for a helper's identity token (docker/cli's tokenUsername).
    if (parsed.Username === "<token>") return { identityToken: parsed.Secret, source: `credential helper ${program} (an identity token)` };
    return { credentials: { username: parsed.Username, password: parsed.Secret }, source: `credential helper ${program}` };
  }
  return undefined;
}

/** `user:password` of an inline `auths` entry (base64 `auth`, or the two fields). */
function inlineLogin(entry: { auth?: string; username?: string; password?: string }): RegistryCredentials | undefined {
  if (entry.username !== undefined && entry.password !== undefined) return { username: entry.username, password: entry.password };
  if (entry.auth === undefined || entry.auth === "") return undefined;
  const decoded = Buffer.from(entry.auth, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  return colon < 0 ? undefined : { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** The Docker config file, parsed; `{}` when there is none. `fix` ends the message of a file that is not JSON. */
function readDockerConfig(file: string, fix: string): DockerConfigFile {
  if (!existsSync(file)) return {};
  try {
    return JSON.parse(readFileSync(file, "utf8")) as DockerConfigFile;
  } catch (error) {
    throw new LoginError(`${file} is not valid JSON (${(error as Error).message}): ${fix}`);
  }
}

/**
 * The Docker config's login for `registry`, or undefined when it has none. A config that cannot be
 * parsed, or a helper that fails, is a LoginError: the user did log in, and a run without that
 * login would only meet a 401 later.
 */
export function dockerConfigLogin(registry: string, configDir: string = dockerConfigDir(), env: NodeJS.ProcessEnv = process.env): FoundLogin | undefined {
  const file = path.join(configDir, "config.json");
  if (!existsSync(file)) return undefined;
  const config = readDockerConfig(file, `fix it, or log in again with docker login ${registry}`);
  const helper = serverKeys(registry).map((key) => config.credHelpers?.[key]).find((name) => name !== undefined);
  if (helper !== undefined) {
    const found = helperLogin(helper, registry, env);
    if (found !== undefined) return found;
  } else if (config.credsStore !== undefined && config.credsStore !== "") {
    const found = helperLogin(config.credsStore, registry, env);
    if (found !== undefined) return found;
  }
  for (const key of serverKeys(registry)) {
    const entry = config.auths?.[key];
    if (entry === undefined) continue;
    // An identity token goes before the entry's user name and password, as in the docker client
    // (`az acr login` writes a placeholder user with no password beside it).
    if (typeof entry.identitytoken === "string" && entry.identitytoken !== "") return { identityToken: entry.identitytoken, source: `${file} (auths, an identity token)` };
    const credentials = inlineLogin(entry);
    if (credentials !== undefined) return { credentials, source: `${file} (auths)` };
  }
  return undefined;
}

/** Whether `program` is an executable file in one of PATH's folders (as exec.LookPath finds it). */
function onPath(program: string, env: NodeJS.ProcessEnv): boolean {
  return (env.PATH ?? "").split(path.delimiter).filter((dir) => dir !== "").some((dir) => {
    const candidate = path.join(dir, program);
    try {
      accessSync(candidate, constants.X_OK);
      return statSync(candidate).isFile();
    } catch {
      return false;
    }
  });
}

/** The store the docker client uses when the config names none, per platform (docker/cli's defaultCredentialsStore). */
function platformDefaultStore(env: NodeJS.ProcessEnv): string | undefined {
  if (process.platform === "linux") return onPath("pass", env) ? "pass" : "secretservice";
  if (process.platform === "darwin") return "osxkeychain";
  return undefined;
}

/**
 * The credential store the docker client asks for all its logins, and what chose it: the config's
 * `credsStore`, or else the platform's default store when its helper is on PATH (the docker
 * client's DetectDefaultStore: a machine with docker-credential-secretservice installed uses it
 * when its config holds no login of its own).
 */
export function credentialStore(configDir: string = dockerConfigDir(), env: NodeJS.ProcessEnv = process.env): { helper: string; chosenBy: string; file: string } | undefined {
  const file = path.join(configDir, "config.json");
  const config = readDockerConfig(file, "fix it, or remove it and log in again with docker login");
  if (config.credsStore !== undefined && config.credsStore !== "") return { helper: config.credsStore, chosenBy: `"credsStore" in ${file}`, file };
  // The docker client looks for a default store only in a config that holds no login at all
  // (docker/cli: `if !configFile.ContainsAuth() { … DetectDefaultStore … }`).
  if (Object.keys(config.auths ?? {}).length > 0 || Object.keys(config.credHelpers ?? {}).length > 0) return undefined;
  const fallback = platformDefaultStore(env);
  if (fallback === undefined || !onPath(`docker-credential-${fallback}`, env)) return undefined;
  return { helper: fallback, chosenBy: `the docker client's default store: ${file} names no "credsStore" and docker-credential-${fallback} is on PATH`, file };
}

/**
 * What is wrong with the credential store's answer to `list`, or undefined when it answers as the
 * protocol says (a JSON object of server → user name, `{}` when it holds nothing). The docker
 * plugin asks it before every docker.Image build (GetAllCredentials, as `docker build` does) and
 * stops with a bare "error: EOF" when the helper prints nothing: asked here first, the run stops
 * before anything is built, naming the helper, the operation and the fix.
 */
export function credentialStoreProblem(configDir: string = dockerConfigDir(), env: NodeJS.ProcessEnv = process.env): { problem: string; fix: string } | undefined {
  const store = credentialStore(configDir, env);
  if (store === undefined) return undefined;
  const program = `docker-credential-${store.helper}`;
  const why = "the docker client asks the credential store to list every login it holds before each build";
  const remove = store.chosenBy.startsWith('"credsStore"') ? `or remove "credsStore": "${store.helper}" from ${store.file}` : `or name a working store in ${store.file} ("credsStore"), or take ${program} off PATH`;
  let answer: string;
  try {
    // The docker client sends "unused" on standard input with `list`.
    answer = execFileSync(program, ["list"], { input: "unused", encoding: "utf8", timeout: 15_000, env, stdio: ["pipe", "pipe", "pipe"] });
  } catch (error) {
    const failure = error as { code?: string; stdout?: string; stderr?: string; status?: number | null };
    // A helper that exits 0 before reading its input (EPIPE on the "unused" written to it) answered all the same.
    if (failure.status === 0 && failure.code === "EPIPE") return listAnswerProblem(failure.stdout ?? "", program, store.chosenBy, why, remove);
    if (failure.code === "ENOENT") {
      return { problem: `the credential store ${program} (${store.chosenBy}) is not on PATH; ${why}`, fix: `install ${program} or put it on PATH, ${remove}` };
    }
    const said = `${failure.stdout ?? ""} ${failure.stderr ?? ""}`.trim();
    return {
      problem: `the credential store ${program} (${store.chosenBy}) failed when asked to "list" its logins (${failure.code === "ETIMEDOUT" ? "no answer in 15 s" : `exit ${failure.status ?? "?"}`}${said === "" ? "" : `: ${said.split("\n")[0]}`}); ${why}`,
      fix: `unlock or fix the helper until "${program} list" prints its logins as JSON, ${remove}`,
    };
  }
  return listAnswerProblem(answer, program, store.chosenBy, why, remove);
}

/** What is wrong with a helper's answer to `list`: undefined for a JSON object of server → user name. */
function listAnswerProblem(answer: string, program: string, chosenBy: string, why: string, remove: string): { problem: string; fix: string } | undefined {
  const text = answer.trim();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const isLoginList = typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) && Object.values(parsed).every((user) => typeof user === "string");
  if (isLoginList) return undefined;
  const answered = text === "" ? 'nothing (the docker plugin stops on that with a bare "error: EOF")' : `something that is not a JSON object of server → user name: ${text.split("\n")[0]?.slice(0, 80)}`;
  return {
    problem: `the credential store ${program} (${chosenBy}) answered "list" with ${answered}; ${why}`,
    fix: `make "${program} list" print its logins as a JSON object of server → user name ({} when it holds none): update, reinstall or initialise the helper, ${remove}`,
  };
}
