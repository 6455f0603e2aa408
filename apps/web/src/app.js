// The page: load a bundle served by deepsquare serve, check it (schema, files, the golden self-check),
// show its samples, classify photos in both browser runtimes, benchmark them. Everything a test or the
// headless benchmark needs is on window.deepsquare.
import { decodeToRgb, drawToRgb, modelInput, topK } from './preprocess.js';
import { fetchBytes } from './bundle.js';
import { openBundle } from './open.js';
import { RUNTIMES, isolated, webgpuAvailable } from './runtimes.js';
import { timeInterleaved, makeRecord, describeMachine } from './bench.js';

const $ = (id) => document.getElementById(id);

const state = {
  ready: false,
  error: null,
  bundles: [], // [{name, url}] from the server
  threads: 1, // WebAssembly threads per runtime, fixed when the page loads (?threads=N)
  // {name, url, meta, golden, samples, schema, report, bytes: {format: ArrayBuffer}, sessions: {runtime: session},
  //  problems: {runtime: text}, selfCheck: {runtime: {passed, max_abs_diff, tolerance, message, values}}}
  bundle: null,
  results: [],
  records: [],
  benchRatios: [],
};
window.deepsquare = state;

function showError(message) {
  state.error = message;
  const box = $('error');
  box.textContent = message;
  box.hidden = false;
}

function clearError() {
  state.error = null;
  $('error').hidden = true;
}

function setStatus(text) {
  $('status').textContent = text;
}

function renderCard(bundle) {
  const { meta, report } = bundle;
  const fields = {
    bundle: bundle.name,
    arch: meta.arch,
    variant: meta.variant,
    classes: `${meta.classes.length}`,
    input: meta.input === 'uint8'
      ? `${meta.input_size} x ${meta.input_size} RGB pixels, uint8 (the model normalizes them itself)`
      : `${meta.input_size} x ${meta.input_size} RGB, [0, 1] then (x - mean) / std, float32`,
    mean: meta.mean.join(', '),
    std: meta.std.join(', '),
    trained: meta.provenance?.data ? `${meta.provenance.data}, ${meta.provenance.epoch ?? '?'} epochs` : 'unknown',
    schema: `${meta.schema}, checked against ${bundle.schema.id} (from ${bundle.schema.source})`,
  };
  $('card-fields').replaceChildren(...Object.entries(fields).flatMap(([k, v]) => {
    const dt = document.createElement('dt');
    dt.textContent = k;
    const dd = document.createElement('dd');
    dd.textContent = v;
    return [dt, dd];
  }));
  const rows = Object.entries(meta.formats).map(([name, entry]) => {
    const parity = report?.formats?.[name]?.parity;
    const runtime = RUNTIMES.find((r) => r.format === name);
    const cells = [name, entry.file, entry.precision ?? 'fp32',
      parity ? parity.max_abs_diff.toExponential(1) : '-',
      parity ? `${(parity.top1_agreement * 100).toFixed(1)}% of ${parity.samples}` : '-',
      runtime ? (bundle.sessions[runtime.name] ? runtime.title : bundle.problems[runtime.name]) : 'not in a browser'];
    const tr = document.createElement('tr');
    for (const c of cells) {
      const td = document.createElement('td');
      td.textContent = c;
      tr.append(td);
    }
    return tr;
  });
  $('formats').tBodies[0].replaceChildren(...rows);
  $('self-check').replaceChildren(...Object.entries(bundle.selfCheck).map(([, check]) => Object.assign(
    document.createElement('li'), { textContent: check.message, className: check.passed ? 'passed' : check.passed === false ? 'failed' : '' })));
  $('classes').replaceChildren(...meta.classes.map((c) => Object.assign(document.createElement('li'), { textContent: c })));
  $('card').hidden = false;
}

function thumbnail(rgb, size) {
  const canvas = document.createElement('canvas');
  canvas.width = size;
  canvas.height = size;
  const rgba = new Uint8ClampedArray(size * size * 4);
  for (let p = 0; p < size * size; p++) {
    rgba.set(rgb.subarray(p * 3, p * 3 + 3), p * 4);
    rgba[p * 4 + 3] = 255;
  }
  canvas.getContext('2d').putImageData(new ImageData(rgba, size, size), 0, 0);
  return canvas;
}

