/**
 * The review queue: each possible or ambiguous row beside its candidates, field by field, with
 * the comparison level and weight of every field, and one button per decision.
 */
import type { IndexPatient, PersonFields, RowResult, ScoredCandidate } from '../../model/index.ts';
import type { ReviewItem, ReviewState } from '../../store/index.ts';
import { html, qs, when, type Html } from '../html.ts';

export interface ReviewView {
  item: ReviewItem;
  row: RowResult | undefined;
  patients: ReadonlyMap<string, IndexPatient>;
}

const FIELDS: [keyof PersonFields, string][] = [
  ['given', 'Given name'],
  ['middle', 'Middle name'],
  ['family', 'Family name'],
  ['suffix', 'Suffix'],
  ['birthDate', 'Birth date'],
  ['sex', 'Sex'],
  ['street', 'Street'],
  ['city', 'City'],
  ['state', 'State'],
  ['zip', 'ZIP'],
  ['phone', 'Phone'],
  ['mothersMaiden', "Mother's maiden name"],
  ['birthOrder', 'Birth order'],
];

/** Fields most sources never send (HL7 v2's PID-6 and PID-25): shown only when the row or a candidate has one. */
const OCCASIONAL = new Set<keyof PersonFields>(['mothersMaiden', 'birthOrder']);

export const ITEMS_PER_PAGE = 20;

/** One table row: the label, the roster's value, each candidate's, and the comparison's field name. */
interface CompareRow {
  label: string;
  mine: string;
  theirs: (p: IndexPatient | undefined) => string;
  field: string;
}

/**
 * The person's fields, then one row per identifier the roster row carried (each beside the
 * candidates' values of the same system), or a single row of the candidates' identifiers.
 */
function compareRows(submitted: RowResult['submitted'], patients: readonly (IndexPatient | undefined)[]): CompareRow[] {
  const present = (field: keyof PersonFields) => !OCCASIONAL.has(field) || !!submitted?.person[field] || patients.some((p) => !!p?.person[field]);
  const rows: CompareRow[] = FIELDS.filter(([field]) => present(field)).map(([field, label]) => ({ label, mine: submitted?.person[field] ?? '', theirs: (p) => p?.person[field] ?? '', field }));
  const legacy = (submitted as { identifier?: { system: string; value: string } } | undefined)?.identifier;
  const ids = submitted?.identifiers ?? (legacy ? [{ ...legacy, label: 'id' }] : []);
  const valuesOf = (p: IndexPatient | undefined, system?: string) => (p?.identifiers ?? []).filter((i) => !system || i.system === system).map((i) => i.value).join(', ');
  if (ids.length === 0) rows.push({ label: 'Identifier', mine: '', theirs: (p) => valuesOf(p), field: 'identifier' });
  for (const id of ids) {
    // A reviewer needs to see whether SSNs agree, not the numbers: the last four tell.
    const shown = id.kind === undefined ? (v: string) => v : (v: string) => v.split(', ').map((x) => `…${x.slice(-4)}`).join(', ');
    rows.push({ label: `Identifier (${id.label})`, mine: shown(id.value), theirs: (p) => shown(valuesOf(p, id.system)), field: legacy ? 'identifier' : `identifier[${id.label}]` });
  }
  return rows;
}

function levelCell(c: ScoredCandidate, field: string): Html {
  const cmp = c.comparisons.find((x) => x.field === field);
  if (!cmp) return html``;
  const sign = cmp.weight > 0.05 ? 'pos' : cmp.weight < -0.05 ? 'neg' : 'zero';
  return html`<span class="reason ${sign}">${cmp.level} ${cmp.weight >= 0 ? '+' : ''}${cmp.weight.toFixed(1)}</span>`;
}

