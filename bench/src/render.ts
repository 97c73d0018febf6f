/**
 * Re-renders a results file: recomputes the summary with the current rules and rewrites the
 * Markdown beside it. `node bench/build/bench/src/render.js [bench/results/latest.json]`
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderMarkdown, summarize, type Results } from './report.js';

const file = resolve(process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '../../../results/latest.json'));
const r = JSON.parse(readFileSync(file, 'utf8')) as Results;
r.summary = summarize(r.systems, r.settings.ladder);
writeFileSync(file, `${JSON.stringify(r, null, 2)}\n`);
const md = renderMarkdown(r);
writeFileSync(file.replace(/\.json$/, '.md'), md);
process.stdout.write(md);
