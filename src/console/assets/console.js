// Keeps in-progress views current: every element with data-refresh is re-fetched every 2 s while
// the tab is visible. A run's header that reports its run finished reloads the page, so the
// counts and rows appear without the operator pressing anything.
(function () {
  const INTERVAL_MS = 2000;
  async function refresh(el) {
    const res = await fetch(el.dataset.refresh, { headers: { accept: 'text/html', 'x-rostermatch-poll': '1' }, credentials: 'same-origin' });
    if (res.redirected || res.status === 401) return location.reload();
    if (!res.ok) return;
    const body = await res.text();
    if (el.innerHTML !== body) el.innerHTML = body;
    if (res.headers.get('x-run-finished') === '1') location.reload();
  }
  function tick() {
    if (document.visibilityState !== 'visible') return;
    document.querySelectorAll('[data-refresh]').forEach((el) => refresh(el).catch(() => {}));
  }
  document.addEventListener('DOMContentLoaded', () => {
    if (document.querySelector('[data-refresh]')) setInterval(tick, INTERVAL_MS);
    // One click decides: disable the item's buttons so a double click cannot send two decisions.
    document.querySelectorAll('.review-item form').forEach((f) =>
      f.addEventListener('submit', () => f.closest('.review-item').querySelectorAll('button').forEach((b) => (b.disabled = true))),
    );
  });
})();
