// Compiles consumer projects with the checkout's TypeScript, in a process of its own (a compile takes seconds of CPU
// that would block a vitest worker's event loop). stdin: JSON [{ file, settings }] (settings in tsconfig's JSON form,
// plus strict, noEmit, no skipLibCheck, preserveSymlinks); stdout: JSON, one list of diagnostics per entry, each
// 'path/from/the/project(line) TS<code>: message'. Each compile runs as `tsc -p` in the project's folder would: that
// folder is the current directory (the default type roots are its node_modules/@types and those above it).
import path from 'node:path';
import ts from 'typescript';

const jobs = JSON.parse(await new Promise((resolve) => {
  let s = '';
  process.stdin.setEncoding('utf8').on('data', (d) => (s += d)).on('end', () => resolve(s));
}));
// Parsed files shared by the compilations (lib files, the package's .d.ts): each settings' program only checks.
const parsed = new Map();
const results = jobs.map(({ file, settings }) => {
  const dir = path.dirname(file);
  const { options, errors } = ts.convertCompilerOptionsFromJson({ ...settings, strict: true, noEmit: true, skipLibCheck: false, preserveSymlinks: true }, dir);
  if (errors.length) throw new Error(ts.flattenDiagnosticMessageText(errors[0].messageText, ' '));
  const host = ts.createCompilerHost(options);
  host.getCurrentDirectory = () => dir;
  const read = host.getSourceFile.bind(host);
  host.getSourceFile = (name, language, onError, create) => {
    const o = typeof language === 'object' ? language : { languageVersion: language };
    const key = `${name}|${o.languageVersion}|${o.impliedNodeFormat ?? ''}`;
    if (!parsed.has(key)) parsed.set(key, read(name, language, onError, create));
    return parsed.get(key);
  };
  const program = ts.createProgram({ rootNames: [file], options, host });
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const where = d.file ? `${path.relative(dir, d.file.fileName)}(${d.file.getLineAndCharacterOfPosition(d.start ?? 0).line + 1})` : '';
    return `${where} TS${d.code}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`;
  });
});
process.stdout.write(JSON.stringify(results));
