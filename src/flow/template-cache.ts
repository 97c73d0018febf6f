/**
 * The latest NetFlow v9 / IPFIX templates (and options templates) of each exporter stream, kept
 * as the raw template records they arrived as. Two uses: counting IPFIX data records (the
 * sequence number counts records, and only the template says how long one is), and template
 * safety — when a stream moves to a backend that has not seen its templates, they are sent there
 * first, so the collector can decode the very next data packet.
 *
 * Bounded: a fixed number of templates and bytes per worker; past that, new templates are counted
 * as not cached. Memory is taken only when a template is new or changed, never per packet.
 */
export interface CachedTemplate {
  templateId: number;
  /** The set/flowset ID it came in: template (v9 0, IPFIX 2) or options template (v9 1, IPFIX 3). */
  setId: number;
  bytes: Uint8Array;
  /** Bytes per data record, -1 when variable-length. */
  recordLength: number;
}

export interface TemplateCacheLimits {
  maxTemplates: number;
  maxBytes: number;
}

export const DEFAULT_TEMPLATE_LIMITS: TemplateCacheLimits = { maxTemplates: 4096, maxBytes: 4 * 1024 * 1024 };

export class TemplateCache {
  private readonly byStream: (Map<number, CachedTemplate> | undefined)[] = [];
  private templates = 0;
  private bytes = 0;
  /** Changes per stream, so a sender can tell whether a backend has the current set. */
  readonly version: Uint32Array;

  constructor(
    streams: number,
    private readonly limits: TemplateCacheLimits = DEFAULT_TEMPLATE_LIMITS,
  ) {
    this.version = new Uint32Array(streams);
  }

  get size(): { templates: number; bytes: number } {
    return { templates: this.templates, bytes: this.bytes };
  }

  /**
   * Stores the record `buf[off..off+len)`; returns 1 when new or changed, 0 when unchanged, -1
   * when the cache is full.
   */
  put(stream: number, setId: number, templateId: number, recordLength: number, buf: Uint8Array, off: number, len: number): number {
    let map = this.byStream[stream];
    const old = map?.get(templateId);
    if (old && old.setId === setId && old.bytes.length === len && equalBytes(old.bytes, buf, off)) return 0;
    const growth = len - (old ? old.bytes.length : 0);
    if ((!old && this.templates >= this.limits.maxTemplates) || this.bytes + growth > this.limits.maxBytes) return -1;
    if (!map) {
      map = new Map();
      this.byStream[stream] = map;
    }
    // A copy: the packet's buffer is reused for the next batch (Buffer#slice would only be a view).
    map.set(templateId, { templateId, setId, bytes: new Uint8Array(buf.subarray(off, off + len)), recordLength });
    if (!old) this.templates++;
    this.bytes += growth;
    this.version[stream]++;
    return 1;
  }

  /** IPFIX template withdrawal (RFC 7011 §8.1). */
  withdraw(stream: number, templateId: number): void {
    const map = this.byStream[stream];
    const old = map?.get(templateId);
    if (!map || !old) return;
    map.delete(templateId);
    this.templates--;
    this.bytes -= old.bytes.length;
    this.version[stream]++;
  }

  /** Bytes per data record of `templateId`, -1 variable, -2 unknown template. */
  recordLength(stream: number, templateId: number): number {
    const t = this.byStream[stream]?.get(templateId);
    return t ? t.recordLength : -2;
  }

  /** The stream's templates, if any, in template-ID order. */
  list(stream: number): CachedTemplate[] {
    const map = this.byStream[stream];
    return map ? [...map.values()].sort((a, b) => a.templateId - b.templateId) : [];
  }

  has(stream: number): boolean {
    return (this.byStream[stream]?.size ?? 0) > 0;
  }
}

function equalBytes(a: Uint8Array, buf: Uint8Array, off: number): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== buf[off + i]) return false;
  return true;
}
