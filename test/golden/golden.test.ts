/**
 * Golden tests against implementations we did not write: scapy builds the mirrored captures and the
 * expected outputs (test/golden/build_inputs.py, the case table), `mirrorgate replay` runs each case,
 * then scapy (field and checksum recomputation, reassembly, byte comparison) and tshark (expert info,
 * checksum status, reassembly) read what mirrorgate would have transmitted.
 *
 * Needs the Debian packages python3-scapy (used through /usr/bin/python3) and tshark: when either is
 * missing the suite fails and says which package to install; it never skips.
 *
 * MG_GOLDEN_KEEP=1 keeps the work directory (inputs, configs, outputs, verdicts) and prints its path.
 */
import { after, before, describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Accounting } from '../../src/pipeline/accounting.js';

/** build/test/golden → the package root. */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const PYTHON = '/usr/bin/python3'; // Debian's interpreter, the one python3-scapy installs into
const SCRIPT = join(ROOT, 'test', 'golden', 'build_inputs.py');
const CLI = join(ROOT, 'build', 'src', 'cli.js');
const PARALLEL = 4;

/** Wireshark expert severities (epan/proto.h). */
const PI_WARN = 0x00600000;

interface Expect {
  forwarded: number;
  tx: number;
  drops: Record<string, number> | null;
  dropsTotal: number | null;
  reassembly: { merged: number; reassembled: number; waiting: number } | null;
  keepZero: boolean;
}

interface Case {
  name: string;
  description: string;
  input: string;
  config: string;
  output: string;
  packets: number;
  expect: Expect;
}

/** `replay --json`: the accounting, plus what the capture held. */
interface ReplayJson extends Accounting {
  records: number;
  skipped: number;
  reasons: Record<string, string>;
}

interface Verdict {
  errors: string[];
  records: number;
  datagrams?: number;
  tuples?: string[];
  reassembled4?: number[];
  reassembled6?: number[];
}

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface Outcome {
  replay?: Ran;
  json?: ReplayJson;
  jsonError?: string;
  verdict?: Verdict;
  /** One tshark pass: `-T fields` rows, then the `-z expert,warn` summary. */
  tshark?: Ran;
}

function run(cmd: string, args: string[], cwd?: string): Promise<Ran> {
  return new Promise((done) => {
    execFile(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      done({ code, stdout, stderr: err && code === null ? `${stderr}\n${String(err)}` : stderr });
    });
  });
}

async function pool<T>(items: readonly T[], width: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(width, items.length) }, async () => {
    while (next < items.length) await work(items[next++]);
  });
  await Promise.all(lanes);
}

/** The tools this suite stands on, each named by the Debian package that provides it. */
function missingPrerequisites(): string[] {
  const problems: string[] = [];
  const py = spawnSync(PYTHON, ['-c', 'import scapy.all, scapy.contrib.geneve, scapy.layers.netflow'], { encoding: 'utf8' });
  if (py.error || py.status !== 0) {
    problems.push(
      `scapy is not usable from ${PYTHON} (${py.error ? py.error.message : py.stderr.trim().split('\n').pop()}): ` +
        'install the Debian package python3-scapy (apt-get install python3-scapy)',
    );
  }
  const ts = spawnSync('tshark', ['-v'], { encoding: 'utf8' });
  if (ts.error || ts.status !== 0) {
    problems.push(`tshark is not runnable (${ts.error ? ts.error.message : `exit ${ts.status}`}): install the Debian package tshark (apt-get install tshark)`);
  }
  if (!existsSync(CLI)) problems.push(`${CLI} is missing: build first (npx tsc -p tsconfig.test.json)`);
  return problems;
}

const TSHARK_PREFS = ['-o', 'ip.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE', '-o', 'tcp.check_checksum:TRUE', '-o', 'ip.defragment:TRUE', '-o', 'ipv6.defragment:TRUE'];
const TSHARK_FIELDS = [
  'frame.number',
  'ip.version',
  'ip.src',
  'ipv6.src',
  'ip.dst',
  'ipv6.dst',
  'udp.srcport',
  'udp.dstport',
  'tcp.srcport',
  'tcp.dstport',
  'ip.checksum.status',
  'udp.checksum.status',
  'tcp.checksum.status',
  'icmp.checksum.status',
  '_ws.malformed',
  '_ws.expert.severity',
  'ip.reassembled.length',
  'ipv6.reassembled.length',
  'ip.flags.df',
] as const;
type Field = (typeof TSHARK_FIELDS)[number];

