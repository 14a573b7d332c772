// DESIGN.md §4: the pure core never touches I/O, and a file imports only its own layer or lower.
import test from 'ava';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const SRC = join(__dirname, '..', 'src');

// Layer of each top-level module; core files are layer 0.
const LAYER: Record<string, number> = {
  'async-socket': 1,
  diagnostics: 1,
  'zlib-jobs': 1,
  'send-watchdog': 1,
  'socket-options': 1,
  deflate: 1,
  connection: 2,
  recv: 3,
  send: 3,
  closing: 4,
  keepalive: 4,
  events: 4,
  client: 5,
  'client-http2': 5,
  'client-common': 5,
  'websocket-stream': 5,
  duplex: 5,
  server: 5,
  listener: 6,
  cli: 7,
  index: 9
};

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

test('top-level files import only their own layer or lower', (t) => {
  const files = readdirSync(SRC).filter((f) => f.endsWith('.ts'));
  for (const f of files) {
    const name = f.replace(/\.ts$/, '');
    const own = LAYER[name];
    t.not(own, undefined, `src/${f} has no layer in test/layering.test.ts`);
    for (const spec of importsOf(join(SRC, f))) {
      if (spec.startsWith('node:')) continue;
      t.true(spec.startsWith('./'), `src/${f} imports the package ${spec}: no runtime dependencies`);
      const target = spec.slice(2);
      if (target.startsWith('core/')) continue;
      const layer = LAYER[target];
      t.not(layer, undefined, `src/${f} imports unknown module ${spec}`);
      t.true(layer! <= own!, `src/${f} (layer ${own}) imports ${spec} (layer ${layer})`);
    }
  }
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
  t.true(edges.has('core/state') && edges.has('core/receive-queue') && edges.has('connection'));
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
