/**
 * Type-checks code snippets from documentation (README's ```ts blocks, JSDoc `@example`s) as
 * a user's project would see them, with 'wsframe' pointed at this repository's src/. A snippet
 * with an `import` line is a whole CommonJS program; any other is a fragment, checked inside an
 * async function with every export of wsframe (and `extraImports`) in scope. Nothing is
 * written to disk: the compiler reads the snippets from memory.
 */
import { join } from 'node:path';
import * as wsframe from '../../src';
import { ROOT } from './transpile';

export interface Snippet {
  /** Where the snippet's first line is, for the error: a file and its line number. */
  file: string;
  line: number;
  /** Said after the place in an error, e.g. the heading it is under. */
  label: string;
  code: string;
}

export const isProgram = (code: string): boolean => /^import /m.test(code);

/**
 * @param context declarations the fragments may use (a .d.ts text)
 * @param extraImports import lines put above each fragment, beside wsframe's names
 * @returns one line per error, naming the snippet's file and line; empty when all compile
 */
export function typecheckSnippets(snippets: readonly Snippet[], context: string, extraImports = ''): string[] {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const ts = require('typescript') as typeof import('typescript');
  const dir = join(ROOT, '.doc-snippets'); // virtual: nothing is written there
  const names = Object.keys(wsframe).join(', ');
  const files = new Map<string, { snippet: Snippet; text: string; offset: number }>();
  files.set(join(dir, 'context.d.ts'), { snippet: { file: '', line: 0, label: '', code: '' }, text: context, offset: 0 });
  for (const [i, snippet] of snippets.entries()) {
    // A program is checked as the CommonJS module it is (a top-level await fails, as it would
    // for a user); a fragment goes into an async function with every export of wsframe in scope.
    const head = isProgram(snippet.code)
      ? ''
      : `import { ${names} } from 'wsframe';\n${extraImports}export async function fragment(): Promise<void> {\n`;
    const text = head + snippet.code + (head === '' ? '' : '}\n');
    files.set(join(dir, `snippet${i}.ts`), { snippet, text, offset: head.split('\n').length - 1 });
  }
  const config = ts.readConfigFile(join(ROOT, 'tsconfig.json'), (f) => ts.sys.readFile(f));
  const { options } = ts.parseJsonConfigFileContent(config.config, ts.sys, ROOT);
  Object.assign(options, { noEmit: true, baseUrl: ROOT, paths: { wsframe: ['src'] } });
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, version, ...rest) => {
    const file = files.get(name);
    return file ? ts.createSourceFile(name, file.text, version) : getSourceFile(name, version, ...rest);
  };
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => files.has(name) || fileExists(name);
  const readFile = host.readFile.bind(host);
  host.readFile = (name) => files.get(name)?.text ?? readFile(name);
  const program = ts.createProgram([...files.keys()], options, host);
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const file = d.file && files.get(d.file.fileName);
    const message = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    if (!file || d.start === undefined) return `${d.file?.fileName ?? ''}: ${message}`;
    const line = d.file!.getLineAndCharacterOfPosition(d.start).line - file.offset;
    return `${file.snippet.file}:${file.snippet.line + line} (${file.snippet.label}): TS${d.code} ${message}`;
  });
}
