/**
 * One registry client per registry and login source, for a process that serves many steps
 * (Strata's provider). What a client learns once it keeps: which scheme its registry speaks
 * (HTTPS first, then plain HTTP for a loopback registry: a TLS attempt that fails, then an HTTP
 * request). With a client per step, every step asked again — and, before the client shared one
 * probe between the requests that start together (client.ts resolveScheme), every image a step
 * signed at once did: each attestation set of a signed run (103 at N=200 then), each copy of a promotion.
 * (Connections are the process's, shared either way: transport.ts's agents, and `fetch`'s for layer streams.)
 *
 * The login is read for every step as before: the stack's (`registryAuth`), else the Docker config's,
 * whose credential helper may hand out another password during a long run. A new password from the
 * same source replaces that source's client (one that hands out a token per request would otherwise
 * leave a client per step behind; two passwords of one source used in turn then replace each other,
 * each new client probing again, as a client per step did). The password is held in this process's
 * memory only, as the client itself holds it.
 */
import { type RegistryClient } from "./client.js";
import { type FoundLogin, type RegistryCredentials } from "./logins.js";

export interface ClientRequest {
  readonly registry: string;
  /** The stack's login; without it, the Docker config's. */
  readonly registryAuth?: RegistryCredentials;
}

/** What the pool needs; asked for on every step (the provider's `import()`s load its modules once, at its first writing step). */
export interface ClientMaker {
  /** The Docker config's login for a registry (a credential helper's included); undefined: none. */
  dockerLogin(registry: string): FoundLogin | undefined;
  /** A client with the stack's login, or with the Docker config's as just read (null: none). */
  make(request: ClientRequest, dockerLogin: FoundLogin | null): RegistryClient;
}

export class RegistryClients {
  /** Registry and login source → the login it was made with, and the client. */
  private readonly clients = new Map<string, { readonly login: string; readonly client: RegistryClient }>();

  constructor(private readonly maker: () => Promise<ClientMaker>) {}

  /** Clients kept (one per registry and login source). */
  get size(): number {
    return this.clients.size;
  }

  /** The client of this registry and this step's login. A login that cannot be read (a credential helper failing) fails the step, as it did the client's making. */
  async clientFor(request: ClientRequest): Promise<RegistryClient> {
    const maker = await this.maker();
    const dockerLogin = request.registryAuth === undefined ? maker.dockerLogin(request.registry) ?? null : null;
    const credentials = request.registryAuth ?? (dockerLogin !== null && "credentials" in dockerLogin ? dockerLogin.credentials : undefined);
    const identityToken = request.registryAuth === undefined && dockerLogin !== null && "identityToken" in dockerLogin ? dockerLogin.identityToken : null;
    // The source apart from the login: a stack login and a Docker config login with the same password keep their own clients, whose 401 names where the login came from.
    const source = JSON.stringify([request.registry, request.registryAuth === undefined ? dockerLogin?.source ?? null : "stack"]);
    const login = JSON.stringify([credentials?.username ?? null, credentials?.password ?? null, identityToken]);
    const kept = this.clients.get(source);
    if (kept !== undefined && kept.login === login) return kept.client;
    const client = maker.make(request, dockerLogin);
    this.clients.set(source, { login, client });
    return client;
  }
}
