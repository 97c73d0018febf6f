/**
 * XDP ingress against the kernel: frames built by scapy cross a veth into a namespace whose end
 * runs mirrorgate's XDP program. What it selects (unfragmented IPv4/UDP with a valid header
 * checksum to our MAC, address and tunnel ports, short enough for a ring frame) must reach the AF_XDP socket, and every other
 * frame must still reach the UDP socket by the kernel's path, or neither when the kernel would
 * drop it too. A full ring drops in the kernel, and every dropped frame is counted.
 * The receiving happens in xdp-agent.ts, run inside the namespace.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { loadError, nativeAvailable } from '../../src/io/native/index.js';
import { isRoot } from './native/helpers.js';

const skip = !nativeAvailable() ? `native addon not built: ${loadError()}` : !isRoot ? 'builds network namespaces: needs root' : false;
const RX = `mgxr${process.pid}`;
const TX = `mgxt${process.pid}`;
const US = '198.18.9.2';
const ALSO_US = '198.18.9.3';

function sh(ns: string, ...args: string[]): string {
  return execFileSync('ip', ['-n', ns, ...args], { encoding: 'utf8' });
}

function run(opts: { address: string; frames: number; read: boolean; script: string }): { xsk: string[]; udp: string[]; drops: number } {
  const agent = fileURLToPath(new URL('./xdp-agent.js', import.meta.url));
  const args = [agent, 'x1', TX, 'x0', opts.address, String(opts.frames), opts.read ? 'yes' : 'no', opts.script];
  return JSON.parse(execFileSync('ip', ['netns', 'exec', RX, process.execPath, ...args], { encoding: 'utf8', timeout: 30_000 }));
}

const count = (tags: string[], tag: string) => tags.filter((t) => t === tag).length;

describe('XDP ingress', { skip }, () => {
  let mac = '';

  before(() => {
    execFileSync('ip', ['netns', 'add', RX]);
    execFileSync('ip', ['netns', 'add', TX]);
    sh(TX, 'link', 'add', 'x0', 'type', 'veth', 'peer', 'name', 'x1', 'netns', RX);
    sh(TX, 'addr', 'add', '198.18.9.1/24', 'dev', 'x0');
    sh(RX, 'addr', 'add', `${US}/24`, 'dev', 'x1');
    sh(RX, 'addr', 'add', `${ALSO_US}/24`, 'dev', 'x1');
    for (const [ns, dev] of [[TX, 'x0'], [RX, 'x1']]) {
      sh(ns, 'link', 'set', dev, 'mtu', '9000', 'up');
      sh(ns, 'link', 'set', 'lo', 'up');
    }
    mac = (JSON.parse(sh(RX, '-json', 'link', 'show', 'x1')) as { address: string }[])[0].address;
  });

  after(() => {
    for (const ns of [RX, TX]) {
      try {
        execFileSync('ip', ['netns', 'del', ns]);
      } catch {
        // already gone
      }
    }
  });

  test('selected frames reach the XDP socket; the rest take the kernel path or its drop', () => {
    const udp = (tag: string, opts = '', dport = 4789, dst = US) => `Ether(dst='${mac}')/IP(dst='${dst}'${opts})/UDP(sport=40000, dport=${dport})/Raw(b'${tag}')`;
    const script = `
frames = [${udp('T:vni')}] * 5 + [${udp('T:geneve', '', 6081)}] * 3
frames += fragment(IP(dst='${US}')/UDP(sport=40000, dport=4789)/Raw(b'T:frag' + b'x' * 3000), fragsize=1400)
frames = [Ether(dst='${mac}')/f if IP in f and Ether not in f else f for f in frames]
frames += [${udp('T:options', ', options=[IPOption_RR()]')}]
frames += [${udp('T:jumbo' + "' + b'x' * 2000 + b'")}]
frames += [Ether(dst='02:00:00:00:00:99')/IP(dst='${US}')/UDP(sport=40000, dport=4789)/Raw(b'T:othermac')]
frames += [${udp('T:otherdst', '', 4789, ALSO_US)}]
frames += [${udp('T:badsum', ', chksum=0x1234')}]
sendp(frames, iface=IFACE)
`;
    const got = run({ address: US, frames: 256, read: true, script });
    assert.deepEqual([count(got.xsk, 'T:vni'), count(got.xsk, 'T:geneve')], [5, 3], `selected: ${got.xsk}`);
    assert.deepEqual(got.xsk.filter((t) => t !== 'T:vni' && t !== 'T:geneve'), [], 'nothing else reached the XDP socket');
    assert.deepEqual([...got.udp].sort(), ['T:frag', 'T:jumbo', 'T:options', 'T:otherdst'], 'the kernel path delivered the rest it accepts (not T:badsum, T:othermac)');
    assert.equal(got.drops, 0);
  });

  test('any destination address when listening on 0.0.0.0', () => {
    const script = `sendp([Ether(dst='${mac}')/IP(dst='${ALSO_US}')/UDP(sport=40000, dport=4789)/Raw(b'T:otherdst')] * 2, iface=IFACE)`;
    const got = run({ address: '0.0.0.0', frames: 256, read: true, script });
    assert.deepEqual([got.xsk, got.udp], [['T:otherdst', 'T:otherdst'], []]);
  });

  test('one program per interface: a second is refused until the first is gone', () => {
    const agent = fileURLToPath(new URL('./xdp-busy-agent.js', import.meta.url));
    const r = JSON.parse(execFileSync('ip', ['netns', 'exec', RX, process.execPath, agent, 'x1'], { encoding: 'utf8', timeout: 30_000 }));
    assert.equal(r.second?.code, 'MG_ERR_XDP');
    assert.equal(r.second?.errno, 'EBUSY');
    assert.match(r.second?.message, /another XDP program is attached/);
    assert.equal(r.third, null, 'closing the first detached it');
    assert.deepEqual([r.missing?.code, r.missing?.errno], ['MG_ERR_XDP', 'ENODEV']);
  });

  test('a full ring drops in the kernel, and each drop is counted', () => {
    const script = `sendp([Ether(dst='${mac}')/IP(dst='${US}')/UDP(sport=40000, dport=4789)/Raw(b'T:burst')] * 200, iface=IFACE)`;
    const got = run({ address: US, frames: 64, read: false, script });
    assert.equal(got.xsk.length, 64, 'the ring held 64 frames');
    assert.equal(got.xsk.length + got.drops, 200, `received ${got.xsk.length} + dropped ${got.drops} = sent`);
    assert.deepEqual(got.udp, [], 'a full ring does not fall back to the kernel path');
  });
});
