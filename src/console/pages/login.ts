/** The sign-in form. It says why sign-in is impossible when no operator is configured. */
import { html, type Html } from '../html.ts';

export function loginPage(o: { next: string; error?: string; configured: boolean; operatorsFile: string }): Html {
  if (!o.configured) {
    return html`<section class="login"><h1>Sign in</h1>
<p class="error">No operators are configured, so nobody can sign in.</p>
<p>Add one on the server with <code>rostermatch operator add NAME</code>; it writes <code>${o.operatorsFile}</code>.</p></section>`;
  }
  return html`<section class="login"><h1>Sign in</h1>
${o.error ? html`<p class="error" role="alert">${o.error}</p>` : ''}
<form method="post" action="/login">
  <input type="hidden" name="next" value="${o.next}">
  <label>Operator <input name="name" autocomplete="username" required autofocus></label>
  <label>Password <input name="password" type="password" autocomplete="current-password" required></label>
  <button type="submit">Sign in</button>
</form>
<p class="muted">Every page that shows a person's data records who opened it and when.</p></section>`;
}
