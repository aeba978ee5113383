/**
 * Recent audit events: sign-ins, pages that showed demographics, review decisions — and, on
 * their own, the identity feed's transactions (IHE PIXm ITI-104): which source, when, which
 * identifier, what came of it, with the same rows as FHIR AuditEvents (JSON) beside them.
 */
import type { FeedDetail } from '../../fhir/audit-event.ts';
import type { AuditEvent } from '../../store/index.ts';
import { html, when, type Html } from '../html.ts';

export function auditPage(events: readonly AuditEvent[], f: { actor?: string; feed?: boolean }): Html {
  if (f.feed) return feedPage(events, f);
  return html`<h1>Audit <small class="muted">latest ${events.length}</small></h1>
<form class="filters" method="get" action="/audit"><label>Operator <input name="actor" value="${f.actor ?? ''}"></label> <button type="submit">Filter</button></form>
<p><a href="/audit?feed=1">Identity feed transactions (PIXm ITI-104)</a></p>
<table class="audit">
<thead><tr><th>When (UTC)</th><th>Who</th><th>Action</th><th>What</th><th>Detail</th></tr></thead>
<tbody>${events.map(
    (e) => html`<tr><td>${when(e.at)}</td><td>${e.actor}</td><td><code>${e.action}</code></td><td>${e.entity}</td><td><small>${e.detail ? JSON.stringify(e.detail) : ''}</small></td></tr>`,
  )}</tbody>
</table>`;
}

function feedPage(events: readonly AuditEvent[], f: { actor?: string }): Html {
  return html`<h1>Identity feed <small class="muted">latest ${events.length} transactions</small></h1>
<form class="filters" method="get" action="/audit"><input type="hidden" name="feed" value="1"><label>Source <input name="actor" value="${f.actor ?? ''}" placeholder="client/…"></label> <button type="submit">Filter</button></form>
<p><a href="/audit/feed.json${f.actor ? `?actor=${encodeURIComponent(f.actor)}` : ''}">As FHIR AuditEvents (JSON Bundle)</a> · <a href="/audit">All audit events</a></p>
<table class="audit feed">
<thead><tr><th>When (UTC)</th><th>Source</th><th>Identifier</th><th>Outcome</th><th>Patient</th><th>Groups</th></tr></thead>
<tbody>${events.map((e) => {
    const d = (e.detail ?? {}) as FeedDetail;
    const outcome = e.action === 'feed.refused' ? `refused (${d.status ?? '?'})` : (d.outcome ?? e.action.replace(/^feed\./, ''));
    const patient = d.patientId ? `Patient/${d.patientId}${d.survivorId ? ` → Patient/${d.survivorId}` : ''}` : '';
    return html`<tr><td>${when(e.at)}</td><td>${e.actor}</td><td><code>${d.identifier ? `${d.identifier.system ?? ''}|${d.identifier.value ?? ''}` : e.entity}</code></td><td>${outcome}${d.reason ? html`<br><small>${d.reason}</small>` : ''}</td><td>${patient}</td><td><small>${(d.groups ?? []).join(', ')}</small></td></tr>`;
  })}</tbody>
</table>`;
}
