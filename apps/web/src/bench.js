// The project's timing protocol (deepsquare.runtime.timing), in the browser: every (model,
// runtime) session is timed interleaved with the others run by run, the order rotates every round,
// and the rounds are split into blocks that each open their sessions anew and warm them up.
// Results are records in the project's benchmark schema (deepsquare.runtime.records), with the
// per-round times in extra.round_ms so that ratios can be taken on paired rounds, as natively.

export const RECORD_SCHEMA = 'deepsquare-bench-record/1';

// Each run starts in a fresh task: inside a chain of timer callbacks, browsers clamp setTimeout(0)
// to 4 ms from the fifth nesting level on (HTML spec, timer nesting), and a runtime that yields
// through setTimeout inside run() would then be timed at 4 ms and more whatever its model.
export function freshTask() {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(0);
  });
}

export function rotation(count, roundIndex) {
  const start = roundIndex % count;
  return [...Array(count).keys()].map((i) => (i + start) % count);
}

export function blockPlan(models, runs) {
  const blocks = Math.min(models, runs);
  return Array.from({ length: blocks }, (_, b) => Math.floor(runs / blocks) + (b < runs % blocks ? 1 : 0));
}

export function percentile(sorted, q) {
  if (!sorted.length) return NaN;
  const pos = ((sorted.length - 1) * q) / 100;
  const low = Math.floor(pos);
  const high = Math.ceil(pos);
  return sorted[low] + (sorted[high] - sorted[low]) * (pos - low);
}

function median(values) {
  return percentile([...values].sort((a, b) => a - b), 50);
}

/**
 * Time sessions interleaved.
 * @param {Array<{open: () => Promise<{run: () => Promise<any>, release: () => Promise<void>}>}>} openers
 * @param {{runs: number, warmup: number}} plan
 * @param {(done: number, total: number) => void} progress
 * @returns {Promise<{times: number[][], init: number[], rounds: number}>}
 */
export async function timeInterleaved(openers, plan, progress = () => {}) {
  const count = openers.length;
  const times = openers.map(() => []);
  const inits = openers.map(() => []);
  const blocks = blockPlan(count, plan.runs);
  const total = blocks.length * plan.warmup + plan.runs;
  let done = 0;
  let rounds = 0;
  for (let b = 0; b < blocks.length; b++) {
    const sessions = new Array(count);
    for (const i of rotation(count, b)) {
      const start = performance.now();
      sessions[i] = await openers[i].open();
      inits[i].push(performance.now() - start);
    }
    for (let w = 0; w < plan.warmup; w++) {
      for (const i of rotation(count, w)) {
        await freshTask();
        await sessions[i].run();
      }
      progress(++done, total);
    }
    for (let r = 0; r < blocks[b]; r++) {
      for (const i of rotation(count, rounds)) {
        await freshTask();
        const start = performance.now();
        await sessions[i].run();
        times[i].push(performance.now() - start);
      }
      rounds++;
      progress(++done, total);
    }
    for (const s of sessions) await s.release();
  }
  return { times, init: inits.map(median), rounds };
}

/** One benchmark record (schema deepsquare-bench-record/1) from per-round times. */
export function makeRecord(timesMs, { model, variant, runtime, threads, warmup, initMs, machine, extra }) {
  const sorted = [...timesMs].sort((a, b) => a - b);
  const mean = sorted.reduce((a, b) => a + b, 0) / sorted.length;
  const variance = sorted.length > 1 ? sorted.reduce((a, t) => a + (t - mean) ** 2, 0) / (sorted.length - 1) : 0;
  return {
    model,
    variant,
    runtime,
    threads,
    warmup,
    runs: sorted.length,
    mean_ms: mean,
    std_ms: Math.sqrt(variance),
    p50_ms: percentile(sorted, 50),
    p90_ms: percentile(sorted, 90),
    min_ms: sorted[0],
    init_ms: initMs,
    machine,
    max_ms: sorted[sorted.length - 1],
    extra: { ...extra, round_ms: timesMs.map((t) => Math.round(t * 1e4) / 1e4) },
    schema: RECORD_SCHEMA,
  };
}

/** "Chromium 156 (Linux x86_64, 16 logical cores)": the browser and what it says of the machine. */
export function describeMachine() {
  const nav = globalThis.navigator ?? {};
  const brand = nav.userAgentData?.brands?.find((b) => !/Not.A.Brand/i.test(b.brand));
  const ua = nav.userAgent ?? '';
  const chrome = ua.match(/(Chrome|Chromium|Firefox|Version)\/(\d+)/);
  const browser = brand ? `${brand.brand} ${brand.version}` : chrome ? `${chrome[1]} ${chrome[2]}` : 'browser';
  const platform = nav.userAgentData?.platform || nav.platform || 'unknown platform';
  const cores = nav.hardwareConcurrency ? `, ${nav.hardwareConcurrency} logical cores` : '';
  return `${browser} (${platform}${cores})`;
}
