/**
 * One server variant on its own, without the bench's IPC: prints `PORT <n>` once listening and exits
 * on SIGTERM. For tools that run a server under something else (tools/instructions.mjs runs it under
 * valgrind). Usage: node bench/servers/standalone.mjs <express|koa|fastify|hono> <variant> [redisUrl]
 */
import { buildServer } from './frameworks.mjs';

const [framework, variant, redisUrl = 'redis://127.0.0.1:6379'] = process.argv.slice(2);
const cfg = { framework, variant, redisUrl };
const { server } = await buildServer(cfg);
server.listen(0, '127.0.0.1', () => console.log(`PORT ${server.address().port}`));
process.on('SIGTERM', () => process.exit(0));
