#!/usr/bin/env bash
# Copies the built addons into the per-platform npm packages under npm/ and stamps them with the main
# package's version, ready for `npm pack` / `npm publish`:
#   lstmgen.linux-x64-gnu.node       (npm run build:native)     -> npm/linux-x64-gnu/
#   lstmgen.linux-x64-gnu-cuda.node  (scripts/cuda/build.sh)    -> npm/linux-x64-gnu-cuda/  (skipped if not built)
# Also sets the main package's optionalDependencies to that version. Fails if the CPU addon is missing.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
node - <<'JS'
const fs = require('fs');
const path = require('path');
const main = JSON.parse(fs.readFileSync('package.json', 'utf8'));
const dirs = fs.readdirSync('npm').filter((d) => fs.existsSync(path.join('npm', d, 'package.json')));
let changed = false;
for (const dir of dirs) {
  const file = path.join('npm', dir, 'package.json');
  const pkg = JSON.parse(fs.readFileSync(file, 'utf8'));
  const node = `lstmgen.${dir}.node`;
  if (pkg.main !== node) throw new Error(`${file}: main must be ${node}`);
  if (pkg.version !== main.version) {
    pkg.version = main.version;
    fs.writeFileSync(file, JSON.stringify(pkg, null, 2) + '\n');
  }
  if (fs.existsSync(node)) {
    fs.copyFileSync(node, path.join('npm', dir, node));
    console.log(`npm/${dir}/${node} <- ${node} (${(fs.statSync(node).size / 2 ** 20).toFixed(1)} MiB)`);
  } else {
    fs.rmSync(path.join('npm', dir, node), { force: true });
    if (!dir.endsWith('-cuda')) throw new Error(`${node} is missing: run npm run build:native first`);
    console.log(`npm/${dir}: ${node} not built (scripts/cuda/build.sh); skipped`);
  }
  main.optionalDependencies ??= {};
  if (main.optionalDependencies[pkg.name] !== main.version) {
    main.optionalDependencies[pkg.name] = main.version;
    changed = true;
  }
}
if (changed) fs.writeFileSync('package.json', JSON.stringify(main, null, 2) + '\n');
JS