/** Checks what tshark says about one case's output; returns the problems found. */
function tsharkProblems(c: Case, o: Outcome): string[] {
  const problems: string[] = [];
  const { tshark, verdict } = o;
  if (verdict && verdict.records === 0) return problems; // nothing transmitted: scapy has read the empty file
  if (!tshark || tshark.code !== 0) {
    problems.push(`tshark failed: exit ${tshark?.code}: ${tshark?.stderr.trim()}`);
    return problems;
  }
  const lines = tshark.stdout.split('\n');
  const summaryAt = lines.findIndex((l) => /^(Errors|Warns) \(\d+\)/.test(l));
  if (summaryAt >= 0) problems.push(`tshark -z expert,warn reports:\n${lines.slice(summaryAt).join('\n').trim()}`);
  const rows = lines
    .slice(0, summaryAt >= 0 ? summaryAt : lines.length)
    .filter((l) => /^\d+\t/.test(l))
    .map((l) => {
      const cols = l.split('\t');
      return Object.fromEntries(TSHARK_FIELDS.map((f, k) => [f, cols[k] ?? ''])) as Record<Field, string>;
    });
  if (verdict && rows.length !== verdict.records) problems.push(`tshark reads ${rows.length} frames, scapy ${verdict.records} records`);
  const tuples: string[] = [];
  const re4: number[] = [];
  const re6: number[] = [];
  for (const r of rows) {
    const at = `tshark frame ${r['frame.number']}`;
    if (r['_ws.malformed']) problems.push(`${at}: malformed (${r['_ws.malformed']})`);
    const worst = Math.max(0, ...r['_ws.expert.severity'].split(',').filter(Boolean).map(Number));
    if (worst >= PI_WARN) problems.push(`${at}: expert severity ${worst.toString(16)}`);
    if (r['ip.version'] === '4') {
      if (r['ip.checksum.status'] !== '1') problems.push(`${at}: IPv4 header checksum status ${r['ip.checksum.status']} (1 = good)`);
      if (r['ip.flags.df'] !== '0' && r['ip.flags.df'] !== 'False') problems.push(`${at}: DF ${r['ip.flags.df']}`);
    }
    const udp = r['udp.checksum.status'];
    if (udp && udp !== '1' && !(udp === '3' && c.expect.keepZero && r['ip.version'] === '4')) {
      problems.push(`${at}: UDP checksum status ${udp} (1 = good${c.expect.keepZero ? ', 3 = none' : ''})`);
    }
    if (r['tcp.checksum.status'] && r['tcp.checksum.status'] !== '1') problems.push(`${at}: TCP checksum status ${r['tcp.checksum.status']}`);
    if (r['icmp.checksum.status'] && r['icmp.checksum.status'] !== '1') problems.push(`${at}: ICMP checksum status ${r['icmp.checksum.status']}`);
    const src = r['ip.src'] || r['ipv6.src'];
    const dst = r['ip.dst'] || r['ipv6.dst'];
    if (r['udp.srcport']) tuples.push(`udp ${src} ${r['udp.srcport']} ${dst} ${r['udp.dstport']}`);
    if (r['tcp.srcport']) tuples.push(`tcp ${src} ${r['tcp.srcport']} ${dst} ${r['tcp.dstport']}`);
    if (r['ip.reassembled.length']) re4.push(Number(r['ip.reassembled.length']));
    if (r['ipv6.reassembled.length']) re6.push(Number(r['ipv6.reassembled.length']));
  }
  if (verdict?.tuples) {
    const seen = tuples.sort();
    if (JSON.stringify(seen) !== JSON.stringify(verdict.tuples)) {
      problems.push(`tshark sees L4 tuples ${JSON.stringify(seen)}, scapy ${JSON.stringify(verdict.tuples)}`);
    }
  }
  const num = (a: number[]) => [...a].sort((x, y) => x - y);
  if (verdict?.reassembled4 && JSON.stringify(num(re4)) !== JSON.stringify(num(verdict.reassembled4))) {
    problems.push(`tshark reassembled IPv4 datagrams of ${JSON.stringify(num(re4))} bytes, scapy ${JSON.stringify(verdict.reassembled4)}`);
  }
  if (verdict?.reassembled6 && JSON.stringify(num(re6)) !== JSON.stringify(num(verdict.reassembled6))) {
    problems.push(`tshark reassembled IPv6 datagrams of ${JSON.stringify(num(re6))} bytes, scapy ${JSON.stringify(verdict.reassembled6)}`);
  }
  return problems;
}

