import { defineConfig } from 'tsup';

/** The build every package shares: ESM and CommonJS from src/index.ts, with declarations for both. */
export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
});
