/**
 * validateConfig: every problem is one line `field.path: message` naming the field, and a
 * configuration with several problems reports all of them in one pass.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { validateConfig, type Config } from '../../src/control/config.js';

/** A valid configuration: two rules to an IPv4 destination, one to an IPv6 destination. */
function base(): Record<string, any> {
  return {
    destinations: {
      v4: { backends: ['203.0.113.10:2055', '203.0.113.11:2055'] },
      v6: { backends: ['[2001:db8::10]:4739'] },
    },
    rules: [
      { name: 'netflow', match: { protocol: 'udp', dstPort: 2055 }, destination: 'v4' },
      { name: 'sflow', match: { dstPort: [6343, '9995-9999'] }, destination: 'v4' },
      { name: 'ipfix', match: { dstPort: 4739, srcCidr: '2001:db8::/32' }, destination: 'v6' },
    ],
  };
}

function problems(mutate: (c: Record<string, any>) => void): string[] {
  const c = base();
  mutate(c);
  const r = validateConfig(c, '/nonexistent');
  assert.ok('problems' in r, 'expected the configuration to be refused');
  return r.problems;
}

function config(mutate: (c: Record<string, any>) => void = () => {}): Config {
  const c = base();
  mutate(c);
  const r = validateConfig(c, '/nonexistent');
  assert.ok('config' in r, `expected a valid configuration, got ${JSON.stringify('problems' in r && r.problems)}`);
  return r.config;
}