/**
 * Classify RGB pixels (already at input_size) in every runtime the bundle has; returns the result object.
 * `truth`: the true label, for the bundle's samples.
 */
async function classifyRgb(name, { rgb, width, height }, truth = null) {
  const { meta, sessions, problems } = state.bundle;
  const size = meta.input_size;
  const result = { name, width, height, truth, rgb: Array.from(rgb), logits: {}, top: {}, problems: { ...problems } };
  for (const runtime of RUNTIMES) {
    const session = sessions[runtime.name];
    if (!session) continue;
    const entry = meta.formats[runtime.format];
    try {
      const logits = await session.run(modelInput(rgb, meta, entry));
      result.logits[runtime.name] = Array.from(logits);
      result.top[runtime.name] = topK(logits, meta.classes, 5, entry.extra?.outputs === 'probabilities');
    } catch (exc) {
      result.problems[runtime.name] = `${runtime.title} failed: ${exc.message ?? exc}`;
    }
  }
  renderResult(result, rgb, size);
  state.results.push(result);
  return result;
}

function renderResult(result, rgb, size) {
  const box = document.createElement('div');
  box.className = 'result';
  box.dataset.name = result.name;
  const truth = result.truth === null ? '' : `, true label ${result.truth}`;
  const title = Object.assign(document.createElement('div'), { className: 'name', textContent: `${result.name} (${result.width}x${result.height}${truth})` });
  box.append(title, thumbnail(rgb, size));
  for (const runtime of RUNTIMES) {
    const column = document.createElement('div');
    column.className = 'runtime';
    column.dataset.runtime = runtime.name;
    column.append(Object.assign(document.createElement('h3'), { textContent: runtime.title }));
    if (result.top[runtime.name]) {
      const list = document.createElement('ol');
      list.className = 'top';
      for (const t of result.top[runtime.name]) {
        const li = document.createElement('li');
        const bar = Object.assign(document.createElement('span'), { className: 'bar', textContent: t.label });
        if (result.truth !== null && t.label === result.truth) bar.classList.add('truth');
        bar.style.setProperty('--p', `${(t.probability * 100).toFixed(1)}%`);
        li.append(bar, Object.assign(document.createElement('span'), { textContent: `${(t.probability * 100).toFixed(1)}%` }));
        list.append(li);
      }
      column.append(list);
    } else {
      column.append(Object.assign(document.createElement('p'), { className: 'runtime-error', textContent: result.problems[runtime.name] ?? 'not run' }));
    }
    box.append(column);
  }
  const [a, b] = RUNTIMES.map((r) => result.logits[r.name]);
  if (a && b) {
    const top = Math.max(...a.map(Math.abs));
    const diff = Math.max(...a.map((v, i) => Math.abs(v - b[i])));
    const agree = result.top[RUNTIMES[0].name][0].index === result.top[RUNTIMES[1].name][0].index;
    box.append(Object.assign(document.createElement('div'), {
      className: 'agree',
      textContent: `top-1 ${agree ? 'agrees' : 'DIFFERS'} between the runtimes; largest logit difference ${diff.toExponential(1)} (${(diff / top).toExponential(1)} of the largest logit)`,
    }));
  }
  $('results').prepend(box);
}

// ---- the bundle's own held-out images, the first screen ---------------------------------
function renderSamples(bundle) {
  const box = $('samples');
  const list = $('sample-list');
  if (!bundle.samples?.length) {
    box.hidden = true;
    list.replaceChildren();
    return;
  }
  list.replaceChildren(...bundle.samples.map((sample) => {
    const button = Object.assign(document.createElement('button'), { type: 'button', className: 'sample', title: `classify ${sample.file}` });
    button.dataset.file = sample.file;
    const img = Object.assign(document.createElement('img'), { src: `${bundle.url}${sample.file}`, alt: `a sample labelled ${sample.label}`, width: 72, height: 72 });
    button.append(img, Object.assign(document.createElement('span'), { textContent: sample.label }));
    button.addEventListener('click', () => classifySample(sample));
    return button;
  }));
  box.hidden = false;
}

