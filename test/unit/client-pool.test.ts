/** One registry client per registry and login in a process (registry/client-pool.ts). */
import { describe, expect, it } from "vitest";
import { RegistryClient } from "../../src/registry/client.js";
import { type ClientMaker, type ClientRequest, RegistryClients } from "../../src/registry/client-pool.js";
import { type FoundLogin } from "../../src/registry/logins.js";

/** A maker whose Docker config login is whatever `helper` holds now, counting the clients made. */
function maker(helper: { login: FoundLogin | undefined }, made: ClientRequest[]): ClientMaker {
  return {
    dockerLogin: () => helper.login,
    make: (request, dockerLogin) => {
      made.push(request);
      return new RegistryClient({ registry: request.registry, scheme: "http", ...(request.registryAuth === undefined ? { dockerLogin } : { credentials: request.registryAuth }) });
    },
  };
}

describe("RegistryClients", () => {
  it("gives the same client for the same registry and login, another for another registry or login", async () => {
    const made: ClientRequest[] = [];
    const clients = new RegistryClients(async () => maker({ login: undefined }, made));
    const login = { username: "ci", password: "one" };
    const first = await clients.clientFor({ registry: "127.0.0.1:5000", registryAuth: login });
    expect(await clients.clientFor({ registry: "127.0.0.1:5000", registryAuth: { ...login } })).toBe(first);
    const [otherPassword, otherRegistry, noLogin] = await Promise.all([
      clients.clientFor({ registry: "127.0.0.1:5000", registryAuth: { username: "ci", password: "two" } }),
      clients.clientFor({ registry: "127.0.0.1:5001", registryAuth: login }),
      clients.clientFor({ registry: "127.0.0.1:5000" }),
    ]);
    expect(new Set([first, otherPassword, otherRegistry, noLogin]).size).toBe(4);
    expect(made).toHaveLength(4);
    // The stack's second password replaced its first: one client per registry and login source.
    expect(clients.size).toBe(3);
  });

  it("reads the Docker config's login for every step: a credential helper's new password gets a client of its own", async () => {
    const made: ClientRequest[] = [];
    const helper: { login: FoundLogin | undefined } = { login: { credentials: { username: "u", password: "first" }, source: "the credential helper \"test\"" } };
    const clients = new RegistryClients(async () => maker(helper, made));
    const first = await clients.clientFor({ registry: "r" });
    expect(await clients.clientFor({ registry: "r" })).toBe(first);
    helper.login = { credentials: { username: "u", password: "second" }, source: "the credential helper \"test\"" };
    const second = await clients.clientFor({ registry: "r" });
    expect(second).not.toBe(first);
    // A helper's identity token renewed (az acr login again): a client of its own too, and the same one while it stays.
    helper.login = { identityToken: "refresh-1", source: "the credential helper \"test\" (an identity token)" };
    const byToken = await clients.clientFor({ registry: "r" });
    expect(byToken).not.toBe(second);
    expect(await clients.clientFor({ registry: "r" })).toBe(byToken);
    helper.login = { identityToken: "refresh-2", source: "the credential helper \"test\" (an identity token)" };
    const renewed = await clients.clientFor({ registry: "r" });
    expect(renewed).not.toBe(byToken);
    helper.login = undefined;
    expect(await clients.clientFor({ registry: "r" })).not.toBe(renewed);
    expect(made).toHaveLength(5);
  });

  it("keeps one client per login source: a new password replaces the old client; a stack login and a Docker config login with the same password stay apart", async () => {
    const made: ClientRequest[] = [];
    const helper: { login: FoundLogin | undefined } = { login: undefined };
    const clients = new RegistryClients(async () => maker(helper, made));
    const tokens = [];
    for (const token of ["t1", "t2", "t3"]) {
      helper.login = { credentials: { username: "u", password: token }, source: "the credential helper \"test\"" };
      tokens.push(await clients.clientFor({ registry: "r" }));
    }
    expect(new Set(tokens).size).toBe(3);
    expect(clients.size).toBe(1);
    // t3 is the one kept: asked again, no client is made.
    expect(await clients.clientFor({ registry: "r" })).toBe(tokens[2]);
    const stack = await clients.clientFor({ registry: "r", registryAuth: { username: "u", password: "t3" } });
    expect(stack).not.toBe(tokens[2]);
    expect(await clients.clientFor({ registry: "r" })).toBe(tokens[2]);
    expect(await clients.clientFor({ registry: "r", registryAuth: { username: "u", password: "t3" } })).toBe(stack);
    expect(made).toHaveLength(4);
    expect(clients.size).toBe(2);
  });

  it("steps that start together share one client; a maker that could not load, or a login that cannot be read, fails only that step", async () => {
    const made: ClientRequest[] = [];
    let failures = 1;
    const helper = {
      get login(): FoundLogin | undefined {
        if (failures-- > 0) throw new Error("the credential helper failed");
        return undefined;
      },
    };
    let loads = 0;
    const clients = new RegistryClients(async () => {
      if (loads++ === 0) throw new Error("module failed to load");
      return maker(helper, made);
    });
    await expect(clients.clientFor({ registry: "r" })).rejects.toThrow(/module failed to load/);
    await expect(clients.clientFor({ registry: "r" })).rejects.toThrow(/the credential helper failed/);
    const [one, two] = await Promise.all([clients.clientFor({ registry: "r" }), clients.clientFor({ registry: "r" })]);
    expect(one).toBe(two);
    expect(made).toHaveLength(1);
  });
});
