// Bundles src/ into build/, the folder manifest.yml serves as the pages' Custom UI resource:
// @forge/bridge is an npm package, so the page's script must be bundled (Forge docs, "Forge bridge APIs").
import { build } from 'esbuild';
import { copyFile, mkdir, rm } from 'node:fs/promises';

await rm('build', { recursive: true, force: true });
await mkdir('build');
await build({
  entryPoints: ['src/main.js'],
  bundle: true,
  minify: true,
  format: 'iife',
  target: 'es2020',
  outfile: 'build/main.js',
});
await copyFile('src/index.html', 'build/index.html');
await copyFile('src/style.css', 'build/style.css');
