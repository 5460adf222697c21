import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisServer } from '../../../test/harness/redis.mjs';
import { defineScripts, scriptName } from './scripts.js';

let server: RedisServer;
const clients: Redis[] = [];

beforeAll(async () => {
  server = await RedisServer.start();
});
afterAll(async () => {
  for (const client of clients) client.disconnect();
  await server?.stop();
});

function connect(options: { keyPrefix?: string } = {}): Redis {
  const client = new Redis(server.url, options);
  clients.push(client);
  return client;
}

/** Counts the scripts registered on `client`. */
function countingDefinitions(client: Redis): { count: number } {
  const seen = { count: 0 };
  const define = client.defineCommand.bind(client);
  client.defineCommand = (name, definition) => {
    seen.count++;
    define(name, definition);
  };
  return seen;
}

interface Echo {
  echo(key: string, value: string): Promise<string>;
  echoBuffer(key: string, value: string): Promise<Buffer>;
}

const ECHO = { echo: { lua: "return KEYS[1] .. '=' .. ARGV[1]", numberOfKeys: 1 } };

describe('defineScripts', () => {
  it('registers each script under its name and digest and answers as strings or Buffers', async () => {
    const client = connect();
    const commands = defineScripts<Echo>(client, ECHO);
    await expect(commands.echo('k', 'v')).resolves.toBe('k=v');
    const bytes = await commands.echoBuffer('k', 'v');
    expect(Buffer.isBuffer(bytes) && bytes.toString()).toBe('k=v');
    expect(scriptName('echo', ECHO.echo)).toMatch(/^echo_[0-9a-f]{8}$/);
    expect(typeof (client as unknown as Record<string, unknown>)[scriptName('echo', ECHO.echo)]).toBe('function');
  });

  it('lets two versions of a script share one client, each running its own body', async () => {
    // What two installed versions of a package on one client amount to: same name, other body.
    const client = connect();
    const older = defineScripts<{ version(): Promise<number> }>(client, {
      version: { lua: 'return 1', numberOfKeys: 0 },
    });
    const newer = defineScripts<{ version(): Promise<number> }>(client, {
      version: { lua: 'return 2', numberOfKeys: 0 },
    });
    expect(scriptName('version', { lua: 'return 1' })).not.toBe(scriptName('version', { lua: 'return 2' }));
    expect(scriptName('version', { lua: 'return 1', numberOfKeys: 1 })).not.toBe(
      scriptName('version', { lua: 'return 1', numberOfKeys: 2 }),
    );
    await expect(older.version()).resolves.toBe(1);
    await expect(newer.version()).resolves.toBe(2);
  });

  it('registers once per client, however many stores or copies of a package ask', () => {
    const client = connect();
    const definitions = countingDefinitions(client);
    const first = defineScripts<Echo>(client, ECHO);
    expect(defineScripts<Echo>(client, ECHO)).toBe(first);
    // Another copy of the same package: an equal object, same bodies, so the same names.
    defineScripts<Echo>(client, { echo: { ...ECHO.echo } });
    expect(definitions.count).toBe(1);
    // A second client gets its own registration.
    const other = connect();
    const otherDefinitions = countingDefinitions(other);
    defineScripts<Echo>(other, ECHO);
    expect(otherDefinitions.count).toBe(1);
  });

  it('keeps working after the server forgot its scripts (SCRIPT FLUSH)', async () => {
    const client = connect();
    const commands = defineScripts<Echo>(client, ECHO);
    await expect(commands.echo('a', '1')).resolves.toBe('a=1');
    await client.script('FLUSH');
    await expect(commands.echo('b', '2')).resolves.toBe('b=2');
  });

  it('passes KEYS through the client, so an ioredis keyPrefix applies to them, with a fixed or a given key count', async () => {
    const client = connect({ keyPrefix: 'app:' });
    const commands = defineScripts<Echo & { many(count: number, ...args: string[]): Promise<string> }>(client, {
      ...ECHO,
      many: { lua: "return table.concat(KEYS, ',') .. '|' .. table.concat(ARGV, ',')" },
    });
    await expect(commands.echo('k', 'v')).resolves.toBe('app:k=v');
    await expect(commands.many(2, 'a', 'b', 'x')).resolves.toBe('app:a,app:b|x');
  });
});
