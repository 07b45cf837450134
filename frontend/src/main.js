// socketcad's clinic web application: one page, a view per step of the case, each a thin form over the API
// (socketcad.web.app), which calls the library's operations. Nothing is computed here but what is drawn.
import { Viewer, decodeSurface } from './viewer.js';

const app = document.getElementById('app');
const statusLine = document.getElementById('status');
let account = null;         // {username, role, clinic, csrf_token}
let options = null;         // /api/options
let viewer = null;

// ---- small helpers ------------------------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (value === true) node.setAttribute(key, '');
    else if (value !== false && value != null) node.setAttribute(key, value);
  }
  for (const child of children.flat()) node.append(child instanceof Node ? child : document.createTextNode(String(child ?? '')));
  return node;
}

function field(label, input, hint) {
  const id = input.id || `f-${label.replace(/\W+/g, '-').toLowerCase()}`;
  input.id = id;
  return el('div', { class: 'field' }, el('label', { for: id }, label), input, hint ? el('small', {}, hint) : '');
}

function select(name, values, chosen, labels = {}) {
  return el('select', { name }, values.map((v) => el('option', { value: v, selected: v === chosen }, labels[v] ?? v)));
}

function say(message, kind = 'info') {
  statusLine.textContent = message;
  statusLine.className = kind;
}

let renderTicket = 0;
let shownStep = null;  // the newest render: an older one still waiting for the server is dropped

// After the page is in the document (a viewer measures its box when made); not if another page came since.
function later(action) {
  const ticket = renderTicket;
  setTimeout(() => { if (ticket === renderTicket) action().catch((error) => say(error.message, 'error')); }, 0);
}

function num(value, digits = 1) {
  return Number(value).toFixed(digits);
}

class ApiError extends Error {}

async function api(method, path, body, isForm = false) {
  const headers = {};
  if (method !== 'GET' && account) headers['x-csrf-token'] = account.csrf_token;
  if (body !== undefined && !isForm) headers['content-type'] = 'application/json';
  const response = await fetch(`/api${path}`, {
    method, headers, credentials: 'same-origin',
    body: body === undefined ? undefined : isForm ? body : JSON.stringify(body),
  });
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { detail: text.slice(0, 200) }; }
  if (!response.ok) {
    if (response.status === 401 && path !== '/session') { account = null; location.hash = '#/login'; }
    throw new ApiError(data?.detail || `HTTP ${response.status}`);
  }
  return data;
}

async function attempt(action, done) {
  try {
    const result = await action();
    if (done) say(done, 'ok');
    return result;
  } catch (error) {
    say(error instanceof ApiError ? error.message : `error: ${error.message}`, 'error');
    return undefined;
  }
}

// A job's progress: server-sent events until it is done; the bar shows the stages passed.
function followJob(job, bar) {
  return new Promise((resolve, reject) => {
    const source = new EventSource(`/api/jobs/${job.id}/events`);
    source.onmessage = (event) => {
      const state = JSON.parse(event.data);
      bar.querySelector('.stage').textContent = `${state.state}: ${state.stages.at(-1) ?? 'waiting for a worker'} (${num(state.seconds, 0)} s)`;
      bar.querySelector('progress').value = state.state === 'done' ? 1 : Math.min(0.95, 0.1 + 0.12 * state.stages.length);
      if (state.state === 'done') { source.close(); resolve(state.result); }
      if (state.state === 'failed') { source.close(); reject(new ApiError(state.error)); }
    };
    source.onerror = () => { source.close(); reject(new ApiError('lost the connection to the server while waiting for the job')); };
  });
}

function progressBar(label) {
  return el('div', { class: 'job', role: 'status' }, el('span', {}, label), el('progress', { max: 1, value: 0.05 }),
    el('span', { class: 'stage' }, 'starting'));
}

// Drafts: what is typed in a form is kept in this browser until it is saved, so closing the page loses nothing.
const drafts = {
  key: (reference, name) => `socketcad:draft:${account?.username}:${reference}:${name}`,
  get(reference, name) { try { return JSON.parse(localStorage.getItem(this.key(reference, name))); } catch { return null; } },
  set(reference, name, value) { localStorage.setItem(this.key(reference, name), JSON.stringify(value)); },
  drop(reference, name) { localStorage.removeItem(this.key(reference, name)); },
};

function newViewer(container, side) {
  if (viewer) viewer.dispose();
  viewer = new Viewer(container, { side });
  window.socketcadViewer = viewer; // for the tests' pixel read-back
  return viewer;
}

function viewButtons() {
  return el('div', { class: 'views', role: 'group', 'aria-label': 'anatomical views' },
    ['anterior', 'posterior', 'lateral', 'medial', 'distal'].map((name) =>
      el('button', { type: 'button', onclick: () => viewer?.view(name) }, name)));
}

// ---- sign in, case list -----------------------------------------------------------------------------------

function loginPage() {
  const form = el('form', { class: 'panel narrow', 'aria-label': 'sign in' },
    el('h1', {}, 'socketcad'), el('p', {}, 'Sign in to your clinic.'),
    field('Username', el('input', { name: 'username', autocomplete: 'username', required: true })),
    field('Password', el('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true })),
    el('button', { type: 'submit' }, 'Sign in'));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const data = Object.fromEntries(new FormData(form));
    const signed = await attempt(() => api('POST', '/session', data));
    if (signed) { account = signed; options = await api('GET', '/options'); location.hash = '#/cases'; }
  });
  return form;
}