async function classifySample(sample) {
  clearError();
  const { url, name, meta } = state.bundle;
  setStatus(`Classifying ${sample.file} ...`);
  try {
    const got = await fetchBytes(`${url}${sample.file}`);
    if (!got.body) throw new Error(`${name}/${sample.file} is listed in samples.json but missing (HTTP ${got.status})`);
    await classifyRgb(sample.file, await decodeToRgb(new Blob([got.body]), sample.file, meta.input_size), sample.label);
  } catch (exc) {
    showError(exc.message ?? String(exc));
  }
  setStatus(`Ready: ${state.results.length} image(s) classified.`);
}

async function classifyFiles(files) {
  clearError();
  const problems = [];
  for (const file of files) {
    try {
      setStatus(`Classifying ${file.name} ...`);
      await classifyRgb(file.name, await decodeToRgb(file, file.name, state.bundle.meta.input_size));
    } catch (exc) {
      problems.push(exc.message ?? String(exc));
    }
  }
  if (problems.length) showError(problems.join('\n'));
  setStatus(`Ready: ${state.results.length} image(s) classified.`);
}

// ---- camera --------------------------------------------------------------------------------
let stream = null;

async function startCamera() {
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' } });
  } catch (exc) {
    showError(`cannot open the camera: ${exc.message ?? exc}`);
    return;
  }
  $('camera-video').srcObject = stream;
  $('camera').hidden = false;
}

function stopCamera() {
  stream?.getTracks().forEach((t) => t.stop());
  stream = null;
  $('camera').hidden = true;
}

async function captureFrame() {
  const video = $('camera-video');
  const { videoWidth: width, videoHeight: height } = video;
  const rgb = drawToRgb(video, state.bundle.meta.input_size, width, height);
  await classifyRgb(`camera ${new Date().toLocaleTimeString()}`, { rgb, width, height });
}

// ---- benchmark -----------------------------------------------------------------------------
function geometricRatio(a, b) {
  const logs = a.map((v, i) => Math.log(v / b[i]));
  const mean = logs.reduce((s, v) => s + v, 0) / logs.length;
  const sd = Math.sqrt(logs.reduce((s, v) => s + (v - mean) ** 2, 0) / Math.max(1, logs.length - 1));
  const half = (1.96 * sd) / Math.sqrt(logs.length);
  return [Math.exp(mean), Math.exp(mean - half), Math.exp(mean + half)];
}

const fmtRatio = ([r, lo, hi]) => `${r.toFixed(3)} (${lo.toFixed(3)}-${hi.toFixed(3)})`;

/**
 * Time every (bundle, runtime) pair interleaved; returns benchmark records.
 * Options: runs, warmup, threads, backend ('wasm' | 'webgpu'), all (every served bundle).
 */
