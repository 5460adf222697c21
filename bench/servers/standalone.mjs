/**
 * One server variant on its own, without the bench's IPC: prints `PORT <n>` once listening and exits
 * on SIGTERM. For tools that run a server under something else (tools/instructions.mjs runs it under
 * valgrind). Usage: node bench/servers/standalone.mjs <express|koa|fastify|hono> <variant>[@NAME=value,…] [redisUrl]
 */
const [framework, named, redisUrl = 'redis://127.0.0.1:6379'] = process.argv.slice(2);
// `<variant>@NAME=value,…`: environment settings of this server (tools/cpu-per-request.mjs).
const [variant, env] = named.split('@');
for (const pair of env ? env.split(',') : []) {
  const at = pair.indexOf('=');
  const [name, value] = at === -1 ? [pair, ''] : [pair.slice(0, at), pair.slice(at + 1)];
  process.env[name] = value;
}
// Imported after the settings, so that a package reading them as it loads sees them.
const { buildServer } = await import('./frameworks.mjs');
const cfg = { framework, variant, redisUrl };
const { server } = await buildServer(cfg);
server.listen(0, '127.0.0.1', () => console.log(`PORT ${server.address().port}`));
process.on('SIGTERM', () => process.exit(0));