describe('validateConfig: one line per problem, naming the field', () => {
  test('the base configuration is valid', () => {
    const c = config();
    assert.deepEqual(c.rules[1].match.dstPort, [
      [6343, 6343],
      [9995, 9999],
    ]);
    assert.equal(c.rules[0].match.protocol, 17);
  });

  test('a port out of range in a list', () => {
    assert.deepEqual(
      problems((c) => (c.rules[2].match.dstPort = [2055, 70000])),
      ['rules[2].match.dstPort[1]: expected a port 1-65535, got 70000'],
    );
  });

  test('a single port out of range: rules[2].match.dstPort with 70000', () => {
    assert.deepEqual(
      problems((c) => (c.rules[2].match.dstPort = 70000)),
      ['rules[2].match.dstPort: expected a port 1-65535, got 70000'],
    );
  });

  test("single values where a list is also allowed report the value's own problem", () => {
    const cases: [(c: Record<string, any>) => void, string][] = [
      [(c) => (c.rules[0].match.dstPort = '10-5'), 'rules[0].match.dstPort: expected a port 1-65535 or a range "lo-hi", got "10-5"'],
      [(c) => (c.rules[0].match.srcPort = 0), 'rules[0].match.srcPort: expected a port 1-65535, got 0'],
      [(c) => (c.rules[0].match.srcCidr = '10.0.0.0/33'), 'rules[0].match.srcCidr: expected a prefix length 0-32, got "10.0.0.0/33"'],
      [(c) => (c.rules[0].match.dstCidr = 'banana'), 'rules[0].match.dstCidr: expected an IPv4/IPv6 address or CIDR, got "banana"'],
      [(c) => (c.rules[0].match.vni = 1 << 25), 'rules[0].match.vni: expected a VNI 0-16777215, got 33554432'],
    ];
    const wrong: string[] = [];
    for (const [mutate, line] of cases) {
      const got = problems(mutate);
      if (got.length !== 1 || got[0] !== line) wrong.push(`expected ${JSON.stringify(line)}\n     got ${JSON.stringify(got)}`);
    }
    assert.deepEqual(wrong, []);
  });

  test('the allowlist file name must be a string', () => {
    assert.deepEqual(
      problems((c) => (c.allowlist = { file: 5 })),
      ['allowlist.file: expected string, got 5'],
    );
  });

  test('list entries name their index', () => {
    assert.deepEqual(
      problems((c) => (c.listen = { sources: ['198.18.0.0/15', '10.0.0.0/8/8'] })),
      ['listen.sources[1]: expected a prefix length 0-32, got "10.0.0.0/8/8"'],
    );
    assert.deepEqual(
      problems((c) => (c.rules[1].match.dstPort = [6343, '9999-9995'])),
      ['rules[1].match.dstPort[1]: expected a port 1-65535 or a range "lo-hi", got "9999-9995"'],
    );
    assert.deepEqual(
      problems((c) => (c.rules[0].match.srcCidr = ['10.0.0.0/8', '10.0.0.0/40'])),
      ['rules[0].match.srcCidr[1]: expected a prefix length 0-32, got "10.0.0.0/40"'],
    );
  });

  test('unknown destination', () => {
    assert.deepEqual(
      problems((c) => (c.rules[1].destination = 'collector')),
      ['rules[1].destination: expected one of the destinations (v4, v6), got "collector"'],
    );
    assert.deepEqual(
      problems((c) => (c.destinations = {})),
      [
        'rules[0].destination: expected one of the destinations (none defined), got "v4"',
        'rules[1].destination: expected one of the destinations (none defined), got "v4"',
        'rules[2].destination: expected one of the destinations (none defined), got "v6"',
      ],
    );
  });

  test('empty or missing backend list', () => {
    assert.deepEqual(
      problems((c) => (c.destinations.v4.backends = [])),
      ['destinations.v4.backends: expected at least one backend'],
    );
    assert.deepEqual(
      problems((c) => delete c.destinations.v6.backends),
      ['destinations.v6.backends: required (expected array)'],
    );
  });

  test('bad backends', () => {
    const cases: [unknown, string][] = [
      ['203.0.113.10:70000', 'destinations.v4.backends[1]: expected a port 1-65535, got 70000'],
      ['collector.example:2055', 'destinations.v4.backends[1]: expected "ip:port" (IPv6 as "[addr]:port"), got "collector.example:2055"'],
      ['2001:db8::1:2055', 'destinations.v4.backends[1]: expected "ip:port" (IPv6 as "[addr]:port"), got "2001:db8::1:2055"'],
      [{ address: '203.0.113.12', port: 2055, colour: 'red' }, 'destinations.v4.backends[1]: unknown key "colour"'],
      ['203.0.113.10:2055', 'destinations.v4.backends[1]: backend "203.0.113.10:2055" is listed twice'],
    ];
    for (const [backend, line] of cases) {
      assert.deepEqual(
        problems((c) => (c.destinations.v4.backends[1] = backend)),
        [line],
      );
    }
    const weight = problems((c) => (c.destinations.v4.backends[1] = { address: '203.0.113.12', port: 2055, weight: 0 }));
    assert.equal(weight.length, 1);
    assert.match(weight[0], /^destinations\.v4\.backends\[1\]: /);
  });

  test('backend of the wrong family: mixed IPv4/IPv6 in one destination', () => {
    assert.deepEqual(
      problems((c) => c.destinations.v4.backends.push('[2001:db8::1]:2055', { address: '2001:db8::2', port: 2055 })),
      [
        'destinations.v4.backends[2]: expected an IPv4 backend like backends[0], got IPv6 "[2001:db8::1]:2055"',
        'destinations.v4.backends[3]: expected an IPv4 backend like backends[0], got IPv6 "[2001:db8::2]:2055"',
      ],
    );
  });

  test('rule CIDR family differs from the destination family', () => {
    assert.deepEqual(
      problems((c) => {
        c.rules[0].match.dstCidr = ['203.0.113.0/24', '2001:db8::/32'];
        c.rules[2].match.srcCidr = '198.18.0.0/15';
      }),
      [
        'rules[0].match.dstCidr[1]: IPv6 prefix, but destination "v4" has IPv4 backends (no address-family translation)',
        'rules[2].match.srcCidr: IPv4 prefix, but destination "v6" has IPv6 backends (no address-family translation)',
      ],
    );
  });

  test('unknown keys, at the top level and nested', () => {
    assert.deepEqual(
      problems((c) => {
        c.rule = [];
        c.rules[1].matches = {};
        c.destinations.v6.mtus = 1500;
        c.listen = { port: 4789, sorces: [], addres: '0.0.0.0' };
      }).sort(),
      [
        '(top level): unknown key "rule"',
        'destinations.v6: unknown key "mtus"',
        'listen: unknown keys "sorces", "addres"',
        'rules[1]: unknown key "matches"',
      ],
    );
  });

  test('duplicate VNI and duplicate rule name', () => {
    assert.deepEqual(
      problems((c) => {
        c.sessions = [{ vni: 123, name: 'prod' }, { vni: 7 }, { vni: 123, name: 'again' }];
        c.rules[2].name = 'netflow';
      }),
      ['sessions[2].vni: VNI 123 is listed twice', 'rules[2].name: rule name "netflow" is used twice'],
    );
  });

  test('control.listen must be loopback unless a token is set', () => {
    assert.deepEqual(
      problems((c) => (c.control = { listen: '0.0.0.0:9090' })),
      ['control.listen: expected a loopback address unless control.token is set, got "0.0.0.0"'],
    );
    assert.deepEqual(
      problems((c) => (c.control = { listen: '[2001:db8::1]:9090' })),
      ['control.listen: expected a loopback address unless control.token is set, got "2001:db8::1"'],
    );
    assert.deepEqual(
      problems((c) => (c.control = { listen: '0.0.0.0:9090', token: 'short' })),
      ['control.token: expected at least 16 characters'],
    );
    assert.deepEqual(
      problems((c) => (c.control = { listen: 'localhost:9090' })),
      ['control.listen: expected "ip:port" (IPv6 as "[addr]:port"), got "localhost:9090"'],
    );
    assert.deepEqual(
      problems((c) => (c.control = { listen: '127.0.0.1' })),
      ['control.listen: expected "ip:port" with a port, got "127.0.0.1"'],
    );
    for (const listen of ['127.0.0.1:9090', '127.1.2.3:1', '[::1]:9090']) config((c) => (c.control = { listen }));
    config((c) => (c.control = { listen: '0.0.0.0:9090', token: 'a-long-enough-token' }));
  });

  test('other fields: what was expected and what came', () => {
    const cases: [(c: Record<string, any>) => void, string][] = [
      [(c) => (c.listen = { address: 'anywhere' }), 'listen.address: expected an IP address, got "anywhere"'],
      [(c) => (c.listen = { port: 0 }), 'listen.port: expected a port 1-65535, got 0'],
      [(c) => (c.listen = { genevePort: 65536 }), 'listen.genevePort: expected a port 1-65535, got 65536'],
      [(c) => (c.destinations.v4.mtu = 575), 'destinations.v4.mtu: expected an MTU 576-9216, got 575'],
      [(c) => (c.destinations.v4.balance = 'random'), 'destinations.v4.balance: expected one of "hash" | "round-robin" | "replicate", got "random"'],
      [(c) => (c.destinations.v4.df = 'drop'), 'destinations.v4.df: expected one of "clear" | "keep", got "drop"'],
      [(c) => (c.rules[0].match.protocol = 'quic'), 'rules[0].match.protocol: expected a protocol (icmp, tcp, udp, gre, esp, icmpv6, sctp or 0-255), got "quic"'],
      [(c) => (c.rules[0].name = ''), 'rules[0].name: expected at least 1 characters'],
      [(c) => (c.egress = { mode: 'tcp' }), 'egress.mode: expected one of "raw" | "packet" | "udp", got "tcp"'],
      [(c) => (c.reassembly = { timeoutMs: 5 }), 'reassembly.timeoutMs: expected at least 10, got 5'],
      [(c) => (c.reassembly = { maxDatagrams: 100000 }), 'reassembly.maxDatagrams: expected at most 65536, got 100000'],
      [(c) => (c.sessions = [{ vni: -1 }]), 'sessions[0].vni: expected a VNI 0-16777215, got -1'],
      [(c) => (c.sessions = { vni: 1 }), 'sessions: expected array, got {"vni":1}'],
      [(c) => delete c.rules[1].destination, 'rules[1].destination: required (expected string)'],
      [(c) => (c.listen = { xdp: { interface: 'eth0', frames: 1000 } }), 'listen.xdp.frames: expected a power of two in 64..65536'],
      [(c) => (c.listen = { xdp: { interface: 'eth0', frameSize: 3000 } }), 'listen.xdp.frameSize: expected 2048 or 4096, got 3000'],
      [(c) => (c.listen = { xdp: {} }), 'listen.xdp.interface: required (expected string)'],
      [(c) => (c.listen = { fastPath: { interface: 'eth0' } }), 'listen.fastPath: needs egress.mode packet (the program writes each frame\'s next hop), got "raw"'],
      [(c) => ((c.listen = { fastPath: { hook: 'bpf', interface: 'eth0' } }), (c.egress = { mode: 'packet' })), 'listen.fastPath.hook: expected one of "tc" | "xdp", got "bpf"'],
      [(c) => ((c.listen = { fastPath: {} }), (c.egress = { mode: 'packet' })), 'listen.fastPath.interface: required with hook tc (the device mirror packets arrive on)'],
      [(c) => ((c.listen = { fastPath: { hook: 'xdp' } }), (c.egress = { mode: 'packet' })), 'listen.fastPath.hook: xdp runs inside listen.xdp\'s program, and listen.xdp is not set'],
      [
        (c) => ((c.listen = { xdp: { interface: 'eth0' }, fastPath: { hook: 'xdp', interface: 'eth1' } }), (c.egress = { mode: 'packet' })),
        'listen.fastPath.interface: hook xdp runs on listen.xdp.interface "eth0", got "eth1"',
      ],
      [
        (c) => ((c.listen = { xdp: { interface: 'eth0' }, fastPath: { interface: 'eth0' } }), (c.egress = { mode: 'packet' })),
        'listen.fastPath.hook: listen.xdp takes "eth0"\'s mirror packets before tc sees them; use hook xdp there',
      ],
    ];
    for (const [mutate, line] of cases) assert.deepEqual(problems(mutate), [line]);
  });

  test('listen.xdp is off unless asked for; its ring takes defaults', () => {
    assert.equal(config().listen.xdp, undefined);
    assert.deepEqual(config((c) => (c.listen = { xdp: { interface: 'eth0' } })).listen.xdp, { interface: 'eth0', frames: 4096, frameSize: 2048 });
  });

  test('listen.fastPath is off unless asked for; its hook is tc unless it says xdp', () => {
    assert.equal(config().listen.fastPath, undefined);
    const tc = config((c) => ((c.listen = { fastPath: { interface: 'eth0' } }), (c.egress = { mode: 'packet' })));
    assert.deepEqual(tc.listen.fastPath, { hook: 'tc', interface: 'eth0' });
    const xdp = config((c) => ((c.listen = { xdp: { interface: 'eth0' }, fastPath: { hook: 'xdp' } }), (c.egress = { mode: 'packet' })));
    assert.deepEqual(xdp.listen.fastPath, { hook: 'xdp' });
    // tc on another device than XDP's: mirror packets may arrive on both.
    const both = config((c) => ((c.listen = { xdp: { interface: 'eth0' }, fastPath: { interface: 'eth1' } }), (c.egress = { mode: 'packet' })));
    assert.deepEqual(both.listen.fastPath, { hook: 'tc', interface: 'eth1' });
  });

  test('the old listen.xdp.fastPath says where it went', () => {
    const got = problems((c) => ((c.listen = { xdp: { interface: 'eth0', fastPath: true } }), (c.egress = { mode: 'packet' })));
    assert.ok(got.includes('listen.xdp.fastPath: now listen.fastPath: { hook: xdp }'), got.join('\n'));
  });

  test('a document that is not a mapping', () => {
    assert.deepEqual(validateConfig([]), { problems: ['(top level): expected object, got []'] });
    assert.deepEqual(validateConfig('listen: 1'), { problems: ['(top level): expected object, got "listen: 1"'] });
  });
});

