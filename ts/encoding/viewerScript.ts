/**
 * The encoding report's brain viewer, as the script and style inlined into report.html. It runs NiiVue's UMD
 * bundle (global `niivue`) on volumes embedded in the page as base64 (<script type="application/octet-stream">),
 * because chromium refuses fetch() from a file:// page. The configuration is the JSON in #viewer-config:
 * { underlay: {id, kind} | null, maps: [{id, label, kind, quantity, signed, vmax, threshold}], atlases: [{id, name, labels}],
 * start: {vox, mm} | null }.
 * `window.brainViewer` exposes { ready, nv, images, show(k), at(mm) } for tests and the console; at(mm) answers
 * { vox: the file's (i, j, k) or null, maps: each map's value (NaN for none), regions }.
 */

export const VIEWER_CSS = `
.viewer{display:flex;gap:18px;flex-wrap:wrap;align-items:flex-start}
.canvas-box{width:660px;height:500px;max-width:100%;background:#000;border-radius:3px}
.canvas-box canvas{width:100%;height:100%;display:block}
.controls{flex:1;min-width:300px;max-width:560px;font-size:13.5px}
.controls label{display:flex;align-items:center;gap:.5em;margin:.35em 0}.controls label[hidden]{display:none}
.controls select,.controls input[type=number]{font:inherit;padding:1px 4px}
.controls input[type=range]{flex:1}.controls output{min-width:4em;font-variant-numeric:tabular-nums}
.controls .hint{color:#666;font-size:12.5px}
.info{border:1px solid #ccc;border-radius:4px;padding:.4em .7em;background:#fafafa;font-size:13px}
.info .coords{font-variant-numeric:tabular-nums}.info table{margin:.3em 0 0;font-size:12.5px}
.info tr.current td{font-weight:600;background:#fff3d6}
`;

