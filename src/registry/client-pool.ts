/**
 * One registry client per registry and login, for a process that serves many steps (Strata's
 * provider): a client asks which scheme its registry speaks once (HTTPS first, then plain HTTP for a
 * loopback registry: two requests and a TLS handshake that fails) and keeps its connections, so a
 * client per step paid that again for each of the 103 attestation sets of a signed N=200 run, and
 * for each copy of a promotion. The key holds the login's password in this process's memory only,
 * as the client itself does; it is never written anywhere.
 */
import { type RegistryClient } from "./client.js";
import { type RegistryCredentials } from "./logins.js";

export interface ClientRequest {
  readonly registry: string;
  readonly registryAuth?: RegistryCredentials;
}

export class RegistryClients {
  private readonly clients = new Map<string, Promise<RegistryClient>>();

  constructor(private readonly make: (request: ClientRequest) => Promise<RegistryClient>) {}

  /** The client of this registry and login, made on first use. One that could not be made is not kept: the next step tries again. */
  clientFor(request: ClientRequest): Promise<RegistryClient> {
    const key = JSON.stringify([request.registry, request.registryAuth?.username ?? null, request.registryAuth?.password ?? null]);
    let client = this.clients.get(key);
    if (client === undefined) {
      client = this.make(request);
      client.catch(() => this.clients.delete(key));
      this.clients.set(key, client);
    }
    return client;
  }
}
