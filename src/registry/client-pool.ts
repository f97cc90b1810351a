/**
 * One registry client per registry and login, for a process that serves many steps (Strata's
 * provider). What a client learns once it keeps: which scheme its registry speaks (HTTPS first, then
 * plain HTTP for a loopback registry: a TLS attempt that fails and an HTTP request), so a client per
 * step asked again for each of the 103 attestation sets of a signed N=200 run, and for each copy of a
 * promotion. (Connections are the process's `fetch`'s, shared either way.)
 *
 * The login is read for every step as before: the stack's (`registryAuth`), else the Docker config's,
 * whose credential helper may hand out another password during a long run; a new login gets a client
 * of its own. The key holds the password in this process's memory only, as the client itself does.
 */
import { type RegistryClient } from "./client.js";
import { type FoundLogin, type RegistryCredentials } from "./logins.js";

export interface ClientRequest {
  readonly registry: string;
  /** The stack's login; without it, the Docker config's. */
  readonly registryAuth?: RegistryCredentials;
}

/** What the pool needs, loaded when the first client is asked for (the provider loads its registry modules at its first writing step). */
export interface ClientMaker {
  /** The Docker config's login for a registry (a credential helper's included); undefined: none. */
  dockerLogin(registry: string): FoundLogin | undefined;
  /** A client with the stack's login, or with the Docker config's as just read (null: none). */
  make(request: ClientRequest, dockerLogin: FoundLogin | null): RegistryClient;
}

export class RegistryClients {
  private readonly clients = new Map<string, RegistryClient>();

  constructor(private readonly maker: () => Promise<ClientMaker>) {}

  /** The client of this registry and this step's login. A login that cannot be read (a credential helper failing) fails the step, as it did the client's making. */
  async clientFor(request: ClientRequest): Promise<RegistryClient> {
    const maker = await this.maker();
    const dockerLogin = request.registryAuth === undefined ? maker.dockerLogin(request.registry) ?? null : null;
    const credentials = request.registryAuth ?? dockerLogin?.credentials;
    const key = JSON.stringify([request.registry, request.registryAuth === undefined ? dockerLogin?.source ?? null : "stack", credentials?.username ?? null, credentials?.password ?? null]);
    let client = this.clients.get(key);
    if (client === undefined) {
      client = maker.make(request, dockerLogin);
      this.clients.set(key, client);
    }
    return client;
  }
}