async function benchmark({ runs = 50, warmup = 5, threads = state.threads, backend = 'wasm', all = true } = {}) {
  if (!(runs >= 2 && warmup >= 0)) throw new Error('runs must be >= 2, warmup >= 0');
  if (threads !== state.threads) {
    // ONNX Runtime Web fixes its thread pool when its Wasm starts: a new count needs a fresh page.
    throw new Error(`this page runs ${state.threads} thread(s); reload it with ?threads=${threads} to time ${threads}`);
  }
  const bundles = all ? await Promise.all(state.bundles.map((b) => (b.url === state.bundle.url ? state.bundle : openBundle(b, { threads, open: false })))) : [state.bundle];
  const openers = [];
  for (const bundle of bundles) {
    const size = bundle.meta.input_size;
    for (const runtime of RUNTIMES) {
      const entry = bundle.meta.formats[runtime.format];
      if (!bundle.bytes[runtime.format] || bundle.selfCheck?.[runtime.name]?.passed === false) continue; // failed: not timed
      // A fixed input: a photo's pixels are no different in cost from these.
      const pixels = new Uint8Array(size * size * 3).map((_, i) => (i * 37) % 256);
      const input = modelInput(pixels, bundle.meta, entry);
      openers.push({
        bundle, runtime, entry,
        async open() {
          const session = await runtime.open(bundle.bytes[runtime.format], bundle.meta, entry, { threads, backend });
          this.backend = session.backend;
          this.threads = session.threads;
          return { run: () => session.run(input), release: () => session.release() };
        },
      });
    }
  }
  if (!openers.length) throw new Error('nothing to time: no bundle has a model a browser runtime can run');
  const progress = $('bench-progress');
  progress.hidden = false;
  const timing = await timeInterleaved(openers, { runs, warmup }, (done, total) => {
    progress.value = done / total;
    setStatus(`Benchmark: round ${done} of ${total} ...`);
  });
  const machine = describeMachine();
  const records = openers.map((o, i) => makeRecord(timing.times[i], {
    model: o.bundle.meta.arch, variant: o.bundle.meta.variant, runtime: o.runtime.name, threads: o.threads, warmup,
    initMs: timing.init[i], machine,
    extra: { backend: o.backend, cross_origin_isolated: isolated, input_size: o.bundle.meta.input_size, bundle: o.bundle.name, interleaved_rounds: timing.rounds, precision: o.entry.precision ?? 'fp32' },
  }));
  // Paired ratios: to gap of the same runtime, and between the two runtimes for the same model.
  const ratios = openers.map((o, i) => {
    const same = (g) => g.bundle.meta.arch === o.bundle.meta.arch && g.bundle.meta.input_size === o.bundle.meta.input_size;
    const gap = openers.findIndex((g) => g.runtime === o.runtime && g.bundle.meta.variant === 'gap' && same(g));
    const other = openers.findIndex((g) => g.bundle === o.bundle && g.runtime !== o.runtime);
    return {
      model: `${o.bundle.meta.arch} ${o.bundle.meta.variant} (${o.bundle.meta.input_size} px)`, runtime: o.runtime.name, backend: o.backend, threads: o.threads,
      p50_ms: records[i].p50_ms, p90_ms: records[i].p90_ms,
      to_gap: gap >= 0 && gap !== i ? geometricRatio(timing.times[i], timing.times[gap]) : null,
      to_other: other >= 0 ? { runtime: openers[other].runtime.name, ratio: geometricRatio(timing.times[i], timing.times[other]) } : null,
    };
  });
  state.records = records;
  state.benchRatios = ratios;
  renderBench(ratios, records, timing.rounds);
  progress.hidden = true;
  setStatus(`Benchmark done: ${timing.rounds} interleaved rounds of ${openers.length} sessions.`);
  return records;
}

function renderBench(ratios, records, rounds) {
  const rows = ratios.map((r) => {
    const tr = document.createElement('tr');
    const cells = [r.model, r.runtime, r.backend, r.threads, r.p50_ms.toFixed(2), r.p90_ms.toFixed(2),
      r.to_gap ? fmtRatio(r.to_gap) : '-', r.to_other ? `${fmtRatio(r.to_other.ratio)} x ${r.to_other.runtime}` : '-'];
    for (const c of cells) tr.append(Object.assign(document.createElement('td'), { textContent: String(c) }));
    return tr;
  });
  $('bench-table').tBodies[0].replaceChildren(...rows);
  $('bench-table').hidden = false;
  $('bench-note').textContent = `${rounds} interleaved rounds, order rotated every round; ratios are geometric means of paired per-round ratios with 95% intervals. ${isolated ? 'Cross-origin isolated: threads available.' : 'Not cross-origin isolated: one thread only.'}`;
  const link = $('bench-download');
  URL.revokeObjectURL(link.href);
  link.href = URL.createObjectURL(new Blob([JSON.stringify(records, null, 2) + '\n'], { type: 'application/json' }));
  link.hidden = false;
}

// ---- start ---------------------------------------------------------------------------------
async function listBundles() {
  try {
    const response = await fetch('bundles.json', { cache: 'no-store' });
    if (response.ok) return (await response.json()).bundles;
  } catch {
    /* served by a plain static server: one bundle beside the page */
  }
  return [{ name: 'bundle', url: 'bundle/' }];
}