async function casesPage() {
  const table = el('tbody');
  const search = el('input', { type: 'search', name: 'q', placeholder: 'reference contains', 'aria-label': 'search cases' });
  async function load() {
    const list = await attempt(() => api('GET', `/cases?q=${encodeURIComponent(search.value)}`));
    table.replaceChildren(...(list?.cases ?? []).map((c) => el('tr', {},
      el('td', {}, el('a', { href: `#/case/${encodeURIComponent(c.reference)}/evaluation` }, c.reference)),
      el('td', {}, c.level), el('td', {}, c.side), el('td', {}, c.scans), el('td', {}, c.revisions))));
  }
  search.addEventListener('input', load);
  const form = el('form', { class: 'inline', 'aria-label': 'new case' },
    field('Reference', el('input', { name: 'reference', required: true, maxlength: 64 }), 'the clinic\'s identifier, no names'),
    field('Level', select('level', options.levels, 'transtibial')),
    field('Side', select('side', options.sides, 'right')),
    el('button', { type: 'submit' }, 'New case'));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const made = await attempt(() => api('POST', '/cases', Object.fromEntries(new FormData(form))), 'case opened');
    if (made) location.hash = `#/case/${encodeURIComponent(made.reference)}/evaluation`;
  });
  await load();
  return el('div', { class: 'panel' }, el('h1', {}, 'Cases'), search,
    el('table', {}, el('thead', {}, el('tr', {}, ['Reference', 'Level', 'Side', 'Scans', 'Revisions'].map((h) => el('th', {}, h)))), table),
    el('h2', {}, 'Open a case'), form);
}

// ---- a case -------------------------------------------------------------------------------------------------

const STEPS = [
  ['evaluation', '1 Evaluation'], ['scan', '2 Scan'], ['landmarks', '2 Landmarks and sections'],
  ['rectification', '3 Rectification'], ['socket', '4 Socket'], ['analysis', '5 Analysis'],
  ['fitting', '5 Fitting and revisions'], ['delivery', '6-7 Definitive, delivery, follow-up'], ['audit', 'Audit trail'],
];

async function casePage(reference, step) {
  const history = await api('GET', `/cases/${encodeURIComponent(reference)}`);
  const nav = el('nav', { class: 'steps', 'aria-label': 'steps' }, STEPS.map(([key, label]) =>
    el('a', { href: `#/case/${encodeURIComponent(reference)}/${key}`, 'aria-current': key === step ? 'page' : false }, label)));
  const body = el('section', { class: 'step' });
  const page = el('div', { class: 'case' },
    el('header', {}, el('h1', {}, `Case ${history.reference}`), el('span', {}, `${history.side} ${history.level}`),
      el('a', { href: '#/cases' }, 'all cases')), nav, body);
  const builder = STEP_PAGES[step] ?? STEP_PAGES.evaluation;
  body.append(await builder(history));
  return page;
}

function keyValues(text) {
  // "knee_extension=5, hip_flexion=4" -> {knee_extension: 5, hip_flexion: 4}
  const out = {};
  for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const [key, value] = part.split('=').map((p) => p.trim());
    out[key] = Number(value);
  }
  return out;
}

function viewerPanel(history) {
  const box = el('div', { class: 'viewer', id: 'viewer' });
  return { box, make: () => newViewer(box, history.side) };
}

async function scanSurface(history, scanId) {
  const view = await api('GET', `/cases/${encodeURIComponent(history.reference)}/scans/${scanId}`);
  return { view, surface: decodeSurface(view.surface) };
}

