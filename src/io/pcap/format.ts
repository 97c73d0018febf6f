/**
 * On-disk constants shared by the capture reader and writer.
 * Classic pcap: draft-ietf-opsawg-pcap; pcapng: draft-ietf-opsawg-pcapng.
 */

/** LINKTYPE_* values from the tcpdump.org registry that the gateway deals with. */
export const LinkType = {
  ETHERNET: 1,
  RAW: 101,
  LINUX_SLL: 113,
  IPV4: 228,
  IPV6: 229,
} as const;

/** Largest captured packet accepted; matches libpcap's default maximum snapshot length. */
export const MAX_RECORD_SIZE = 262144;

/** Classic pcap magic numbers, as read big-endian from the first four bytes. */
export const PCAP_MAGIC_US = 0xa1b2c3d4;
export const PCAP_MAGIC_NS = 0xa1b23c4d;
export const PCAP_MAGIC_US_SWAPPED = 0xd4c3b2a1;
export const PCAP_MAGIC_NS_SWAPPED = 0x4d3cb2a1;
/** Kuznetzov's patched libpcap: recognised only to say so in the error. */
export const PCAP_MAGIC_MODIFIED = 0xa1b2cd34;
export const PCAP_MAGIC_MODIFIED_SWAPPED = 0x34cdb2a1;

export const PCAP_FILE_HEADER_SIZE = 24;
export const PCAP_RECORD_HEADER_SIZE = 16;
export const PCAP_VERSION_MAJOR = 2;
export const PCAP_VERSION_MINOR = 4;

/** pcapng block types. The SHB type is a byte palindrome so it reads the same in either order. */
export const BlockType = {
  SECTION_HEADER: 0x0a0d0d0a,
  INTERFACE_DESCRIPTION: 0x00000001,
  PACKET: 0x00000002,
  SIMPLE_PACKET: 0x00000003,
  ENHANCED_PACKET: 0x00000006,
} as const;

export const PCAPNG_BYTE_ORDER_MAGIC = 0x1a2b3c4d;
/** Type + length + trailing length. */
export const PCAPNG_BLOCK_OVERHEAD = 12;
export const PCAPNG_MIN_SHB_LENGTH = 28;

/** IDB option codes the reader interprets; all others are skipped. */
export const IdbOption = {
  END: 0,
  TSRESOL: 9,
  TSOFFSET: 14,
} as const;
