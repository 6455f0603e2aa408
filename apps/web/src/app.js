// The page: load a bundle served by deepsquare serve, classify photos in both browser runtimes,
// benchmark them. Everything a test or the headless benchmark needs is on window.deepsquare.
import { resizeBilinear, toTensor, topK } from './preprocess.js';
import { RUNTIMES, isolated, webgpuAvailable } from './runtimes.js';
import { timeInterleaved, makeRecord, describeMachine } from './bench.js';

const SCHEMA = 'deepsquare-bundle/1';
const MAX_PIXELS = 64_000_000; // as deepsquare.runtime.images: a larger photo needs downscaling first
const $ = (id) => document.getElementById(id);

const state = {
  ready: false,
  error: null,
  bundles: [], // [{name, url}] from the server
  threads: 1, // WebAssembly threads per runtime, fixed when the page loads (?threads=N)
  bundle: null, // {name, url, meta, report, bytes: {format: ArrayBuffer}, sessions: {runtime: session}, problems}
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

class BundleProblem extends Error {}

// The same checks as deepsquare.runtime.bundle.BundleMeta.from_dict, with the same wording.
export function checkMeta(data) {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new BundleProblem('expected a JSON object');
  if (data.schema !== SCHEMA) throw new BundleProblem(`unknown bundle schema ${JSON.stringify(data.schema)}; expected ${SCHEMA}`);
  const missing = ['arch', 'variant', 'classes', 'input_size', 'mean', 'std'].filter((k) => !(k in data));
  if (missing.length) throw new BundleProblem(`missing field(s) ${missing.join(', ')}`);
  const { classes, input_size: size, mean, std } = data;
  if (!Array.isArray(classes) || !classes.length || !classes.every((c) => typeof c === 'string')) {
    throw new BundleProblem("'classes' must be a non-empty list of strings");
  }
  if (!Number.isInteger(size) || size < 8 || size > 4096) {
    throw new BundleProblem(`'input_size' must be a whole number of pixels in 8..4096, got ${JSON.stringify(size)}`);
  }
  for (const [name, values] of [['mean', mean], ['std', std]]) {
    if (!Array.isArray(values) || values.length !== 3 || !values.every((v) => typeof v === 'number' && Number.isFinite(v))) {
      throw new BundleProblem(`'${name}' must be 3 numbers (R, G, B), got ${JSON.stringify(values)}`);
    }
  }
  if (std.some((v) => v <= 0)) throw new BundleProblem(`'std' must be positive, got ${JSON.stringify(std)}`);
  if (typeof data.formats !== 'object' || data.formats === null) throw new BundleProblem("'formats' must be an object");
  return data;
}

async function fetchBytes(url) {
  const response = await fetch(url, { cache: 'no-store' });
  if (!response.ok) return { status: response.status };
  return { status: response.status, body: await response.arrayBuffer() };
}

async function loadBundle(entry, { threads = 1, open = true } = {}) {
  const meta = await (async () => {
    const got = await fetchBytes(`${entry.url}model.json`);
    if (got.status === 404) {
      throw new BundleProblem(`${entry.name} is not a deepsquare bundle: model.json is missing (run deepsquare-export first)`);
    }
    if (!got.body) throw new BundleProblem(`cannot read ${entry.name}/model.json (HTTP ${got.status})`);
    let data;
    try {
      data = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(got.body));
    } catch (exc) {
      throw new BundleProblem(`${entry.name}/model.json is not valid JSON (${exc.message}); re-export the bundle`);
    }
    try {
      return checkMeta(data);
    } catch (exc) {
      throw new BundleProblem(`${entry.name}/model.json is not a valid bundle sidecar: ${exc.message}`);
    }
  })();
  const report = await fetchBytes(`${entry.url}export_report.json`)
    .then((got) => (got.body ? JSON.parse(new TextDecoder().decode(got.body)) : null))
    .catch(() => null);
  const bundle = { ...entry, meta, report, bytes: {}, sessions: {}, problems: {} };
  for (const runtime of RUNTIMES) {
    const format = meta.formats[runtime.format];
    if (!format) {
      bundle.problems[runtime.name] = `this bundle has no ${runtime.format} model (export it with --to ${runtime.format})`;
      continue;
    }
    const got = await fetchBytes(`${entry.url}${encodeURIComponent(format.file)}`);
    if (!got.body) {
      bundle.problems[runtime.name] = got.status === 404
        ? `${format.file} is listed in model.json but missing from the bundle folder`
        : `cannot fetch ${format.file} (HTTP ${got.status})`;
      continue;
    }
    bundle.bytes[runtime.format] = got.body;
    if (!open) continue; // the benchmark opens its own sessions
    try {
      bundle.sessions[runtime.name] = await runtime.open(got.body, meta, format, { threads });
    } catch (exc) {
      bundle.problems[runtime.name] = `${runtime.title} cannot load ${format.file}: ${exc.message ?? exc}`;
    }
  }
  return bundle;
}

