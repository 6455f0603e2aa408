// The two browser runtimes behind one interface: open(modelBytes, meta, entry, options) -> session,
// session.run(input) -> Float32Array of the model's outputs. input: Uint8Array RGB pixels [1, H, W, 3]
// for a uint8 entry, Float32Array in the entry's layout for a float32 one. open() refuses a model
// whose input tensor is not the one model.json describes (type and shape).
//
// Both are WebAssembly builds of the runtimes the Python side uses natively (ONNX Runtime and
// LiteRT), served from this page's own origin: no CDN, works offline.
import * as ort from 'onnxruntime-web';
import { loadLiteRt, loadAndCompile, Tensor, isWebGPUSupported } from '@litertjs/core';

const ORT_WASM = new URL('../node_modules/onnxruntime-web/dist/', import.meta.url).href;
const LITERT_WASM = new URL('../node_modules/@litertjs/core/wasm/', import.meta.url).href;

/** Whether the page may use threads (SharedArrayBuffer): the server sends COOP/COEP for that. */
export const isolated = globalThis.crossOriginIsolated === true;

export async function webgpuAvailable() {
  try {
    return Boolean(globalThis.navigator?.gpu && (await navigator.gpu.requestAdapter()));
  } catch {
    return false;
  }
}

function dims(meta, layout) {
  const s = meta.input_size;
  return layout === 'NCHW' ? [1, 3, s, s] : [1, s, s, 3];
}

const DTYPES = { uint8: 'uint8', float32: 'float32' };

/** The model file's input (type, shape) against model.json's entry; a dynamic dimension matches any size. */
function checkInput(file, entry, shape, type, dimensions) {
  const want = DTYPES[entry.input_dtype];
  if (!want) throw new Error(`model.json gives ${file} the input_dtype ${entry.input_dtype}, which a browser runtime cannot feed`);
  if (type !== undefined && type !== want) {
    throw new Error(`${file} takes ${type} input but model.json says ${want} (input_dtype ${entry.input_dtype}): the model file and model.json do not belong together; re-export the bundle`);
  }
  if (dimensions && dimensions.length) {
    const fits = dimensions.length === shape.length && dimensions.every((d, i) => typeof d !== 'number' || d < 0 || i === 0 || d === shape[i]);
    if (!fits) {
      throw new Error(`${file} takes input of shape [${dimensions.join(', ')}] but model.json says [${shape.join(', ')}] (layout ${entry.layout}, input_size ${shape[2]}); re-export the bundle`);
    }
  }
}

const onnxRuntime = {
  name: 'onnxruntime-web',
  title: 'ONNX Runtime Web',
  format: 'onnx',
  backends: ['wasm', 'webgpu'],
  configured: false,
  configure(threads) {
    if (this.configured) return;
    ort.env.wasm.wasmPaths = ORT_WASM;
    ort.env.wasm.numThreads = isolated ? threads : 1;
    ort.env.wasm.proxy = false;
    this.configured = true;
  },
  async open(bytes, meta, entry, { threads = 1, backend = 'wasm' } = {}) {
    this.configure(threads);
    const session = await ort.InferenceSession.create(bytes, {
      executionProviders: [backend],
      graphOptimizationLevel: 'all',
    });
    const shape = dims(meta, entry.layout);
    const inputName = session.inputNames.includes(entry.input_name) ? entry.input_name : session.inputNames[0];
    const outputName = session.outputNames.includes(entry.output_name) ? entry.output_name : session.outputNames[0];
    const described = session.inputMetadata?.find((m) => m.name === inputName);
    try {
      checkInput(entry.file, entry, shape, described?.type, described?.shape);
    } catch (exc) {
      await session.release();
      throw exc;
    }
    const dtype = DTYPES[entry.input_dtype];
    return {
      backend: backend === 'wasm' ? (ort.env.wasm.numThreads > 1 ? 'wasm-simd-threaded' : 'wasm-simd') : backend,
      threads: ort.env.wasm.numThreads,
      async run(input) {
        const feeds = { [inputName]: new ort.Tensor(dtype, input, shape) };
        const results = await session.run(feeds);
        const data = Float32Array.from(results[outputName].data);
        for (const t of Object.values(results)) t.dispose?.();
        return data;
      },
      async release() {
        await session.release();
      },
    };
  },
};

let litertLoaded = null;

const litertRuntime = {
  name: 'litert.js',
  title: 'LiteRT.js',
  format: 'tflite',
  backends: ['wasm', 'webgpu'],
  async open(bytes, meta, entry, { threads = 1, backend = 'wasm' } = {}) {
    // One LiteRT Wasm module per page, its single-threaded build: with @litertjs/core 2.5.3's
    // threaded build, compiling a third model with numThreads 2 hung the page here (Chromium 156,
    // 2 cores; its pthread pool is exhausted while the main thread waits), and the benchmark keeps
    // several models alive at once. Threads are ONNX Runtime Web's only.
    litertLoaded ??= loadLiteRt(LITERT_WASM, { threads: false });
    await litertLoaded;
    if (backend === 'webgpu' && !(await isWebGPUSupported())) throw new Error('WebGPU is not available in this browser');
    const options = { accelerator: backend };
    if (backend === 'wasm') options.cpuOptions = { numThreads: 1 };
    const model = await loadAndCompile(new Uint8Array(bytes), options);
    const shape = dims(meta, entry.layout);
    const [described] = model.getInputDetails();
    try {
      checkInput(entry.file, entry, shape, described?.dtype, described && Array.from(described.shape));
    } catch (exc) {
      model.delete();
      throw exc;
    }
    return {
      backend: backend === 'wasm' ? 'wasm-xnnpack' : backend,
      threads: 1,
      async run(input) {
        const tensor = new Tensor(input, shape);
        const outputs = await model.run(tensor);
        tensor.delete();
        let out = outputs[0];
        if (backend !== 'wasm') {
          const moved = await out.moveTo('wasm');
          out.delete();
          out = moved;
        }
        const data = Float32Array.from(out.toTypedArray());
        out.delete();
        for (const rest of outputs.slice(1)) rest.delete();
        return data;
      },
      async release() {
        model.delete();
      },
    };
  },
};

/** The runtimes by their benchmark-record name; each runs one format of the bundle. */
export const RUNTIMES = [onnxRuntime, litertRuntime];
