/**
 * Lua scripts registered once per client with `defineCommand` (ioredis sends EVALSHA and falls
 * back to EVAL after a SCRIPT FLUSH or a restart), each under a name that carries a digest of its
 * body. ioredis adds a defined command as a method of the client, by name: with the digest in the
 * name, two versions of a package sharing one client never call each other's scripts, and nobody
 * has to remember to bump a version suffix when a script changes.
 */
import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';

/** A script as `defineCommand` takes it; without `numberOfKeys` the caller passes the count first. */
export interface ScriptDefinition {
  lua: string;
  numberOfKeys?: number;
}

/**
 * The name a script is registered under: `name_` and the first 8 hex digits of the SHA-1 of its
 * body and key count (the same body called with another number of keys is another command).
 */
export function scriptName(name: string, definition: ScriptDefinition): string {
  const digest = createHash('sha1')
    .update(`${definition.numberOfKeys ?? 'variadic'}\n${definition.lua}`)
    .digest('hex');
  return `${name}_${digest.slice(0, 8)}`;
}

const registered = new WeakMap<object, WeakMap<object, unknown>>();

/**
 * Registers `scripts` on `client` (once per client, however many stores or caches share it) and
 * returns them as methods bound to it under their plain names: `name` answers as ioredis decodes
 * replies (strings), `nameBuffer` answers Buffers, like ioredis' own `…Buffer` methods.
 * `Commands` is the caller's typed view of those methods. Call it at creation, never per request.
 *
 * @example
 * const commands = defineScripts<{ idemPeek(record: string): Promise<[string, number] | null> }>(client, {
 *   idemPeek: { lua: PEEK, numberOfKeys: 1 },
 * });
 * await commands.idemPeek('idem:{k}:rec');
 */
export function defineScripts<Commands extends object>(
  client: Redis | Cluster,
  scripts: Readonly<Record<string, ScriptDefinition>>,
): Commands {
  let perClient = registered.get(scripts);
  if (perClient === undefined) {
    perClient = new WeakMap();
    registered.set(scripts, perClient);
  }
  const known = perClient.get(client) as Commands | undefined;
  if (known !== undefined) return known;

  const methods = client as unknown as Record<string, ((...args: unknown[]) => Promise<unknown>) | undefined>;
  const bound = (method: string) => (methods[method] as (...args: unknown[]) => Promise<unknown>).bind(client);
  const commands: Record<string, (...args: unknown[]) => Promise<unknown>> = {};
  for (const [name, definition] of Object.entries<ScriptDefinition>(scripts)) {
    const registeredAs = scriptName(name, definition);
    // Another copy of the same package (same body, same name) may have defined it already.
    if (typeof methods[registeredAs] !== 'function') client.defineCommand(registeredAs, definition);
    commands[name] = bound(registeredAs);
    commands[`${name}Buffer`] = bound(`${registeredAs}Buffer`);
  }
  perClient.set(client, commands);
  return commands as Commands;
}