function renderCard(bundle) {
  const { meta, report } = bundle;
  const fields = {
    bundle: bundle.name,
    arch: meta.arch,
    variant: meta.variant,
    classes: `${meta.classes.length}`,
    input: `${meta.input_size} x ${meta.input_size} RGB, [0, 1] then (x - mean) / std`,
    mean: meta.mean.join(', '),
    std: meta.std.join(', '),
    trained: meta.provenance?.data ? `${meta.provenance.data}, ${meta.provenance.epoch ?? '?'} epochs` : 'unknown',
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
  $('classes').replaceChildren(...meta.classes.map((c) => Object.assign(document.createElement('li'), { textContent: c })));
  $('card').hidden = false;
}

// Decode -> upright RGBA pixels at full resolution. colorSpaceConversion 'none': the stored
// sRGB values, as Pillow reads them; imageOrientation 'from-image': EXIF applied, as Python does.
async function decode(blob, name) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none', imageOrientation: 'from-image' });
  } catch {
    throw new Error(`cannot read ${name}: not an image this browser can decode`);
  }
  const { width, height } = bitmap;
  if (width * height > MAX_PIXELS) {
    bitmap.close();
    throw new Error(`${name} is ${width}x${height} = ${(width * height).toLocaleString('en')} pixels, over the limit of ${MAX_PIXELS.toLocaleString('en')}; downscale it first`);
  }
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  return { pixels: ctx.getImageData(0, 0, width, height).data, width, height };
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

/** Classify decoded pixels in every runtime the bundle has; returns the result object. */
async function classifyPixels(name, { pixels, width, height }) {
  const { meta, sessions, problems } = state.bundle;
  const size = meta.input_size;
  const rgb = resizeBilinear(pixels, width, height, size, size, 4);
  const inputs = {
    NCHW: toTensor(rgb, size, meta.mean, meta.std, 'NCHW'),
    NHWC: toTensor(rgb, size, meta.mean, meta.std, 'NHWC'),
  };
  const result = { name, width, height, rgb: Array.from(rgb), tensor_nchw: Array.from(inputs.NCHW), logits: {}, top: {}, problems: { ...problems } };
  for (const runtime of RUNTIMES) {
    const session = sessions[runtime.name];
    if (!session) continue;
    try {
      const logits = await session.run(inputs[meta.formats[runtime.format].layout]);
      result.logits[runtime.name] = Array.from(logits);
      result.top[runtime.name] = topK(logits, meta.classes, 5);
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
  const title = Object.assign(document.createElement('div'), { className: 'name', textContent: `${result.name} (${result.width}x${result.height})` });
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

async function classifyFiles(files) {
  clearError();
  const problems = [];
  for (const file of files) {
    try {
      setStatus(`Classifying ${file.name} ...`);
      await classifyPixels(file.name, await decode(file, file.name));
    } catch (exc) {
      problems.push(exc.message ?? String(exc));
    }
  }
  if (problems.length) showError(problems.join('\n'));
  setStatus(`Ready: ${state.results.length} photo(s) classified.`);
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
  const canvas = new OffscreenCanvas(video.videoWidth, video.videoHeight);
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(video, 0, 0);
  const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  await classifyPixels(`camera ${new Date().toLocaleTimeString()}`, { pixels: data, width: canvas.width, height: canvas.height });
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
  const bundles = all ? await Promise.all(state.bundles.map((b) => (b.url === state.bundle.url ? state.bundle : loadBundle(b, { threads, open: false })))) : [state.bundle];
  const openers = [];
  for (const bundle of bundles) {
    const size = bundle.meta.input_size;
    for (const runtime of RUNTIMES) {
      const entry = bundle.meta.formats[runtime.format];
      if (!bundle.bytes[runtime.format]) continue;
      // A fixed input: a photo's preprocessed tensor is no different in cost from this one.
      const input = new Float32Array(size * size * 3).map((_, i) => Math.sin(i) * 0.5);
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
    state.bundle = await loadBundle(state.bundles[index], { threads: state.threads });
  } catch (exc) {
    state.bundle = null;
    $('card').hidden = true;
    $('input').hidden = true;
    $('bench').hidden = true;
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
  setStatus(loaded.length ? `Ready: ${state.bundle.meta.arch} ${state.bundle.meta.variant} in ${loaded.join(' and ')}.` : 'No model loaded.');
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