const STEP_PAGES = {
  async evaluation(history) {
    const level = history.level;
    const last = history.evaluations.at(-1);
    const saved = drafts.get(history.reference, 'evaluation') ?? {};
    const sensitive = new Set(saved.sensitive_areas ?? last?.sensitive_areas ?? []);
    const boxes = options.landmarks[level].map((name) => el('label', { class: 'check' },
      el('input', { type: 'checkbox', name: 'sensitive', value: name, checked: sensitive.has(name) }), name));
    const form = el('form', { class: 'panel', 'aria-label': 'evaluation' },
      el('h2', {}, 'Evaluation'),
      field('K-level', select('k_level', options.k_levels, saved.k_level ?? last?.k_level ?? 'K3')),
      el('fieldset', {}, el('legend', {}, 'Sensitive areas (relieved by the templates); or click them on the limb'), boxes),
      field('Strength (MRC 0-5)', el('input', { name: 'strength', value: saved.strength ?? '', placeholder: 'knee_extension=5, hip_extension=4' })),
      field('Range of motion (degrees)', el('input', { name: 'rom', value: saved.rom ?? '', placeholder: 'knee_flexion=120' })),
      field('Skin', el('input', { name: 'skin', value: saved.skin ?? '' })),
      field('History', el('textarea', { name: 'history' }, saved.history ?? '')),
      field('Lifestyle', el('input', { name: 'lifestyle', value: saved.lifestyle ?? '' })),
      field('Goals', el('input', { name: 'goals', value: saved.goals ?? '' })),
      el('button', { type: 'submit' }, 'Save evaluation'));
    const read = () => {
      const data = Object.fromEntries(new FormData(form));
      data.sensitive_areas = [...form.querySelectorAll('input[name=sensitive]:checked')].map((b) => b.value);
      return data;
    };
    form.addEventListener('input', () => drafts.set(history.reference, 'evaluation', read()));
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const data = read();
      const fields = { k_level: data.k_level, sensitive_areas: data.sensitive_areas, skin: data.skin,
        history: data.history, lifestyle: data.lifestyle, goals: data.goals,
        strength_mrc: keyValues(data.strength), range_of_motion_deg: keyValues(data.rom) };
      const savedRecord = await attempt(() => api('POST', `/cases/${encodeURIComponent(history.reference)}/evaluations`, fields),
        'evaluation saved');
      if (savedRecord) { drafts.drop(history.reference, 'evaluation'); render(); }
    });
    const list = el('ul', {}, history.evaluations.map((e) => el('li', {}, `${e.created_at.slice(0, 16)} ${e.k_level}, sensitive: ${e.sensitive_areas.join(', ') || 'none'} (${e.by})`)));
    const panel = viewerPanel(history);
    const page = el('div', { class: 'split' }, el('div', {}, form, el('h3', {}, 'Recorded'), list), panel.box);
    if (history.scans.length) {
      later(async () => {
        const v = panel.make();
        const { view, surface } = await scanSurface(history, history.scans.at(-1).id);
        v.setSurface(surface);
        v.setLandmarks(view.landmarks.map((l) => ({ name: l.name, point_mm: l.point_mm })), { editable: false });
        v.onPick = (point) => {  // the nearest landmark's box is ticked
          let best = null, distance = Infinity;
          for (const l of view.landmarks) {
            const d = Math.hypot(...l.point_mm.map((x, i) => x - point[i]));
            if (d < distance) { distance = d; best = l.name; }
          }
          const box = form.querySelector(`input[value="${best}"]`);
          if (box) { box.checked = !box.checked; drafts.set(history.reference, 'evaluation', read()); say(`${best}: ${box.checked ? 'sensitive' : 'not sensitive'}`); }
        };
      });
    } else panel.box.append(el('p', {}, 'Add a scan to pick the areas on the limb.'));
    return page;
  },

  async scan(history) {
    const form = el('form', { class: 'panel', 'aria-label': 'scan upload' },
      el('h2', {}, 'Scan or scanned cast'),
      field('File', el('input', { type: 'file', name: 'file', required: true, accept: '.stl,.obj,.ply,.off,.3mf,.aop' }),
        'STL, OBJ, PLY, OFF, 3MF or AOP, up to 64 MB; the type is read from the content'),
      field('Capture', select('method', options.methods, 'scan')),
      field('Units', select('units', ['', ...options.units], '', { '': 'detect' }), 'detected from the size unless given'),
      field('Anterior direction (file coordinates)', el('input', { name: 'anterior', placeholder: 'X,Y,Z e.g. 0,-1,0' }),
        'a scan without bones needs it before a design'),
      el('button', { type: 'submit' }, 'Upload'));
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      say('reading the scan...');
      const kept = await attempt(() => api('POST', `/cases/${encodeURIComponent(history.reference)}/scans`, new FormData(form), true));
      if (kept) { say(`scan ${kept.id} kept (units ${kept.units})`, 'ok'); location.hash = `#/case/${encodeURIComponent(history.reference)}/landmarks`; }
    });
    // Tape measures: the library's tape format (anatomy.tape), sent as a tape.json upload with method tape.
    const lists = (text) => text.split(/[,\s]+/).filter(Boolean).map(Number);
    const tape = el('form', { class: 'panel', 'aria-label': 'tape measures' },
      el('h2', {}, 'Or tape measures'),
      field('Reference level', select('reference', history.level === 'transtibial' ? ['mpt'] : ['ischial_tuberosity', 'perineum'], history.level === 'transtibial' ? 'mpt' : 'ischial_tuberosity')),
      field('Residual length (mm)', el('input', { type: 'number', name: 'residual_length_mm', min: 20, max: 1000, step: 1, required: true })),
      field('Interval (mm)', el('input', { type: 'number', name: 'interval_mm', min: 2, max: 100, step: 1, value: 30, required: true })),
      field('Circumferences (mm), from the reference down', el('input', { name: 'circumferences_mm', required: true, placeholder: '365, 340, 310, 280, 250, 220' })),
      field('A-P widths (mm), optional', el('input', { name: 'ap_width_mm', placeholder: 'one, or one per circumference' })),
      field('M-L widths (mm), optional', el('input', { name: 'ml_width_mm' })),
      field('Distal end', select('distal_shape', ['round', 'conical', 'square'], 'round')),
      el('button', { type: 'submit' }, 'Keep the tape measures'));
    tape.addEventListener('submit', async (event) => {
      event.preventDefault();
      const data = Object.fromEntries(new FormData(tape));
      const measures = { schema_version: 1, level: history.level, side: history.side, reference: data.reference,
        residual_length_mm: Number(data.residual_length_mm), interval_mm: Number(data.interval_mm),
        circumferences_mm: lists(data.circumferences_mm), distal_shape: data.distal_shape };
      for (const key of ['ap_width_mm', 'ml_width_mm']) if (data[key].trim()) { const v = lists(data[key]); measures[key] = v.length === 1 ? v[0] : v; }
      const upload = new FormData();
      upload.append('file', new Blob([JSON.stringify(measures)], { type: 'application/json' }), 'tape.json');
      upload.append('method', 'tape');
      const kept = await attempt(() => api('POST', `/cases/${encodeURIComponent(history.reference)}/scans`, upload, true));
      if (kept) { say(`tape measures kept as scan ${kept.id}`, 'ok'); location.hash = `#/case/${encodeURIComponent(history.reference)}/landmarks`; }
    });
    const list = el('ul', {}, history.scans.map((s) => el('li', {}, `scan ${s.id}: ${s.filename} (${s.method}, ${s.units ?? 'detected'}) ${s.created_at.slice(0, 16)}`)));
    return el('div', { class: 'columns' }, form, tape, el('div', { class: 'panel' }, el('h3', {}, 'Scans'), list));
  },

  async landmarks(history) {
    if (!history.scans.length) return el('p', {}, 'No scan yet: upload one first.');
    const scanId = history.scans.at(-1).id;
    const panel = viewerPanel(history);
    const table = el('tbody');
    const readout = el('output', { id: 'section-readout' }, '');
    const slider = el('input', { type: 'range', id: 'section-level', min: 5, max: 300, step: 1, value: 60, 'aria-label': 'section height above the distal end, mm' });
    const place = async (name, point) => {
      const moved = await attempt(() => api('POST', `/cases/${encodeURIComponent(history.reference)}/scans/${scanId}/landmarks`, { name, point_mm: point }),
        `${name} placed`);
      if (moved) showLandmarks(moved.landmarks);
    };
    // Each landmark's coordinates can be typed too (keyboard): the point is snapped to the skin by the library.
    const showLandmarks = (landmarks) => {
      table.replaceChildren(...landmarks.map((l) => {
        const inputs = l.point_mm.map((x, i) => el('input', { type: 'number', step: 0.5, value: num(x), 'aria-label': `${l.name} ${'xyz'[i]} mm` }));
        const button = el('button', { type: 'button', onclick: () => place(l.name, inputs.map((i) => Number(i.value))) }, 'Place');
        return el('tr', { class: l.placed ? 'placed' : '' }, el('td', {}, l.name), el('td', { class: 'xyz' }, inputs, button),
          el('td', {}, l.placed ? 'placed by hand' : l.how.slice(0, 60)));
      }));
      viewer.setLandmarks(landmarks.map((l) => ({ name: l.name, point_mm: l.point_mm })), { editable: true });
    };
    let timer = null;
    slider.addEventListener('input', () => {
      const level = Number(slider.value);
      viewer.setSection(level);
      clearTimeout(timer);
      timer = setTimeout(async () => {
        const cut = await attempt(() => api('GET', `/cases/${encodeURIComponent(history.reference)}/scans/${scanId}/section?level_mm=${level}`));
        if (cut) readout.textContent = `${num(level, 0)} mm: circumference ${num(cut.circumference_mm)} mm, A-P ${num(cut.ap_width_mm)} mm, M-L ${num(cut.ml_width_mm)} mm`;
      }, 120);
    });
    later(async () => {
      const v = panel.make();
      const { view, surface } = await scanSurface(history, scanId);
      v.setSurface(surface);
      slider.max = Math.floor(view.length_mm - 1);
      showLandmarks(view.landmarks);
      if (view.notes.some((n) => n.includes('ANTERIOR UNKNOWN') || n.includes('anterior: unknown'))) say('anterior unknown: give the anterior direction with the scan', 'error');
      v.onLandmarkMoved = place;
    });
    return el('div', { class: 'split' },
      el('div', { class: 'panel' }, el('h2', {}, 'Landmarks'), el('p', {}, 'Drag a landmark on the limb, or type its x, y, z (limb frame, mm) and Place: it is snapped to the skin and kept for the designs of this scan.'),
        el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'Landmark'), el('th', {}, 'x, y, z (mm)'), el('th', {}, 'How'))), table),
        el('h3', {}, 'Section'), slider, readout),
      el('div', {}, viewButtons(), panel.box));
  },

  async rectification(history) {
    if (!history.scans.length) return el('p', {}, 'No scan yet: upload one first.');
    const reference = history.reference;
    const panel = viewerPanel(history);
    const templates = options.templates[history.level];
    const summary = el('div', { class: 'summary', id: 'rectification-summary' });
    const rows = el('tbody');
    let plan = drafts.get(reference, 'plan');
    let pending = null;
    const template = select('template', templates, templates.includes('tsb') ? 'tsb' : templates[0]);
    const EDITABLE = ['depth_mm', 'width_mm', 'height_mm', 'falloff_mm'];

    async function show(result) {
      plan = result.plan;
      drafts.set(reference, 'plan', plan);
      const r = result.rectified;
      summary.textContent = `volume ${num(r.volume_before_cm3, 0)} -> ${num(r.volume_after_cm3, 0)} cm3 (${num(r.volume_change_pct)} %), deviation ${num(r.deviation_min_mm)} to +${num(r.deviation_max_mm)} mm`;
      viewer.setSurface(decodeSurface(result.surface));
      viewer.setMarkers(r.modifications.filter((m) => m.landmark).map((m) => ({ name: m.label, point_mm: markerPoint(m.landmark), colour: m.kind === 'push' ? '#1d4ed8' : '#dc2626' })));
      rows.replaceChildren(...plan.modifications.map((m, index) => el('tr', {},
        el('td', {}, m.kind), el('td', {}, m.label ?? ''), el('td', {}, m.region?.landmark ?? ''),
        EDITABLE.map((key) => {
          const holder = key === 'depth_mm' ? m : m.region;
          if (!holder || holder[key] === undefined) return el('td', {}, '');
          const input = el('input', { type: 'number', step: key === 'depth_mm' ? 0.5 : 1, value: holder[key], 'aria-label': `${m.label ?? m.kind} ${key}`, 'data-row': index, 'data-key': key });
          input.addEventListener('input', () => { if (input.value !== '') { holder[key] = Number(input.value); schedule(); } });
          return el('td', {}, input);
        }))));
    }
    let landmarkPoints = {};
    const markerPoint = (name) => landmarkPoints[name] ?? [0, 0, 0];
    let latest = 0;  // only the newest request's answer is shown: an older one may come back later
    async function run(body) {
      const ticket = ++latest;
      const started = performance.now();
      const result = await attempt(() => api('POST', `/cases/${encodeURIComponent(reference)}/preview`, body));
      if (result && ticket === latest) { await show(result); summary.dataset.ms = String(Math.round(performance.now() - started)); }
    }
    function schedule() {  // one preview in flight; the newest edit wins
      drafts.set(reference, 'plan', plan);
      if (pending) { pending.again = true; return; }
      pending = { again: false };
      run({ plan }).then(() => { const again = pending.again; pending = null; if (again) schedule(); });
    }
    later(async () => {
      const v = panel.make();
      const { view } = await scanSurface(history, history.scans.at(-1).id);
      landmarkPoints = Object.fromEntries(view.landmarks.map((l) => [l.name, l.point_mm]));
      // a click on a modification's handle (or near it, 25 mm) selects its row: depth, width, height, falloff
      v.onPick = (point) => {
        let best = -1, distance = 25;
        plan?.modifications.forEach((m, index) => {
          const at = m.region && landmarkPoints[m.region.landmark];
          const d = at ? Math.hypot(...at.map((x, i) => x - point[i])) : Infinity;
          if (d < distance) { distance = d; best = index; }
        });
        const input = rows.querySelector(`input[data-row="${best}"]`);
        if (input) { input.focus(); input.select(); say(`${plan.modifications[best].label ?? plan.modifications[best].kind}: edit its depth and size`); }
      };
      v.view('anterior');
      await run(plan ? { plan } : { template: template.value });
    });
    // the liner sets the template's reduction (TSB: its thickness); the socket step should use the same liner
    const liner = select('liner', ['', ...options.liners], '', { '': 'the template\'s default (6 mm)' });
    const start = el('button', { type: 'button', onclick: () => { drafts.drop(reference, 'plan'); run({ template: template.value, ...(liner.value ? { liner: liner.value } : {}) }); } }, 'Start from template');
    const save = el('button', { type: 'button', onclick: () => { drafts.set(reference, 'plan', plan); location.hash = `#/case/${encodeURIComponent(reference)}/socket`; } }, 'Use this plan for the socket');
    return el('div', { class: 'split' },
      el('div', { class: 'panel' }, el('h2', {}, 'Rectification'), field('Template', template), field('Liner', liner), start,
        el('table', { id: 'modifications' }, el('thead', {}, el('tr', {}, ['Kind', 'Label', 'Landmark', 'Depth mm', 'Width mm', 'Height mm', 'Falloff mm'].map((h) => el('th', {}, h)))), rows),
        summary, el('p', {}, 'Blue: the model pushed in (load); red: built out (relief). Click a handle on the limb to edit its row. The edits are kept in this browser until the socket is built.'), save),
      el('div', {}, viewButtons(), panel.box));
  },

  async socket(history) {
    const reference = history.reference;
    let plan = drafts.get(reference, 'plan');
    const panel = viewerPanel(history);
    const reasons = el('ul', { id: 'reasons' });
    const bar = el('div');
    const files = el('div', { class: 'downloads' });
    const trim = el('tbody');
    let shownRevision = null;
    const form = el('form', { class: 'panel', 'aria-label': 'socket' },
      el('h2', {}, 'Test socket'),
      el('p', {}, plan ? `Plan: ${plan.name} with ${plan.modifications.length} modifications (from the rectification step)` : 'No plan drafted: the socket type\'s template is used.'),
      el('fieldset', {}, el('legend', {}, 'Selection (the rules propose liner, closure and adapter)'),
        field('Skin', select('skin_condition', ['intact', 'fragile', 'scarred', 'grafted', 'adherent_scar'], 'intact')),
        field('Volume', select('volume_stability', ['stable', 'fluctuating', 'maturing'], 'stable')),
        field('Hand dexterity', select('hand_dexterity', ['good', 'limited'], 'good')),
        el('button', { type: 'button', id: 'propose' }, 'Propose components'), reasons),
      field('Socket type', select('socket_type', options.templates[history.level], plan?.name?.toLowerCase() ?? options.templates[history.level][0])),
      field('Liner', select('liner', options.liners, options.liners[0])),
      field('Closure', select('closure', options.closures, options.closures[0])),
      field('Adapter', select('adapter', ['', ...options.adapters], '', { '': 'the rule\'s for the closure' })),
      field('Material', select('material', options.materials, 'petg')),
      field('Stage', select('stage', ['test', 'definitive'], 'test')),
      el('button', { type: 'submit' }, 'Build socket'), bar);
    form.querySelector('#propose').addEventListener('click', async () => {
      const data = Object.fromEntries(new FormData(form));
      const proposal = await attempt(() => api('POST', `/cases/${encodeURIComponent(reference)}/proposal`,
        { skin_condition: data.skin_condition, volume_stability: data.volume_stability, hand_dexterity: data.hand_dexterity }));
      if (!proposal) return;
      for (const key of ['liner', 'closure', 'adapter']) form.elements[key].value = proposal[key];
      reasons.replaceChildren(...proposal.reasons.map((r) => el('li', {}, r)));
    });
    async function showSocket(revision) {
      const view = await attempt(() => api('GET', `/cases/${encodeURIComponent(reference)}/revisions/${revision}/socket`));
      if (!view) return;
      const v = viewer ?? panel.make();
      v.setSurface(decodeSurface(view.surface));
      v.setMarkers(view.sheet.openings?.filter((o) => o.start_mm).map((o) => ({ name: o.name, point_mm: o.start_mm, colour: '#7c3aed' })) ?? []);
      // the form starts from this revision's spec: a change (a trimline raise) keeps the rest
      for (const key of ['socket_type', 'liner', 'closure', 'adapter', 'material', 'stage']) {
        if ([...form.elements[key].options].some((o) => o.value === view.spec[key])) form.elements[key].value = view.spec[key];
      }
      shownRevision = revision;
      const base = `/api/cases/${encodeURIComponent(reference)}/revisions/${revision}`;
      files.replaceChildren(el('h3', {}, `Revision ${revision}: ${view.sheet.socket_type}, ${num(view.sheet.mass_g, 0)} g, wall ${num(view.sheet.wall_thickness_mm)} mm`),
        ...view.downloads.map((name) => el('a', { href: `${base}/files/${name}`, download: true }, name)),
        el('a', { href: `${base}/report.html`, download: true }, 'report (HTML)'), el('a', { href: `${base}/report.pdf`, download: true }, 'report (PDF)'));
      trim.replaceChildren(...view.sheet.trimline.map((p) => el('tr', {}, el('td', {}, p.name), el('td', {}, p.landmark), el('td', {}, num(p.angle_deg, 0)),
        el('td', {}, num(p.offset_mm, 0)),
        el('td', {}, el('input', { type: 'number', step: 1, min: -150, max: 150, name: `trim:${p.name}`, value: view.spec.trim_offsets_mm?.[p.name] ?? 0, 'aria-label': `trimline ${p.name} raise mm` })))));
    }
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const data = Object.fromEntries(new FormData(form));
      const offsets = Object.fromEntries([...trim.querySelectorAll('input')].map((i) => [i.name.slice(5), Number(i.value)]).filter(([, v]) => v !== 0));
      const spec = { socket_type: data.socket_type, liner: data.liner, closure: data.closure, material: data.material,
        stage: data.stage, ...(data.adapter ? { adapter: data.adapter } : {}), ...(Object.keys(offsets).length ? { trim_offsets_mm: offsets } : {}) };
      // a drafted plan; else a change of the revision shown (its plan kept, the spec as the form says); else the template
      const body = plan ? { plan, spec } : shownRevision ? { parent: shownRevision, spec } : { template: data.socket_type, spec };
      if (plan && shownRevision) body.parent = shownRevision;
      const job = await attempt(() => api('POST', `/cases/${encodeURIComponent(reference)}/revisions`, body));
      if (!job) return;
      const progress = progressBar('building');
      bar.replaceChildren(progress);
      const saved = await attempt(() => followJob(job, progress), 'socket built and saved');
      if (saved) { drafts.drop(reference, 'plan'); plan = null; history.revisions.push({ id: saved.id }); await showSocket(saved.id); }
    });
    later(async () => { panel.make(); if (history.revisions.length) await showSocket(history.revisions.at(-1).id); });
    return el('div', { class: 'split' }, el('div', {}, form,
      el('div', { class: 'panel' }, el('h3', {}, 'Trimline: raise (+) or lower (-) a point, mm; the next build makes a child revision'),
        el('table', {}, el('thead', {}, el('tr', {}, ['Point', 'Landmark', 'Angle deg', 'From landmark mm', 'Raise mm'].map((h) => el('th', {}, h)))), trim)), files),
      el('div', {}, viewButtons(), panel.box));
  },

  async analysis(history) {
    const reference = history.reference;
    if (!history.revisions.length) return el('p', {}, 'No revision yet: build a socket first.');
    const panel = viewerPanel(history);
    const revision = select('revision', history.revisions.map((r) => String(r.id)), String(history.revisions.at(-1).id));
    const bar = el('div');
    const regions = el('tbody');
    const caseSelect = el('select', { name: 'load_case', 'aria-label': 'load case' });
    const mapSelect = select('map', ['pressure', 'shear'], 'pressure');
    mapSelect.setAttribute('aria-label', 'map');
    const facts = el('div', { class: 'summary', id: 'analysis-summary' });
    async function show(loadCase) {
      const query = new URLSearchParams({ map: mapSelect.value, ...(loadCase ? { load_case: loadCase } : {}) });
      const view = await attempt(() => api('GET', `/cases/${encodeURIComponent(reference)}/revisions/${revision.value}/analysis?${query}`));
      if (!view) return;
      caseSelect.replaceChildren(...view.load_cases.map((c) => el('option', { value: c, selected: c === view.load_case }, c)));
      const v = viewer ?? panel.make();
      v.setSurface(decodeSurface(view.surface));
      v.setMarkers(view.regions.filter((r) => r.over_tolerance).map((r) => ({ name: `${r.region} over ${num(r.tolerance_kpa, 0)} kPa`, point_mm: r.point_mm, colour: '#ff00ff' })));
      window.socketcadAnalysis = { peak_point_mm: view.peak_point_mm, peak_kpa: view.peak_kpa, high: view.surface.scale.high };
      facts.replaceChildren(el('p', {}, `${view.map} in ${view.load_case}: peak ${num(view.peak_kpa)} kPa${view.quick ? ' (quick preview: coarse mesh)' : ''}; magenta: regions over their tolerance`),
        el('details', {}, el('summary', {}, 'What is validated, what is an estimate'),
          el('p', {}, `Validated: ${view.validated.join('; ')}`), el('p', {}, `Estimates: ${view.estimates.join('; ')}`)));
      regions.replaceChildren(...view.regions.map((r) => el('tr', { class: r.over_tolerance ? 'over' : '' },
        el('td', {}, r.region), el('td', {}, r.kind), el('td', {}, num(r.peak_kpa)), el('td', {}, num(r.sensel_peak_kpa)),
        el('td', {}, num(r.tolerance_kpa, 0)), el('td', {}, r.over_tolerance ? 'OVER' : 'within'))));
    }
    caseSelect.addEventListener('change', () => show(caseSelect.value));
    mapSelect.addEventListener('change', () => show(caseSelect.value));
    revision.addEventListener('change', () => show());
    const form = el('form', { class: 'panel', 'aria-label': 'analysis' },
      el('h2', {}, 'Interface analysis'), field('Revision', revision),
      field('Body mass (kg)', el('input', { type: 'number', name: 'body_mass_kg', min: 20, max: 250, step: 0.5, required: true })),
      el('label', { class: 'check' }, el('input', { type: 'checkbox', name: 'quick', checked: true }), 'quick preview (donning and standing, coarse mesh)'),
      el('button', { type: 'submit' }, 'Run analysis'), bar);
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const data = new FormData(form);
      const job = await attempt(() => api('POST', `/cases/${encodeURIComponent(reference)}/revisions/${revision.value}/analysis`,
        { body_mass_kg: Number(data.get('body_mass_kg')), quick: data.get('quick') === 'on' }));
      if (!job) return;
      const progress = progressBar('analysing');
      bar.replaceChildren(progress);
      if (await attempt(() => followJob(job, progress), 'analysis saved')) await show();
    });
    later(async () => { panel.make(); if (history.analyses.some((a) => String(a.revision) === revision.value)) await show(); });
    return el('div', { class: 'split' }, el('div', {}, form,
      el('div', { class: 'panel' }, field('Load case', caseSelect), field('Map', mapSelect), facts,
        el('table', { id: 'regions' }, el('thead', {}, el('tr', {}, ['Region', 'Kind', 'Peak kPa', 'Sensel kPa', 'Tolerance kPa', ''].map((h) => el('th', {}, h)))), regions))),
      el('div', {}, viewButtons(), panel.box));
  },

  async fitting(history) {
    const reference = history.reference;
    if (!history.revisions.length) return el('p', {}, 'No revision yet: build a socket first.');
    const panel = viewerPanel(history);
    const areas = options.feedback_areas[history.level];
    const feedback = el('div', { id: 'feedback' });
    const adjustments = el('div', { id: 'adjustments' });
    const bar = el('div');
    const addFeedback = (area = areas[0], text = '') => feedback.append(el('div', { class: 'row' },
      select('area', areas, area), el('input', { name: 'note', value: text, placeholder: 'what was noted', 'aria-label': 'feedback' })));
    const addAdjustment = () => adjustments.append(el('div', { class: 'row' },
      select('verb', ['relieve', 'push', 'reduce'], 'relieve'), el('input', { name: 'where', placeholder: 'landmark or proximal/distal/all', 'aria-label': 'where' }),
      el('input', { name: 'amount', type: 'number', step: 0.5, placeholder: 'mm or %', 'aria-label': 'amount' })));
    const revision = select('revision', history.revisions.map((r) => String(r.id)), String(history.revisions.at(-1).id));
    const form = el('form', { class: 'panel', 'aria-label': 'fitting' },
      el('h2', {}, 'Fitting'), field('Revision fitted', revision),
      field('Comfort (socket comfort score 0-10)', el('input', { type: 'range', name: 'comfort', min: 0, max: 10, value: 6 })),
      el('h3', {}, 'Feedback by region (click the limb to add one)'), feedback,
      el('button', { type: 'button', onclick: () => addFeedback() }, 'Add feedback'),
      field('Gait', el('input', { name: 'gait' })),
      el('h3', {}, 'Adjustments (make a child revision)'), adjustments,
      el('button', { type: 'button', onclick: addAdjustment }, 'Add adjustment'),
      el('button', { type: 'submit' }, 'Record fitting'), bar);
    const readFitting = () => ({ comfort: form.elements.comfort.value, gait: form.elements.gait.value,
      feedback: [...feedback.children].map((row) => [row.querySelector('select').value, row.querySelector('input').value]),
      adjustments: [...adjustments.children].map((row) => [...row.querySelectorAll('select, input')].map((i) => i.value)) });
    form.addEventListener('input', () => drafts.set(reference, 'fitting', readFitting()));
    form.addEventListener('change', () => drafts.set(reference, 'fitting', readFitting()));
    const draft = drafts.get(reference, 'fitting');
    if (draft) {
      form.elements.comfort.value = draft.comfort;
      form.elements.gait.value = draft.gait;
      for (const [area, text] of draft.feedback) addFeedback(area, text);
      for (const values of draft.adjustments) {
        addAdjustment();
        [...adjustments.lastChild.querySelectorAll('select, input')].forEach((input, i) => { input.value = values[i]; });
      }
    }
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const notes = Object.fromEntries([...feedback.children].map((row) => [row.querySelector('select').value, row.querySelector('input').value]).filter(([, t]) => t));
      const adjust = [...adjustments.children].map((row) => {
        const [verb, where, amount] = [row.querySelector('select').value, row.querySelector('[name=where]').value.trim(), row.querySelector('[name=amount]').value];
        return verb === 'reduce' ? `reduce ${where} ${amount}%` : `${verb} ${where} ${amount}`;
      }).filter((a) => !a.includes('  ') && !a.endsWith(' ') && !a.endsWith(' %'));
      const data = new FormData(form);
      const job = await attempt(() => api('POST', `/cases/${encodeURIComponent(reference)}/revisions/${revision.value}/fittings`,
        { comfort: Number(data.get('comfort')), feedback: notes, gait: data.get('gait'), adjustments: adjust }));
      if (!job) return;
      const progress = progressBar(adjust.length ? 'building the adjusted socket' : 'recording');
      bar.replaceChildren(progress);
      const saved = await attempt(() => followJob(job, progress), 'fitting recorded');
      if (saved) drafts.drop(reference, 'fitting');
      if (saved) say(saved.child ? `fitting recorded: revision ${saved.child.id} made (child of ${saved.revision})` : 'fitting recorded', 'ok');
      if (saved && location.hash.endsWith('/fitting')) await renderKeepingStatus();  // the revision tree, with the new one
    });
    const tree = el('ul', { id: 'revision-tree' }, history.revisions.map((r) => el('li', {}, `revision ${r.id}${r.parent ? ` (child of ${r.parent})` : ''}: ${r.socket_type}, ${r.liner}${r.note ? `, ${r.note}` : ''} (${r.by})`)));
    const first = select('first', history.revisions.map((r) => String(r.id)), String(history.revisions.at(-2)?.id ?? history.revisions[0].id));
    const second = select('second', history.revisions.map((r) => String(r.id)), String(history.revisions.at(-1).id));
    const diffOut = el('div', { id: 'diff' });
    const diffButton = el('button', { type: 'button', onclick: async () => {
      const d = await attempt(() => api('GET', `/cases/${encodeURIComponent(reference)}/diff?first=${first.value}&second=${second.value}`));
      if (!d) return;
      const c = d.changes;
      viewer.setLandmarks([]);
      viewer.setSurface(decodeSurface(d.surface));  // revision A's model, coloured by B's deviation from it
      diffOut.replaceChildren(el('p', {}, `revision ${c.second} against ${c.first}: red, more room in ${c.second}; blue, less`),
        el('ul', {}, [...c.plan, ...c.spec].map((line) => el('li', {}, line))),
        el('table', {}, el('thead', {}, el('tr', {}, ['Region', 'Mean mm', 'Most gained mm', 'Most lost mm'].map((h) => el('th', {}, h)))),
          el('tbody', {}, c.regions.map((r) => el('tr', {}, el('td', {}, r.region), el('td', {}, num(r.mean_mm)),
            el('td', {}, num(r.most_gained_mm)), el('td', {}, num(r.most_lost_mm)))))));
    } }, 'Compare');
    later(async () => {
      const v = panel.make();
      const { view, surface } = await scanSurface(history, history.scans.at(-1).id);
      v.setSurface(surface);
      v.setLandmarks(view.landmarks.map((l) => ({ name: l.name, point_mm: l.point_mm })), { editable: false });
      v.onPick = (point) => {
        let best = 'general', distance = 40;  // mm: farther from every landmark is 'general'
        for (const l of view.landmarks) {
          const d = Math.hypot(...l.point_mm.map((x, i) => x - point[i]));
          if (d < distance) { distance = d; best = l.name; }
        }
        addFeedback(areas.includes(best) ? best : 'general');
        drafts.set(reference, 'fitting', readFitting());
        say(`feedback row added for ${best}`);
      };
    });
    return el('div', { class: 'split' }, el('div', {}, form,
      el('div', { class: 'panel' }, el('h3', {}, 'Revisions'), tree, el('h3', {}, 'Compare two revisions'), first, second, diffButton, diffOut)),
      el('div', {}, viewButtons(), panel.box));
  },

  async delivery(history) {
    const reference = history.reference;
    if (!history.revisions.length) return el('p', {}, 'No revision yet: build a socket first.');
    const revisionIds = history.revisions.map((r) => String(r.id));
    const fabricate = el('form', { class: 'panel', 'aria-label': 'fabrication' }, el('h2', {}, 'Fabrication'),
      field('Revision', select('revision', revisionIds, revisionIds.at(-1))), field('Stage', select('stage', ['test', 'definitive'], 'definitive')),
      field('Material', select('material', options.materials, options.materials.includes('carbon_laminate') ? 'carbon_laminate' : options.materials[0])),
      field('Lab', el('input', { name: 'lab', required: true })), el('button', { type: 'submit' }, 'Record fabrication'));
    fabricate.addEventListener('submit', async (event) => {
      event.preventDefault();
      const data = Object.fromEntries(new FormData(fabricate));
      if (await attempt(() => api('POST', `/cases/${encodeURIComponent(reference)}/revisions/${data.revision}/fabrications`,
        { stage: data.stage, material: data.material, lab: data.lab }), 'fabrication recorded')) fabricate.reset();
    });
    const deliver = el('form', { class: 'panel', 'aria-label': 'delivery' }, el('h2', {}, 'Delivery'),
      field('Revision', select('revision', revisionIds, revisionIds.at(-1))),
      el('fieldset', {}, el('legend', {}, 'Taught'), Object.entries(options.checklist).map(([key, label]) =>
        el('label', { class: 'check' }, el('input', { type: 'checkbox', name: 'taught', value: key }), label))),
      field('Note', el('input', { name: 'note' })), el('button', { type: 'submit' }, 'Record delivery'));
    deliver.addEventListener('submit', async (event) => {
      event.preventDefault();
      const data = new FormData(deliver);
      const saved = await attempt(() => api('POST', `/cases/${encodeURIComponent(reference)}/revisions/${data.get('revision')}/deliveries`,
        { taught: data.getAll('taught'), note: data.get('note') }));
      if (saved) say(saved.warnings.length ? `delivered; ${saved.warnings.join('; ')}` : 'delivered, every item taught', 'ok');
    });
    const followup = el('form', { class: 'panel', 'aria-label': 'follow-up' }, el('h2', {}, 'Follow-up scan'),
      field('File', el('input', { type: 'file', name: 'file', required: true, accept: '.stl,.obj,.ply,.off,.3mf,.aop' })),
      field('Socks worn (ply)', el('input', { type: 'number', name: 'socks_ply', min: 0, max: 15, value: 0 })),
      el('button', { type: 'submit' }, 'Compare with the baseline'));
    const result = el('div', { id: 'followup-result' });
    followup.addEventListener('submit', async (event) => {
      event.preventDefault();
      say('registering the scans...');
      const saved = await attempt(() => api('POST', `/cases/${encodeURIComponent(reference)}/followups`, new FormData(followup), true), 'follow-up saved');
      if (!saved) return;
      result.replaceChildren(el('p', {}, `volume ${num(saved.volume_change_pct)} %: ${saved.advice}`), el('ul', {}, saved.reasons.map((r) => el('li', {}, r))));
      history.followups.push(saved);
      trend.replaceChildren(volumeTrend(history.followups));
      await showChange();
    });
    const trend = el('div', { id: 'trend' }, volumeTrend(history.followups));
    const panel = viewerPanel(history);
    const changeNote = el('p', { id: 'change-note' }, history.followups.length ? '' : 'The change map appears after a follow-up.');
    async function showChange() {
      const view = await attempt(() => api('GET', `/cases/${encodeURIComponent(reference)}/followups/newest`));
      if (!view) return;
      (viewer ?? panel.make()).setSurface(decodeSurface(view.surface));
      changeNote.textContent = `${view.date}: volume ${num(view.volume_change_pct)} %, ${view.advice}; blue: the limb shrank, red: grew; grey above ${num(view.compared_below_mm, 0)} mm (not compared)`;
    }
    later(async () => { panel.make(); if (history.followups.length) await showChange(); });
    return el('div', {}, el('div', { class: 'columns' }, fabricate, deliver, el('div', {}, followup, result,
      el('div', { class: 'panel' }, el('h3', {}, 'Volume trend (% of the baseline)'), trend))),
      el('div', { class: 'panel' }, el('h3', {}, 'Change since the baseline'), changeNote, viewButtons(), panel.box));
  },

  async audit(history) {
    return el('div', { class: 'panel' }, el('h2', {}, 'Audit trail'),
      el('table', { id: 'audit' }, el('thead', {}, el('tr', {}, ['When (UTC)', 'Who', 'What', 'Detail'].map((h) => el('th', {}, h)))),
        el('tbody', {}, history.audit.map((e) => el('tr', {}, el('td', {}, e.at.slice(0, 19)), el('td', {}, e.actor), el('td', {}, e.action),
          el('td', {}, JSON.stringify(e.detail).slice(0, 160)))))));
  },
};

