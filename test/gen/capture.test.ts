import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeScenario } from '../../src/gen/capture.js';
import { DEFAULT_SCENARIO, generateScenario } from '../../src/gen/scenario.js';
import { CaptureReader, LinkType, createRecord } from '../../src/io/pcap/reader.js';

const dir = mkdtempSync(join(tmpdir(), 'mg-gen-capture-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('writeScenario: writes the generated frames as an Ethernet pcap', () => {
  const path = join(dir, 'a.pcap');
  const opts = { vni: 99, datagramsPerExporter: 3, seed: 5, exporters: undefined };
  const n = writeScenario(path, opts);
  const want = [...generateScenario({ ...DEFAULT_SCENARIO, vni: 99, datagramsPerExporter: 3, seed: 5 })];
  assert.equal(n, want.length);
  const reader = CaptureReader.open(path);
  const rec = createRecord();
  let i = 0;
  try {
    while (reader.next(rec)) {
      assert.equal(rec.linkType, LinkType.ETHERNET);
      assert.ok(rec.data.equals(want[i].frame), `record ${i}`);
      assert.equal(Math.floor(rec.timestampNs / 1000), Math.floor(want[i].timestampNs / 1000));
      i++;
    }
  } finally {
    reader.close();
  }
  assert.equal(i, n);
});
