/**
 * Real peers for the lab, from Debian's packages: softflowd (exports NetFlow v9/IPFIX from a
 * capture), nfdump's nfcapd (a collector that logs each exporter's address) and nfreplay,
 * tcpdump (what crossed a link) and tshark (an independent dissector for what tcpdump saw).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Lab } from './lab.js';
import type { LabHost } from './plan.js';
import { LabError, run, type LabProcess } from './process.js';

// ---- nfcapd / nfdump ----

/** One flow record as nfdump prints it. */
export interface NfdumpFlow {
  /** The exporter ("router") address nfcapd logged: the source address of the datagram. */
  exporter: string;
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  protocol: string;
  packets: number;
}

/** An nfcapd collecting on a collector host into its own directory. */
export class Nfcapd {
  private constructor(
    readonly host: LabHost,
    readonly address: string,
    readonly port: number,
    readonly dir: string,
    private readonly process: LabProcess,
  ) {}

  /** Starts `nfcapd -w DIR -p PORT -b ADDRESS` on collector k and waits until it listens. */
  static async start(lab: Lab, opts: { collector?: number; port: number; name: string }): Promise<Nfcapd> {
    const k = opts.collector ?? 0;
    const host = lab.collectorHost(k);
    const address = lab.collector(k);
    const dir = lab.file(`nfcapd-${opts.name}`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    // -t 3600: one file for the whole run; SIGTERM writes it out.
    const p = lab.spawn(host, 'nfcapd', ['-w', dir, '-p', String(opts.port), '-b', address, '-t', '3600'], {
      name: `nfcapd on ${host} ${address}:${opts.port}`,
      logFile: join(dir, '..', `nfcapd-${opts.name}.log`),
    });
    await lab.waitUdpListening(host, opts.port).catch((err: Error) => {
      p.signal('SIGKILL');
      throw new LabError(`${err.message}${p.stderr.trim() ? `\n${p.stderr.trim()}` : ''}`);
    });
    return new Nfcapd(host, address, opts.port, dir, p);
  }

  /** Stops nfcapd with SIGTERM, which flushes what it collected to its file. */
  async stop(): Promise<void> {
    const s = await this.process.stop({ timeoutMs: 10_000 });
    if (s.code !== 0 && s.signal === null) throw new LabError(`nfcapd on ${this.host} exited ${s.code}: ${this.process.stderr.trim()}`);
  }

  /** nfcapd's own summary line ("Flows: 120, Packets: 480, ..."), once stopped. */
  get summary(): string {
    return /Ident: .*$/m.exec(this.process.stdout + this.process.stderr)?.[0] ?? '';
  }

  /** The files nfcapd wrote (nfcapd.YYYYMMDDhhmm). */
  files(): string[] {
    if (!existsSync(this.dir)) return [];
    return readdirSync(this.dir)
      .filter((f) => /^nfcapd\.\d+$/.test(f))
      .map((f) => join(this.dir, f));
  }

  /** Every flow record nfcapd stored, read back with nfdump. */
  async flows(): Promise<NfdumpFlow[]> {
    return readFlows(this.dir);
  }
}

/** Reads flow records from an nfcapd directory (or file) with nfdump. */
export async function readFlows(dirOrFile: string): Promise<NfdumpFlow[]> {
  const r = await run('nfdump', [statSync(dirOrFile).isDirectory() ? '-R' : '-r', dirOrFile, '-q', '-N', '-o', 'fmt:%ra %sa %da %sp %dp %pr %pkt']);
  const flows: NfdumpFlow[] = [];
  for (const line of r.stdout.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 7 || !/^\d+\.\d+\.\d+\.\d+$/.test(f[0])) continue; // "No matching flows", blank lines
    flows.push({ exporter: f[0], src: f[1], dst: f[2], srcPort: Number(f[3]), dstPort: Number(f[4]), protocol: f[5], packets: Number(f[6]) });
  }
  return flows;
}

// ---- softflowd / nfreplay ----

export interface SoftflowdResult {
  /** Flows softflowd says it exported. */
  flows: number;
  records: number;
  datagrams: number;
  failures: number;
  output: string;
}

/**
 * Runs `softflowd -r CAPTURE` in the exporter, exporting NetFlow v9 (version 9) or IPFIX (10)
 * to the monitored host from `source`. softflowd exits at the end of the capture after
 * exporting every flow. (`-c none`: with a control socket, softflowd 1.1.0 in -r mode blocks in
 * accept() before reading the file.)
 */
export async function runSoftflowd(lab: Lab, opts: { capture: string; version: 9 | 10; port: number; source: string }): Promise<SoftflowdResult> {
  await lab.setExporterSource(opts.source);
  const r = await lab.exec(
    'exporter',
    'softflowd',
    ['-r', opts.capture, '-n', `${lab.monitored}:${opts.port}`, '-v', String(opts.version), '-d', '-c', 'none', '-p', lab.file('softflowd.pid')],
    { timeoutMs: 30_000 },
  );
  const output = r.stdout + r.stderr;
  const m = /Flows exported: (\d+) \((\d+) records\) in (\d+) packets \((\d+) failures\)/.exec(output);
  if (!m) throw new LabError(`softflowd did not report what it exported:\n${output.trim()}`);
  return { flows: Number(m[1]), records: Number(m[2]), datagrams: Number(m[3]), failures: Number(m[4]), output };
}

/** Replays an nfcapd file as NetFlow v9 from the exporter (`nfreplay -H monitored -p PORT -v 9 -r FILE`). */
export async function runNfreplay(lab: Lab, opts: { file: string; port: number; source: string }): Promise<void> {
  await lab.setExporterSource(opts.source);
  await lab.exec('exporter', 'nfreplay', ['-H', lab.monitored, '-p', String(opts.port), '-v', '9', '-d', '100', '-r', opts.file], { timeoutMs: 30_000 });
}

