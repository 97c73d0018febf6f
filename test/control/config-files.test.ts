/**
 * Configuration from files: YAML syntax errors, the allowlist file formats, loadConfig end to end
 * and the shipped example.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadConfig, parseConfigText, readAllowlistFile, validateConfig } from '../../src/control/config.js';
import { ConfigError } from '../../src/control/errors.js';
import { formatPrefix } from '../../src/core/prefix-set.js';

const dir = mkdtempSync(join(tmpdir(), 'mg-config-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.equal(err.code, 'MG_ERR_CONFIG');
    return err;
  }
  assert.fail('expected a ConfigError');
}

describe('parseConfigText', () => {
  test('YAML syntax errors become a ConfigError with source:line', () => {
    const cases: [string, RegExp][] = [
      ['rules: [1, 2\n', /^cfg\.yaml:2: Flow sequence/], // reported where the input ends
      ['listen:\n  port: 4789\nlisten:\n  port: 4790\n', /^cfg\.yaml:3: Map keys must be unique/],
      ['rules:\n  - name: x\n   destination: y\n', /^cfg\.yaml:3: /],
      ['a: "unterminated\n', /^cfg\.yaml:\d: Missing closing "quote/],
      ['\tlisten: {}\n', /^cfg\.yaml:1: Tabs are not allowed/],
    ];
    for (const [text, line] of cases) {
      const err = configError(() => parseConfigText(text, 'cfg.yaml'));
      assert.equal(err.problems.length >= 1, true);
      assert.match(err.problems[0], line, JSON.stringify(text));
      assert.ok(!err.problems[0].includes('\n'), 'one line per problem');
      assert.match(err.message, /^cfg\.yaml: invalid configuration:\n {2}cfg\.yaml:/);
    }
  });

  test('YAML and JSON documents parse', () => {
    assert.deepEqual(parseConfigText('listen:\n  port: 4789\n', 'a.yaml'), { listen: { port: 4789 } });
    assert.deepEqual(parseConfigText('{"listen": {"port": 4789}}', 'a.json'), { listen: { port: 4789 } });
    assert.equal(parseConfigText('', 'empty.yaml'), null);
  });
});

describe('allowlist files', () => {
  const texts = (r: ReturnType<typeof readAllowlistFile>) => {
    assert.ok('prefixes' in r, `expected prefixes, got ${'error' in r ? r.error : ''}`);
    return r.prefixes.map(formatPrefix);
  };

  test('JSON: every address or CIDR string anywhere in a nested org structure counts', () => {
    const path = file(
      'orgs.json',
      JSON.stringify({
        orgs: [
          { name: 'edge', ips: ['198.18.0.0/24', ' 192.0.2.7 '], contact: 'noc@example.net' },
          { name: 'core', sites: [{ site: 'ams', ips: ['2001:db8:1::/48'] }, { site: 'fra', ips: [] }] },
        ],
        updated: '2024-01-01',
        count: 3,
      }),
    );
    assert.deepEqual(texts(readAllowlistFile(path)), ['198.18.0.0/24', '192.0.2.7/32', '2001:db8:1::/48']);
    assert.deepEqual(texts(readAllowlistFile(file('list.json', '["10.0.0.0/8", "::1"]'))), ['10.0.0.0/8', '::1/128']);
  });

  test('text: one per line, # comments, blank lines, surrounding spaces', () => {
    const path = file('exporters.txt', '# exporters\n198.18.0.0/24\n\n  192.0.2.7   # edge router\n2001:db8::/32\r\n# end\n');
    assert.deepEqual(texts(readAllowlistFile(path)), ['198.18.0.0/24', '192.0.2.7/32', '2001:db8::/32']);
  });

  test('text: bad lines are reported by line number, at most five listed', () => {
    const path = file('bad.txt', '10.0.0.0/8\nnot-an-address\n10.0.0.0/99\n');
    assert.deepEqual(readAllowlistFile(path), {
      error: `${path}: line 2: expected an IPv4/IPv6 address or CIDR, got "not-an-address"; line 3: expected a prefix length 0-32, got "10.0.0.0/99"`,
    });
    const many = file('many.txt', Array.from({ length: 8 }, (_, k) => `bad${k}`).join('\n'));
    const r = readAllowlistFile(many);
    assert.ok('error' in r);
    assert.match(r.error, /line 5: .*"bad4" \(\+3 more\)$/);
    assert.ok(!r.error.includes('bad5'));
  });

  test('missing, unparsable and empty files', () => {
    const missing = join(dir, 'missing.txt');
    assert.deepEqual(readAllowlistFile(missing), { error: `cannot read ${missing}: ENOENT` });
    const broken = file('broken.json', '{"orgs": [');
    const r = readAllowlistFile(broken);
    assert.ok('error' in r);
    assert.match(r.error, new RegExp(`^${broken.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: not valid JSON \\(`));
    const empty = file('empty.txt', '# nothing yet\n\n');
    assert.deepEqual(readAllowlistFile(empty), { error: `${empty}: no addresses or CIDRs found` });
    const noIps = file('noips.json', '{"orgs": [{"name": "x"}]}');
    assert.deepEqual(readAllowlistFile(noIps), { error: `${noIps}: no addresses or CIDRs found` });
  });

  test('validateConfig reads the allowlist file relative to the config directory', () => {
    file('allow.txt', '198.18.0.0/24\n192.0.2.0/24\n');
    const r = validateConfig({ allowlist: { file: 'allow.txt' } }, dir);
    assert.ok('config' in r);
    assert.deepEqual(r.config.allowlist?.map(formatPrefix), ['198.18.0.0/24', '192.0.2.0/24']);
    assert.equal(r.config.allowlistSource, `${join(dir, 'allow.txt')} (2 entries)`);
    const inline = validateConfig({ allowlist: ['198.18.0.0/24'] });
    assert.ok('config' in inline);
    assert.equal(inline.config.allowlistSource, 'inline (1 entries)');
  });

  test('a bad allowlist file is a problem of allowlist.file', () => {
    file('bad-allow.txt', 'nope\n');
    assert.deepEqual(validateConfig({ allowlist: { file: 'bad-allow.txt' } }, dir), {
      problems: [`allowlist.file: ${join(dir, 'bad-allow.txt')}: line 1: expected an IPv4/IPv6 address or CIDR, got "nope"`],
    });
    assert.deepEqual(validateConfig({ allowlist: { file: 'absent.txt' } }, dir), {
      problems: [`allowlist.file: cannot read ${join(dir, 'absent.txt')}: ENOENT`],
    });
  });
});

describe('loadConfig', () => {
  test('examples/demo.yaml loads, with defaults filled in', () => {
    const c = loadConfig(resolve('examples/demo.yaml'));
    assert.equal(c.listen.port, 4789);
    assert.equal(c.listen.genevePort, 6081);
    assert.equal(c.listen.address, '0.0.0.0');
    assert.deepEqual(c.listen.sources.map(formatPrefix), ['198.18.0.0/15']);
    assert.deepEqual(c.sessions, [{ vni: 123, name: 'prod' }]);
    assert.deepEqual(c.allowlist?.map(formatPrefix), ['198.18.0.0/24']);
    assert.deepEqual(
      c.rules.map((r) => [r.name, r.match.protocol, r.match.dstPort, r.destination]),
      [
        ['netflow', 17, [[2055, 2055], [9995, 9995]], 'netflow'],
        ['ipfix', 17, [[4739, 4739]], 'ipfix'],
        ['sflow', 17, [[6343, 6343]], 'sflow'],
      ],
    );
    for (const name of ['netflow', 'ipfix', 'sflow']) {
      const d = c.destinations[name];
      assert.equal(d.mtu, 1500);
      assert.equal(d.balance, 'hash');
      assert.equal(d.df, 'clear');
      assert.equal(d.backends[0].address, '203.0.113.10');
    }
    assert.deepEqual(c.reassembly, { maxDatagrams: 256, timeoutMs: 3000 });
    assert.deepEqual(c.control.listen, { host: '127.0.0.1', port: 9090 });
    assert.equal(c.workers, 'auto');
  });

  test('every problem of a file in one ConfigError, prefixed with the file name', () => {
    const path = file('bad.yaml', 'listen: { port: 0 }\nrules:\n  - { name: a, destination: d, match: { dstPort: [70000] } }\ndestinations:\n  d: { backends: [] }\n');
    const err = configError(() => loadConfig(path));
    assert.deepEqual(err.problems, [
      'listen.port: expected a port 1-65535, got 0',
      'rules[0].match.dstPort[0]: expected a port 1-65535, got 70000',
      'destinations.d.backends: expected at least one backend',
    ]);
    assert.ok(err.message.startsWith(`${path}: invalid configuration:\n  listen.port:`));
  });

  test('a YAML syntax error and a missing file are ConfigErrors too', () => {
    const path = file('syntax.yaml', 'listen:\n  port: [4789\n');
    const err = configError(() => loadConfig(path));
    assert.match(err.problems[0], new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:\\d+: `));
    const missing = join(dir, 'nope.yaml');
    assert.deepEqual(configError(() => loadConfig(missing)).problems, [`cannot read ${missing}: ENOENT`]);
  });

  test('the allowlist file is found next to the config file, wherever the process runs', () => {
    file('site-allow.txt', '198.18.0.0/24\n');
    const path = file('site.yaml', 'allowlist: { file: site-allow.txt }\n');
    const c = loadConfig(path);
    assert.deepEqual(c.allowlist?.map(formatPrefix), ['198.18.0.0/24']);
  });
});
