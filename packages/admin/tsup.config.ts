import { defineConfig } from 'tsup';
import base from '../../tsup.config.base.js';

// Three entry points: the framework-free handler and its two adapters. Split in both formats, so
// that the adapters share one copy of the handler (and of its branded error classes).
export default defineConfig({
  ...base,
  entry: ['src/index.ts', 'src/express.ts', 'src/koa.ts'],
  splitting: true,
});
