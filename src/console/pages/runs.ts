/** The runs list and one run's page: state, progress, timeline, counts, rows with their reasons. */
import { OUTCOMES, type Outcome, type RowResult, type ScoredCandidate } from '../../model/index.ts';
import { describeHold } from '../../run/safety.ts';
import type { RunHold, RunRecord, RunState } from '../../store/index.ts';
import { duration, html, qs, when, type Html } from '../html.ts';

export const RUN_STATES: readonly RunState[] = ['received', 'parsing', 'matching', 'running', 'held', 'completed', 'discarded', 'failed'];
const OUTCOME_LABEL: Record<Outcome, string> = { matched: 'matched', ambiguous: 'ambiguous', possible: 'possible', no_match: 'no match', invalid: 'invalid' };

export interface RunView extends RunRecord {
  chunksDone: number;
}

/** Nothing more happens without a person: the page stops polling (a held run waits for one). */
export const isFinished = (s: RunState) => s === 'completed' || s === 'failed' || s === 'held' || s === 'discarded';

/** The numbers an operator decides a held run on. */
const holdLine = (h: RunHold) => html`<span class="hold" data-hold="${h.groupId}">${describeHold(h)}</span>`;

/** The progress bar: chunks matched for queued runs; indeterminate while parsing or running inline. */
export function progress(r: RunView): Html {
  if (r.state === 'completed') return html`<progress value="1" max="1" aria-label="done">100%</progress>`;
  if (r.state === 'failed' || r.state === 'discarded') return html``;
  if (r.state === 'held') return html`<small>Group change waiting for a confirmation</small>`;
  if (r.state === 'matching' && r.chunkCount) {
    const pct = Math.floor((100 * r.chunksDone) / r.chunkCount);
    return html`<progress value="${r.chunksDone}" max="${r.chunkCount}" aria-label="${r.chunksDone} of ${r.chunkCount} chunks">${pct}%</progress> <small>${pct}%</small>`;
  }
  return html`<progress aria-label="${r.state}"></progress>`;
}

const stateBadge = (s: RunState) => html`<span class="state state-${s}">${s}</span>`;

function countsCell(counts: RunRecord['counts']): Html {
  if (!counts) return html``;
  return html`${OUTCOMES.filter((o) => counts[o]).map((o) => html`<span class="count out-${o}" title="${OUTCOME_LABEL[o]}">${OUTCOME_LABEL[o]} ${counts[o]}</span> `)}`;
}

/** The table body alone: the page polls it while runs are in progress. */
export function runRows(runs: readonly RunView[], now = new Date()): Html {
  if (runs.length === 0) return html`<tr><td colspan="8" class="empty">No runs yet. Files dropped in a partner's inbound folder appear here.</td></tr>`;
  return html`${runs.map(
    (r) => html`<tr data-run="${r.id}" data-state="${r.state}">
  <td><a href="/runs/${r.id}">${r.fileName}</a></td>
  <td>${r.partner}</td>
  <td>${when(r.receivedAt)}</td>
  <td>${stateBadge(r.state)}</td>
  <td class="progress-cell">${progress(r)}</td>
  <td>${countsCell(r.counts)}</td>
  <td class="num">${duration(r.receivedAt, r.finishedAt, now)}</td>
  <td>${r.error ? html`<code>${r.error.code}</code> ${r.error.message}` : r.state === 'held' && r.hold ? holdLine(r.hold) : ''}</td>
</tr>`,
  )}`;
}

export function runsPage(runs: readonly RunView[], f: { partner?: string; state?: string; before?: string; limit?: number }, partners: readonly string[], olderThan: string | undefined): Html {
  const refresh = `/runs/rows${qs({ partner: f.partner, state: f.state, before: f.before })}`;
  return html`<h1>Runs</h1>
<form class="filters" method="get" action="/runs">
  <label>Partner <select name="partner"><option value="">all</option>${partners.map((p) => html`<option${p === f.partner ? html` selected` : ''}>${p}</option>`)}</select></label>
  <label>State <select name="state"><option value="">all</option>${RUN_STATES.map((s) => html`<option${s === f.state ? html` selected` : ''}>${s}</option>`)}</select></label>
  <button type="submit">Filter</button>
</form>
<table class="runs">
<thead><tr><th>File</th><th>Partner</th><th>Received (UTC)</th><th>State</th><th>Progress</th><th>Rows by outcome</th><th>Duration</th><th>Error</th></tr></thead>
<tbody id="runs-body" data-refresh="${refresh}">${runRows(runs)}</tbody>
</table>
<nav class="pager">${f.before ? html`<a href="/runs${qs({ partner: f.partner, state: f.state })}">‹ newest</a>` : ''} ${olderThan ? html`<a href="/runs${qs({ partner: f.partner, state: f.state, limit: f.limit === 50 ? undefined : f.limit, before: olderThan })}">older ›</a>` : ''}</nav>`;
}

