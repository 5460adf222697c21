import { defineConfig } from 'tsup';
import base from '../../tsup.config.base.js';

// Three entry points: what users import, what adapters and stores build on, the store suite.
// Split in both formats, so CommonJS, too, defines every class once for all three.
export default defineConfig({
  ...base,
  entry: ['src/index.ts', 'src/adapter.ts', 'src/conformance.ts'],
  splitting: true,
});
