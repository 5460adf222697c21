import { defineConfig, type Options } from 'tsup';
import base from '../../tsup.config.base.js';

export default defineConfig({
  ...(base as Options),
  // @idem/redis-kit is private and never published: its code is bundled in, and its types are
  // inlined where a declaration would name them, so nothing shipped refers to it.
  noExternal: ['@idem/redis-kit'],
  dts: { resolve: ['@idem/redis-kit'] },
  // A source map would carry the kit's paths and the sources that import it; the bundle is not
  // minified, so stack traces already point at readable code.
  sourcemap: false,
});
