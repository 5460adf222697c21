/**
 * Every package installs as users consume it: `require()` from CommonJS, `import` from ESM, and
 * types resolved in both module systems, through the `exports` map of its package.json.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '..', '..');
const packages = readdirSync(join(root, 'packages'))
  .map(
    (dir) =>
      JSON.parse(readFileSync(join(root, 'packages', dir, 'package.json'), 'utf8')) as {
        name: string;
        exports: Record<string, { import: Record<string, string>; require: Record<string, string> }>;
      } & { dir?: string },
  )
  .map((pkg, i) => ({ ...pkg, dir: readdirSync(join(root, 'packages'))[i] as string }))
  // Published packages only: a private workspace package is bundled into the others.
  .filter(
    (pkg) => !(pkg as { private?: boolean }).private && existsSync(join(root, 'packages', pkg.dir, 'src', 'index.ts')),
  );

// A scratch consumer inside the repository, so that it resolves the workspace's node_modules.
const scratch = mkdtempSync(join(root, 'test', '.consumer-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const rootManifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { engines: { node: string } };

/** Every entry point a package exports (`.`, `./adapter`…), as the names a consumer imports. */
const entryPoints = packages.flatMap((pkg) =>
  Object.keys(pkg.exports)
    .filter((subpath) => subpath !== './package.json')
    .map((subpath) => ({ pkg, subpath, specifier: subpath === '.' ? pkg.name : `${pkg.name}/${subpath.slice(2)}` })),
);

describe.each(packages)('$name', (pkg) => {
  it('declares the same Node versions as the repository, and its license', () => {
    const manifest = pkg as unknown as { engines?: { node?: string }; license?: string };
    expect(manifest.engines?.node).toBe(rootManifest.engines.node);
    expect(manifest.license).toBe('MIT');
  });
});

describe.each(entryPoints)('$specifier', ({ pkg, subpath, specifier }) => {
  it('points its exports map at files that exist, types first', () => {
    const entry = pkg.exports[subpath] as { import: Record<string, string>; require: Record<string, string> };
    for (const condition of [entry.import, entry.require]) {
      expect(Object.keys(condition)[0]).toBe('types');
      for (const file of Object.values(condition))
        expect(existsSync(join(root, 'packages', pkg.dir, file)), file).toBe(true);
    }
  });

  it('loads with require() from CommonJS and import from ESM, with the same exports', async () => {
    const cjs = await run(
      process.execPath,
      ['-e', `console.log(JSON.stringify(Object.keys(require(${JSON.stringify(specifier)})).sort()))`],
      { cwd: scratch },
    );
    const esm = await run(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import * as m from ${JSON.stringify(specifier)}; console.log(JSON.stringify(Object.keys(m).sort()))`,
      ],
      { cwd: scratch },
    );
    const cjsNames = JSON.parse(cjs.stdout) as string[];
    expect(cjsNames.length).toBeGreaterThan(0);
    expect(JSON.parse(esm.stdout)).toEqual(cjsNames);
  });
});

describe('types', () => {
  it.each(['commonjs', 'nodenext'])('type-check a consumer compiled as %s', async (mode) => {
    const dir = join(scratch, mode);
    rmSync(dir, { recursive: true, force: true });
    await run('mkdir', ['-p', dir]);
    const imports = entryPoints
      .map(({ specifier }, i) => `import * as p${i} from '${specifier}';\nvoid p${i};`)
      .join('\n');
    const usage = packages.some((p) => p.name === '@idem/express')
      ? "import { idempotent } from '@idem/express';\nimport { memoryStore } from '@idem/core';\nconst mw = idempotent({ store: memoryStore(), ttl: '24h', concurrent: 'wait' });\nmw.events.on('replay', (e) => e.ageMs.toFixed());\n"
      : '';
    writeFileSync(join(dir, 'consumer.ts'), `${imports}\n${usage}`);
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: mode === 'commonjs' ? 'commonjs' : 'module' }));
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    const args = [
      '--noEmit',
      '--strict',
      '--skipLibCheck',
      '--types',
      'node',
      '--module',
      mode,
      '--moduleResolution',
      mode === 'commonjs' ? 'node10' : 'nodenext',
      '--target',
      'es2022',
      join(dir, 'consumer.ts'),
    ];
    const result = await run(process.execPath, [tsc, ...args], { cwd: dir }).catch(
      (error: { stdout: string }) => error,
    );
    expect((result as { stdout: string }).stdout).toBe('');
  });
});
