/**
 * A "chaos" TCP proxy in front of a real server (Redis, here): it can cut and refuse connections on
 * demand, so a test decides exactly when a client loses its server, without touching the server.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy in front of Redis. `cut()` drops every connection through it; `refuse()` makes
 * new ones fail until `accept()`; so a test decides exactly when a client is cut off.
 */
export class ChaosProxy {
  readonly #sockets = new Set<Socket>();
  #refusing = false;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(targetPort: number): Promise<ChaosProxy> {
    // The server's handler needs the proxy, which needs the server: fill this in once both exist.
    const self: { proxy?: ChaosProxy } = {};
    const server = createServer((client) => {
      const proxy = self.proxy;
      if (proxy === undefined || proxy.#refusing) {
        client.destroy();
        return;
      }
      const upstream = connect(targetPort, '127.0.0.1');
      for (const socket of [client, upstream]) {
        proxy.#sockets.add(socket);
        socket.on('error', () => {});
        socket.on('close', () => {
          proxy.#sockets.delete(socket);
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    self.proxy = new ChaosProxy(server, typeof address === 'object' && address ? address.port : 0);
    return self.proxy;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Drops every open connection. */
  cut(): void {
    for (const socket of this.#sockets) socket.destroy();
  }

  /** New connections are closed at once until `accept()`. */
  refuse(): void {
    this.#refusing = true;
  }

  accept(): void {
    this.#refusing = false;
  }

  async stop(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