describe('validateConfig: several problems at once', () => {
  test('schema problems in different sections are all reported', () => {
    const got = problems((c) => {
      c.listen = { port: 0 };
      c.rules[0].match.protocol = 'quic';
      c.rules[1].match.dstPort = [2055, 70000];
      c.destinations.v4.mtu = 100;
      c.destinations.v6.backends = [];
      c.workers = 0;
    });
    assert.deepEqual(got, [
      'listen.port: expected a port 1-65535, got 0',
      'rules[0].match.protocol: expected a protocol (icmp, tcp, udp, gre, esp, icmpv6, sctp or 0-255), got "quic"',
      'rules[1].match.dstPort[1]: expected a port 1-65535, got 70000',
      'destinations.v4.mtu: expected an MTU 576-9216, got 100',
      'destinations.v6.backends: expected at least one backend',
      'workers: expected at least 1, got 0',
    ]);
  });

  test('cross-field problems are all reported', () => {
    const got = problems((c) => {
      c.sessions = [{ vni: 1 }, { vni: 1 }];
      c.destinations.v4.backends.push('[2001:db8::1]:2055');
      c.rules[0].destination = 'nowhere';
      c.rules[2].match.srcCidr = '10.0.0.0/8';
      c.control = { listen: '10.0.0.1:9090' };
      c.allowlist = { file: 'no-such-allowlist.txt' };
    });
    assert.deepEqual(got, [
      'allowlist.file: cannot read /nonexistent/no-such-allowlist.txt: ENOENT',
      'sessions[1].vni: VNI 1 is listed twice',
      'destinations.v4.backends[2]: expected an IPv4 backend like backends[0], got IPv6 "[2001:db8::1]:2055"',
      'rules[0].destination: expected one of the destinations (v4, v6), got "nowhere"',
      'rules[2].match.srcCidr: IPv4 prefix, but destination "v6" has IPv6 backends (no address-family translation)',
      'control.listen: expected a loopback address unless control.token is set, got "10.0.0.1"',
    ]);
  });

  test('schema problems and cross-field problems are reported together', () => {
    const got = problems((c) => {
      c.rules[1].match.dstPort = [2055, 70000]; // schema
      c.rules[0].destination = 'nowhere'; // cross-field
      c.sessions = [{ vni: 5 }, { vni: 5 }]; // cross-field
    });
    assert.deepEqual(got.slice().sort(), [
      'rules[0].destination: expected one of the destinations (v4, v6), got "nowhere"',
      'rules[1].match.dstPort[1]: expected a port 1-65535, got 70000',
      'sessions[1].vni: VNI 5 is listed twice',
    ]);
  });
});

