// Validates ../docs/asyncapi.yaml (relative to this file) with @asyncapi/parser, offline.
// Prints every diagnostic; exits 1 if any has severity error (0) or a message example does not
// match its payload schema, 2 if the file cannot be read.
// Usage: cd tests && node check-asyncapi.mjs
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { Parser } from '@asyncapi/parser';

const here = path.dirname(fileURLToPath(import.meta.url));
const file = path.resolve(here, '../docs/asyncapi.yaml');
const names = ['error', 'warning', 'information', 'hint'];

let text;
try {
  text = await readFile(file, 'utf8');
} catch (e) {
  console.error(`cannot read ${file}: ${e.message}`);
  process.exit(2);
}

// Offline by construction: the parser's schemas are bundled (@asyncapi/specs), and only local
// references ($ref: '#/…') are allowed, so no resolver ever reaches for a file or the network.
const external = [...text.matchAll(/\$ref['"]?\s*:\s*['"]?([^'"\s#][^'"\s]*)/g)].map((m) => m[1]);
if (external.length > 0) {
  console.log(`error: only local $ref ('#/…') are allowed; found: ${external.join(', ')}`);
  process.exit(1);
}
const parser = new Parser();
const { document, diagnostics } = await parser.parse(text, {
  source: file,
  validateOptions: { allowedSeverity: { warning: true, info: true, hint: true } },
});

for (const d of diagnostics) {
  const where = d.range ? `${d.range.start.line + 1}:${d.range.start.character + 1}` : '-';
  const at = d.path && d.path.length ? ` at ${d.path.join('.')}` : '';
  console.log(`${names[d.severity] ?? d.severity} ${d.code} ${where}${at}: ${d.message}`);
}
const errors = diagnostics.filter((d) => d.severity === 0).length;
const others = diagnostics.length - errors;
if (errors > 0 || !document) {
  console.log(`${file}: ${errors} error(s), ${others} other diagnostic(s)${document ? '' : ', no document'}`);
  process.exit(1);
}
// Every message example must match its message's payload schema (the v3 ruleset does not
// check this). ajv and ajv-formats come with @asyncapi/parser; without them this is skipped.
let exampleErrors = 0;
let checked = 0;
try {
  const { default: Ajv } = await import('ajv');
  const { default: addFormats } = await import('ajv-formats');
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  for (const m of document.messages().all()) {
    const validate = ajv.compile(m.payload().json());
    for (const ex of m.examples().all()) {
      checked++;
      if (!validate(ex.payload())) {
        exampleErrors++;
        console.log(`error example ${m.id()}/${ex.name()}: ${ajv.errorsText(validate.errors)}`);
      }
    }
  }
} catch (e) {
  if (e && e.code === 'ERR_MODULE_NOT_FOUND') console.log('information: ajv not found, message examples not checked');
  else throw e;
}
if (exampleErrors > 0) {
  console.log(`${file}: ${exampleErrors} message example(s) do not match their payload schema`);
  process.exit(1);
}

const channels = document.channels().all().map((c) => c.address()).join(', ');
console.log(
  `${file}: valid AsyncAPI ${document.version()} (${document.messages().all().length} messages, ` +
    `channels ${channels}, ${checked} examples checked); ${others} non-error diagnostic(s)`,
);
