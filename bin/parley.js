#!/usr/bin/env node
// The parley command. Node >= 24 runs the TypeScript sources directly.
const [major] = process.versions.node.split('.').map(Number);
if (major < 24) {
  process.stderr.write(`parley needs Node.js 24 or newer (this is ${process.version})\n`);
  process.exit(1);
}
const { main } = await import('../src/cli/main.ts');
main(process.argv.slice(2)).then(
  (code) => { if (code !== 0) process.exitCode = code; },
  (err) => {
    process.stderr.write(`${err?.stack ?? err}\n`);
    process.exitCode = 1;
  },
);
