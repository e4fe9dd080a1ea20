#!/usr/bin/env node
/**
 * Serves the browser example on loopback: the page and its script from this folder, `tf.min.js` from the installed
 * `@tensorflow/tfjs` package (no CDN), `random.js` (lstmgen's seeded generator `mulberry32`, from the compiled
 * `dist/random.js`, so the page and the library share one), and a TF.js export's files under `/model/`.
 *
 *   lstmgen export --model m.lstm --format tfjs exported/
 *   node examples/browser/serve.mjs exported/ [--port 8080] [--host 127.0.0.1]
 *
 * then open the address it prints. `startServer()` is the same server for scripts and tests.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

/** The page's `random.js`: the source of lstmgen's `mulberry32` as a script that defines it globally. */
function randomScript() {
  let random;
  try {
    random = createRequire(import.meta.url)('../../dist/random.js');
  } catch (err) {
    throw new Error(`the example needs lstmgen's compiled dist/ (run npm run build): ${err.message}`);
  }
  return `// lstmgen's dist/random.js\n${random.mulberry32.toString()}\n`;
}
const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
};

/**
 * Start the example's server.
 * @param {{ modelDir: string, port?: number, host?: string }} options the export directory; port 0 (the default)
 *   takes a free one; host defaults to 127.0.0.1.
 * @returns {Promise<{ url: string, close: () => Promise<void> }>} the page's address and a function that stops it.
 */
export async function startServer({ modelDir, port = 0, host = '127.0.0.1' }) {
  const tfjs = createRequire(import.meta.url).resolve('@tensorflow/tfjs/dist/tf.min.js');
  const generated = new Map([['/random.js', randomScript()]]);
  const routes = new Map([
    ['/', path.join(here, 'index.html')],
    ['/index.html', path.join(here, 'index.html')],
    ['/sample.js', path.join(here, 'sample.js')],
    ['/tf.min.js', tfjs],
  ]);
  const server = http.createServer((req, res) => {
    const { pathname } = new URL(req.url ?? '/', 'http://localhost');
    const name = pathname.startsWith('/model/') ? pathname.slice('/model/'.length) : undefined;
    // only plain names inside the export directory: no '/', no '..'
    const file =
      name !== undefined
        ? /^[\w.-]+$/.test(name) && !name.startsWith('.')
          ? path.join(modelDir, name)
          : undefined
        : routes.get(pathname);
    if (req.method === 'GET' && generated.has(pathname)) {
      res.writeHead(200, { 'content-type': TYPES['.js'] }).end(generated.get(pathname));
      return;
    }
    if (req.method !== 'GET' || file === undefined) {
      res.writeHead(req.method === 'GET' ? 404 : 405).end();
      return;
    }
    fs.readFile(file, (err, data) => {
      if (err) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream' }).end(data);
    });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const { port: bound } = server.address();
  return {
    url: `http://${host}:${bound}/`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const args = process.argv.slice(2);
  const flag = (name, fallback) => {
    const i = args.indexOf(name);
    return i >= 0 ? args.splice(i, 2)[1] : fallback;
  };
  const port = Number(flag('--port', '8080'));
  const host = flag('--host', '127.0.0.1');
  const [modelDir] = args;
  if (!modelDir || !fs.existsSync(path.join(modelDir, 'model.json'))) {
    console.error(
      'usage: node examples/browser/serve.mjs EXPORT_DIR [--port N] [--host H]  (EXPORT_DIR holds model.json)',
    );
    process.exit(2);
  }
  const { url } = await startServer({ modelDir, port, host });
  console.log(`serving ${modelDir} at ${url}`);
}
