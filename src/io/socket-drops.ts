/**
 * Datagrams the kernel dropped at our own UDP sockets because their receive buffer was full.
 * They never reach a worker, so no counter of ours can see them; the kernel keeps a count per
 * socket in /proc/net/udp and udp6 (the last column), found by the socket's inode. Read when a
 * report asks, never on the data path.
 */
import { readFileSync, readlinkSync } from 'node:fs';

/** The inode of the socket behind `fd` in this process, or null when it is not a socket. */
export function socketInode(fd: number): number | null {
  try {
    const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** Sums the drops column of a /proc/net/udp table over the sockets in `inodes`. */
export function parseUdpDrops(table: string, inodes: ReadonlySet<number>): number {
  let drops = 0;
  for (const line of table.split('\n').slice(1)) {
    // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
    const f = line.trim().split(/\s+/);
    if (f.length < 13 || !inodes.has(Number(f[9]))) continue;
    drops += Number(f[12]) || 0;
  }
  return drops;
}

/** Kernel drops at the given sockets, IPv4 and IPv6 tables together (a missing table counts 0). */
export function readSocketDrops(inodes: ReadonlySet<number>): number {
  if (inodes.size === 0) return 0;
  let drops = 0;
  for (const path of ['/proc/net/udp', '/proc/net/udp6']) {
    try {
      drops += parseUdpDrops(readFileSync(path, 'utf8'), inodes);
    } catch {
      // no IPv6 in this kernel, or /proc not mounted: nothing to add
    }
  }
  return drops;
}