export const VIEWER_SCRIPT = `
(function () {
  var cfg = JSON.parse(document.getElementById('viewer-config').textContent);
  var $ = function (id) { return document.getElementById(id); };
  var b64 = function (id) { return document.getElementById(id).textContent.trim(); };
  // a value that rounds to zero prints as 0.000, not −0.000
  var fmt = function (v) {
    if (!isFinite(v)) return '\\u2013';
    var s = Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(3);
    return Number(s) === 0 ? s.replace('-', '') : s.replace('-', '\\u2212');
  };
  var viewer = { nv: null, images: [], atlases: [], underlay: null, current: -1, last: null };
  window.brainViewer = viewer;
  var PREFERRED = ['warm', 'hot', 'red', 'plasma', 'viridis', 'inferno', 'cool', 'winter', 'gray'];

  function settings(k) {
    var m = cfg.maps[k], img = viewer.images[k];
    var eps = 1e-6 * m.vmax;
    var thr = Math.max(Number($('threshold').value) || 0, eps), max = Math.max(Number($('vmax').value) || m.vmax, thr * 1.001);
    // colour maps first: setting one recomputes the range, which is then set
    img.colormap = $('colormap-select').value || 'warm';
    img.colormapNegative = m.signed && $('show-negative').checked ? 'winter' : '';
    img.cal_min = thr;
    img.cal_max = max;
    img.cal_minNeg = -max;
    img.cal_maxNeg = -thr;
    $('threshold-value').value = fmt(thr);
    viewer.nv.updateGLVolume();
  }

  function show(k) {
    var nv = viewer.nv, m = cfg.maps[k];
    if (viewer.current >= 0) nv.removeVolume(viewer.images[viewer.current]);
    viewer.current = k;
    nv.addVolume(viewer.images[k]);
    $('map-select').value = String(k);
    $('threshold').max = String(m.vmax);
    // 'any': a step (vmax/400) snapped the stated threshold down to a multiple of it (r ≥ 0.3443 became 0.343,
    // |R²| ≥ 0.01 became 0.009), so the viewer drew voxels the figures and captions leave out
    $('threshold').step = 'any';
    $('threshold').value = String(m.threshold);
    $('vmax').value = String(Number(m.vmax.toPrecision(3)));
    // only a signed map draws negative values (an r map shows r >= its threshold): elsewhere the box is hidden, as a
    // ticked but greyed-out 'negative values (blue)' read as if they were drawn
    $('show-negative-label').hidden = !m.signed;
    settings(k);
    if (viewer.last) info(viewer.last);
  }
  viewer.show = show;

  // The file's voxel at a point in mm: { vox: (i, j, k) as in the .nii and voxels.npy, at: its offset in img.img,
  // ras: NiiVue's voxel for getValue }, or null outside the grid. NiiVue reorders a grid to RAS+ (mm2vox and getValue
  // speak of that grid) but keeps img.img, and so our missing mask, in file order; img2RASstart/step are NiiVue's own
  // map from its voxel to that offset (what getValue reads through), so the index, the value and the NaN mask agree
  // with each other and with the drawn crosshair for any axis order or flip, with no affine of ours to keep in step.
  function voxelAt(img, mm) {
    var ras = img.mm2vox([mm[0], mm[1], mm[2]]), d = img.dimsRAS, s = img.img2RASstart, t = img.img2RASstep;
    for (var a = 0; a < 3; a++) if (!(ras[a] >= 0 && ras[a] < d[a + 1])) return null;
    var at = s[0] + s[1] + s[2] + ras[0] * t[0] + ras[1] * t[1] + ras[2] * t[2];
    var nx = img.hdr.dims[1], ny = img.hdr.dims[2];
    return { vox: [at % nx, Math.floor(at / nx) % ny, Math.floor(at / (nx * ny))], at: at, ras: ras };
  }

  // the value of every map, and the region of every atlas, at a point in mm; vox is null outside the maps' grid
  function at(mm) {
    var out = { vox: null, maps: [], regions: [] };
    viewer.images.forEach(function (img, k) {
      var p = voxelAt(img, mm);
      if (k === 0) out.vox = p && p.vox;
      out.maps.push(p && !img.missing[p.at] ? img.getValue(p.ras[0], p.ras[1], p.ras[2]) : NaN);
    });
    viewer.atlases.forEach(function (a) {
      var p = voxelAt(a.img, mm);
      var label = p ? Math.round(a.img.getValue(p.ras[0], p.ras[1], p.ras[2])) : 0;
      out.regions.push({ atlas: a.name, label: label, name: label > 0 ? (a.labels[label] || String(label)) : (label === 0 ? 'unlabelled' : 'outside the brain') });
    });
    return out;
  }
  viewer.at = at;

  function info(d) {
    viewer.last = d;
    var mm = d.mm, a = at(mm), box = $('voxel-info');
    var k = viewer.current;
    var ijk = a.vox || ['', '', ''];
    box.dataset.i = ijk[0]; box.dataset.j = ijk[1]; box.dataset.k = ijk[2];
    box.dataset.value = String(a.maps[k]);
    var rows = cfg.maps.map(function (m, q) {
      return '<tr' + (q === k ? ' class="current"' : '') + '><td>' + m.label.replace(/</g, '&lt;') + '</td><td>' + m.quantity + '</td><td class="v">' + fmt(a.maps[q]) + '</td></tr>';
    }).join('');
    var regions = a.regions.map(function (r) { return r.atlas + ': <b>' + String(r.name).replace(/</g, '&lt;') + '</b>'; }).join(' \\u00b7 ');
    box.innerHTML =
      '<div class="coords">voxel (i, j, k) = <b>' + (a.vox ? '(' + a.vox.join(', ') + ')' : 'outside the grid') + '</b> \\u00b7 (x, y, z) = <b>(' +
      [mm[0], mm[1], mm[2]].map(function (v) { return v.toFixed(1).replace('-', '\\u2212'); }).join(', ') + ') mm</b></div>' +
      '<div class="value">' + cfg.maps[k].label.replace(/</g, '&lt;') + ': <b id="voxel-value">' + fmt(a.maps[k]) + '</b> ' + cfg.maps[k].quantity + '</div>' +
      (regions ? '<div class="regions">' + regions + '</div>' : '') +
      '<table><tbody>' + rows + '</tbody></table>';
  }

  viewer.ready = (async function () {
    var N = window.niivue;
    // report.html moved without its report_files/ folder, or the bundle refused (served with a wrong media type)
    if (!N || typeof N.Niivue !== 'function') throw new Error("NiiVue (report_files/niivue.umd.js) did not load; keep the report_files folder beside report.html");
    var nv = new N.Niivue({ backColor: [0, 0, 0, 1], crosshairColor: [0.15, 0.9, 0.3, 0.85], crosshairWidth: 0.15, crosshairWidthUnit: 'voxels', isColorbar: true, show3Dcrosshair: true, fontMinPx: 13 });
    viewer.nv = nv;
    await nv.attachTo('brain-canvas');
    if (cfg.underlay) {
      viewer.underlay = await N.NVImage.loadFromBase64({ base64: b64(cfg.underlay.id), name: 'underlay.nii.gz', colormap: 'gray', colorbarVisible: false });
      nv.addVolume(viewer.underlay);
    }
    for (var k = 0; k < cfg.maps.length; k++) {
      var img = await N.NVImage.loadFromBase64({ base64: b64(cfg.maps[k].id), name: 'map' + k + '.nii.gz', colormap: 'warm' });
      // NaN marks voxels without a value: the GPU would paint them, so they become 0 (below every threshold)
      // and are remembered so a click there reads "no value"
      var data = img.img, missing = new Uint8Array(data.length);
      for (var i = 0; i < data.length; i++) if (!isFinite(data[i])) { data[i] = 0; missing[i] = 1; }
      img.missing = missing;
      img.calMinMax(); // the range NiiVue scales the texture by, now without NaN
      viewer.images.push(img);
    }
    for (var q = 0; q < cfg.atlases.length; q++) {
      var a = cfg.atlases[q];
      viewer.atlases.push({ name: a.name, labels: a.labels, img: await N.NVImage.loadFromBase64({ base64: b64(a.id), name: 'atlas' + q + '.nii.gz' }) });
    }
    var have = nv.colormaps();
    $('colormap-select').innerHTML = PREFERRED.filter(function (c) { return have.indexOf(c) >= 0; })
      .map(function (c) { return '<option>' + c + '</option>'; }).join('');
    nv.setSliceType(nv.sliceTypeMultiplanar);
    nv.onLocationChange = info;
    show(0);
    // start at the first map's strongest voxel (found when the report was written)
    if (cfg.start) {
      nv.scene.crosshairPos = nv.mm2frac(cfg.start.mm);
      nv.drawScene();
      info({ mm: cfg.start.mm });
    }

    $('map-select').addEventListener('change', function (e) { show(Number(e.target.value)); });
    $('colormap-select').addEventListener('change', function () { settings(viewer.current); });
    $('threshold').addEventListener('input', function () { settings(viewer.current); });
    $('vmax').addEventListener('change', function () { settings(viewer.current); });
    $('show-negative').addEventListener('change', function () { settings(viewer.current); });
    $('slice-type').addEventListener('change', function (e) {
      var t = { multiplanar: nv.sliceTypeMultiplanar, axial: nv.sliceTypeAxial, coronal: nv.sliceTypeCoronal, sagittal: nv.sliceTypeSagittal }[e.target.value];
      nv.setSliceType(t);
    });
    document.querySelectorAll('button.show').forEach(function (b) {
      b.addEventListener('click', function () { show(Number(b.dataset.map)); $('viewer').scrollIntoView({ behavior: 'smooth' }); });
    });
    return true;
  })();
  viewer.ready.catch(function (e) { $('voxel-info').textContent = 'The viewer could not start: ' + e.message; console.error(e); });
})();
`;
