import { defineConfig, type Options } from 'tsup';
import base from '../../tsup.config.base.js';
import { bundleKit } from '../redis-kit/src/tsup-bundle.js';

// @idem/redis-kit is private: its code is bundled in (see its src/tsup-bundle.ts). Three entry
// points, split in both formats so that `invalidates()` of the two adapters shares one copy of the
// cache's code (and of its branded error classes).
export default defineConfig({
  ...(base as Options),
  ...bundleKit,
  entry: ['src/index.ts', 'src/express.ts', 'src/koa.ts'],
  splitting: true,
});
