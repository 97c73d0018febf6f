/**
 * The benchmark's verdicts: which step counts as lossless, which rate a ladder is credited with,
 * the ratio to the best peer, and the drops blamed on the sink rather than the gateway. These
 * decide the figures the README quotes, so they are pinned here.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IF, NS } from '../../bench/src/layout.js';
import { gatewayLossPercent, lossless, renderMarkdown, sinkSideDrops, summarize, type Results, type StepResult, type SystemResult } from '../../bench/src/report.js';

function step(system: string, targetPps: number, over: Partial<StepResult> = {}): StepResult {
  const offered = over.offered ?? targetPps * 5;
  const delivered = over.delivered ?? offered;
  return {
    system,
    step: 0,
    targetPps,
    durationS: 5,
    offered,
    delivered,
    offeredPps: over.offeredPps ?? offered / 5,
    deliveredPps: delivered / 5,
    lossPercent: offered > 0 ? (100 * (offered - delivered)) / offered : 0,
    kept: delivered,
    keptPercent: 100,
    sources: 256,
    machineCpuPercent: 40,
    gatewayCpuUsPerPkt: 3,
    gatewayCpuPercent: null,
    gatewayProcessCpuPercent: null,
    gatewayRxThreadCpuPercent: null,
    genCpuPercent: 30,
    sinkCpuPercent: 30,
    unattributedCpuPercent: 0,
    backgroundCpuPercent: 0,
    foreignCpuPercent: 0,
    attempts: 1,
    rssMB: null,
    latencyUs: { p50: 100, p90: 200, p99: 300, max: 400, mean: 120 },
    genRefused: 0,
    genBehind: 0,
    stale: 0,
    oddLength: 0,
    lostWhere: {},
    ...over,
  };
}

const system = (name: string, steps: StepResult[]): SystemResult => ({ system: name, description: name, traffic: 'mirror', notes: [], steps });

describe('bench report', () => {
  it('counts a step as lossless only at ≤ 0.1% loss, every source kept, and the rate offered in full', () => {
    assert.equal(lossless(step('kernel', 100_000, { delivered: 499_500 })), true, '0.1% lost');
    assert.equal(lossless(step('kernel', 100_000, { delivered: 499_499 })), false, 'just over 0.1% lost');
    assert.equal(lossless(step('kernel', 100_000, { kept: 499_999 })), false, 'one datagram from a rewritten source');
    // A starved generator offered 98% of the rate: nothing lost, yet nothing proved at 100k.
    assert.equal(lossless(step('kernel', 100_000, { offered: 490_000, offeredPps: 98_000 })), false);
    assert.equal(lossless(step('kernel', 100_000, { offered: 495_000, offeredPps: 99_000 })), true);
    assert.equal(lossless(step('kernel', 100_000, { offered: 0, delivered: 0, offeredPps: 0 })), false, 'an empty step proves nothing');
  });

  it('credits the highest lossless step, and separately the highest reached without a failure below it', () => {
    const mg = system('mirrorgate-tc', [
      step('mirrorgate-tc', 85_000),
      step('mirrorgate-tc', 120_000, { delivered: 120_000 * 5 - 1_000 }), // 0.17% lost
      step('mirrorgate-tc', 160_000),
      step('mirrorgate-tc', 200_000, { offered: 183_000 * 5, offeredPps: 183_000 }), // generator starved
    ]);
    const kernel = system('kernel', [step('kernel', 85_000), step('kernel', 120_000), step('kernel', 160_000, { delivered: 160_000 * 5 - 5_000 })]);
    const pmacct = system('pmacct', [step('pmacct', 85_000), step('pmacct', 120_000, { delivered: 1 })]);
    const s = summarize([kernel, pmacct, mg], [85_000, 120_000, 160_000, 200_000]);
    assert.equal(s.highestLossless['mirrorgate-tc']?.targetPps, 160_000);
    assert.equal(s.highestSustained?.['mirrorgate-tc']?.targetPps, 85_000);
    assert.equal(s.highestLossless.kernel?.targetPps, 120_000);
    assert.equal(s.bestPeer, 'kernel', 'the peer with the higher lossless rate');
    assert.equal(s.ratioMirrorgateToBestPeer['mirrorgate-tc'], 1.33);
    assert.equal(s.ratioMirrorgateToBestPeerSustained?.['mirrorgate-tc'], 0.71);
    assert.equal(s.at85k.kernel?.machineCpuPercent, 40);
  });

  it("blames the sink's ring and socket, and of mirrorgate's own link only the refusals it gave up on", () => {
    const lostWhere = {
      [`${NS.gw}:${IF.gwToSink}.tx_dropped`]: 300,
      [`${NS.sink}:udp.RcvbufErrors`]: 50,
      [`${NS.gw}:${IF.gwFromGen}.rx_dropped`]: 7,
    };
    const kernelStep = step('kernel', 100_000, { delivered: 500_000 - 357, lostWhere });
    assert.equal(sinkSideDrops(kernelStep), 350);
    assert.ok(Math.abs(gatewayLossPercent(kernelStep) - (100 * 7) / 500_000) < 1e-9);
    // mirrorgate retried 280 of the 300 refusals and got them through: only 20 were lost there.
    const gateway = { rx: 500_000, forwarded: 500_000, txPackets: 499_980, txErrors: 20, busyWaits: 280, drops: {}, nodes: [] };
    assert.equal(sinkSideDrops(step('mirrorgate', 100_000, { delivered: 500_000 - 70, lostWhere, gateway })), 70);
  });

  it('states how the links queue, and reads results written before the setting existed', () => {
    const results = (settings: Partial<Results['settings']>): Results => ({
      tool: 'test',
      startedAt: 'a',
      finishedAt: 'b',
      machine: { nproc: 2, cpuModel: 'cpu', memTotalMB: 1, kernel: 'k', node: 'v20', hostname: 'h' },
      settings: {
        ladder: [85_000],
        stepSeconds: 5,
        payloadBytes: 1400,
        offeredIpBytes: { mirror: 1478, direct: 1428 },
        exporters: 256,
        mirrorSources: 4,
        vni: 1,
        lossThresholdPercent: 0.1,
        stopAfterLossySteps: 2,
        quick: false,
        ...settings,
      },
      systems: [],
      summary: summarize([], [85_000]),
    });
    assert.match(renderMarkdown(results({ linkQueue: 768, napiPolicy: 'other' })), /queues up to 768 packets .* hold 1024 packets/);
    assert.match(renderMarkdown(results({})), /has no queue \(veth's default\)/);
    assert.match(renderMarkdown(results({ linkQueue: 0, napiPolicy: 'fifo' })), /SCHED_FIFO/);
  });
});
