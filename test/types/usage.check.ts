/**
 * Compiled by `tsc -p test` (never run): the ways users write idem in TypeScript must type-check,
 * and mounting idempotent() must not narrow what the framework infers for later handlers.
 */
import bodyParser from '@koa/bodyparser';
import Router from '@koa/router';
import express, { type Request } from 'express';
import Koa from 'koa';
import { memoryStore } from '@idem/core';
import { idempotent as expressIdempotent } from '@idem/express';
import { idempotent as koaIdempotent } from '@idem/koa';

const app = express();
app.use(express.json());
app.use(expressIdempotent());
app.use(expressIdempotent({ store: memoryStore(), scope: (req) => req.user?.id, key: (req) => req.body?.order?.id }));
app.post('/orders/:id', expressIdempotent({ required: true }), (req, res) => {
  const id: string = req.params.id; // still inferred from the route string
  res.status(201).json({ id, body: req.body });
});
const typed = expressIdempotent<Request>({ scope: (req) => req.get('x-tenant') });
app.post('/typed', typed, (_req, res) => res.end());
typed.events.on(
  'execute',
  (e) =>
    e.outcome satisfies 'stored' | 'not_cacheable' | 'too_large' | 'failed' | 'fenced' | 'max_hold' | 'store_error',
);

const koa = new Koa();
const router = new Router();
koa.use(bodyParser());
koa.use(koaIdempotent({ scope: (ctx) => ctx.state.user?.id }));
router.post('/payments/:id', koaIdempotent({ required: true }), (ctx) => {
  const id: string = ctx.params.id;
  ctx.body = { id, body: ctx.request.body };
});
koa.use(router.routes());
