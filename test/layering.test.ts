// ARCHITECTURE.md (and ../shared/DESIGN.md §4): the pure core never touches I/O, and a file
// imports only its own layer or lower; the layers are the folders of src/.
import test from 'ava';
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative, sep } from 'node:path';

const SRC = join(__dirname, '..', 'src');

// The layers, in import order (ARCHITECTURE.md): each is a folder of src/, and a file imports
// only its own folder or a lower one. index.ts and cli.ts sit on top.
const LAYERS = ['core', 'compression', 'transport', 'connection', 'handshake', 'adapters', 'server', ''] as const;

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const found: string[] = [];
  for (const m of text.matchAll(/(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]|require\(\s*['"]([^'"]+)['"]\s*\)/g)) {
    found.push((m[1] ?? m[2])!);
  }
  return found;
}

test('core files import only node:crypto, node:buffer and other core files', (t) => {
  const files = readdirSync(join(SRC, 'core')).filter((f) => f.endsWith('.ts'));
  t.true(files.length >= 7);
  for (const f of files) {
    for (const spec of importsOf(join(SRC, 'core', f))) {
      // One exception: mask.ts loads the optional native bufferutil when it is installed.
      const ok =
        spec === 'node:crypto' || spec === 'node:buffer' || /^\.\/[a-z0-9-]+$/.test(spec) || (f === 'mask.ts' && spec === 'bufferutil');
      t.true(ok, `src/core/${f} imports ${spec}`);
    }
    const text = readFileSync(join(SRC, 'core', f), 'utf8');
    t.false(/\bset(Timeout|Interval|Immediate)\s*\(/.test(text), `src/core/${f} uses timers`);
  }
});

test('every file of src/ is in a layer folder and imports only its own layer or lower', (t) => {
  const seen = new Set<string>();
  for (const folder of readdirSync(SRC, { withFileTypes: true })) {
    if (folder.isDirectory()) t.true((LAYERS as readonly string[]).includes(folder.name), `src/${folder.name}/ is no layer of ARCHITECTURE.md`);
  }
  for (const [rank, folder] of LAYERS.entries()) {
    const dir = join(SRC, folder);
    const files = readdirSync(dir, { withFileTypes: true }).filter((f) => f.isFile() && f.name.endsWith('.ts'));
    if (folder === '') t.deepEqual(files.map((f) => f.name).sort(), ['cli.ts', 'index.ts'], 'only index.ts and cli.ts sit on top');
    for (const f of files) {
      const where = join(folder, f.name);
      seen.add(where);
      for (const spec of importsOf(join(dir, f.name))) {
        if (spec.startsWith('node:') || (spec === 'bufferutil' && where === join('core', 'mask.ts'))) continue;
        t.true(spec.startsWith('.'), `src/${where} imports the package ${spec}: no runtime dependencies`);
        const target = relative(SRC, join(dir, spec)).split(sep);
        const targetFolder = target.length > 1 ? target[0]! : '';
        const targetRank = (LAYERS as readonly string[]).indexOf(targetFolder);
        t.not(targetRank, -1, `src/${where} imports ${spec}, outside the layers`);
        t.true(targetRank <= rank, `src/${where} (layer ${folder || 'top'}) imports ${spec} (layer ${targetFolder || 'top'})`);
      }
    }
  }
  const all = (readdirSync(SRC, { recursive: true }) as string[]).filter((f) => f.endsWith('.ts'));
  t.deepEqual([...seen].sort(), all.sort(), 'every .ts file of src/ is in a layer folder (none deeper)');
  t.log(`${seen.size} files in ${LAYERS.length - 1} folders and the top`);
});

test('package.json has no runtime dependencies', (t) => {
  const pkg = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as Record<string, unknown>;
  t.is(pkg.dependencies, undefined);
  // One optional peer: bufferutil, which src/core/mask.ts uses when it is installed.
  t.deepEqual(pkg.peerDependencies, { bufferutil: '^4.0.0' });
  t.deepEqual(pkg.peerDependenciesMeta, { bufferutil: { optional: true } });
});

test('no import circles among the files of src/', (t) => {
  // Every import, type-only ones included, as an edge between two files of src/.
  const edges = new Map<string, string[]>();
  const visit = (dir: string, prefix: string): void => {
    for (const f of readdirSync(dir, { withFileTypes: true })) {
      if (f.isDirectory()) visit(join(dir, f.name), `${prefix}${f.name}/`);
      else if (f.name.endsWith('.ts')) {
        const from = `${prefix}${f.name.replace(/\.ts$/, '')}`;
        const targets = importsOf(join(dir, f.name))
          .filter((spec) => spec.startsWith('./') || spec.startsWith('../'))
          .map((spec) => join(prefix, spec).replace(/\\/g, '/'));
        edges.set(from, targets);
      }
    }
  };
  visit(SRC, '');
  t.true(edges.has('core/state') && edges.has('core/receive-queue') && edges.has('connection/async-socket'));
  const done = new Set<string>();
  const onPath: string[] = [];
  const walk = (file: string): void => {
    const at = onPath.indexOf(file);
    t.is(at, -1, `import circle: ${[...onPath.slice(at), file].join(' -> ')}`);
    if (at !== -1 || done.has(file)) return;
    onPath.push(file);
    for (const next of edges.get(file) ?? []) walk(next);
    onPath.pop();
    done.add(file);
  };
  for (const file of edges.keys()) walk(file);
});

test('ARCHITECTURE.md names every layer folder and every file of src/', (t) => {
  const map = readFileSync(join(__dirname, '..', 'ARCHITECTURE.md'), 'utf8');
  for (const folder of LAYERS) if (folder !== '') t.true(map.includes(`\`${folder}/\``), `ARCHITECTURE.md does not name ${folder}/`);
  const files = (readdirSync(SRC, { recursive: true }) as string[]).filter((f) => f.endsWith('.ts'));
  for (const file of files) {
    const name = file.split(sep).pop()!;
    t.true(map.includes(`\`${name}\``) || map.includes(`\`${file}\``), `ARCHITECTURE.md does not name src/${file}`);
  }
});
