// The golden self-check, run when a bundle loads and before anything is classified: golden.png (the
// pixels every model of the bundle is fed at export, already at input_size) goes through this page's
// own path (decode, canvas, modelInput, the runtime) and its outputs are compared with what the
// format's own runtime returned at export (golden.json formats[format].values).
import { decodeToRgb, modelInput, topK } from './preprocess.js';

/** max |a - b| over two equally long arrays. */
export function maxAbsDiff(a, b) {
  let most = 0;
  for (let i = 0; i < a.length; i++) most = Math.max(most, Math.abs(a[i] - b[i]));
  return most;
}

/**
 * Compare a runtime's outputs for golden.png with golden.json's; pure (tested under Node).
 * @returns {{passed: boolean, max_abs_diff: number, tolerance: number, message: string}}
 */
export function judge(title, format, outputs, expected, classes) {
  if (!expected) {
    return { passed: false, max_abs_diff: null, tolerance: null, message: `${title}: self-check FAILED: golden.json has no values for ${format}; re-export the bundle` };
  }
  if (outputs.length !== expected.values.length) {
    return {
      passed: false, max_abs_diff: null, tolerance: expected.tolerance,
      message: `${title}: self-check FAILED: the ${format} model gives ${outputs.length} outputs, golden.json and model.json expect ${expected.values.length} (one per class)`,
    };
  }
  const diff = maxAbsDiff(outputs, expected.values);
  const probabilities = expected.outputs === 'probabilities';
  const got = topK(outputs, classes, 1, probabilities)[0];
  const want = topK(expected.values, classes, 1, probabilities)[0];
  const base = { max_abs_diff: diff, tolerance: expected.tolerance, top1: got.label, expected_top1: want.label };
  if (Number.isFinite(diff) && diff <= expected.tolerance) {
    return { ...base, passed: true, message: `${title}: self-check passed (max |diff| ${diff.toExponential(1)}, allowed ${expected.tolerance.toExponential(1)})` };
  }
  return {
    ...base,
    passed: false,
    message: `${title}: self-check FAILED on golden.png: max |diff| ${Number.isFinite(diff) ? diff.toExponential(2) : diff} against golden.json's ${format} values, allowed ${expected.tolerance.toExponential(1)} (top-1 here ${got.label}, in golden.json ${want.label}). This page does not feed the ${format} model what the export fed it, or the bundle's files do not belong together: not classifying with it`,
  };
}

/** golden.png -> RGB pixels; it must be exactly input_size x input_size. */
export async function goldenPixels(blob, size, where) {
  const { rgb, width, height } = await decodeToRgb(blob, where, size);
  if (width !== size || height !== size) {
    throw new Error(`${where} is ${width}x${height}, not the model's ${size}x${size}; re-export the bundle`);
  }
  return rgb;
}

/** Run the self-check for one opened session. */
export async function selfCheck(runtime, session, rgb, bundle) {
  const { meta, golden } = bundle;
  const entry = meta.formats[runtime.format];
  let outputs;
  try {
    outputs = await session.run(modelInput(rgb, meta, entry));
  } catch (exc) {
    return { passed: false, message: `${runtime.title}: self-check FAILED: running golden.png raised ${exc.message ?? exc}` };
  }
  const result = judge(runtime.title, runtime.format, outputs, golden.formats[runtime.format], meta.classes);
  return { ...result, values: Array.from(outputs) };
}
