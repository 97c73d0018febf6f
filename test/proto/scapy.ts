/**
 * Golden packets built by an independent tool: scapy, run by the system Python (/usr/bin/python3,
 * Debian package python3-scapy). The `python3` on PATH may be another interpreter without scapy,
 * so it is never used. A missing scapy fails the golden tests with the package to install; it
 * does not skip them.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export const SYSTEM_PYTHON = '/usr/bin/python3';
const INSTALL_HINT = `install the Debian package python3-scapy (apt-get install python3-scapy) so that ${SYSTEM_PYTHON} can import scapy`;

/** Reads {name: expression} as JSON on stdin, prints {name: hex of bytes(eval(expression))}. */
const PROGRAM = `
import sys, json
try:
    from scapy.all import *
    from scapy.layers.vxlan import VXLAN
    from scapy.contrib.geneve import GENEVE, GeneveOptions
except Exception as err:
    sys.stderr.write("cannot import scapy: %r\\n" % (err,))
    sys.exit(3)
exprs = json.load(sys.stdin)
print(json.dumps({name: bytes(eval(expr)).hex() for name, expr in exprs.items()}))
`;

/**
 * Evaluates each scapy expression (e.g. `Ether()/IP()/UDP()`) and returns its wire bytes by name.
 * One Python process per call: callers pass every packet a test file needs at once.
 */
export function scapyBytes<K extends string>(exprs: Record<K, string>): Record<K, Buffer> {
  if (!existsSync(SYSTEM_PYTHON)) {
    throw new Error(`golden packets: ${SYSTEM_PYTHON} does not exist; ${INSTALL_HINT}`);
  }
  let stdout: string;
  try {
    stdout = execFileSync(SYSTEM_PYTHON, ['-c', PROGRAM], {
      input: JSON.stringify(exprs),
      encoding: 'utf8',
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: 60_000,
    });
  } catch (err) {
    const e = err as { status?: number; stderr?: string; message: string };
    const detail = (e.stderr ?? '').trim() || e.message;
    if (e.status === 3) throw new Error(`golden packets: scapy is missing (${detail}); ${INSTALL_HINT}`);
    throw new Error(`golden packets: scapy failed: ${detail}`);
  }
  const hex = JSON.parse(stdout) as Record<K, string>;
  const out = {} as Record<K, Buffer>;
  for (const name of Object.keys(exprs) as K[]) out[name] = Buffer.from(hex[name], 'hex');
  return out;
}

/** `scapyBytes` once per test file, on first use (so a missing scapy fails each golden test). */
export function lazyGolden<K extends string>(exprs: Record<K, string>): () => Record<K, Buffer> {
  let cached: Record<K, Buffer> | null = null;
  return () => (cached ??= scapyBytes(exprs));
}