function timeline(r: RunRecord): Html {
  const steps = r.timeline.length > 0 ? r.timeline : [{ state: 'received' as RunState, at: r.receivedAt }];
  return html`<ol class="timeline">${steps.map((s, i) => {
    const next = steps[i + 1];
    return html`<li class="state-${s.state}">${stateBadge(s.state)} ${when(s.at)} ${next ? html`<small>${duration(s.at, next.at)}</small>` : ''}</li>`;
  })}</ol>`;
}

function countsTable(r: RunRecord): Html {
  if (!r.counts) return html`<p class="muted">Counts appear when the run is recorded.</p>`;
  const total = OUTCOMES.reduce((n, o) => n + (r.counts![o] ?? 0), 0);
  return html`<table class="counts"><tbody>${OUTCOMES.map(
    (o) => html`<tr><th><a href="${qs({ outcome: o })}#rows">${OUTCOME_LABEL[o]}</a></th><td class="num">${r.counts![o] ?? 0}</td><td class="num">${total ? ((100 * (r.counts![o] ?? 0)) / total).toFixed(1) : '0.0'}%</td></tr>`,
  )}<tr class="total"><th>all rows</th><td class="num">${total}</td><td></td></tr></tbody></table>`;
}

/** A field-level reason: the comparison level and the weight it gave, coloured by sign. */
export function reason(c: { field: string; level: string; weight: number }): Html {
  const sign = c.weight > 0.05 ? 'pos' : c.weight < -0.05 ? 'neg' : 'zero';
  return html`<span class="reason ${sign}" title="${c.field}: ${c.level}, weight ${c.weight.toFixed(2)}">${c.field} <b>${c.level}</b> ${c.weight >= 0 ? '+' : ''}${c.weight.toFixed(1)}</span>`;
}

function candidateLine(c: ScoredCandidate): Html {
  return html`<div class="cand"><span class="pid">Patient/${c.patientId}</span>${c.via === undefined ? '' : html` <small class="via">as merged record Patient/${c.via}</small>`} <span class="score">score ${c.score.toFixed(1)}</span>${c.guard ? html` <span class="guard" title="kept from an auto-match by the ${c.guard} guard">guard: ${c.guard}</span>` : ''}
  <div class="reasons">${c.comparisons.map(reason)}</div></div>`;
}

function rowReasons(r: RowResult): Html {
  const problems = r.problems?.map((p) => html`<div class="problem"><b>${p.field}</b> ${p.message} <code>${p.code}</code></div>`);
  const warnings = r.warnings?.map((p) => html`<div class="warning"><b>${p.field}</b> ${p.message}</div>`);
  const shown = r.outcome === 'matched' ? r.candidates.filter((c) => c.patientId === r.patientId) : r.candidates.slice(0, 3);
  return html`${problems}${shown.map(candidateLine)}${r.outcome === 'no_match' && r.candidates.length === 0 ? html`<span class="muted">no candidate shared a blocking key</span>` : ''}${warnings}${r.reviewed ? html`<div class="muted">decided in review by ${r.reviewed.by} at ${r.reviewed.at}</div>` : ''}`;
}

export const ROWS_PER_PAGE = 50;

