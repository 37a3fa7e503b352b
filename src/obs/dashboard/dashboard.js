// The SLA dashboard: reads /status?series=1 (the JSON `nines status` reads too) every two seconds
// and draws it; where a device keeper runs (an edge with [devices], or `nines devices`, whose page
// says data-role="devices" and has no /status), /devices too, as the phones' table. No framework; uPlot (bundled into the page at build time) draws the charts.
// Every value shown comes from the gateway: nothing here computes availability on its own.
'use strict';
(() => {
  const POLL_MS = 2000;
  const STATUS_URL = 'status?series=1';  // relative: works behind a path prefix too
  const DEVICES_URL = 'devices';
  const devicesOnly = document.body.dataset.role === 'devices';

  const $ = (id) => document.getElementById(id);
  const testid = (name) => document.querySelector(`[data-testid="${name}"]`);

  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (k === 'class') node.className = v;
      else if (k === 'text') node.textContent = v;
      else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c);
    return node;
  }

  // 0.99994 -> "99.994%": enough digits to tell 99.9% from 99.99%.
  function percent(v, digits) {
    if (v === null || v === undefined) return '—';
    const p = v * 100;
    const d = digits ?? (p >= 99.9 ? 3 : p >= 99 ? 2 : 1);
    return `${p.toFixed(d)}%`;
  }
  const number = (v, d = 1) => (v === null || v === undefined ? '—' : Number(v).toFixed(d));
  const count = (v) => Number(v).toLocaleString('en-US');
  function duration(seconds) {
    if (seconds < 120) return `${Math.round(seconds)} s`;
    if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
    if (seconds < 172800) return `${Math.round(seconds / 3600)} h`;
    return `${Math.round(seconds / 86400)} d`;
  }

  // ok: meets the objective; warn: within ten times the allowed errors; bad: worse.
  function grade(availability, objective) {
    if (availability === null || availability === undefined) return '';
    if (availability >= objective) return 'ok';
    return 1 - availability <= (1 - objective) * 10 ? 'warn' : 'bad';
  }

  function renderWindows(sla) {
    for (const name of ['5m', '1h', '24h']) {
      const w = sla.windows[name];
      const big = testid(`availability-${name}`);
      big.textContent = percent(w.availability);
      big.className = `big ${grade(w.availability, sla.objective)}`;
      big.dataset.value = w.availability ?? '';
      const total = w.good + w.bad;
      testid(`requests-${name}`).textContent = total
        ? `${count(total)} requests, ${count(w.bad)} failed`
        : 'no requests yet';
    }
    const left = sla.error_budget_left;
    const budget = testid('budget');
    budget.textContent = left === null ? '—' : percent(left, 1);
    budget.className = `big ${left === null ? '' : left > 0.5 ? 'ok' : left > 0 ? 'warn' : 'bad'}`;
    const fill = $('budget-fill');
    fill.style.width = `${Math.max(0, Math.min(1, left ?? 1)) * 100}%`;
    fill.style.background = `var(--${left === null || left > 0.5 ? 'good' : left > 0 ? 'warn' : 'bad'})`;
    testid('objective').textContent = `objective ${percent(sla.objective, 2)} of requests`;
  }

  function renderAlerts(sla) {
    const box = $('alerts');
    box.replaceChildren(...sla.alerts.map((a) => {
      const where = Object.entries(a.labels)
        .filter(([k]) => k !== 'alertname' && k !== 'severity')
        .map(([k, v]) => `${k}=${v}`).join(' ');
      return el('div', { class: 'alert', 'data-alert': a.name },
        el('b', { text: a.name }), ` ${where ? `(${where}) ` : ''}— ${a.summary}`);
    }));
  }

  const COLUMNS = [
    (name) => el('td', { text: name }),
    (_, u) => el('td', { text: u.tier_in_use ? `${u.priority} ●` : `${u.priority}` }),
    (_, u) => el('td', {}, el('span', { class: `badge ${u.state}`, 'data-testid': 'state', text: u.state })),
    (_, u) => el('td', { 'data-testid': 'score', text: number(u.score, 2) }),
    (_, u) => el('td', { text: u.probe.probed ? number(u.probe.rtt_ewma_ms, 2) : '—' }),
    (_, u) => el('td', { text: u.probe.probed ? number(u.probe.rtt_p99_ms, 2) : '—' }),
    (_, u) => el('td', { text: u.probe.probed ? percent(u.probe.loss, 1) : '—' }),
    (_, u) => el('td', { text: u.probe.probed ? number(u.probe.jitter_ms, 2) : '—' }),
    (_, u) => el('td', { 'data-testid': 'availability', text: percent(u.sla?.availability_5m) }),
    (_, u) => el('td', { text: `${number(u.sla?.ttft_p50_ms)} / ${number(u.sla?.ttft_p99_ms)}` }),
    (_, u) => el('td', { 'data-testid': 'error-rate', text: percent(u.sla?.error_rate_1m, 1) }),
    (_, u) => el('td', { text: `${u.in_flight}` }),
    (_, u) => el('td', { text: `${u.ejections}` }),
    (_, u) => el('td', { text: `${u.pool.open} / ${u.pool.idle}` }),
  ];

  function renderUpstreams(upstreams) {
    const rows = Object.entries(upstreams).map(([name, u]) => {
      const row = el('tr', { 'data-upstream': name, 'data-state': u.state });
      if (u.last_ejection_reason) row.title = `last ejection: ${u.last_ejection_reason}`;
      row.append(...COLUMNS.map((column) => column(name, u)));
      return row;
    });
    $('upstreams').tBodies[0].replaceChildren(...rows);
  }

  // Bodies an edge sent as uploads, and what cuts cost; shown once there are any.
  function renderUploads(uploads) {
    const sent = uploads?.sent_to_uplinks;
    const total = sent ? Object.values(sent.bodies).reduce((a, b) => a + b, 0) : 0;
    const box = testid('uploads');
    box.hidden = total === 0;
    if (total === 0) return;
    const b = sent.bodies;
    box.textContent = `uploads: ${b.ready} whole, ${b.resumed} resumed after a cut, ` +
      `${b.inline} inline, ${b.failed} cut · ${(sent.bytes_sent / 1e6).toFixed(1)} MB sent, ` +
      `${(sent.bytes_resent / 1e6).toFixed(1)} MB sent again`;
  }

  // The answer cache, when it is on: what it answered, and what it holds.
  function renderCache(cache) {
    const box = testid('cache');
    box.hidden = !cache;
    if (!cache) return;
    const r = cache.requests;
    const asked = r.hit + r.shared + r.miss;
    const ratio = asked > 0 ? ` (${(100 * (r.hit + r.shared) / asked).toFixed(1)}% of those it keeps)` : '';
    box.textContent = `cache: ${r.hit} hits, ${r.shared} shared in flight, ${r.miss} misses, ` +
      `${r.bypass} bypassed${ratio} · ${cache.entries} answers, ` +
      `${(cache.bytes / 1e6).toFixed(1)} of ${(cache.max_bytes / 1e6).toFixed(0)} MB`;
  }

  // The device keeper's phones: the fleet in one line, then a row per phone, the ones away first.
  const AWAY = { zombie: 0, offline: 1, reconnecting: 2, suspect: 3, unauthorized: 4, online: 5, removed: 6 };
  function renderDevices(d) {
    testid('devices-section').hidden = false;
    const f = d.fleet;
    const states = Object.entries(f.states).filter(([, n]) => n > 0)
      .map(([s, n]) => `${n} ${s}`).join(', ');
    testid('devices-fleet').textContent = `${f.devices} phone${f.devices === 1 ? '' : 's'}` +
      `${states ? ` (${states})` : ''} · online ${percent(f.online_rate['1h'], 3)} of the last hour, ` +
      `${percent(f.online_rate['24h'], 3)} of 24 h · adb server ${d.adb.up ? 'up' : 'DOWN'}` +
      (d.proxy?.running ? ` · ADB proxy: ${d.proxy.held} held, ${d.proxy.held_served} served, ` +
        `${d.proxy.held_expired} expired` : '');
    const sorted = [...d.devices].sort((a, b) =>
      (AWAY[a.state] ?? 9) - (AWAY[b.state] ?? 9) || a.serial.localeCompare(b.serial));
    const rows = sorted.slice(0, 2000).map((p) => {
      const row = el('tr', { 'data-serial': p.serial, 'data-state': p.state });
      row.append(
        el('td', { text: p.serial }),
        el('td', { text: duration(p.state_for_s) }),
        el('td', {}, el('span', { class: `badge ${p.state}`, text: p.state })),
        el('td', { text: p.score.toFixed(2) }),
        el('td', { text: p.rtt_ms.toFixed(1) }),
        el('td', { text: String(p.misses) }),
        el('td', { text: String(p.reconnects) }),
        el('td', { text: percent(p.online_rate['1h'], 2) }),
        el('td', { text: percent(p.online_rate['24h'], 2) }),
        el('td', { class: 'dim', text: p.last_problem }));
      return row;
    });
    $('devices').tBodies[0].replaceChildren(...rows);
  }

  function renderIncidents(sla) {
    const items = sla.incidents.map((i) => el('li', { 'data-kind': i.kind },
      el('time', { text: new Date(i.unix_ms).toLocaleTimeString('en-GB') }),
      el('span', { class: 'kind', text: i.kind }),
      `${i.upstream ? `${i.upstream}: ` : ''}${i.message}`));
    $('incidents').replaceChildren(...(items.length ? items : [el('li', { text: 'none' })]));
  }

  // The three charts share the time axis: unix seconds of each bucket's start.
  const charts = {};
  const CHARTS = {
    rate: {
      node: 'chart-rate',
      series: [{ label: 'requests/s', stroke: '#58a6ff', fill: 'rgba(88,166,255,.12)' }],
      columns: (s) => [s.requests_per_second],
    },
    ttft: {
      node: 'chart-ttft',
      series: [{ label: 'p50', stroke: '#3fb950' }, { label: 'p99', stroke: '#d29922' }],
      columns: (s) => [s.ttft_p50_ms, s.ttft_p99_ms],
    },
    availability: {
      node: 'chart-availability',
      series: [{ label: 'availability %', stroke: '#3fb950' }],
      columns: (s) => [s.availability.map((v) => (v === null ? null : v * 100))],
      // 100% at the top and at least down to 99%, so that 99.9% and 99.99% look different.
      scales: { y: { range: (u, min) => [Math.min(99, Math.floor(min ?? 99)), 100] } },
    },
  };

  function chartWidth(node) {
    return Math.max(240, node.clientWidth - 4);
  }

  // The series covers the last hour; a gateway up for less than that has nothing before its start.
  function sinceStart(series, uptime) {
    const first = Math.max(0, series.age_s.findIndex((age) => age <= uptime + series.bucket_s));
    const out = { bucket_s: series.bucket_s };
    for (const [k, v] of Object.entries(series)) {
      if (Array.isArray(v)) out[k] = v.slice(first);
    }
    return out;
  }

  function drawCharts(sla, uptime) {
    const s = sinceStart(sla.series, uptime);
    const now = sla.unix_ms / 1000;
    const xs = s.age_s.map((age) => Math.round(now - age));
    for (const [name, spec] of Object.entries(CHARTS)) {
      const data = [xs, ...spec.columns(s)];
      if (!charts[name]) {
        const node = $(spec.node);
        const axis = { stroke: '#8796a6', grid: { stroke: '#26313d' }, ticks: { stroke: '#26313d' } };
        charts[name] = new uPlot({
          width: chartWidth(node),
          height: 200,
          series: [{}, ...spec.series.map((x) => ({ width: 1.5, spanGaps: false, ...x }))],
          axes: [axis, { ...axis, size: 56 }],
          // At least the last five minutes, so that a young gateway's few points have context.
          scales: { x: { time: true, range: (u, min, max) => [Math.min(min, max - 300), max] },
            ...(spec.scales ?? {}) },
          legend: { live: true },
        }, data, node);
      } else {
        charts[name].setData(data);
      }
    }
    return Object.fromEntries(Object.entries(CHARTS).map(([name, spec]) =>
      [name, [xs, ...spec.columns(s)]]));
  }

  window.addEventListener('resize', () => {
    for (const [name, spec] of Object.entries(CHARTS)) {
      charts[name]?.setSize({ width: chartWidth($(spec.node)), height: 200 });
    }
  });

  // What the page shows, for tests and for whoever opens the console.
  window.__nines = { updates: 0, errors: 0, status: null, chartData: null };

  async function refreshDevices() {
    const res = await fetch(DEVICES_URL, { cache: 'no-store' });
    if (!res.ok) throw new Error(`/devices answered ${res.status}`);
    const devices = await res.json();
    renderDevices(devices);
    window.__nines.devices = devices;
    return devices;
  }

  async function refresh() {
    const meta = testid('meta');
    if (devicesOnly) {
      try {
        const d = await refreshDevices();
        meta.className = '';
        meta.textContent = `nines devices · adb server ${d.adb.up ? 'up' : 'down'} · updated ` +
          new Date().toLocaleTimeString('en-GB');
        window.__nines.updates += 1;
      } catch (err) {
        window.__nines.errors += 1;
        meta.className = 'bad';
        meta.textContent = `cannot read the device keeper: ${err.message}`;
      } finally {
        setTimeout(refresh, POLL_MS);
      }
      return;
    }
    try {
      const res = await fetch(STATUS_URL, { cache: 'no-store' });
      if (!res.ok) throw new Error(`/status answered ${res.status}`);
      const status = await res.json();
      meta.className = '';
      meta.textContent = `v${status.version} · up ${duration(status.uptime_s)} · ` +
        `config ${status.config_version} · ${status.workers} worker${status.workers === 1 ? '' : 's'} · ` +
        `tier ${status.tier.active_priority ?? 'none'} · updated ` +
        new Date().toLocaleTimeString('en-GB');
      // An edge lists its uplinks (the same fields as a gateway's upstreams).
      const edge = status.role === 'edge';
      $('links-title').textContent = edge ? 'Uplinks' : 'Upstreams';
      $('links-column').textContent = edge ? 'uplink' : 'upstream';
      renderUpstreams(edge ? status.uplinks : status.upstreams);
      renderUploads(status.uploads);
      renderCache(status.cache);
      if (status.devices) await refreshDevices();
      if (status.sla) {
        renderWindows(status.sla);
        renderAlerts(status.sla);
        renderIncidents(status.sla);
        window.__nines.chartData = drawCharts(status.sla, status.uptime_s);
      }
      window.__nines.status = status;
      window.__nines.updates += 1;
    } catch (err) {
      window.__nines.errors += 1;
      meta.className = 'bad';
      meta.textContent = `cannot read the gateway's status: ${err.message}`;
    } finally {
      setTimeout(refresh, POLL_MS);
    }
  }
  refresh();
})();
