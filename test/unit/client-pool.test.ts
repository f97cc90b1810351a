/** One registry client per registry and login in a process (registry/client-pool.ts). */
import { describe, expect, it } from "vitest";
import { RegistryClient } from "../../src/registry/client.js";
import { type ClientRequest, RegistryClients } from "../../src/registry/client-pool.js";

const make = (made: ClientRequest[]) => async (request: ClientRequest): Promise<RegistryClient> => {
  made.push(request);
  return new RegistryClient({ registry: request.registry, scheme: "http", dockerConfigDir: "/nonexistent", ...(request.registryAuth === undefined ? {} : { credentials: request.registryAuth }) });
};

describe("RegistryClients", () => {
  it("gives the same client for the same registry and login, another for another registry or login", async () => {
    const made: ClientRequest[] = [];
    const clients = new RegistryClients(make(made));
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
  });

  it("steps that start together share the client being made; one that could not be made is made again", async () => {
    const made: ClientRequest[] = [];
    let fail = true;
    const clients = new RegistryClients(async (request) => {
      if (fail) {
        fail = false;
        throw new Error("module failed to load");
      }
      return make(made)(request);
    });
    await expect(clients.clientFor({ registry: "r" })).rejects.toThrow(/module failed to load/);
    const [one, two] = await Promise.all([clients.clientFor({ registry: "r" }), clients.clientFor({ registry: "r" })]);
    expect(one).toBe(two);
    expect(made).toHaveLength(1);
  });
});
