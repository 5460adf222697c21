import { defineConfig } from 'tsup';
import base from '../../tsup.config.base.js';

// Three entry points: what users import, what adapters and stores build on, the store suite.
export default defineConfig({ ...base, entry: ['src/index.ts', 'src/adapter.ts', 'src/conformance.ts'] });