async function selectBundle(index) {
  clearError();
  state.ready = false;
  setStatus(`Loading ${state.bundles[index].name} ...`);
  for (const session of Object.values(state.bundle?.sessions ?? {})) await session.release();
  try {
    state.bundle = await openBundle(state.bundles[index], { threads: state.threads, onStatus: setStatus });
  } catch (exc) {
    state.bundle = null;
    for (const id of ['card', 'samples', 'input', 'bench']) $(id).hidden = true;
    $('self-check').replaceChildren();
    showError(exc.message ?? String(exc));
    setStatus('No model loaded.');
    state.ready = true;
    return;
  }
  renderCard(state.bundle);
  const loaded = Object.keys(state.bundle.sessions);
  if (!loaded.length) {
    showError(`no browser runtime can run this bundle:\n${Object.values(state.bundle.problems).join('\n')}`);
  } else if (Object.keys(state.bundle.problems).length) {
    showError(Object.values(state.bundle.problems).join('\n'));
  }
  $('input').hidden = !loaded.length;
  $('bench').hidden = !loaded.length;
  if (loaded.length) renderSamples(state.bundle);
  else $('samples').hidden = true;
  const checked = loaded.every((name) => state.bundle.selfCheck[name]?.passed) ? ', self-check passed' : '';
  setStatus(loaded.length ? `Ready: ${state.bundle.meta.arch} ${state.bundle.meta.variant} in ${loaded.join(' and ')}${checked}.` : 'No model loaded.');
  state.ready = true;
}

async function start() {
  state.bundles = await listBundles();
  const select = $('bundle-select');
  select.replaceChildren(...state.bundles.map((b, i) => Object.assign(document.createElement('option'), { value: i, textContent: b.name })));
  $('bundle-choice').hidden = state.bundles.length < 2;
  select.addEventListener('change', () => selectBundle(Number(select.value)));

  const params = new URLSearchParams(location.search);
  const most = isolated ? Math.max(1, navigator.hardwareConcurrency || 1) : 1;
  const asked = Number(params.get('threads') ?? 1);
  state.threads = Number.isInteger(asked) && asked >= 1 ? Math.min(asked, most) : 1;
  const threads = $('bench-threads');
  const counts = [...new Set([1, 2, 4, 8, state.threads])].filter((n) => n <= most).sort((a, b) => a - b);
  threads.replaceChildren(...counts.map((n) => Object.assign(document.createElement('option'), { value: n, textContent: n })));
  threads.value = String(state.threads);
  threads.addEventListener('change', () => {
    params.set('threads', threads.value); // the runtimes take their thread count when they start
    location.search = params.toString();
  });
  if (await webgpuAvailable()) $('bench-backend').append(Object.assign(document.createElement('option'), { value: 'webgpu', textContent: 'WebGPU' }));

  $('file').addEventListener('change', (e) => classifyFiles([...e.target.files]));
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => { e.preventDefault(); drop.classList.remove('over'); classifyFiles([...e.dataTransfer.files]); });
  document.addEventListener('paste', (e) => {
    const files = [...(e.clipboardData?.files ?? [])];
    if (files.length) classifyFiles(files);
  });
  if (navigator.mediaDevices?.getUserMedia) {
    $('camera-start').hidden = false;
    $('camera-start').addEventListener('click', startCamera);
    $('camera-stop').addEventListener('click', stopCamera);
    $('camera-capture').addEventListener('click', captureFrame);
  }
  $('bench-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    $('bench-run').disabled = true;
    try {
      await benchmark({ runs: Number($('bench-runs').value), warmup: Number($('bench-warmup').value), threads: Number(threads.value), backend: $('bench-backend').value, all: $('bench-all').checked });
    } catch (exc) {
      showError(`benchmark failed: ${exc.message ?? exc}`);
    } finally {
      $('bench-run').disabled = false;
    }
  });
  const wanted = Number(params.get('bundle') ?? 0);
  await selectBundle(Number.isInteger(wanted) && wanted >= 0 && wanted < state.bundles.length ? wanted : 0);
}

state.benchmark = benchmark;
start().catch((exc) => {
  showError(`the page failed to start: ${exc.message ?? exc}`);
  state.ready = true;
});
