/** The lab's pieces that need no root: names, the address plan, the flow capture, the config. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { validateConfig } from '../../src/control/config.js';
import { CaptureReader, createRecord } from '../../src/io/pcap/reader.js';
import { flowPlan, writeFlowCapture } from '../../src/lab/flows.js';
import { Lab } from '../../src/lab/lab.js';
import { checkPrefix, isLabNamespace, namespaceName } from '../../src/lab/plan.js';
import { countRecords } from '../../src/lab/peers.js';

describe('lab plan', () => {
  test('namespace names and what down() may remove', () => {
    assert.equal(namespaceName('mglab', 'exporter'), 'mglab-exp');
    assert.equal(namespaceName('mglab', 'collector2'), 'mglab-col2');
    assert.ok(isLabNamespace('mglab', 'mglab-gw'));
    assert.ok(isLabNamespace('mglab', 'mglab-col0'));
    // Another lab's, or someone else's, namespaces are never ours.
    assert.ok(!isLabNamespace('mglab', 'mglab2-gw'));
    assert.ok(!isLabNamespace('mglab', 'mglab-x-gw'));
    assert.ok(!isLabNamespace('mgbench', 'mgbench-gen'));
    assert.equal(checkPrefix('mglab'), null);
    assert.match(checkPrefix('bad prefix') ?? '', /expected a lab prefix/);
  });

  test('options are checked up front', () => {
    assert.throws(() => new Lab({ collectors: 4 }), /expected 1-3 collectors/);
    assert.throws(() => new Lab({ vni: 1 << 24 }), /expected a VNI/);
    assert.throws(() => new Lab({ mtu: 100 }), /expected an MTU/);
    const lab = new Lab({ prefix: 'mgplan', collectors: 3 });
    assert.equal(lab.collector(2), '198.18.22.10');
    assert.throws(() => lab.collector(3), /collector 3 does not exist/);
  });

  test('the generated gateway config is valid and names every collector', () => {
    const lab = new Lab({ prefix: 'mgplan', collectors: 3, vni: 77, mtu: 1400 });
    const doc = lab.gatewayConfig();
    const r = validateConfig(JSON.parse(JSON.stringify(doc)));
    assert.ok('config' in r, 'problems' in r ? r.problems.join('\n') : '');
    assert.deepEqual(doc.destinations.netflow.backends, ['198.18.20.10:2055', '198.18.21.10:2055', '198.18.22.10:2055']);
    assert.deepEqual(doc.destinations.ipfix.backends, ['198.18.20.10:4739', '198.18.21.10:4739', '198.18.22.10:4739']);
    assert.equal(doc.destinations.sflow.mtu, 1400);
    assert.deepEqual(doc.sessions, [{ vni: 77, name: 'lab-mgplan' }]);
  });

  test('the flow capture holds the planned number of distinct flows', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mglab-'));
    try {
      const file = join(dir, 'flows.pcap');
      const flows = writeFlowCapture(file, { flows: 40, packetsPerFlow: 3 });
      assert.deepEqual(flows, flowPlan({ flows: 40, packetsPerFlow: 3 }));
      assert.equal(new Set(flows.map((f) => `${f.protocol} ${f.src}:${f.srcPort} ${f.dst}:${f.dstPort}`)).size, 40);
      assert.equal(countRecords(file), 120);
      const reader = CaptureReader.open(file);
      const record = createRecord();
      let n = 0;
      try {
        while (reader.next(record)) n++;
      } finally {
        reader.close();
      }
      assert.equal(n, 120);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
