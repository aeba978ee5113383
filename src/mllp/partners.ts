/**
 * Which partner a message over MLLP belongs to: the one whose pipeline is `format: hl7v2` with
 * `hl7v2.sendingFacility` equal to the message's MSH-4.1. Pipelines are read the way intake reads
 * them (loadPartnerPipeline, `<pipelines>/<partner>.yaml`), and read again when a file changes, so
 * an operator's edit applies to the next message as it does to the next dropped file.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../config/index.ts';
import { loadPartnerPipeline, type Pipeline } from '../pipeline/index.ts';

export type FacilityLookup =
  | { kind: 'found'; pipeline: Pipeline }
  | { kind: 'unknown' }
  /** Two hl7v2 pipelines name the same facility: whose message it is cannot be told. */
  | { kind: 'ambiguous'; partners: string[] };

interface Entry {
  mtimeMs: number;
  size: number;
  pipeline: Pipeline | undefined;
}

/** The pipelines folder, read lazily and again per file when its size or mtime changes. */
export class FacilityDirectory {
  readonly #dir: string;
  readonly #log: Logger;
  readonly #entries = new Map<string, Entry>();

  constructor(pipelinesDir: string, log: Logger) {
    this.#dir = pipelinesDir;
    this.#log = log;
  }

  async lookup(facility: string): Promise<FacilityLookup> {
    const found = (await this.#pipelines()).filter((p) => p.format === 'hl7v2' && p.hl7v2?.sendingFacility === facility);
    if (found.length === 0) return { kind: 'unknown' };
    if (found.length > 1) return { kind: 'ambiguous', partners: found.map((p) => p.partner).sort() };
    return { kind: 'found', pipeline: found[0]! };
  }

  async #pipelines(): Promise<Pipeline[]> {
    let names: string[];
    try {
      names = (await fs.readdir(this.#dir)).filter((n) => n.endsWith('.yaml') && !n.startsWith('.'));
    } catch (e) {
      this.#log.warn({ err: (e as Error).message }, 'mllp: the pipelines folder cannot be read');
      return [];
    }
    const present = new Set(names);
    for (const name of [...this.#entries.keys()]) if (!present.has(name)) this.#entries.delete(name);
    const out: Pipeline[] = [];
    for (const name of names) {
      let st;
      try {
        st = await fs.stat(path.join(this.#dir, name));
      } catch {
        continue; // removed since the listing
      }
      let entry = this.#entries.get(name);
      if (!entry || entry.mtimeMs !== st.mtimeMs || entry.size !== st.size) {
        entry = { mtimeMs: st.mtimeMs, size: st.size, pipeline: undefined };
        try {
          entry.pipeline = await loadPartnerPipeline(this.#dir, name.slice(0, -'.yaml'.length));
        } catch (e) {
          // Its files are refused by intake with a note; its messages find no partner here.
          this.#log.warn({ pipeline: name, err: (e as Error).message }, 'mllp: pipeline not usable; its messages are refused');
        }
        this.#entries.set(name, entry);
      }
      if (entry.pipeline) out.push(entry.pipeline);
    }
    return out;
  }
}