export function runPage(r: RunView, rows: readonly RowResult[], f: { outcome?: Outcome; page: number }, files: { results: boolean; summary: boolean }, byWorker: ReadonlyMap<string, number>): Html {
  const shownTotal = f.outcome ? (r.counts?.[f.outcome] ?? 0) : OUTCOMES.reduce((n, o) => n + (r.counts?.[o] ?? 0), 0);
  const pages = Math.max(1, Math.ceil(shownTotal / ROWS_PER_PAGE));
  return html`<p class="crumbs"><a href="/runs">Runs</a> › ${r.partner}</p>
<h1>${r.fileName}</h1>
<section class="run-head" id="run-head" data-run="${r.id}" data-state="${r.state}"${isFinished(r.state) ? '' : html` data-refresh="/runs/${r.id}/head"`}>${runHead(r, files, byWorker)}</section>
${holdSection(r)}
<section class="run-grid">
  <div><h2>Timeline</h2>${timeline(r)}</div>
  <div><h2>Rows by outcome</h2>${countsTable(r)}</div>
</section>
<h2 id="rows">Rows${f.outcome ? html` — ${OUTCOME_LABEL[f.outcome]}` : ''}</h2>
<nav class="tabs"><a href="${qs({})}#rows"${!f.outcome ? html` aria-current="page"` : ''}>all</a>${OUTCOMES.map(
    (o) => html`<a href="${qs({ outcome: o })}#rows"${f.outcome === o ? html` aria-current="page"` : ''}>${OUTCOME_LABEL[o]} (${r.counts?.[o] ?? 0})</a>`,
  )}</nav>
<table class="rows">
<thead><tr><th>Line</th><th>Record id</th><th>Outcome</th><th>Patient</th><th>Score</th><th>Why (field, comparison level, weight)</th></tr></thead>
<tbody>${rows.length === 0
    ? html`<tr><td colspan="6" class="empty">No rows${f.outcome ? html` with this outcome` : ''}${r.state !== 'completed' ? ' yet' : ''}.</td></tr>`
    : rows.map(
        (row) => html`<tr class="out-${row.outcome}"><td class="num">${row.line}</td><td>${row.recordId}</td><td><span class="count out-${row.outcome}">${OUTCOME_LABEL[row.outcome]}</span></td><td>${row.patientId ?? ''}</td><td class="num">${row.score?.toFixed(1) ?? ''}</td><td>${rowReasons(row)}</td></tr>`,
      )}</tbody>
</table>
${pages > 1 ? html`<nav class="pager">${f.page > 1 ? html`<a href="${qs({ outcome: f.outcome, page: f.page - 1 })}#rows">‹ previous</a>` : ''} page ${f.page} of ${pages} ${f.page < pages ? html`<a href="${qs({ outcome: f.outcome, page: f.page + 1 })}#rows">next ›</a>` : ''}</nav>` : ''}`;
}

/** A held run's Group change and the operator's two answers; once decided, who decided what. */
function holdSection(r: RunRecord): Html {
  if (!r.hold) return html``;
  const d = r.hold.decision;
  if (d) {
    return html`<section class="hold decided"><h2>Group change ${d.action}</h2><p>It was held: ${describeHold(r.hold)}. ${d.action === 'confirmed' ? 'Confirmed' : 'Discarded'} by <b>${d.by}</b> at ${when(d.at)}${d.reason ? html`: ${d.reason}` : ''}.</p></section>`;
  }
  if (r.state !== 'held') return html``;
  return html`<section class="hold" id="hold"><h2>Group change held for a confirmation</h2>
<p>This replace file would change Group <a href="/groups/${r.hold.groupId}">${r.hold.groupId}</a>: ${holdLine(r.hold)}. The Group is unchanged until someone decides; the result file is written.</p>
<form method="post" action="/runs/${r.id}/confirm"><button type="submit" class="accept">Confirm: apply this change</button></form>
<form method="post" action="/runs/${r.id}/discard"><label>Reason <input name="reason" required maxlength="500" placeholder="e.g. partial file; asked for the whole roster"></label><button type="submit" class="reject">Discard</button></form>
</section>`;
}

/** The run's header: polled while the run is in progress. */
export function runHead(r: RunView, files: { results: boolean; summary: boolean }, byWorker: ReadonlyMap<string, number>): Html {
  return html`<dl class="facts">
  <dt>State</dt><dd>${stateBadge(r.state)} ${progress(r)}</dd>
  <dt>Partner</dt><dd>${r.partner}</dd>
  <dt>Received</dt><dd>${when(r.receivedAt)}</dd>
  <dt>Duration</dt><dd>${duration(r.receivedAt, r.finishedAt)}</dd>
  <dt>Rows</dt><dd>${r.rowCount ?? ''}${r.chunkCount ? html` in ${r.chunkCount} chunks${byWorker.size > 0 ? html`, matched by ${[...byWorker].map(([w, n]) => `${w} (${n})`).join(', ')}` : ''}` : ''}</dd>
  <dt>Group</dt><dd>${r.groupId ? html`<a href="/groups/${r.groupId}">${r.groupId}</a>` : html`<span class="muted">when recorded</span>`}</dd>
  <dt>File sha256</dt><dd><code>${r.fileSha256}</code></dd>
  <dt>Files</dt><dd>${files.results ? html`<a href="/runs/${r.id}/results.csv">result file</a>` : html`<span class="muted">result file when done</span>`} · ${files.summary ? html`<a href="/runs/${r.id}/summary.json">summary</a>` : html`<span class="muted">summary when done</span>`}</dd>
  ${r.error ? html`<dt>Error</dt><dd class="error"><code>${r.error.code}</code> ${r.error.message}</dd>` : ''}
</dl>`;
}
