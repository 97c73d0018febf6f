/**
 * The destination tests' exporter: replays REAL softflowd NetFlow v9 datagrams (recorded by
 * helpers.recordSoftflowd) from many exporter addresses at once, run in the lab's exporter host:
 *
 *   node replayer.js replay --recording FILE.json --from A,A.. --to HOST:PORT --rate R [--count N]
 *
 * One UDP socket per exporter address (its own ephemeral source port, kept for the whole run, as
 * softflowd's is). At tick i (every 1/R s, drift-corrected) datagram i of the recording goes out
 * from every exporter, byte for byte as softflowd sent it: same sequence numbers, and templates
 * exactly where softflowd put them (its first datagram and every 16th after it). That refresh
 * interval is what the failover tests measure against: a collector that misses the templates
 * cannot decode a data datagram until the exporter's next refresh, unless the gateway sends the
 * cached templates ahead.
 *
 * Prints JSON lines: {"event":"ready","ports":{addr:port}}, {"event":"tick","index":i,"t":ms}
 * after each tick's datagrams were handed to the kernel, and {"event":"final","ticks":n} when it
 * stops (after N ticks, or at "stop" on stdin, or SIGTERM). Uses only node:dgram (nothing of
 * mirrorgate's). Does nothing unless the first argument is "replay".
 */
import { createSocket, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const print = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`);

async function replay(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { recording: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' }, rate: { type: 'string' }, count: { type: 'string' } },
  });
  const { datagrams: encoded } = JSON.parse(readFileSync(values.recording ?? '', 'utf8')) as { datagrams: string[] };
  const datagrams = encoded.map((d) => Buffer.from(d, 'base64'));
  const sources = (values.from ?? '').split(',').filter(Boolean);
  const [host, portText] = (values.to ?? '').split(':');
  const port = Number(portText);
  const rate = Number(values.rate);
  const count = Math.min(Number(values.count ?? datagrams.length), datagrams.length);
  if (!sources.length || !host || !(port > 0) || !(rate > 0) || !(count > 0)) throw new Error('expected --recording, --from, --to host:port, --rate > 0');

  const sockets: Socket[] = [];
  const ports: Record<string, number> = {};
  for (const a of sources) {
    const s = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind({ address: a, port: 0 }, () => resolve());
    });
    s.on('error', (err) => process.stderr.write(`replayer: ${a}: ${err.message}\n`));
    ports[a] = s.address().port;
    sockets.push(s);
  }
  print({ event: 'ready', ports });

  let stop = false;
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (d: string) => {
    if (d.split('\n').some((l) => l.trim() === 'stop')) stop = true;
  });
  process.on('SIGTERM', () => (stop = true));

  const period = 1000 / rate;
  const t0 = performance.now();
  let ticks = 0;
  for (let i = 0; i < count && !stop; i++) {
    const wait = t0 + i * period - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    if (stop) break;
    await Promise.all(sockets.map((s) => new Promise<void>((resolve) => s.send(datagrams[i], port, host, () => resolve()))));
    ticks++;
    print({ event: 'tick', index: i, t: Date.now() });
  }
  for (const s of sockets) s.close();
  print({ event: 'final', ticks });
  process.exit(0);
}

if (process.argv[2] === 'replay') {
  replay(process.argv.slice(3)).catch((err: Error) => {
    process.stderr.write(`replayer: ${err.message}\n`);
    process.exit(1);
  });
}
