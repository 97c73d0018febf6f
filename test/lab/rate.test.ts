/**
 * Measures the highest rate at which the lab loses nothing and prints the table. No assertion on
 * the figure (it depends on the host); only that the probe accounts for what it sent.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { formatRateTable, rateLadder } from '../../src/lab/rate.js';
import { reapStaleTestLabs, requireTools, skipLab, testLab } from './helpers.js';

const LADDER = [5_000, 10_000, 20_000, 40_000, 80_000];

describe('lab: rate probe', { skip: skipLab, timeout: 120_000 }, () => {
  const lab = testLab('rate');

  before(async () => {
    requireTools('ip', 'tc', 'ss', 'ethtool');
    await reapStaleTestLabs();
    await lab.up();
    await lab.startGateway();
  });

  after(async () => {
    await lab.down();
  });

  test(`highest lossless rate, ladder ${LADDER.join(', ')} datagrams/s, 3 s each`, async () => {
    const r = await rateLadder(lab, { rates: LADDER, seconds: 3, all: true });
    console.log(`\nmirrorgate lab rate probe (1464-byte NetFlow datagrams, ${(await lab.status()).workers} workers):\n${formatRateTable(r)}\n`);
    assert.equal(r.steps.length, LADDER.length);
    for (const s of r.steps) {
      assert.ok(s.offered > 0);
      assert.ok(s.delivered <= s.offered, 'nothing delivered that was not sent');
      assert.equal(s.duplicates, 0);
    }
    const s = await lab.status();
    assert.equal(s.accounting.balanced, true);
  });
});
