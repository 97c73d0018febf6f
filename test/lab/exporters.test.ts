/**
 * Real exporters through the mirror: softflowd (NetFlow v9 and IPFIX) and nfreplay send to the
 * monitored host, the kernel mirrors into VXLAN, mirrorgate delivers to nfcapd. The collector
 * must log each flow under the exporter's own address, and tcpdump on both ends must show the
 * exporter's source address and ephemeral port kept and only the destination rewritten.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { writeFlowCapture } from '../../src/lab/flows.js';
import { TelemetryPort } from '../../src/lab/plan.js';
import { nfreplayCheck, softflowdCheck, type ExportCheck } from '../../src/lab/scenario.js';
import { reapStaleTestLabs, requireTools, skipLab, testLab } from './helpers.js';

const FLOWS = 150;

describe('lab: real exporters through the kernel mirror', { skip: skipLab, timeout: 120_000 }, () => {
  const lab = testLab('exp');
  let capture = '';
  let distinctFlows = 0;
  let netflow9: ExportCheck | undefined;

  before(async () => {
    requireTools('ip', 'tc', 'ss', 'ethtool', 'tcpdump', 'tshark', 'softflowd', 'nfcapd', 'nfdump', 'nfreplay');
    await reapStaleTestLabs();
    await lab.up();
    await lab.startGateway();
    capture = lab.file('flows.pcap');
    const flows = writeFlowCapture(capture, { flows: FLOWS, packetsPerFlow: 3 });
    distinctFlows = new Set(flows.map((f) => `${f.protocol} ${f.src}:${f.srcPort} ${f.dst}:${f.dstPort}`)).size;
  });

  after(async () => {
    await lab.down();
  });

  /** The assertions every export shares. */
  function assertDelivered(c: ExportCheck, port: number, collectorPort = port): void {
    // The exporter's own view: which source port its kernel chose.
    assert.ok(c.sent.length > 0, 'tcpdump saw the exporter send');
    const ports = new Set(c.sent.map((p) => p.srcPort));
    assert.equal(ports.size, 1, `one socket, one ephemeral port: ${[...ports].join(', ')}`);
    const [ephemeral] = ports;
    for (const p of c.sent) assert.deepEqual([p.src, p.dst, p.dstPort], [c.exporter, lab.monitored, port]);

    // The collector's view: same datagrams, same source address and port, new destination.
    assert.equal(c.received.length, c.sent.length, 'every datagram reached the collector, none twice');
    for (const p of c.received) {
      assert.equal(p.src, c.exporter, 'source address kept');
      assert.equal(p.srcPort, ephemeral, 'source port kept');
      assert.equal(p.dst, lab.collector(0), 'destination rewritten to the collector');
      assert.equal(p.dstPort, collectorPort, "destination port is the collector's");
      assert.equal(p.checksum, 'good', 'UDP checksum rewritten correctly');
    }

    // nfcapd's view: every flow, each logged under the exporter's address.
    assert.equal(c.flows.length, c.expectedFlows, 'every exported flow arrived');
    assert.deepEqual([...new Set(c.flows.map((f) => f.exporter))], [c.exporter], "nfcapd's exporter is the exporter's own address");
    assert.deepEqual(c.problems, []);
  }

  test('softflowd NetFlow v9: every flow arrives under the exporter address, source port kept', async () => {
    netflow9 = await softflowdCheck(lab, { version: 9, capture, flows: distinctFlows, exporter: lab.exporters[0] });
    assert.equal(distinctFlows, FLOWS);
    assertDelivered(netflow9, TelemetryPort.NETFLOW);
    // The flows themselves: the capture's 5-tuples, not something else.
    const keys = new Set(netflow9.flows.map((f) => `${f.src}:${f.srcPort}`));
    assert.equal(keys.size, FLOWS);
  });

  test('softflowd IPFIX from a secondary exporter address', async () => {
    const c = await softflowdCheck(lab, { version: 10, capture, flows: distinctFlows, exporter: lab.exporters[1] });
    assertDelivered(c, TelemetryPort.IPFIX);
  });

  test('nfreplay of the stored flows arrives with the exporter address', async () => {
    assert.ok(netflow9 && netflow9.files.length > 0, 'the NetFlow v9 test stored a file to replay');
    const c = await nfreplayCheck(lab, { files: netflow9.files, exporter: lab.exporters[2] });
    assert.equal(c.expectedFlows, FLOWS);
    assertDelivered(c, TelemetryPort.NETFLOW);
  });

  test('port DNAT: NetFlow v9 sent to 9995 arrives at the collector on 2055', async () => {
    const c = await softflowdCheck(lab, { version: 9, capture, flows: distinctFlows, exporter: lab.exporters[3], port: TelemetryPort.NETFLOW_ALT });
    assertDelivered(c, TelemetryPort.NETFLOW_ALT, TelemetryPort.NETFLOW);
  });

  test("the gateway's accounting balances", async () => {
    const s = await lab.status();
    assert.equal(s.accounting.balanced, true);
    assert.ok(s.accounting.forwarded > 0);
  });
});
