/**
 * How @idem/redis and @idem/cache bundle the kit into their dist (their tsup.config.ts spread
 * this). The kit is private and never published, so nothing shipped may name it: not an import,
 * not a declaration, not even esbuild's `// path/of/module` banner above the inlined code.
 * Build configuration, not kit code: it lives in src/ so that a change to it invalidates the
 * builds of both packages (turbo hashes a dependency's src/).
 */
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Options } from 'tsup';

// The kit's own build: one ES module with every piece, so it is inlined as one module.
const built = fileURLToPath(new URL('../dist/index.js', import.meta.url));

/** Loads `@idem/redis-kit` from its build under a neutral module name. */
const inlineKit: NonNullable<Options['esbuildPlugins']>[number] = {
  name: 'idem-inline-kit',
  setup(build) {
    build.onResolve({ filter: /^@idem\/redis-kit$/ }, () => ({ path: 'shared.js', namespace: 'idem' }));
    build.onLoad({ filter: /.*/, namespace: 'idem' }, async () => ({
      contents: await readFile(built, 'utf8'),
      loader: 'js',
      resolveDir: dirname(built),
    }));
  },
};

/** The tsup options that bundle the kit in. */
export const bundleKit: Options = {
  noExternal: ['@idem/redis-kit'],
  esbuildPlugins: [inlineKit],
  // Kit types in a declaration are inlined (none are public today; this keeps it so if one is).
  dts: { resolve: ['@idem/redis-kit'] },
  // A source map would carry the sources that import the kit. The bundle is not minified, so a
  // stack trace already points at readable code.
  sourcemap: false,
};
