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
  // jobs the service answered 404 for (its job list is in memory: a restart forgets them): never followed again
  var gone = new Set();
  var retries = new Map();
  var selected = null;
  var GONE_SHORT = 'no longer known to the service';
  var CANCEL_PENDING_SHORT = 'cancelled: the batch cancel waits for Redis';
  function goneText(id) {
    return 'The service no longer knows job ' + id + ': it has restarted (or forgotten the job). It keeps its job list in memory only, ' +
      'with or without Redis, so a restart loses it; the page no longer follows this job. Its run folder stays on disk: ' +
      'submitting the same body again skips the stages a reconstruct, encode or batch job had finished.';
  }
  var $ = function (id) { return document.getElementById(id); };
  var stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  var EXAMPLES = {
    demo: { kind: 'demo', out: 'demo-' + stamp, sessions: 8, testImages: 8, seeds: 1, steps: 10 },
    reconstruct: { kind: 'reconstruct', config: { out: 'runs/subj01', nsd: { root: 'nsd', subject: 1 }, model: { dir: 'models/sd-v1-4-onnx' } } },
    encode: {
      kind: 'encode',
      config: {
        out: 'runs/encoding-subj01',
        nsd: { root: 'nsd', subject: 1, roi: 'nsdgeneral' },
        model: 'models/sd-v1-4-onnx',
        featureSets: [{ name: 'z', kind: 'z' }, { name: 'c', kind: 'c' }],
        ridge: { alphas: '1e1:1e7:10', folds: 5 },
        banded: [{ name: 'z+c', sets: ['z', 'c'] }]
      }
    },
    'ridge-fit': { kind: 'ridge-fit', config: { out: 'runs/ridge-1', x: 'X.npy', y: 'Y.npy', alphas: '1e1:1e7:10', folds: 5 } }
  };

  function api(path, options) {
    var o = options || {};
    var headers = o.body ? { 'content-type': 'application/json' } : {};
    return fetch(base + path, { method: o.method || 'GET', body: o.body, headers: headers, credentials: 'same-origin', signal: o.signal });
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

  // The login, with why it is shown (a submission or a cancel that the ended session stopped); signed out, there is
  // no session to end, so Sign out is hidden with it.
  function showLogin(shown, why) {
    $('login').className = shown ? 'shown' : '';
    if (!shown) return;
    $('sign-out').hidden = true;
    if (why) $('login-problems').textContent = why;
  }
  var SESSION_ENDED = 'The session has ended (signed out, expired, or the service restarted): sign in again.';
  // what an error answer says (its message, else the status)
  function answerText(r) {
    return r.json().then(function (d) { return (d && (d.problems || [d.message]).join('\n')) || ('HTTP ' + r.status); }, function () { return 'HTTP ' + r.status; });
  }

  // Rows are kept and updated in place, never rebuilt: a progress event comes several times a second, and a row
  // (its Cancel button) replaced between a user's mouse press and release loses the click.
  var rows = new Map();
  function rowFor(j) {
    var r = rows.get(j.id);
    if (r) return r;
    var tr = el('tr', undefined, 'job');
    tr.dataset.id = j.id;
    r = { tr: tr, id: el('td', j.id), kind: el('td', j.kind), state: el('td'), stage: el('td'), progress: el('td'), bar: el('progress'), pct: el('span', '', 'muted'), actions: el('td'), actionsKey: null };
    r.bar.max = 1;
    [r.id, r.kind, r.state, r.stage, r.progress, r.actions].forEach(function (c) { tr.appendChild(c); });
    tr.addEventListener('click', function () { selected = j.id; trimStreams(); render(); showDetail(j.id); if (wantsStream(jobs.get(j.id))) follow(j.id); });
    rows.set(j.id, r);
    return r;
  }
  function setText(node, text) { if (node.textContent !== text) node.textContent = text; }
  // (a stage that has reported nothing for a while, stalledSeconds, has no ETA: its last one no longer holds)
  function progressText(p) {
    var pct = Math.floor(p.fraction * 100) + '%';
    if (typeof p.stalledSeconds === 'number') return pct + ' · no progress for ' + fmtSeconds(p.stalledSeconds);
    return pct + (p.etaSeconds !== null && p.etaSeconds !== undefined ? ' · ETA ' + fmtSeconds(p.etaSeconds) : '');
  }

  function render() {
    var tbody = $('jobs');
    var list = Array.from(jobs.values()).sort(function (a, b) { return a.submittedAt < b.submittedAt ? 1 : -1; });
    $('no-jobs').style.display = list.length ? 'none' : '';
    list.forEach(function (j, i) {
      var r = rowFor(j);
      var cls = 'job' + (j.id === selected ? ' selected' : '');
      if (r.tr.className !== cls) r.tr.className = cls;
      var isGone = gone.has(j.id);
      setText(r.state, isGone ? 'unknown' : j.state);
      r.state.className = 'state ' + (isGone ? 'gone' : j.state);
      var p = j.progress;
      // a job's process (on the batch layer, its pool) can take seconds to report its first stage
      // (a cancelled --redis job whose batch's cancel waits for Redis: no stage runs, and no second cancel helps)
      setText(r.stage, isGone ? GONE_SHORT : j.reconnecting ? 'service unreachable, retrying…' : j.cancelPending ? CANCEL_PENDING_SHORT : p ? p.index + '/' + p.stages + ' ' + p.stage : j.state === 'running' ? 'starting…' : '');
      if (!isGone && j.state === 'running' && p) {
        if (!r.bar.parentNode) { r.progress.appendChild(r.bar); r.progress.appendChild(r.pct); }
        r.bar.value = p.fraction;
        setText(r.pct, ' ' + progressText(p));
      } else if (r.bar.parentNode) {
        r.progress.textContent = '';
      }
      var report = j.state === 'done' && j.result && j.result.report;
      var key = isGone || j.cancelPending ? '' : j.state === 'queued' || j.state === 'running' ? 'cancel' : report ? 'report' : '';
      if (key !== r.actionsKey) {
        r.actionsKey = key;
        r.actions.textContent = '';
        if (key === 'cancel') {
          var cancel = el('button', 'Cancel', 'cancel');
          cancel.addEventListener('click', function (ev) {
            ev.stopPropagation();
            $('problems').textContent = '';
            api('v1/jobs/' + encodeURIComponent(j.id), { method: 'DELETE' }).then(function (r) {
              if (r.status === 202) return;
              if (r.status === 401) { showLogin(true, 'Job ' + j.id + ' was not cancelled. ' + SESSION_ENDED); return; }
              if (r.status === 404) markGone(j.id);
              return answerText(r).then(function (t) { $('problems').textContent = 'Cancel ' + j.id + ': ' + t; });
            }, function () { $('problems').textContent = 'Cancel ' + j.id + ': the service did not answer'; });
          });
          r.actions.appendChild(cancel);
        } else if (key === 'report') {
          var a = el('a', 'report', 'report-link');
          a.href = fileUrl(j.id, j.result.report);
          a.target = '_blank';
          a.rel = 'noopener';
          r.actions.appendChild(a);
        }
      }
      if (tbody.children[i] !== r.tr) tbody.insertBefore(r.tr, tbody.children[i] || null);
    });
    var d = selected && jobs.get(selected);
    if (d && d.state !== 'done' && !gone.has(d.id)) showDetail(d.id);
  }

  // The job is no longer known to the service (404): said on its row and in the run panel, and never asked for again.
  function markGone(id) {
    if (gone.has(id)) return;
    gone.add(id);
    closeStream(id);
    clearTimeout(retries.get(id));
    retries.delete(id);
    if (!jobs.has(id)) return;
    render();
    if (selected === id) showDetail(id);
  }

  // The event stream broke (the service went away, a network fault) or the service shut down: ask for the job until
  // the service answers, then follow it again (every event is replayed), show how it ended, or mark it gone (404).
  function recheck(id, attempt) {
    if (gone.has(id) || retries.has(id)) return;
    var delay = Math.min(5000, 1000 * Math.pow(2, attempt));
    retries.set(id, setTimeout(function () {
      retries.delete(id);
      var again = function () { var j = jobs.get(id); if (j && !j.reconnecting) { j.reconnecting = true; render(); } recheck(id, attempt + 1); };
      api('v1/jobs/' + encodeURIComponent(id)).then(function (r) {
        if (r.status === 404) { markGone(id); return; }
        // (signed out: the login; every row is asked for again once signed in, loadJobs)
        if (r.status === 401) { showLogin(true, SESSION_ENDED); return; }
        if (!r.ok) { again(); return; }
        return r.json().then(function (v) {
          jobs.set(v.id, v);
          render();
          if (wantsStream(v)) follow(v.id);
          else if (selected === v.id) showDetail(v.id);
        });
      }, again);
    }, delay));
  }

  // A browser opens at most 6 connections to a host over HTTP/1.1 and an event stream holds one for as long as it is
  // open: with a stream per job, 6 jobs left the list's poll (and every other request) waiting for ever. So at most
  // MAX_STREAMS jobs, the selected one among them, are followed live; the poll keeps the other rows current.
  var MAX_STREAMS = 3;
  function wantsStream(j) {
    if (!j || streams.has(j.id) || gone.has(j.id)) return false;
    if (j.id === selected) return j.state === 'queued' || j.state === 'running';
    return j.state === 'running' && streams.size < MAX_STREAMS;
  }
  function closeStream(id) {
    var es = streams.get(id);
    if (es) { es.close(); streams.delete(id); }
  }
  // A stream no job needs any more closes: one neither selected nor running (a queued job once selected). With
  // room > 0, that many places are freed for the selected job: the streams opened first of other jobs close (their
  // rows are kept current by the poll, which follows them again once a stream has ended).
  function trimStreams(room) {
    Array.from(streams.keys()).forEach(function (id) {
      var j = jobs.get(id);
      if (id !== selected && !(j && j.state === 'running')) closeStream(id);
    });
    Array.from(streams.keys()).forEach(function (id) {
      if (id !== selected && streams.size > MAX_STREAMS - (room || 0)) closeStream(id);
    });
  }
  function follow(id) {
    if (streams.has(id) || gone.has(id)) return;
    if (id === selected) trimStreams(1);
    else if (streams.size >= MAX_STREAMS) return;
    var es = new EventSource(base + 'v1/jobs/' + encodeURIComponent(id) + '/events');
    streams.set(id, es);
    var stop = function () { es.close(); if (streams.get(id) === es) streams.delete(id); };
    // the browser's own 'error' (a refused or broken stream: no data) shares its name with the job's 'error' event
    var broken = function () { stop(); recheck(id, 0); };
    es.addEventListener('open', function () { var j = jobs.get(id); if (j && j.reconnecting) { j.reconnecting = false; render(); } });
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
        if (name === 'error' && typeof e.data !== 'string') { broken(); return; }
        stop();
        var v = JSON.parse(e.data);
        jobs.set(v.id, v);
        render();
        if (selected === v.id) showDetail(v.id);
      });
    });
    es.addEventListener('shutdown', broken);
  }

  // As the reports and the CLI write them (ts/eval/table.ts): identification accuracies in % (chance 50%),
  // PixCorr and SSIM as correlations, distances (lower is better) marked ↓.
  function metricKind(name, better) {
    if (name === 'PixCorr' || name === 'SSIM') return 'corr';
    if (better === 'lower') return 'distance';
    if (better === 'higher' || /\(2WI\)$/.test(name)) return 'percent';
    return 'plain';
  }
  // A metric's images left out of its mean (no correlation: a uniform image or a constant feature row; metrics.json's
  // leftOut) are said beside its value, as the report's caption and the CLI name them.
  function metricsTable(metrics) {
    var box = el('div');
    var t = el('table');
    t.id = 'metrics';
    var better = metrics.better || {};
    var names = Object.keys(metrics.final || metrics.zonly || {});
    var head = el('tr');
    ['', 'z-only', 'final'].forEach(function (h) { head.appendChild(el('th', h)); });
    t.appendChild(head);
    var kinds = {};
    names.forEach(function (n) {
      var kind = metricKind(n, better[n]);
      kinds[kind] = true;
      var tr = el('tr');
      tr.appendChild(el('td', n + (kind === 'percent' ? ' %' : kind === 'distance' ? ' ↓' : '')));
      var leftOut = metrics.leftOut || {};
      [[metrics.zonly, leftOut.zonly], [metrics.final, leftOut.final]].forEach(function (set) {
        var m = set[0], out = set[1] && typeof set[1][n] === 'number' ? set[1][n] : 0;
        var v = m && typeof m[n] === 'number' && isFinite(m[n]) ? m[n] : null;
        var td = el('td', v === null ? '' : kind === 'percent' ? (100 * v).toFixed(1) : v.toFixed(3));
        if (out > 0) {
          td.appendChild(el('span', (v === null ? '' : ' ') + '(' + out + ' left out)', 'muted left-out'));
          kinds.leftOut = true;
        }
        tr.appendChild(td);
      });
      t.appendChild(tr);
    });
    box.appendChild(t);
    var notes = [];
    if (kinds.corr) notes.push('PixCorr and SSIM: higher is better (1 = identical).');
    if (kinds.percent) notes.push('%: two-way identification (chance 50%, higher is better).');
    if (kinds.distance) notes.push('↓: correlation distance, 1 − r (lower is better).');
    var images = typeof metrics.images === 'number' ? metrics.images : null;
    if (notes.length) box.appendChild(el('p', notes.join(' ') + ' Means over the ' + (images === null ? '' : images + ' ') + 'test images.', 'muted'));
    if (kinds.leftOut) {
      var note = el('p', 'left out: images with no correlation (a uniform image or a constant feature row), left out of that mean.', 'muted');
      note.id = 'metrics-left-out';
      box.appendChild(note);
    }
    return box;
  }

  // An encode job's result.encoding (ts/server/jobs/encodeSummary.ts): the counts, then per feature set and joint
  // model the mean held-out r over the whole mask and, with a noise ceiling, the mean of r / √NC, mean r / mean √NC
  // and how many voxels (ceiling above 1%) those two are over.
  function encodingTable(s) {
    var box = el('div');
    box.id = 'encoding';
    var n = function (v) { return typeof v === 'number' ? v.toLocaleString('en') : ''; };
    var facts = el('p', n(s.voxels) + ' voxels · ' + (s.trainRows !== undefined && s.trainRows !== s.trainImages ? n(s.trainRows) + ' training trials (of ' + n(s.trainImages) + ' images)' : n(s.trainImages) + ' training images') + ' · ' + n(s.testImages) + ' test images · noise ceiling: ' + (s.noiseCeiling ? 'yes' : 'none'), 'muted');
    facts.id = 'encoding-facts';
    box.appendChild(facts);
    var t = el('table');
    t.id = 'encoding-sets';
    var head = el('tr');
    var cols = ['feature set', 'model', 'features', 'mean r'].concat(s.noiseCeiling ? ['mean r / √NC', 'mean r / mean √NC', 'voxels NC > 1%'] : []);
    cols.forEach(function (h) { head.appendChild(el('th', h)); });
    t.appendChild(head);
    var r3 = function (v) { return typeof v === 'number' && isFinite(v) ? v.toFixed(3).replace('-', '−') : '–'; };
    (s.featureSets || []).forEach(function (f) {
      var tr = el('tr');
      var normalised = [r3(f.meanRNormalised), r3(f.ratioOfMeans), typeof f.voxelsOverCeiling === 'number' ? n(f.voxelsOverCeiling) : '–'];
      [f.name, f.model === 'banded' ? 'banded ridge (joint)' : 'ridge', n(f.features), r3(f.meanR)].concat(s.noiseCeiling ? normalised : []).forEach(function (c) { tr.appendChild(el('td', c)); });
      t.appendChild(tr);
    });
    box.appendChild(t);
    box.appendChild(el('p', 'mean r: held-out Pearson r on the test images, averaged over every voxel of the mask' +
      (s.noiseCeiling ? '; mean r / √NC: r over the square root of the noise ceiling, averaged over the voxels whose ceiling is above 1% (voxels NC > 1%: how many), where ceilings just above 1% weigh most; mean r / mean √NC: the mean r of those voxels over their mean √NC' : '') +
      '. The report has the maps and each region.', 'muted'));
    return box;
  }

  var detailShown = 0;
  function showDetail(id) {
    detailShown++;
    var j = jobs.get(id), box = $('detail-body');
    box.textContent = '';
    box.className = '';
    if (!j) return;
    box.appendChild(el('p', j.id + ' · ' + j.kind + ' · ' + (gone.has(id) ? 'unknown' : j.state) + ' · ' + j.out, 'muted'));
    if (gone.has(id)) {
      var note = el('p', goneText(id), 'problems');
      note.id = 'detail-gone';
      box.appendChild(note);
      return;
    }
    var p = j.progress;
    if (j.cancelPending) {
      var pending = el('p', j.cancelPending, 'problems');
      pending.id = 'detail-cancel-pending';
      box.appendChild(pending);
    } else if (j.state === 'running') {
      var line = el('p', p ? 'stage ' + p.index + '/' + p.stages + ' ' + p.stage + ' · ' + progressText(p) + (p.message ? ' · ' + p.message : '') : 'starting…');
      line.id = 'detail-progress';
      box.appendChild(line);
    }
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
    if (j.result.encoding) box.appendChild(encodingTable(j.result.encoding));
    var shown = ++detailShown;
    api('v1/jobs/' + encodeURIComponent(id) + '/files').then(function (r) {
      if (r.status === 404) { markGone(id); return { files: [] }; }
      return r.json();
    }).then(function (d) {
      // another job (or this one again) was shown meanwhile: its own request fills the panel
      if (shown === detailShown) box.appendChild(gallery(id, d.files || []));
    });
  }

  // images/<id>_org.png, <id>_z.png, <id>_000.png …: per test image its original, z-only and first final
  // reconstruction, side by side in that order and labelled (listed by name they came final, original, z-only).
  var TILES = [['org', 'original'], ['z', 'z-only'], ['000', 'final (seed 0)']];
  function gallery(id, files) {
    var groups = new Map();
    files.forEach(function (f) {
      var m = /(?:^|\/)images\/([^/]+)_([^/_]+)\.png$/.exec(f.path);
      if (!m) return;
      if (!groups.has(m[1])) groups.set(m[1], {});
      groups.get(m[1])[m[2]] = f.path;
    });
    var box = el('div');
    if (!groups.size) return box;
    box.appendChild(el('p', 'Each test image: ' + TILES.map(function (t) { return t[1]; }).join(' · ') + '.', 'muted'));
    var g = el('div', undefined, 'gallery');
    Array.from(groups.keys()).slice(0, 16).forEach(function (image) {
      var fig = el('figure');
      var row = el('div');
      TILES.forEach(function (t) {
        var path = groups.get(image)[t[0]];
        if (!path) return;
        var img = el('img');
        img.src = fileUrl(id, path);
        img.alt = image + ': ' + t[1];
        img.title = image + ': ' + t[1] + ' (' + path + ')';
        row.appendChild(img);
      });
      fig.appendChild(row);
      fig.appendChild(el('figcaption', image, 'muted'));
      g.appendChild(fig);
    });
    box.appendChild(g);
    if (groups.size > 16) box.appendChild(el('p', 'The first 16 of ' + groups.size + ' test images; the report shows every one.', 'muted'));
    return box;
  }

  function refresh() {
    return api('v1/session').then(function (r) { return r.json(); }).then(function (s) {
      // (signed in with a session: it can be ended here; with no token there is nothing to sign out of)
      $('sign-out').hidden = !(s.tokenRequired && s.signedIn);
      if (!s.signedIn) { showLogin(true); return; }
      return loadJobs();
    });
  }

  // (why: what the login says when the service refuses, for a list asked for again while signed in)
  var listing = false;
  function loadJobs(why, signal) {
    return api('v1/jobs', { signal: signal }).then(function (r) {
      if (r.status === 401) { listing = false; showLogin(true, why); return; }
      listing = true;
      showLogin(false);
      return r.json().then(function (d) {
        var listed = new Set();
        d.jobs.forEach(function (j) { listed.add(j.id); jobs.set(j.id, j); });
        // (a job once selected that is not running now, a queued one say, is followed no more)
        trimStreams();
        d.jobs.forEach(function (j) { if (wantsStream(j)) follow(j.id); });
        // a row the service no longer lists (it restarted, or forgot it): asked for, so a forgotten one reads unknown
        jobs.forEach(function (j, id) { if (!listed.has(id) && !gone.has(id) && !streams.has(id)) recheck(id, 0); });
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
        if (r.status === 401) {
          $('problems').textContent = 'Not submitted: ' + SESSION_ENDED;
          showLogin(true, 'The job was not submitted. ' + SESSION_ENDED);
          return;
        }
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
      if (r.status === 204) { $('login-problems').textContent = ''; refresh(); return; }
      if (r.status === 401) { $('login-problems').textContent = 'That token is not valid.'; return; }
      // (not the token's fault: say what happened)
      return answerText(r).then(function (t) { $('login-problems').textContent = 'Could not sign in (HTTP ' + r.status + '): ' + t; });
    }, function () { $('login-problems').textContent = 'Could not sign in: the service did not answer.'; });
  });

  // signing out forgets the session on the service; the page starts again from its login
  $('sign-out').addEventListener('click', function () {
    api('v1/session', { method: 'DELETE' }).then(function () { location.reload(); });
  });

  // The service has no stream of every job: the list is asked for again every few seconds while the tab is shown,
  // so jobs submitted elsewhere (the CLI, another tab, a client) and those of a restarted service appear and are
  // followed, and a running stage's ETA is as of now (or says it has stalled: no progress event comes then).
  // A poll that gets no answer is given up after POLL_TIMEOUT_MS, so one stuck request cannot stop every later poll.
  var POLL_MS = 3000, POLL_TIMEOUT_MS = 10000, polling = false;
  function poll() {
    if (polling || !listing || document.visibilityState !== 'visible') return;
    polling = true;
    var ctl = new AbortController();
    var timer = setTimeout(function () { ctl.abort(); }, POLL_TIMEOUT_MS);
    var done = function () { clearTimeout(timer); polling = false; };
    loadJobs(SESSION_ENDED, ctl.signal).then(done, done);
  }
  setInterval(poll, POLL_MS);
  document.addEventListener('visibilitychange', poll);

  fetch(base + 'healthz').then(function (r) { $('health').textContent = r.ok ? 'service ok' : 'service unhealthy'; });
  refresh();
})();
`;
