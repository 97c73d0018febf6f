/**
 * Runs inside a namespace for xdp.test.ts: attaches the XDP program to `dev` twice and to a
 * device that does not exist, and prints, as one JSON line, what each attempt threw.
 */
import { readInterface, XdpProgram } from '../../src/io/native/xdp.js';

function attempt(f: () => void): { code: string; errno: string; message: string } | null {
  try {
    f();
    return null;
  } catch (err) {
    const e = err as { code: string; errno: string; message: string };
    return { code: e.code, errno: e.errno, message: e.message };
  }
}

const [dev] = process.argv.slice(2);
const iface = readInterface(dev);
const first = new XdpProgram({ iface, address: '0.0.0.0', ports: [4789], frameSize: 2048 });
const second = attempt(() => new XdpProgram({ iface, address: '0.0.0.0', ports: [4789], frameSize: 2048 }));
first.close();
const third = attempt(() => new XdpProgram({ iface, address: '0.0.0.0', ports: [4789], frameSize: 2048 }).close());
const missing = attempt(() => readInterface('mg-no-such'));
process.stdout.write(`${JSON.stringify({ second, third, missing })}\n`);
