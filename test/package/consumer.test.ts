// The package as a user installs it: `npm pack` (which builds through `prepack`), the tarball
// installed into scratch projects, and test/package/fixture/consumer.ts (outside this
// repository's own tsconfig: it imports 'wsframe' by name) compiled against it with the
// strictest settings users have (README's tsconfig files, skipLibCheck false) — CommonJS without esModuleInterop and ESM with module
// nodenext, skipLibCheck false, under TypeScript 5.9 and 7 — then run. Nothing here reaches
// the network: the install is --offline (the package has no dependencies) and both compilers
// are dev dependencies (TypeScript 7 as the alias `typescript7`).
import test from 'ava';
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const ROOT = join(__dirname, '..', '..');
const run = promisify(execFile);
const COMPILERS = {
  '5.9': join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
  '7': join(ROOT, 'node_modules', 'typescript7', 'bin', 'tsc')
} as const;
type Version = keyof typeof COMPILERS;

// The two tsconfig.json files README's "Using wsframe in your project" gives, in its order:
// CommonJS, then ES modules. TypeScript 7 has removed `esModuleInterop: false` (TS5108), so a
// CommonJS project under 7 has interop whatever it says; under 5.9 it is set off, as it is by
// default for module commonjs.
function readmeConfigs(): [Record<string, unknown>, Record<string, unknown>] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Using wsframe in your project'));
  const blocks = [...section.slice(0, section.indexOf('\n## ', 5)).matchAll(/```json\n([^`]*)```/g)];
  const configs = blocks.map((b) => (JSON.parse(b[1]!) as { compilerOptions: Record<string, unknown> }).compilerOptions);
  if (configs.length !== 2) throw new Error(`README's section has ${configs.length} json blocks, not 2`);
  return [configs[0]!, configs[1]!];
}
const [CJS_OPTIONS, ESM_OPTIONS] = readmeConfigs();
const KINDS = {
  commonjs: { type: 'commonjs', compilerOptions: CJS_OPTIONS, only: { '5.9': { esModuleInterop: false }, '7': {} } },
  esm: { type: 'module', compilerOptions: ESM_OPTIONS, only: { '5.9': {}, '7': {} } }
} as const;
type Kind = keyof typeof KINDS;

const WORK = mkdtempSync(join(tmpdir(), 'wsframe-consumer-'));
test.after.always(() => rmSync(WORK, { recursive: true, force: true }));

interface Packed {
  tarball: string;
  files: string[];
  installLog: Record<Kind, string>;
}

// Packs a copy of the package (so the repository's own dist/ is not rebuilt under the other
// tests' feet) and installs the tarball into one scratch project per kind.
async function pack(): Promise<Packed> {
  const source = join(WORK, 'source');
  mkdirSync(source);
  for (const entry of ['package.json', 'README.md', 'LICENSE', 'tsconfig.json', 'tsconfig.build.json', 'src']) {
    cpSync(join(ROOT, entry), join(source, entry), { recursive: true });
  }
  symlinkSync(join(ROOT, 'node_modules'), join(source, 'node_modules'));
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', WORK], { cwd: source, timeout: 180_000 });
  const [info] = JSON.parse(stdout.slice(stdout.indexOf('['))) as Array<{ filename: string; files: Array<{ path: string }> }>;
  const tarball = join(WORK, info!.filename);
  const installLog = {} as Record<Kind, string>;
  for (const kind of Object.keys(KINDS) as Kind[]) {
    const dir = join(WORK, kind);
    mkdirSync(dir);
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `consumer-${kind}`, version: '1.0.0', private: true, type: KINDS[kind].type }));
    const out = await run('npm', ['install', '--offline', '--no-audit', '--no-fund', tarball], { cwd: dir, timeout: 120_000 });
    installLog[kind] = out.stdout + out.stderr;
    // The consumer's own @types/node, as `npm i -D @types/node` would give it.
    mkdirSync(join(dir, 'node_modules', '@types'), { recursive: true });
    symlinkSync(join(ROOT, 'node_modules', '@types', 'node'), join(dir, 'node_modules', '@types', 'node'));
    cpSync(join(__dirname, 'fixture', 'consumer.ts'), join(dir, 'consumer.ts'));
  }
  return { tarball, files: info!.files.map((f) => f.path), installLog };
}

