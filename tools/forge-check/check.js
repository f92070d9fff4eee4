// Validates a Forge manifest.yml with @forge/manifest's full validation (schema, modules, scopes,
// resources, remotes) and prints each problem as FILE:LINE:COLUMN: LEVEL: MESSAGE.
// Exit status: 0 valid, 1 invalid, 2 usage. Warnings are printed and do not fail.
// @forge/manifest requires tslib without declaring it, so package.json names it too.
'use strict';
const path = require('node:path');
const { validate } = require('@forge/manifest');

async function main() {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: node check.js path/to/manifest.yml');
    return 2;
  }
  const manifest = path.resolve(file);
  // Resource paths in the manifest are relative to its folder, as the forge CLI runs there.
  process.chdir(path.dirname(manifest));
  const result = await validate(false, manifest);
  for (const problem of result.errors ?? []) {
    const where = problem.line ? `${file}:${problem.line}:${problem.column ?? 0}` : file;
    console.log(`${where}: ${problem.level}: ${problem.message}`);
  }
  const errors = (result.errors ?? []).filter((problem) => problem.level === 'error');
  if (!result.success || errors.length) {
    console.log(`${file}: invalid Forge manifest`);
    return 1;
  }
  console.log(`${file}: valid Forge manifest`);
  return 0;
}

main().then((status) => { process.exitCode = status; }, (error) => {
  console.error(error);
  process.exitCode = 1;
});
