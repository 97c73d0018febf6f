/**
 * The rule index by source address gives the same first match as trying every rule in order,
 * for random rule sets mixing nested, overlapping and missing source prefixes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { validateConfig } from '../../src/control/config.js';
import { compileTables, intervalOf } from '../../src/control/tables.js';
import { SIGN_FLIP } from '../../src/core/prefix-set.js';

const octet = fc.integer({ min: 0, max: 255 });
const prefix = fc.tuple(octet, octet, octet, octet, fc.integer({ min: 0, max: 32 })).map(([a, b, c, d, len]) => `${a}.${b}.${c}.${d}/${len}`);
const rule = fc.option(fc.array(prefix, { minLength: 1, maxLength: 3 }), { nil: undefined });

test('first match through the source index equals a scan of every rule', () => {
  fc.assert(
    fc.property(fc.array(rule, { minLength: 8, maxLength: 60 }), fc.array(fc.tuple(octet, octet, octet, octet), { minLength: 1, maxLength: 50 }), (srcs, addrs) => {
      const r = validateConfig({
        rules: srcs.map((src, k) => ({ name: `r${k}`, match: { dstPort: 2055, ...(src ? { srcCidr: src } : {}) }, destination: 'd' })),
        destinations: { d: { backends: ['203.0.113.1:2055'] } },
      });
      assert.ok('config' in r);
      const t = compileTables(r.config);
      const c = t.rulesByDstPort.get(2055)!;
      assert.ok(c.sourceBounds, 'indexed');
      for (const [a, b, cc, d] of addrs) {
        const addr = ((a << 24) | (b << 16) | (cc << 8) | d) | 0;
        const scan = [...c.rules].find((k) => t.rules[k].src === null || t.rules[k].src!.has4(addr)) ?? -1;
        const list: Int32Array = c.bySource[intervalOf(c.sourceBounds!, addr ^ SIGN_FLIP)];
        const indexed: number = [...list].find((k) => t.rules[k].src === null || t.rules[k].src!.has4(addr)) ?? -1;
        assert.equal(indexed, scan, `${a}.${b}.${cc}.${d}`);
      }
    }),
    { numRuns: 200 },
  );
});

test('a thousand customer rules leave one or two candidates per address', () => {
  const rules = Array.from({ length: 1000 }, (_, k) => ({
    name: `c${k}`,
    match: { protocol: 'udp', srcCidr: `198.19.${(k * 16) >> 8}.${(k * 16) & 255}/28`, dstPort: 2055 },
    destination: 'd',
  }));
  const r = validateConfig({ rules, destinations: { d: { backends: ['203.0.113.1:2055'] } } });
  assert.ok('config' in r);
  const c = compileTables(r.config).rulesByDstPort.get(2055)!;
  const longest = Math.max(...c.bySource.map((l) => l.length));
  assert.ok(longest <= 1, `longest candidate list ${longest}`);
});
