/**
 * The safety valve of files that remove: a partner that sends part of its roster by mistake (one
 * class, a test export) as a replace file, or its whole roster to a remove pipeline, would
 * otherwise silently empty its Group. A run that would remove more than the pipeline's
 * `group.maxRemoveShare` of the Group — replace, remove, or rows marked remove — is held for an
 * operator instead.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { writeNote } from '../intake/drop.ts';
import type { GroupMode, MembershipPlan, RunHold } from '../store/index.ts';

/**
 * Fewer removals than this are never held, whatever the share: in a Group of a handful of
 * people one leaver is already a large share, and holding every such file would teach operators
 * to confirm without looking.
 */
export const HOLD_MIN_REMOVALS = 5;

/**
 * The hold a plan calls for, or undefined when it may be applied at once. Whatever the mode: a
 * remove file that takes out most of the Group is as likely a mistake (the whole roster sent to
 * the remove pipeline) as a replace file that leaves most of it out.
 */
export function holdFor(plan: MembershipPlan, maxRemoveShare: number, at: string): RunHold | undefined {
  if (plan.before === 0 || plan.removed.length < HOLD_MIN_REMOVALS) return undefined;
  const share = plan.removed.length / plan.before;
  if (share <= maxRemoveShare) return undefined;
  return holdNumbers(plan, maxRemoveShare, at);
}

export function holdNumbers(plan: MembershipPlan, maxRemoveShare: number, at: string): RunHold {
  return {
    groupId: plan.groupId,
    groupVersion: plan.version,
    before: plan.before,
    wouldAdd: plan.added.length,
    wouldRemove: plan.removed.length,
    share: plan.before === 0 ? 0 : plan.removed.length / plan.before,
    maxRemoveShare,
    heldAt: at,
  };
}

export const percent = (x: number) => `${(100 * x).toFixed(1)} %`;

/** One line for status, the console and the CLI: the numbers an operator decides on. */
export function describeHold(h: RunHold): string {
  return `${h.before} members now; would add ${h.wouldAdd}, remove ${h.wouldRemove} (${percent(h.share)} of the Group; at most ${percent(h.maxRemoveShare)} without a confirmation)`;
}

/** What the run's summary file says about a hold. */
export function holdSummary(h: RunHold): Record<string, unknown> {
  const status = !h.decision
    ? "waiting for the IIS's confirmation: the Group is unchanged until then"
    : h.decision.action === 'confirmed'
      ? `confirmed by the IIS at ${h.decision.at}: applied`
      : `discarded by the IIS at ${h.decision.at}: not applied, the Group is unchanged`;
  return { wouldAdd: h.wouldAdd, wouldRemove: h.wouldRemove, share: Number(h.share.toFixed(4)), maxRemoveShare: h.maxRemoveShare, heldAt: h.heldAt, status };
}

/**
 * The partner's note: `<file>.held.txt` while the change waits, replaced by `.confirmed.txt` or
 * `.discarded.txt` once an operator decides. Counts only; the operator's name and reason stay in
 * the IIS's audit log.
 */
export async function writeHoldNote(outDir: string, fileName: string, runId: string, h: RunHold, mode: GroupMode = 'replace'): Promise<void> {
  const held = path.join(outDir, `${fileName}.held.txt`);
  const replace = mode === 'replace';
  if (!h.decision) {
    await writeNote(outDir, fileName, 'held', [
      `${fileName}: matched (run ${runId}); the result file is written, but the Group change is waiting for the IIS's confirmation.`,
      `This file would remove ${h.wouldRemove} of the ${h.before} people in Group ${h.groupId} (${percent(h.share)}) and add ${h.wouldAdd}; a file may remove at most ${percent(h.maxRemoveShare)} without a check.`,
      replace
        ? 'Your Group is unchanged until the IIS confirms. If this file is not your whole roster, send the whole roster.'
        : 'Your Group is unchanged until the IIS confirms. If not all of these people are leaving, send a file with only those who are.',
    ]);
    return;
  }
  await fs.rm(held, { force: true });
  await writeNote(
    outDir,
    fileName,
    h.decision.action,
    h.decision.action === 'confirmed'
      ? replace
        ? [`${fileName}: the IIS confirmed the Group change of run ${runId}: Group ${h.groupId} was replaced by this file's matched people (added ${h.wouldAdd}, removed ${h.wouldRemove}).`]
        : [`${fileName}: the IIS confirmed the Group change of run ${runId}: Group ${h.groupId} was changed as this file asked (added ${h.wouldAdd}, removed ${h.wouldRemove}).`]
      : replace
        ? [`${fileName}: the IIS did not apply the Group change of run ${runId}; Group ${h.groupId} is unchanged. Send the whole roster to replace it.`]
        : [`${fileName}: the IIS did not apply the Group change of run ${runId}; Group ${h.groupId} is unchanged. Send a file with only the people who are leaving.`],
  );
}
