// Every `@example` in the API's JSDoc (what TypeDoc and an editor's hover show) type-checks
// against src/, as README's blocks do (test/readme.test.ts): fragments inside an async
// function with wsframe's exports, the node: modules the examples name, and the context below.
import test from 'ava';
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Snippet, typecheckSnippets } from './helpers/typecheck-snippets';
import { ROOT } from './helpers/transpile';

const CONTEXT = `
declare const ws: import('wsframe').AsyncSocket;
declare const socket: import('node:net').Socket;
declare const req: import('node:http').IncomingMessage;
declare const server: import('node:http').Server;
declare const key: Buffer;
declare const cert: Buffer;
declare const results: Buffer[];
declare const file: import('node:fs').WriteStream;
declare function serve(ws: import('wsframe').AsyncSocket): Promise<void>;
declare function handle(m: import('wsframe').Message): void;
`;
const IMPORTS = [
  "import * as fs from 'node:fs';",
  "import * as http from 'node:http';",
  "import * as http2 from 'node:http2';",
  "import * as net from 'node:net';",
  "import { pipeline } from 'node:stream/promises';",
  ''
].join('\n');

/** Every ```ts block inside a JSDoc comment of src/, with its file and line. */
function examples(): Snippet[] {
  const found: Snippet[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts')) {
        const lines = readFileSync(path, 'utf8').split('\n');
        for (let i = 0; i < lines.length; i++) {
          if (lines[i]!.trim() !== '* ```ts') continue;
          const end = lines.findIndex((l, j) => j > i && l.trim() === '* ```');
          const code = lines.slice(i + 1, end).map((l) => l.replace(/^\s*\* ?/, '')).join('\n') + '\n';
          found.push({ file: relative(ROOT, path), line: i + 2, label: 'JSDoc example', code });
          i = end;
        }
      }
    }
  };
  walk(join(ROOT, 'src'));
  return found;
}

test('every JSDoc example type-checks', (t) => {
  t.timeout(120_000);
  const snippets = examples();
  t.true(snippets.length >= 20, `${snippets.length} examples found`);
  t.deepEqual(typecheckSnippets(snippets, CONTEXT, IMPORTS), []);
  t.log(`${snippets.length} examples checked`);
});
