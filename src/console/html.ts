/**
 * Server-rendered HTML with escaping by default: every interpolated value is escaped unless it is
 * itself `html`. Partner data (file names, record ids, names) reaches these pages, so nothing is
 * ever concatenated raw.
 */
export class Html {
  readonly value: string;
  constructor(value: string) {
    this.value = value;
  }
  toString(): string {
    return this.value;
  }
}

type Part = Html | string | number | boolean | null | undefined | readonly Part[];

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const escape = (s: string) => s.replace(/[&<>"']/g, (c) => ESCAPES[c]!);

function render(p: Part): string {
  if (p instanceof Html) return p.value;
  if (Array.isArray(p)) return p.map(render).join('');
  if (p === null || p === undefined || p === false || p === true) return '';
  return escape(String(p));
}

export function html(strings: TemplateStringsArray, ...values: Part[]): Html {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1]!;
  return new Html(out);
}

/** A query string from the set values, for links that keep the current filters. */
export function qs(params: Record<string, string | number | undefined>): string {
  const s = new URLSearchParams(Object.entries(params).filter((e): e is [string, string | number] => e[1] !== undefined && e[1] !== '').map(([k, v]): [string, string] => [k, String(v)])).toString();
  return s ? `?${s}` : '';
}

export interface PageMeta {
  title: string;
  operator?: string;
  /** Which navigation entry is current. */
  nav?: 'runs' | 'groups' | 'review' | 'clients' | 'queues' | 'audit';
  flash?: string;
}

const NAV: [NonNullable<PageMeta['nav']>, string, string][] = [
  ['runs', '/runs', 'Runs'],
  ['groups', '/groups', 'Groups'],
  ['review', '/review', 'Review'],
  ['clients', '/clients', 'Clients'],
  ['queues', '/admin/queues', 'Queues'],
  ['audit', '/audit', 'Audit'],
];

export function page(meta: PageMeta, body: Html): string {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${meta.title} · rostermatch</title>
<link rel="stylesheet" href="/assets/console.css">
<script src="/assets/console.js" defer></script>
</head>
<body>
<header class="top">
  <a class="brand" href="/runs">rostermatch</a>
  ${meta.operator
    ? html`<nav>${NAV.map(([key, href, label]) => html`<a href="${href}"${meta.nav === key ? html` aria-current="page"` : ''}>${label}</a>`)}</nav>
  <form method="post" action="/logout" class="who"><span>${meta.operator}</span> <button type="submit" class="link">Sign out</button></form>`
    : ''}
</header>
<main>
${meta.flash ? html`<p class="flash" role="status">${meta.flash}</p>` : ''}
${body}
</main>
</body>
</html>
`.value;
}

/** 850 ms, 2.1 s, 3 m 05 s, 2 h 03 m: one way of writing a duration, on the console and in `status`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const whole = Math.floor(s);
  if (whole < 3600) return `${Math.floor(whole / 60)} m ${String(whole % 60).padStart(2, '0')} s`;
  return `${Math.floor(whole / 3600)} h ${String(Math.floor((whole % 3600) / 60)).padStart(2, '0')} m`;
}

/** The time between two instants (or until now, for what is still going), for tables. */
export function duration(from: string, to: string | null, now = new Date()): string {
  const ms = (to ? Date.parse(to) : now.getTime()) - Date.parse(from);
  return Number.isFinite(ms) && ms >= 0 ? formatDuration(ms) : '';
}

/** An instant as the operator reads it: UTC, to the second, with the full value on hover. */
export function when(iso: string | null): Html {
  if (!iso) return html``;
  return html`<time datetime="${iso}" title="${iso}">${iso.slice(0, 19).replace('T', ' ')}</time>`;
}
