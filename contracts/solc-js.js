#!/usr/bin/env node
// The "solc" forge runs: solc-js (npm "solc", wasm) behind solc's command line, so builds work offline.
// forge calls `solc --version` and `solc [--allow-paths ..] [--base-path ..] --standard-json` (JSON on stdin).
'use strict';
const fs = require('fs');
const path = require('path');
const solc = require(path.join(__dirname, '..', 'node_modules', 'solc'));

if (process.argv.includes('--version')) {
  process.stdout.write('solc, the solidity compiler commandline interface\nVersion: ' + solc.version() + '\n');
  process.exit(0);
}

// forge normally passes every source inline; files it leaves out (paths outside the project, such as
// ../node_modules) are read from disk relative to the base and include paths, as native solc would.
const roots = [process.cwd()];
for (let i = 0; i < process.argv.length - 1; i++) {
  if (process.argv[i] === '--base-path' || process.argv[i] === '--include-path') roots.push(process.argv[i + 1]);
}
function readImport(p) {
  for (const r of roots) {
    try {
      return { contents: fs.readFileSync(path.resolve(r, p), 'utf8') };
    } catch (e) { /* try the next root */ }
  }
  return { error: 'not found: ' + p };
}

// forge hands us a non-blocking pipe: a synchronous read of fd 0 can fail with EAGAIN, so read it as a stream.
const chunks = [];
process.stdin.on('data', (c) => chunks.push(c));
process.stdin.on('end', () => {
  const input = Buffer.concat(chunks).toString('utf8');
  process.stdout.write(solc.compile(input, { import: readImport }));
});