describe('validateConfig: defaults', () => {
  test('an empty document gets every default', () => {
    const r = validateConfig(undefined);
    assert.ok('config' in r);
    const c = r.config;
    assert.deepEqual(c.listen, { address: '0.0.0.0', port: 4789, genevePort: 6081, sources: [] });
    assert.deepEqual(c.control.listen, { host: '127.0.0.1', port: 9090 });
    assert.deepEqual(c.reassembly, { maxDatagrams: 256, timeoutMs: 3000 });
    assert.deepEqual(c.egress, { mode: 'raw' });
    assert.equal(c.workers, 'auto');
    assert.deepEqual(c.rules, []);
    assert.deepEqual(c.destinations, {});
    assert.equal(c.allowlist, null);
    assert.equal(c.allowlistSource, null);
    assert.equal(c.sessions, undefined);
  });

  test('destination and backend defaults', () => {
    const c = config((x) => (x.destinations.v4.backends[1] = { address: '203.0.113.12' }));
    const d = c.destinations.v4;
    assert.deepEqual({ balance: d.balance, mtu: d.mtu, df: d.df }, { balance: 'hash', mtu: 1500, df: 'clear' });
    assert.deepEqual(c.destinations.v4.backends[1], { address: '203.0.113.12', family: 4, port: 0, weight: 1, text: '203.0.113.12' });
    const six = config((x) => (x.destinations.v6.backends[0] = { address: '2001:db8::10', port: 4739, weight: 3 }));
    assert.deepEqual(six.destinations.v6.backends[0], { address: '2001:db8::10', family: 6, port: 4739, weight: 3, text: '[2001:db8::10]:4739' });
    assert.deepEqual(six.rules[2].match.srcCidr, [{ family: 6, address: 0x20010db8n << 96n, length: 32 }]);
  });
});
