// Opening a bundle: its JSON files read and checked (bundle.js), its model files fetched and checked against
// model.json's sha256, opened in each browser runtime, and the golden self-check run (selfcheck.js)
// before the page classifies anything with them.
import { BundleProblem, fetchBytes, readBundle, sha256Hex } from './bundle.js';
import { goldenPixels, selfCheck } from './selfcheck.js';
import { RUNTIMES } from './runtimes.js';

const Ajv = globalThis.ajv7; // ajv-dist's draft-07 build, loaded by index.html before the modules

/** A model file's bytes, checked against model.json's sha256 where the bundle lists one. */
async function modelBytes(entry, meta, format) {
  const got = await fetchBytes(`${entry.url}${encodeURIComponent(format.file)}`);
  if (!got.body) {
    throw new BundleProblem(got.status === 404
      ? `${format.file} is listed in model.json but missing from the bundle folder`
      : `cannot fetch ${format.file} (HTTP ${got.status})`);
  }
  const want = meta.sha256?.[format.file];
  if (want) {
    const have = await sha256Hex(got.body);
    if (have !== null && have !== want) {
      throw new BundleProblem(`${format.file} is not the file exported with this model.json (its sha256 differs): re-export the bundle, or copy the whole folder again`);
    }
  }
  return got.body;
}

/**
 * Read and check a bundle (bundle.js), fetch its model files, open them in the browser runtimes and run the
 * golden self-check. A runtime that cannot run the bundle, or fails the self-check, is left out with the
 * reason in bundle.problems. open false: fetch and check only (the benchmark opens its own sessions).
 */
export async function openBundle(entry, { threads = 1, open = true, onStatus = () => {} } = {}) {
  const read = await readBundle(Ajv, entry);
  const report = await fetchBytes(`${entry.url}export_report.json`)
    .then((got) => (got.body ? JSON.parse(new TextDecoder().decode(got.body)) : null))
    .catch(() => null);
  const bundle = { ...entry, ...read, report, bytes: {}, sessions: {}, problems: {}, selfCheck: {} };
  const { meta } = bundle;
  for (const runtime of RUNTIMES) {
    const format = meta.formats[runtime.format];
    if (!format) {
      bundle.problems[runtime.name] = `this bundle has no ${runtime.format} model (export it with --to ${runtime.format})`;
      continue;
    }
    try {
      bundle.bytes[runtime.format] = await modelBytes(entry, meta, format);
    } catch (exc) {
      bundle.problems[runtime.name] = exc.message;
      continue;
    }
    if (!open) continue; // the benchmark opens its own sessions
    try {
      bundle.sessions[runtime.name] = await runtime.open(bundle.bytes[runtime.format], meta, format, { threads });
    } catch (exc) {
      bundle.problems[runtime.name] = `${runtime.title} cannot use ${format.file}: ${exc.message ?? exc}`;
    }
  }
  if (open) await runSelfChecks(bundle, onStatus);
  return bundle;
}

/** The golden self-check for every opened session; a session that fails it is closed, not used. */
async function runSelfChecks(bundle, onStatus) {
  const names = Object.keys(bundle.sessions);
  if (!names.length) return;
  if (!bundle.golden) {
    for (const name of names) {
      bundle.selfCheck[name] = { passed: null, message: `${RUNTIMES.find((r) => r.name === name).title}: no self-check (this bundle has no golden.json; bundles exported by deepsquare-bundle/2 have one)` };
    }
    return;
  }
  onStatus(`Self-check of ${bundle.name} on golden.png ...`);
  let rgb;
  try {
    const got = await fetchBytes(`${bundle.url}${bundle.golden.image}`);
    if (!got.body) throw new Error(`${bundle.name}/${bundle.golden.image} is named in golden.json but missing (HTTP ${got.status}); re-export the bundle`);
    rgb = await goldenPixels(new Blob([got.body]), bundle.meta.input_size, `${bundle.name}/${bundle.golden.image}`);
  } catch (exc) {
    for (const name of names) {
      bundle.selfCheck[name] = { passed: false, message: `self-check FAILED: ${exc.message}` };
    }
  }
  bundle.goldenRgb = rgb;
  for (const runtime of RUNTIMES) {
    const session = bundle.sessions[runtime.name];
    if (!session) continue;
    if (rgb) bundle.selfCheck[runtime.name] = await selfCheck(runtime, session, rgb, bundle);
    if (bundle.selfCheck[runtime.name].passed === false) {
      bundle.problems[runtime.name] = bundle.selfCheck[runtime.name].message;
      delete bundle.sessions[runtime.name];
      await session.release();
    }
  }
}
