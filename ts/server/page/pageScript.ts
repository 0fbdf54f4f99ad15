/**
 * The page's script (plain browser JavaScript, inlined into the page). Data from the API is only ever written
 * with textContent or as attribute values, never parsed as HTML.
 */
export const PAGE_SCRIPT = String.raw`
(function () {
  'use strict';
  var base = location.pathname.replace(/[^/]*$/, '');
  var jobs = new Map();
  var streams = new Map();
  var selected = null;
  var $ = function (id) { return document.getElementById(id); };
  var stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  var EXAMPLES = {
    demo: { kind: 'demo', out: 'demo-' + stamp, sessions: 8, testImages: 8, seeds: 1, steps: 10 },
    reconstruct: { kind: 'reconstruct', config: { out: 'runs/subj01', nsd: { root: 'nsd', subject: 1 }, model: { dir: 'models/sd-v1-4-onnx' } } },
    'ridge-fit': { kind: 'ridge-fit', config: { out: 'runs/ridge-1', x: 'X.npy', y: 'Y.npy', alphas: '1e1:1e7:10', folds: 5 } }
  };

  function api(path, options) {
    var o = options || {};
    var headers = o.body ? { 'content-type': 'application/json' } : {};
    return fetch(base + path, { method: o.method || 'GET', body: o.body, headers: headers, credentials: 'same-origin' });
  }
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function fmtSeconds(s) {
    if (s === null || s === undefined || !isFinite(s)) return '';
    s = Math.round(s);
    return s < 60 ? s + ' s' : Math.floor(s / 60) + ':' + String(s % 60).padStart(2, '0');
  }
  function fileUrl(id, path) {
    return base + 'v1/jobs/' + encodeURIComponent(id) + '/files/' + path.split('/').map(encodeURIComponent).join('/');
  }

  function showLogin(shown) { $('login').className = shown ? 'shown' : ''; }

  function render() {
    var tbody = $('jobs');
    tbody.textContent = '';
    var list = Array.from(jobs.values()).sort(function (a, b) { return a.submittedAt < b.submittedAt ? 1 : -1; });
    $('no-jobs').style.display = list.length ? 'none' : '';
    list.forEach(function (j) {
      var tr = el('tr', undefined, 'job' + (j.id === selected ? ' selected' : ''));
      tr.dataset.id = j.id;
      tr.appendChild(el('td', j.id));
      tr.appendChild(el('td', j.kind));
      tr.appendChild(el('td', j.state, 'state ' + j.state));
      var p = j.progress;
      tr.appendChild(el('td', p ? p.index + '/' + p.stages + ' ' + p.stage : ''));
      var cell = el('td');
      if (j.state === 'running' && p) {
        var bar = el('progress');
        bar.max = 1;
        bar.value = p.fraction;
        cell.appendChild(bar);
        cell.appendChild(el('span', ' ' + Math.floor(p.fraction * 100) + '%' + (p.etaSeconds !== null ? ' · ETA ' + fmtSeconds(p.etaSeconds) : ''), 'muted'));
      }
      tr.appendChild(cell);
      var actions = el('td');
      if (j.state === 'queued' || j.state === 'running') {
        var cancel = el('button', 'Cancel');
        cancel.className = 'cancel';
        cancel.addEventListener('click', function (ev) { ev.stopPropagation(); api('v1/jobs/' + encodeURIComponent(j.id), { method: 'DELETE' }); });
        actions.appendChild(cancel);
      } else if (j.state === 'done' && j.result && j.result.report) {
        var a = el('a', 'report');
        a.href = fileUrl(j.id, j.result.report);
        a.target = '_blank';
        a.rel = 'noopener';
        a.className = 'report-link';
        actions.appendChild(a);
      }
      tr.appendChild(actions);
      tr.addEventListener('click', function () { selected = j.id; render(); showDetail(j.id); });
      tbody.appendChild(tr);
    });
  }

  function follow(id) {
    if (streams.has(id)) return;
    var es = new EventSource(base + 'v1/jobs/' + encodeURIComponent(id) + '/events');
    streams.set(id, es);
    var stop = function () { es.close(); streams.delete(id); };
    es.addEventListener('state', function (e) { var v = JSON.parse(e.data); jobs.set(v.id, v); render(); });
    es.addEventListener('stage', function (e) {
      var s = JSON.parse(e.data), j = jobs.get(s.id);
      if (j) { j.progress = { stage: s.stage, index: s.index, stages: s.stages, fraction: s.status === 'skipped' ? 1 : 0, rate: null, etaSeconds: null }; render(); }
    });
    es.addEventListener('progress', function (e) {
      var p = JSON.parse(e.data), j = jobs.get(p.id);
      if (j) { j.progress = p; render(); }
    });
    ['result', 'error'].forEach(function (name) {
      es.addEventListener(name, function (e) {
        stop();
        var v = JSON.parse(e.data);
        jobs.set(v.id, v);
        render();
        if (selected === v.id) showDetail(v.id);
      });
    });
    es.addEventListener('shutdown', stop);
  }

  function metricsTable(metrics) {
    var t = el('table');
    var names = Object.keys(metrics.final || metrics.zonly || {});
    var head = el('tr');
    ['', 'z-only', 'final'].forEach(function (h) { head.appendChild(el('th', h)); });
    t.appendChild(head);
    names.forEach(function (n) {
      var tr = el('tr');
      tr.appendChild(el('td', n));
      [metrics.zonly, metrics.final].forEach(function (m) { tr.appendChild(el('td', m && typeof m[n] === 'number' ? m[n].toFixed(3) : '')); });
      t.appendChild(tr);
    });
    return t;
  }

  function showDetail(id) {
    var j = jobs.get(id), box = $('detail-body');
    box.textContent = '';
    box.className = '';
    if (!j) return;
    box.appendChild(el('p', j.id + ' · ' + j.kind + ' · ' + j.state + ' · ' + j.out, 'muted'));
    if (j.error) box.appendChild(el('p', j.error.message, 'problems'));
    if (j.state !== 'done' || !j.result) return;
    if (j.result.report) {
      var a = el('a', 'Open the report');
      a.href = fileUrl(j.id, j.result.report);
      a.target = '_blank';
      a.rel = 'noopener';
      a.id = 'open-report';
      box.appendChild(a);
    }
    if (j.result.metrics) box.appendChild(metricsTable(j.result.metrics));
    api('v1/jobs/' + encodeURIComponent(id) + '/files').then(function (r) { return r.json(); }).then(function (d) {
      var gallery = el('div', undefined, 'gallery');
      (d.files || []).filter(function (f) { return /(^|\/)images\/[^/]+\.png$/.test(f.path); }).slice(0, 48).forEach(function (f) {
        var img = el('img');
        img.src = fileUrl(id, f.path);
        img.alt = f.path;
        img.title = f.path;
        gallery.appendChild(img);
      });
      box.appendChild(gallery);
    });
  }

  function refresh() {
    return api('v1/session').then(function (r) { return r.json(); }).then(function (s) {
      if (!s.signedIn) { showLogin(true); return; }
      return loadJobs();
    });
  }

  function loadJobs() {
    return api('v1/jobs').then(function (r) {
      if (r.status === 401) { showLogin(true); return; }
      showLogin(false);
      return r.json().then(function (d) {
        d.jobs.forEach(function (j) { jobs.set(j.id, j); if (j.state === 'queued' || j.state === 'running') follow(j.id); });
        render();
      });
    });
  }

  $('example').addEventListener('change', function () { $('body').value = JSON.stringify(EXAMPLES[$('example').value], null, 2); });
  $('body').value = JSON.stringify(EXAMPLES.demo, null, 2);

  $('submit-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    $('problems').textContent = '';
    $('submitted').textContent = '';
    var text = $('body').value;
    try { JSON.parse(text); } catch (e) { $('problems').textContent = 'The body is not valid JSON: ' + e.message; return; }
    api('v1/jobs', { method: 'POST', body: text }).then(function (r) {
      return r.json().then(function (d) {
        if (r.status === 401) { showLogin(true); return; }
        if (r.status !== 202) { $('problems').textContent = (d.problems || [d.message]).join('\n'); return; }
        jobs.set(d.id, d);
        selected = d.id;
        $('submitted').textContent = 'submitted ' + d.id;
        render();
        showDetail(d.id);
        follow(d.id);
      });
    });
  });

  $('login-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    api('v1/session', { method: 'POST', body: JSON.stringify({ token: $('token').value }) }).then(function (r) {
      if (r.status === 204) { $('login-problems').textContent = ''; refresh(); }
      else $('login-problems').textContent = 'That token is not valid.';
    });
  });

  fetch(base + 'healthz').then(function (r) { $('health').textContent = r.ok ? 'service ok' : 'service unhealthy'; });
  refresh();
})();
`;
