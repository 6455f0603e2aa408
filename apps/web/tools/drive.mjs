// Drives the page in a headless Chromium (playwright-core + the system's chromium): loads it,
// optionally clicks the bundle's sample thumbnails, uploads photos through the page's file input
// and runs the page's benchmark, then
// writes what the page holds (window.deepsquare) as JSON. Used by `deepsquare serve
// --headless-bench` and by the tests; a person uses the page itself.
//
//   node tools/drive.mjs --url http://127.0.0.1:8000/ --out result.json
//        [--click-samples all|N] [--upload a.jpg,b.png] [--bench '{"runs":50,"warmup":5,"threads":1}']
//        [--screenshot page.png] [--browser /usr/bin/chromium] [--timeout 300]
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';

function parseArgs(argv) {
  const args = { browser: process.env.DEEPSQUARE_CHROMIUM || '/usr/bin/chromium', timeout: 300 };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (i + 1 >= argv.length) throw new Error(`--${key} needs a value`);
    args[key] = argv[i + 1];
  }
  if (!args.url || !args.out) throw new Error('usage: drive.mjs --url URL --out FILE [--upload F,..] [--bench JSON] [--screenshot PNG]');
  return args;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const timeoutMs = Number(args.timeout) * 1000;
  // Flags: this machine's network is closed; without these Chromium keeps dialling Google's hosts.
  const browser = await chromium.launch({
    executablePath: args.browser,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
  const consoleLines = [];
  // One deadline for the whole drive: a page that never finishes is reported with what it logged.
  const deadline = setTimeout(() => {
    process.stderr.write(`drive.mjs: the page did not finish within ${args.timeout} s; its last messages:\n`);
    for (const line of consoleLines.slice(-15)) process.stderr.write(`  ${line}\n`);
    process.exit(1);
  }, timeoutMs);
  try {
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    page.setDefaultTimeout(timeoutMs);
    page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
    await page.goto(args.url);
    await page.waitForFunction(() => window.deepsquare?.ready === true);
    if (args['click-samples']) {
      const buttons = await page.locator('.sample').all();
      const count = args['click-samples'] === 'all' ? buttons.length : Math.min(Number(args['click-samples']), buttons.length);
      for (const button of buttons.slice(0, count)) {
        const before = await page.evaluate(() => window.deepsquare.results.length);
        await button.click();
        await page.waitForFunction((n) => (window.deepsquare.results.length > n || window.deepsquare.error)
          && /^Ready/.test(document.getElementById('status').textContent), before);
      }
    }
    if (args.upload) {
      const files = args.upload.split(',').filter(Boolean);
      const before = await page.evaluate(() => window.deepsquare.results.length);
      await page.setInputFiles('#file', files);
      // Done when every file gave a result or an error message.
      await page.waitForFunction(
        ([n, count]) => window.deepsquare.results.length + (window.deepsquare.error ? window.deepsquare.error.split('\n').length : 0) >= n + count
          && /^Ready/.test(document.getElementById('status').textContent),
        [before, files.length],
      );
    }
    if (args.bench) {
      const options = JSON.parse(args.bench);
      const timer = setInterval(async () => {
        const value = await page.evaluate(() => document.getElementById('bench-progress').value).catch(() => null);
        if (value !== null) process.stderr.write(`progress ${value}\n`);
      }, 1000);
      try {
        await page.evaluate((o) => window.deepsquare.benchmark(o), options);
      } finally {
        clearInterval(timer);
      }
    }
    if (args.screenshot) await page.screenshot({ path: args.screenshot, fullPage: true });
    const state = await page.evaluate(() => {
      const s = window.deepsquare;
      return {
        ready: s.ready, error: s.error, status: document.getElementById('status').textContent,
        crossOriginIsolated: window.crossOriginIsolated, bundle: s.bundle && {
          name: s.bundle.name, meta: s.bundle.meta, problems: s.bundle.problems, runtimes: Object.keys(s.bundle.sessions),
          schema: s.bundle.schema, samples: s.bundle.samples, selfCheck: s.bundle.selfCheck,
          goldenRgb: s.bundle.goldenRgb ? Array.from(s.bundle.goldenRgb) : null,
        },
        selfCheckText: [...document.querySelectorAll('#self-check li')].map((e) => e.innerText),
        sampleLabels: [...document.querySelectorAll('.sample')].map((e) => e.innerText.trim()),
        results: s.results, records: s.records, ratios: s.benchRatios,
        resultText: [...document.querySelectorAll('.result')].map((e) => e.innerText),
      };
    });
    state.console = consoleLines;
    fs.mkdirSync(path.dirname(path.resolve(args.out)), { recursive: true });
    fs.writeFileSync(args.out, JSON.stringify(state));
  } finally {
    clearTimeout(deadline);
    await browser.close();
  }
}

main().catch((exc) => {
  process.stderr.write(`drive.mjs: ${exc.message ?? exc}\n`);
  process.exit(1);
});
