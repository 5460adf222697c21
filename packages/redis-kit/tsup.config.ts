import { defineConfig, type Options } from 'tsup';
import base from '../../tsup.config.base.js';

// Only ever bundled into @idem/redis and @idem/cache (src/tsup-bundle.ts), which build both module
// formats from this one ES module; its map would go unused.
export default defineConfig({ ...(base as Options), format: ['esm'], sourcemap: false });