/** The accounting checks: exact per-reason drops, forwarded, tx, reassembly, and the invariant recomputed here. */
function accountingProblems(c: Case, j: ReplayJson): string[] {
  const problems: string[] = [];
  const e = c.expect;
  const dropped = Object.values(j.drops).reduce((s, v) => s + v, 0);
  const explain = (d: Record<string, number>) =>
    JSON.stringify(Object.fromEntries(Object.entries(d).map(([k, v]) => [k, `${v}${j.reasons[k] ? ` (${j.reasons[k]})` : ''}`])));
  if (j.records !== c.packets || j.skipped !== 0) problems.push(`records ${j.records} (skipped ${j.skipped}), capture holds ${c.packets}`);
  if (j.rx !== c.packets) problems.push(`rx ${j.rx}, capture holds ${c.packets}`);
  if (j.balanced !== true) problems.push('balanced is not true');
  const sum = j.forwarded + dropped + j.reassembly.merged + j.reassembly.waiting;
  if (j.rx !== sum) problems.push(`rx ${j.rx} != forwarded ${j.forwarded} + drops ${dropped} + merged ${j.reassembly.merged} + waiting ${j.reassembly.waiting}`);
  if (e.drops !== null) {
    const want = JSON.stringify(Object.entries(e.drops).sort());
    const got = JSON.stringify(Object.entries(j.drops).sort());
    if (want !== got) problems.push(`drops ${explain(j.drops)}, expected ${JSON.stringify(e.drops)}`);
  }
  if (e.dropsTotal !== null && dropped !== e.dropsTotal) problems.push(`${dropped} dropped, expected ${e.dropsTotal}: ${explain(j.drops)}`);
  if (j.forwarded !== e.forwarded) problems.push(`forwarded ${j.forwarded}, expected ${e.forwarded}`);
  if (j.tx !== e.tx) problems.push(`tx ${j.tx}, expected ${e.tx}`);
  if (j.txErrors !== 0) problems.push(`txErrors ${j.txErrors}`);
  if (Object.keys(j.copyDrops).length) problems.push(`copyDrops ${explain(j.copyDrops)}`);
  if (e.reassembly) {
    for (const k of ['merged', 'reassembled', 'waiting'] as const) {
      if (j.reassembly[k] !== e.reassembly[k]) problems.push(`reassembly.${k} ${j.reassembly[k]}, expected ${e.reassembly[k]}`);
    }
  }
  return problems;
}

const missing = missingPrerequisites();
if (missing.length > 0) {
  test('golden: prerequisites (scapy, tshark, build)', () => {
    assert.fail(missing.join('\n'));
  });
} else {
  const dir = mkdtempSync(join(tmpdir(), 'mg-golden-'));
  const built = spawnSync(PYTHON, [SCRIPT, 'build', dir], { encoding: 'utf8' });
  let manifest: Case[] = [];
  if (built.status === 0) manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Case[];

  describe('golden replay (scapy-built inputs, scapy + tshark checked outputs)', () => {
    const outcomes = new Map<string, Outcome>(manifest.map((c) => [c.name, {}]));
    let verifyFailure = '';

    before(
      async () => {
        await pool(manifest, PARALLEL, async (c) => {
          const o = outcomes.get(c.name)!;
          o.replay = await run(process.execPath, [CLI, 'replay', '-c', c.config, c.input, '-o', c.output, '--json'], dir);
          if (o.replay.code === 0) {
            try {
              o.json = JSON.parse(o.replay.stdout) as ReplayJson;
            } catch (err) {
              o.jsonError = `stdout is not one JSON object (${(err as Error).message}): ${o.replay.stdout.slice(0, 500)}`;
            }
          }
        });
        const v = await run(PYTHON, [SCRIPT, 'verify', dir]);
        if (v.code !== 0) verifyFailure = `build_inputs.py verify: exit ${v.code}: ${v.stderr.trim()}`;
        else {
          const verdicts = JSON.parse(v.stdout) as Record<string, Verdict>;
          for (const [name, verdict] of Object.entries(verdicts)) {
            const o = outcomes.get(name);
            if (o) o.verdict = verdict;
          }
        }
        await pool(manifest, PARALLEL, async (c) => {
          const o = outcomes.get(c.name)!;
          if (!existsSync(join(dir, c.output)) || o.verdict?.records === 0) return;
          o.tshark = await run('tshark', [
            '-r',
            join(dir, c.output),
            ...TSHARK_PREFS,
            '-T',
            'fields',
            '-E',
            'separator=/t',
            '-E',
            'occurrence=a',
            '-E',
            'aggregator=,',
            ...TSHARK_FIELDS.flatMap((f) => ['-e', f]),
            '-z',
            'expert,warn',
          ]);
        });
      },
      { timeout: 180_000 },
    );

    after(() => {
      if (process.env.MG_GOLDEN_KEEP) process.stderr.write(`golden: work directory kept at ${dir}\n`);
      else rmSync(dir, { recursive: true, force: true });
    });

    it('builds the inputs with scapy', () => {
      assert.equal(built.status, 0, `build_inputs.py build failed (exit ${built.status}):\n${built.stderr}`);
      assert.ok(manifest.length >= 40, `only ${manifest.length} cases in the manifest`);
    });

    for (const c of manifest) {
      it(`${c.name}: ${c.description}`, () => {
        const o = outcomes.get(c.name)!;
        const r = o.replay;
        assert.ok(r, 'replay did not run');
        assert.equal(r.code, 0, `mirrorgate replay exited ${r.code}:\n${r.stderr}`);
        assert.ok(o.json, o.jsonError ?? 'no JSON');
        const problems = accountingProblems(c, o.json);
        if (verifyFailure) problems.push(verifyFailure);
        else if (!o.verdict) problems.push('scapy verifier produced no verdict for this case');
        else {
          if (o.verdict.records !== o.json.tx) problems.push(`OUT.pcap holds ${o.verdict.records} records, JSON tx is ${o.json.tx}`);
          problems.push(...o.verdict.errors.map((e) => `scapy: ${e}`));
        }
        problems.push(...tsharkProblems(c, o));
        if (problems.length > 0) assert.fail(`${c.name} (${c.description}):\n- ${problems.join('\n- ')}`);
      });
    }
  });
}
