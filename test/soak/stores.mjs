// The soak's stores: each starts its own server on a free port (never the machine's own) and knows
// how to fault it and what it holds at the end. The same chaos schedule runs on every store:
//   pause  SIGSTOP … SIGCONT of the server (PostgreSQL: the postmaster and every backend)
//   kill   SIGKILL of the server, restarted after a while: Redis empty (no persistence),
//          PostgreSQL on the same data folder (crash recovery keeps every commit)
//
//   redis           @idem/redis on one redis-server
//   postgres-lease  @idem/postgres, lease mode; the handler's business row is autocommitted
//   postgres-tx     @idem/postgres, transactional mode; the business row is written through
//                   transactionOf(req | ctx), in the transaction that commits the stored response
import pg from 'pg';
import { Redis } from 'ioredis';
import { PROFILES } from './analyze.mjs';
import { PostgresServer } from '../harness/postgres.mjs';
import { RedisServer } from '../harness/redis.mjs';

/** The handlers' side effect in PostgreSQL: one row per execution that took effect. */
export const EFFECTS_SQL = `CREATE TABLE IF NOT EXISTS soak_effects (
  id serial PRIMARY KEY, skey text NOT NULL, route text NOT NULL, key text NOT NULL,
  exec text NOT NULL, pid int NOT NULL, at timestamptz NOT NULL DEFAULT now()
)`;

export const STORE_NAMES = Object.keys(PROFILES);

/** Starts the server of store `name`; resolves once it accepts connections. */
export async function startStore(name) {
  if (!(name in PROFILES)) throw new Error(`unknown store ${name}; one of ${STORE_NAMES.join(', ')}`);
  return name === 'redis' ? new RedisSoakStore(await RedisServer.start()) : PostgresSoakStore.start(name);
}

class RedisSoakStore {
  constructor(server) {
    this.name = 'redis';
    this.server = server;
  }

  get url() {
    return this.server.url;
  }

  get paused() {
    return this.server.paused;
  }

  pause() {
    this.server.pause();
  }

  resume() {
    this.server.resume();
  }

  async kill() {
    await this.server.kill();
  }

  async relaunch() {
    await this.server.launch();
  }

  async version() {
    const client = new Redis(this.url);
    try {
      const version = /redis_version:(\S+)/.exec(await client.info('server'))?.[1] ?? 'unknown';
      return `redis-server ${version} (no persistence)`;
    } finally {
      client.disconnect();
    }
  }

  /** Every idem key left: locks and in-flight records are stuck keys once leases lapsed. */
  async scan() {
    const client = new Redis(this.url, { maxRetriesPerRequest: 2 });
    try {
      const found = { locks: [], inFlight: [], completed: 0 };
      let cursor = '0';
      do {
        const [next, keys] = await client.scan(cursor, 'MATCH', 'idem:*', 'COUNT', 1000);
        cursor = next;
        for (const key of keys) {
          if (key.endsWith(':lock')) found.locks.push({ key, pttl: await client.pttl(key) });
          else if (key.endsWith(':rec')) {
            // A record is one string whose first byte is its state ('c' completed, 'f' in flight).
            const state = await client.getrange(key, 0, 0);
            if (state === 'c') found.completed++;
            else found.inFlight.push({ key, state, pttl: await client.pttl(key) });
          }
        }
      } while (cursor !== '0');
      return found;
    } finally {
      client.disconnect();
    }
  }

  /** Redis holds no business rows: the ledger's executions are the side effects. */
  async rows() {
    return { effects: null, records: null };
  }

  async stop() {
    await this.server.stop();
  }

  /** On process exit, synchronously. */
  killNow() {
    if (this.server.alive) this.server.child.kill('SIGKILL');
  }
}

class PostgresSoakStore {
  constructor(name, server) {
    this.name = name;
    this.server = server;
  }

  static async start(name) {
    const store = new PostgresSoakStore(name, await PostgresServer.start());
    await store.query(EFFECTS_SQL);
    return store;
  }

  get url() {
    return this.server.url;
  }

  get paused() {
    return this.server.paused;
  }

  pause() {
    this.server.pause();
  }

  resume() {
    this.server.resume();
  }

  async kill() {
    await this.server.kill('SIGKILL');
  }

  /** Starts the postmaster again on the same data folder: crash recovery replays the WAL. */
  async relaunch() {
    await this.server.launch();
  }

  async query(text, values) {
    const client = new pg.Client({ connectionString: this.url });
    await client.connect();
    try {
      return (await client.query(text, values)).rows;
    } finally {
      await client.end();
    }
  }

  async version() {
    const [row] = await this.query('SHOW server_version');
    return `PostgreSQL ${row.server_version.split(' ')[0]} (fsync off, synchronous_commit on)`;
  }

  /** In-flight rows whose lease still runs, once every lease should have lapsed: stuck keys. */
  async scan() {
    const inFlight = await this.query(
      `SELECT key, lease_lock IS NOT NULL AS transactional, round(extract(epoch FROM expires_at - now()) * 1000) AS pttl
       FROM idem_records WHERE state = 'in_flight' AND expires_at > now()`,
    );
    const [{ completed }] = await this.query(
      "SELECT count(*)::int AS completed FROM idem_records WHERE state = 'completed' AND expires_at > now()",
    );
    return { locks: [], inFlight, completed };
  }

  /** The business rows, and which execution each completed record holds (from its stored body). */
  async rows() {
    const effects = await this.query('SELECT skey, route, key, exec, pid FROM soak_effects ORDER BY id');
    const stored = await this.query(
      `SELECT key AS skey, status, convert_from(body, 'UTF8') AS body
       FROM idem_records WHERE state = 'completed' AND expires_at > now()`,
    );
    const execOf = (body) => {
      try {
        return JSON.parse(body).exec ?? null;
      } catch {
        return null;
      }
    };
    return { effects, records: stored.map((r) => ({ skey: r.skey, status: r.status, exec: execOf(r.body) })) };
  }

  async stop() {
    await this.server.stop();
  }

  killNow() {
    this.server.killNow();
  }
}
