/** Recent audit events: sign-ins, pages that showed demographics, review decisions. */
import type { AuditEvent } from '../../store/index.ts';
import { html, when, type Html } from '../html.ts';

export function auditPage(events: readonly AuditEvent[], f: { actor?: string }): Html {
  return html`<h1>Audit <small class="muted">latest ${events.length}</small></h1>
<form class="filters" method="get" action="/audit"><label>Operator <input name="actor" value="${f.actor ?? ''}"></label> <button type="submit">Filter</button></form>
<table class="audit">
<thead><tr><th>When (UTC)</th><th>Who</th><th>Action</th><th>What</th><th>Detail</th></tr></thead>
<tbody>${events.map(
    (e) => html`<tr><td>${when(e.at)}</td><td>${e.actor}</td><td><code>${e.action}</code></td><td>${e.entity}</td><td><small>${e.detail ? JSON.stringify(e.detail) : ''}</small></td></tr>`,
  )}</tbody>
</table>`;
}
