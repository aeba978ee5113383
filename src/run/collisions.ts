/**
 * Pipeline files that would fight over a Group: two files naming the same group id (only the
 * owner's runs are applied; the other partner's are refused), or a file naming a Group that
 * already belongs to another partner. Said once at serve's start-up, so the operator fixes the
 * file before a partner's drop is refused.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { loadPipelineFile, type Pipeline } from '../pipeline/index.ts';
import { listGroups, type Queryable } from '../store/index.ts';

export interface PipelineGroupWarning {
  groupId: string;
  /** The pipeline files (base names) that name it. */
  files: string[];
  partners: string[];
  /** The partner the store says owns it, when it exists. */
  owner: string | null;
  message: string;
}

export async function pipelineGroupWarnings(db: Queryable, pipelinesDir: string): Promise<PipelineGroupWarning[]> {
  let names: string[];
  try {
    names = (await fs.readdir(pipelinesDir)).filter((n) => /\.ya?ml$/i.test(n)).sort();
  } catch {
    return [];
  }
  const byGroup = new Map<string, { file: string; pipeline: Pipeline }[]>();
  for (const name of names) {
    // An invalid pipeline is reported when its partner's file arrives; it names no Group here.
    const pipeline = await loadPipelineFile(path.join(pipelinesDir, name)).catch(() => undefined);
    if (!pipeline) continue;
    const list = byGroup.get(pipeline.group.id) ?? [];
    list.push({ file: name, pipeline });
    byGroup.set(pipeline.group.id, list);
  }
  const owners = new Map((await listGroups(db)).map((g) => [g.id, g.partner]));
  const out: PipelineGroupWarning[] = [];
  for (const [groupId, list] of byGroup) {
    const owner = owners.get(groupId) ?? null;
    const partners = [...new Set(list.map((x) => x.pipeline.partner))];
    const foreign = owner !== null && partners.some((p) => p !== owner);
    if (partners.length < 2 && !foreign) continue;
    const files = list.map((x) => x.file);
    const message =
      partners.length >= 2
        ? `pipeline files ${files.join(', ')} (partners ${partners.join(', ')}) name the same Group "${groupId}"; ${owner ? `it belongs to ${owner}: the others' files will be refused` : 'the first partner to complete a run will own it, and the others\' files will be refused'}`
        : `pipeline ${files.join(', ')} (partner ${partners.join(', ')}) names Group "${groupId}", which belongs to ${owner}: its files will be refused`;
    out.push({ groupId, files, partners, owner, message });
  }
  return out;
}
