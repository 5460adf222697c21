import { defineConfig, type Options } from 'tsup';
import base from '../../tsup.config.base.js';
import { bundleKit } from '../redis-kit/src/tsup-bundle.js';

// @idem/redis-kit is private: its code is bundled in (see its src/tsup-bundle.ts).
export default defineConfig({ ...(base as Options), ...bundleKit });