// ---- tcpdump / tshark ----

/** A UDP datagram (or IPv4 fragment) as tshark dissected it from a capture. */
export interface CapturedPacket {
  src: string;
  dst: string;
  /** 0 for a non-first fragment (no UDP header). */
  srcPort: number;
  dstPort: number;
  ipLength: number;
  df: boolean;
  moreFragments: boolean;
  fragmentOffset: number;
  /** tshark's verdict on the UDP checksum: good, bad, or unverified (none, or a fragment). */
  checksum: 'good' | 'bad' | 'unverified';
}

/** tcpdump writing a host's interface to a file. */
export class Tcpdump {
  private constructor(
    readonly file: string,
    private readonly process: LabProcess,
  ) {}

  /**
   * Starts `tcpdump -i IFACE -w FILE FILTER` in `host` and waits until it captures.
   *
   * `snaplen` (default 0: whole packets) and `bufferKiB` (tcpdump -B; default libpcap's 2 MiB)
   * matter for bursts: in immediate mode libpcap sizes each ring frame for the snap length, so
   * with -s 0 (256 KiB frames) the default buffer holds about 8 packets, and a burst (softflowd
   * exporting a whole capture at once) overflows it. For bursts pass e.g. snaplen 2048.
   */
  static async start(lab: Lab, host: LabHost, opts: { iface: string; filter: string; name: string; snaplen?: number; bufferKiB?: number }): Promise<Tcpdump> {
    const file = lab.file(`${opts.name}.pcap`);
    const sizing = ['-s', String(opts.snaplen ?? 0), ...(opts.bufferKiB ? ['-B', String(opts.bufferKiB)] : [])];
    const p = lab.spawn(host, 'tcpdump', ['-i', opts.iface, '-n', '-U', '--immediate-mode', '-Z', 'root', ...sizing, '-w', file, opts.filter], { name: `tcpdump on ${host}:${opts.iface}` });
    await p.waitForLine(/listening on/, { stream: 'stderr', timeoutMs: 10_000 });
    return new Tcpdump(file, p);
  }

  /** Stops the capture (SIGTERM flushes the file). */
  async stop(): Promise<void> {
    await this.process.stop({ signal: 'SIGTERM', timeoutMs: 5000 });
  }

  /** Packets written to the file so far (tcpdump -U writes each at once). */
  records(): number {
    return countRecords(this.file);
  }

  /** The UDP packets captured, dissected by tshark. */
  packets(): Promise<CapturedPacket[]> {
    return readCapture(this.file);
  }
}

/** Records in a classic pcap file, by walking the record headers (a partly written last one not counted). */
export function countRecords(file: string): number {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch {
    return 0;
  }
  if (buf.length < 24) return 0;
  const magic = buf.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  let n = 0;
  for (let off = 24; off + 16 <= buf.length; n++) {
    const caplen = le ? buf.readUInt32LE(off + 8) : buf.readUInt32BE(off + 8);
    if (off + 16 + caplen > buf.length) break;
    off += 16 + caplen;
  }
  return n;
}

/** Dissects a capture's IPv4/UDP packets with tshark (checksums verified). */
export async function readCapture(file: string): Promise<CapturedPacket[]> {
  const fields = ['ip.src', 'ip.dst', 'udp.srcport', 'udp.dstport', 'ip.len', 'ip.flags.df', 'ip.flags.mf', 'ip.frag_offset', 'udp.checksum.status'];
  const r = await run('tshark', [
    '-r', file, '-n', '-o', 'udp.check_checksum:TRUE', '-o', 'ip.defragment:FALSE', '-Y', 'ip', '-T', 'fields', '-E', 'separator=\t', ...fields.flatMap((f) => ['-e', f]),
  ], { timeoutMs: 30_000 });
  const flag = (v: string) => v === '1' || v === 'True' || v === 'true';
  return r.stdout
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => {
      const f = l.split('\t');
      return {
        src: f[0],
        dst: f[1],
        srcPort: Number(f[2] || 0),
        dstPort: Number(f[3] || 0),
        ipLength: Number(f[4]),
        df: flag(f[5]),
        moreFragments: flag(f[6]),
        fragmentOffset: Number(f[7] || 0),
        checksum: f[8] === '1' ? 'good' : f[8] === '0' ? 'bad' : 'unverified',
      } satisfies CapturedPacket;
    });
}

// ---- a datagram with DF set ----

/**
 * Sends one UDP datagram of `size` bytes with DF set (IP_PMTUDISC_DO) from the exporter, through
 * the kernel's ordinary UDP stack (Debian's /usr/bin/python3, independent of mirrorgate's code).
 * The payload is a fixed pattern; returns the source port and the payload's sha256.
 */
export async function sendDfDatagram(lab: Lab, opts: { source: string; port: number; size: number }): Promise<{ srcPort: number; sha256: string }> {
  const script = [
    'import hashlib, socket, sys',
    's = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)',
    's.setsockopt(socket.IPPROTO_IP, 10, 2)  # IP_MTU_DISCOVER = IP_PMTUDISC_DO: DF set, never fragment locally',
    's.bind((sys.argv[1], 0))',
    'p = bytes((i * 7 + 3) & 255 for i in range(int(sys.argv[4])))',
    's.sendto(p, (sys.argv[2], int(sys.argv[3])))',
    'print(s.getsockname()[1], hashlib.sha256(p).hexdigest())',
  ].join('\n');
  const r = await lab.exec('exporter', '/usr/bin/python3', ['-c', script, opts.source, lab.monitored, String(opts.port), String(opts.size)]);
  const [port, sha256] = r.stdout.trim().split(' ');
  return { srcPort: Number(port), sha256 };
}
