/**
 * Next hops for packet egress: parsing `ip -json -batch` output (shapes as iproute2 prints them),
 * then the real iproute2 in a network namespace with routes and neighbours we set.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { nextHopQuery, parseNextHops } from '../../src/io/next-hop.js';

const NEIGH = '[{"dst":"198.18.7.2","dev":"a0","lladdr":"02:00:00:00:00:02","state":["PERMANENT"]},{"dst":"198.18.7.254","dev":"a0","lladdr":"02:00:00:00:00:fe","state":["STALE"]},{"dst":"198.18.7.3","dev":"a0","state":["FAILED"]},{"dst":"2001:db8::2","dev":"a0","lladdr":"02:00:00:00:00:06","state":["REACHABLE"]}]';
const LINKS = '[{"ifindex":1,"ifname":"lo","link_type":"loopback","address":"00:00:00:00:00:00"},{"ifindex":7,"ifname":"a0","link_type":"ether","address":"02:00:00:00:00:01"},{"ifindex":9,"ifname":"wg0","link_type":"none"}]';
const route = (dst: string, dev: string, extra = '') => `[{"dst":"${dst}"${extra},"dev":"${dev}","prefsrc":"198.18.7.1","flags":[],"uid":0,"cache":[]}]`;

describe('parseNextHops', () => {
  test('on-link and routed backends get the device and the neighbour they leave through', () => {
    const out = [NEIGH, LINKS, route('198.18.7.2', 'a0'), route('198.51.100.9', 'a0', ',"gateway":"198.18.7.254"')].join('\n');
    const [onLink, routed] = parseNextHops(['198.18.7.2', '198.51.100.9'], out);
    assert.deepEqual(onLink, { address: '198.18.7.2', hop: { dev: 'a0', ifindex: 7, srcMac: '02:00:00:00:00:01', dstMac: '02:00:00:00:00:02', gateway: null }, reason: '' });
    assert.deepEqual(routed.hop, { dev: 'a0', ifindex: 7, srcMac: '02:00:00:00:00:01', dstMac: '02:00:00:00:00:fe', gateway: '198.18.7.254' });
  });

  test('an IPv6 backend matches however the configuration spells it', () => {
    const out = [NEIGH, LINKS, route('2001:db8::2', 'a0')].join('\n');
    const [r] = parseNextHops(['2001:0db8:0::2'], out);
    assert.equal(r.address, '2001:0db8:0::2');
    assert.equal(r.hop?.dstMac, '02:00:00:00:00:06');
  });

  test('without a usable next hop, the reason says why', () => {
    const out = [NEIGH, LINKS, route('198.18.7.3', 'a0'), route('198.18.7.4', 'a0'), route('10.9.9.9', 'wg0'),
      '[{"type":"local","dst":"198.18.7.1","dev":"lo","prefsrc":"198.18.7.1","flags":[],"uid":0,"cache":["local"]}]', route('10.8.8.8', 'gone0')].join('\n');
    const reasons = parseNextHops(['198.18.7.3', '198.18.7.4', '10.9.9.9', '198.18.7.1', '10.8.8.8', '203.0.113.1'], out).map((r) => [r.hop, r.reason]);
    assert.deepEqual(reasons, [
      [null, 'neighbour 198.18.7.3 on a0 not resolved (FAILED)'],
      [null, 'neighbour 198.18.7.4 on a0 not resolved'],
      [null, 'wg0 is not an Ethernet device (none)'],
      [null, 'local route via lo'],
      [null, 'device gone0 not found'],
      [null, 'no route'],
    ]);
  });

  test('garbage or nothing at all gives "no route", never a throw', () => {
    assert.deepEqual(parseNextHops(['198.18.7.2'], ''), [{ address: '198.18.7.2', hop: null, reason: 'no route' }]);
    assert.deepEqual(parseNextHops(['198.18.7.2'], 'RTNETLINK answers: nonsense\n{"x":\n[1,2'), [{ address: '198.18.7.2', hop: null, reason: 'no route' }]);
  });

  test('the query lists neighbours, links, then one route lookup per backend', () => {
    assert.equal(nextHopQuery(['198.18.7.2', '2001:db8::2']), 'neigh show\nlink show\nroute get 198.18.7.2\nroute get 2001:db8::2\n');
  });
});

const NS = `mgnh${process.pid}`;
const skip = process.getuid?.() !== 0 ? 'builds a network namespace: needs root' : false;
const ip = (...args: string[]) => execFileSync('ip', args, { encoding: 'utf8' });

describe('resolveNextHops against iproute2', { skip }, () => {
  before(() => {
    ip('netns', 'add', NS);
    ip('-n', NS, 'link', 'add', 'a0', 'address', '02:00:00:00:00:01', 'type', 'veth', 'peer', 'name', 'b0');
    ip('-n', NS, 'link', 'set', 'a0', 'up');
    ip('-n', NS, 'link', 'set', 'b0', 'up');
    ip('-n', NS, 'link', 'set', 'lo', 'up');
    ip('-n', NS, 'addr', 'add', '198.18.7.1/24', 'dev', 'a0');
    ip('-n', NS, 'route', 'add', '198.51.100.0/24', 'via', '198.18.7.254');
    ip('-n', NS, 'neigh', 'add', '198.18.7.2', 'lladdr', '02:00:00:00:00:02', 'dev', 'a0', 'nud', 'permanent');
    ip('-n', NS, 'neigh', 'add', '198.18.7.254', 'lladdr', '02:00:00:00:00:fe', 'dev', 'a0', 'nud', 'reachable');
  });
  after(() => {
    try {
      ip('netns', 'del', NS);
    } catch {
      // already gone
    }
  });

  test('reads the route, the device and the neighbour the kernel would use', () => {
    const module = fileURLToPath(new URL('../../src/io/next-hop.js', import.meta.url));
    const script = `const { resolveNextHops } = await import(${JSON.stringify(module)}); console.log(JSON.stringify(await resolveNextHops(process.argv.slice(1))));`;
    const addrs = ['198.18.7.2', '198.51.100.9', '198.18.7.3', '203.0.113.1', '198.18.7.1'];
    const out = execFileSync('ip', ['netns', 'exec', NS, process.execPath, '--input-type=module', '-e', script, ...addrs], { encoding: 'utf8' });
    const got = JSON.parse(out) as { address: string; hop: { dev: string; dstMac: string; srcMac: string; gateway: string | null } | null; reason: string }[];
    const ifindex = Number(JSON.parse(ip('-n', NS, '-j', 'link', 'show', 'a0'))[0].ifindex);
    assert.deepEqual(got[0].hop, { dev: 'a0', ifindex, srcMac: '02:00:00:00:00:01', dstMac: '02:00:00:00:00:02', gateway: null });
    assert.deepEqual(got[1].hop, { dev: 'a0', ifindex, srcMac: '02:00:00:00:00:01', dstMac: '02:00:00:00:00:fe', gateway: '198.18.7.254' });
    assert.equal(got[2].hop, null);
    assert.match(got[2].reason, /^neighbour 198\.18\.7\.3 on a0 not resolved/);
    assert.deepEqual([got[3].hop, got[3].reason], [null, 'no route']);
    assert.deepEqual([got[4].hop, got[4].reason], [null, 'local route via lo']);
  });
});