function volumeTrend(followups) {
  // An inline SVG line: each follow-up's volume change (%) in time order, 0 % the baseline.
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 320 120');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', `volume change: ${followups.map((f) => `${num(f.volume_change_pct)} %`).join(', ') || 'no follow-up yet'}`);
  const points = [{ pct: 0 }, ...followups.map((f) => ({ pct: f.volume_change_pct }))];
  const reach = Math.max(5, ...points.map((p) => Math.abs(p.pct)));
  const xy = points.map((p, i) => [20 + (250 * i) / Math.max(1, points.length - 1), 60 - (50 * p.pct) / reach]);
  const line = document.createElementNS(ns, 'polyline');
  line.setAttribute('points', xy.map((p) => p.join(',')).join(' '));
  line.setAttribute('class', 'trend');
  svg.append(line);
  xy.forEach(([x, y], i) => {
    const label = document.createElementNS(ns, 'text');
    label.setAttribute('x', x); label.setAttribute('y', y - 6);
    label.textContent = `${num(points[i].pct)} %`;
    svg.append(label);
  });
  return svg;
}

// ---- routing ------------------------------------------------------------------------------------------------

async function render() {
  const [, route, reference, step] = location.hash.split('/');
  if (!account) {
    try { account = await api('GET', '/session'); options = await api('GET', '/options'); } catch { account = null; }
  }
  document.getElementById('who').replaceChildren(account
    ? el('span', {}, `${account.username} (${account.role}, ${account.clinic}) `, el('button', { type: 'button', onclick: signOut }, 'Sign out'))
    : '');
  if (!account) { app.replaceChildren(loginPage()); return; }
  const ticket = ++renderTicket;
  try {
    const page = route === 'case' && reference ? await casePage(decodeURIComponent(reference), step || 'evaluation')
      : await casesPage();
    if (ticket !== renderTicket) return;
    if (viewer) { viewer.dispose(); viewer = null; }
    app.replaceChildren(page);
    if (location.hash !== shownStep) window.scrollTo(0, 0);  // another step opens at its top; a refresh of one stays put
    shownStep = location.hash;
  } catch (error) {
    if (ticket !== renderTicket) return;
    say(error.message, 'error');
    app.replaceChildren(el('p', {}, error.message));
  }
}

async function renderKeepingStatus() {
  const [text, kind] = [statusLine.textContent, statusLine.className];
  await render();
  say(text, kind);
}

async function signOut() {
  await attempt(() => api('DELETE', '/session'));
  account = null;
  location.hash = '#/login';
  render();
}

window.addEventListener('hashchange', render);
render();
