/** Human-readable reports of accounting, shared by replay, demo and status. */
import type { Accounting } from '../pipeline/accounting.js';

const fmt = (n: number) => n.toLocaleString('en-US');

export function formatBytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let u = 0;
  while (n >= 1000 && u < units.length - 1) {
    n /= 1000;
    u++;
  }
  return `${u === 0 ? n : n.toFixed(1)} ${units[u]}`;
}

export function formatAccounting(a: Accounting, describe: (reason: string) => string = () => ''): string {
  const lines = [
    `  received     ${fmt(a.rx).padStart(10)} packets (${formatBytes(a.rxBytes)})`,
    ...(a.socketDrops ? [`  not received ${fmt(a.socketDrops).padStart(10)} packets: the kernel dropped them, receive buffer (net.core.rmem_max) or XDP ring full`] : []),
    `  forwarded    ${fmt(a.forwarded).padStart(10)} packets`,
    `  transmitted  ${fmt(a.tx).padStart(10)} packets (${formatBytes(a.txBytes)}; fragments and copies included)`,
  ];
  if (a.txErrors) lines.push(`  tx errors    ${fmt(a.txErrors).padStart(10)}`);
  const drops = Object.entries(a.drops).sort((x, y) => y[1] - x[1]);
  const dropped = drops.reduce((s, [, v]) => s + v, 0);
  lines.push(`  dropped      ${fmt(dropped).padStart(10)} packets${drops.length ? ':' : ''}`);
  for (const [reason, n] of drops) lines.push(`    ${reason.padEnd(24)} ${fmt(n).padStart(8)}  ${describe(reason)}`.trimEnd());
  for (const [reason, n] of Object.entries(a.copyDrops)) {
    lines.push(`  copies/fragments not sent: ${reason} ${fmt(n)}  ${describe(reason)}`.trimEnd());
  }
  const r = a.reassembly;
  if (r.reassembled || r.merged || r.waiting) {
    lines.push(`  reassembly   ${fmt(r.reassembled)} datagrams, ${fmt(r.merged)} fragments merged, ${fmt(r.waiting)} waiting`);
  }
  lines.push(
    a.balanced
      ? '  accounting   balanced: received = forwarded + dropped + merged + waiting'
      : '  accounting   NOT BALANCED: received ≠ forwarded + dropped + merged + waiting (a bug; please report)',
  );
  return lines.join('\n');
}
