// Builds the front end: node build.mjs [--out DIR]     (default ../src/socketcad/web/static)
//   DIR/app.js (+ app.js.map): src/main.js bundled and minified (ESM), DIR/index.html, DIR/app.css.
// node build.mjs --harness DIR: the test page instead (test-harness.html as DIR/index.html and
//   DIR/harness.js), for tests/test_web_viewer.py; never part of the shipped static/.
// Everything is written into a fresh folder beside DIR and swapped in by renames, so a failed or
// interrupted build never leaves a half-written DIR.
import { build } from 'esbuild';
import { chmod, copyFile, mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const harness = args[0] === '--harness';
if (harness && !args[1]) throw new Error('usage: node build.mjs --harness DIR');
const outIndex = args.indexOf('--out');
const out = resolve(harness ? args[1] : outIndex >= 0 ? args[outIndex + 1] : join(here, '../src/socketcad/web/static'));

await mkdir(dirname(out), { recursive: true });
const temp = await mkdtemp(join(dirname(out), `.${basename(out)}-build-`));
try {
  await chmod(temp, 0o755); // mkdtemp makes it private
  const entry = harness ? join(here, 'test-harness.js') : join(here, 'src/main.js');
  await build({
    entryPoints: [entry],
    outfile: join(temp, harness ? 'harness.js' : 'app.js'),
    bundle: true, minify: true, format: 'esm', target: 'es2020', sourcemap: !harness,
    legalComments: 'eof', logLevel: 'warning',
  });
  if (harness) {
    await copyFile(join(here, 'test-harness.html'), join(temp, 'index.html'));
  } else {
    await copyFile(join(here, 'src/index.html'), join(temp, 'index.html'));
    await copyFile(join(here, 'src/app.css'), join(temp, 'app.css'));
  }
  // Swap: the old folder aside, the new one in, the old one away.
  const old = `${temp}-old`;
  await rename(out, old).catch((e) => { if (e.code !== 'ENOENT') throw e; });
  await rename(temp, out);
  await rm(old, { recursive: true, force: true });
} catch (e) {
  await rm(temp, { recursive: true, force: true });
  throw e;
}