let packed: Promise<Packed> | undefined;
const packOnce = (): Promise<Packed> => (packed ??= pack());

test('the tarball installs without an install script and ships a LICENSE, and its declarations have no @internal names', async (t) => {
  t.timeout(300_000);
  const { files, installLog } = await packOnce();
  for (const kind of Object.keys(KINDS) as Kind[]) t.notRegex(installLog[kind], /install.script/i, `npm install in the ${kind} project`);
  t.true(files.includes('LICENSE'));
  const manifest = JSON.parse(readFileSync(join(WORK, 'commonjs', 'node_modules', 'wsframe', 'package.json'), 'utf8')) as Record<string, unknown>;
  t.truthy(manifest.repository);
  t.truthy(manifest.homepage);
  t.falsy((manifest.scripts as Record<string, string>).prepare, 'no prepare script runs on a user\'s install');
  const dist = join(WORK, 'commonjs', 'node_modules', 'wsframe', 'dist');
  const declarations = readdirSync(dist).filter((f) => f.endsWith('.d.ts'));
  t.true(declarations.length > 0);
  for (const file of declarations) t.notRegex(readFileSync(join(dist, file), 'utf8'), /@internal/, file);
});


for (const kind of Object.keys(KINDS) as Kind[]) {
  for (const version of Object.keys(COMPILERS) as Version[]) {
    test(`a ${kind} consumer compiles under TypeScript ${version} with skipLibCheck false, and runs`, async (t) => {
      t.timeout(300_000);
      await packOnce();
      const dir = join(WORK, kind);
      const outDir = `out-${version}`;
      const config = {
        compilerOptions: { ...KINDS[kind].compilerOptions, ...KINDS[kind].only[version], skipLibCheck: false, outDir },
        files: ['consumer.ts']
      };
      const configFile = join(dir, `tsconfig.${version}.json`);
      writeFileSync(configFile, JSON.stringify(config));
      const tsc = await run(process.execPath, [COMPILERS[version], '-p', configFile], { cwd: dir, timeout: 180_000 }).then(
        () => '',
        (err: { stdout?: string; message: string }) => err.stdout || err.message
      );
      t.is(tsc, '', `tsc ${version} in the ${kind} project`);
      if (tsc !== '') return;
      const { stdout } = await run(process.execPath, [join(dir, outDir, 'consumer.js')], { cwd: dir, timeout: 60_000 });
      const result = JSON.parse(stdout) as { listened: string; refused: string; upgraded: string; names: string[] };
      t.is(result.listened, 'echo:hi');
      t.is(result.refused, 'HandshakeError 401');
      t.is(result.upgraded, 'echo:hi');
      t.true(result.names.includes('readData') && result.names.includes('AsyncSocket'));
      t.log(`${result.names.length} names`);
    });
  }
}

test('import and require give the same names', async (t) => {
  t.timeout(300_000);
  await packOnce();
  const dir = join(WORK, 'esm');
  // Node adds `default` and `__esModule` to what an ES module sees of a CommonJS one.
  const script = "import * as ns from 'wsframe'; import { createRequire } from 'node:module';" +
    "const cjs = createRequire(import.meta.url)('wsframe');" +
    "console.log(JSON.stringify({ esm: Object.keys(ns).filter((n) => n !== 'default' && n !== '__esModule').sort(), cjs: Object.keys(cjs).sort() }));";
  writeFileSync(join(dir, 'names.mjs'), script);
  const { stdout } = await run(process.execPath, [join(dir, 'names.mjs')], { cwd: dir, timeout: 60_000 });
  const { esm, cjs } = JSON.parse(stdout) as { esm: string[]; cjs: string[] };
  t.deepEqual(esm, cjs);
  t.true(cjs.length > 50, `${cjs.length} names`);
});