function itemCard(v: ReviewView, returnTo: string): Html {
  const { item, row } = v;
  const submitted = row?.submitted;
  const cands: ScoredCandidate[] = item.candidates.map(
    (id) => row?.candidates.find((c) => c.patientId === id) ?? { patientId: id, score: item.scores.find((s) => s.patientId === id)?.score ?? 0, probability: 0, comparisons: [] },
  );
  const open = item.state === 'open';
  return html`<section class="review-item" id="item-${item.id}" data-item="${item.id}">
<header><h2>#${item.id} <span class="count out-${item.outcome}">${item.outcome}</span></h2>
<p>${item.partner} · record <b>${item.recordId}</b> · line ${item.line} of <a href="/runs/${item.runId}">run ${item.runId.slice(0, 8)}</a>${item.groupId ? html` · Group <a href="/groups/${item.groupId}">${item.groupId}</a>` : ''}</p>
${item.action === 'remove' ? html`<p class="removal">The partner asks to <b>remove</b> this person from the Group: accepting a candidate takes that patient out of it.</p>` : ''}
${open ? '' : html`<p class="decided">${item.state}${item.patientId ? html` Patient/${item.patientId}` : ''} by <b>${item.decidedBy}</b> ${when(item.decidedAt)}</p>`}
</header>
<div class="compare-wrap"><table class="compare">
<thead><tr><th></th><th class="roster">Roster row</th>${cands.map((c) => html`<th>Patient/${c.patientId}${c.via === undefined ? '' : html`<br><small class="via" title="the row was compared with this record, merged into Patient/${c.patientId} by the identity feed">as merged record Patient/${c.via}</small>`}</th>`)}</tr></thead>
<tbody>
${compareRows(submitted, cands.map((c) => v.patients.get(c.via ?? c.patientId))).map(({ label, mine, theirs: valueOf, field }) => {
  return html`<tr><th>${label}</th><td class="roster">${mine}</td>${cands.map((c) => {
    // The values the levels were judged on: those of the merged record the row was compared with, if any.
    const theirs = valueOf(v.patients.get(c.via ?? c.patientId));
    return html`<td class="${mine && theirs && mine === theirs ? 'same' : ''}">${theirs} ${levelCell(c, field)}</td>`;
  })}</tr>`;
})}
<tr class="score"><th>Score</th><td class="roster"></td>${cands.map((c) => html`<td><b>${c.score.toFixed(1)}</b>${c.probability ? html` <small>(p ${c.probability.toFixed(3)})</small>` : ''}${c.guard ? html` <span class="guard" title="kept from an auto-match by the ${c.guard} guard">guard: ${c.guard}</span>` : ''}</td>`)}</tr>
${open
  ? html`<tr class="actions"><th></th><td class="roster"><form method="post" action="/review/${item.id}/reject"><input type="hidden" name="returnTo" value="${returnTo}"><button type="submit" class="reject">None of these</button></form></td>${cands.map(
      (c) => html`<td><form method="post" action="/review/${item.id}/accept"><input type="hidden" name="patientId" value="${c.patientId}"><input type="hidden" name="returnTo" value="${returnTo}"><button type="submit" class="accept">${item.action === 'remove' ? 'Accept and remove' : 'Accept'} Patient/${c.patientId}</button></form></td>`,
    )}</tr>`
  : ''}
</tbody></table></div>
${submitted ? '' : html`<p class="muted">This row was recorded before roster values were kept for review; compare with the partner's file, line ${item.line}.</p>`}
</section>`;
}

export function reviewPage(views: readonly ReviewView[], f: { partner?: string; outcome?: string; state: ReviewState; page: number }, total: number, partners: readonly string[]): Html {
  const pages = Math.max(1, Math.ceil(total / ITEMS_PER_PAGE));
  const returnTo = `/review${qs({ partner: f.partner, outcome: f.outcome, state: f.state === 'open' ? undefined : f.state, page: f.page > 1 ? f.page : undefined })}`;
  return html`<h1>Review <small class="muted">${total} ${f.state}</small></h1>
<form class="filters" method="get" action="/review">
  <label>Partner <select name="partner"><option value="">all</option>${partners.map((p) => html`<option${p === f.partner ? html` selected` : ''}>${p}</option>`)}</select></label>
  <label>Outcome <select name="outcome"><option value="">both</option>${['possible', 'ambiguous'].map((o) => html`<option${o === f.outcome ? html` selected` : ''}>${o}</option>`)}</select></label>
  <label>State <select name="state">${(['open', 'accepted', 'rejected', 'superseded'] as const).map((s) => html`<option${s === f.state ? html` selected` : ''}>${s}</option>`)}</select></label>
  <button type="submit">Filter</button>
</form>
<p class="muted">Accept the candidate who is the person on the roster row: they join the run's Group and the partner's later files match the record to them. "None of these" keeps the candidates from being offered for this record again.</p>
${views.length === 0 ? html`<p class="empty">Nothing to review.</p>` : views.map((v) => itemCard(v, returnTo))}
${pages > 1 ? html`<nav class="pager">${f.page > 1 ? html`<a href="${qs({ partner: f.partner, outcome: f.outcome, state: f.state, page: f.page - 1 })}">‹ previous</a>` : ''} page ${f.page} of ${pages} ${f.page < pages ? html`<a href="${qs({ partner: f.partner, outcome: f.outcome, state: f.state, page: f.page + 1 })}">next ›</a>` : ''}</nav>` : ''}`;
}
