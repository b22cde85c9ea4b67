// Real-browser test of the demo page (src/demo/index.html, served by framewire at GET /).
//
//   node tests/browser/demo_test.mjs http://127.0.0.1:PORT     (or FRAMEWIRE_URL=...)
//
// Drives Debian's /usr/bin/chromium (headless) with playwright-core, no downloaded browser.
// The camera is Chromium's fake capture device playing an MJPEG file built here from the
// 640x480 photos in tests/fixtures (objects for the detector, signs for OCR). The page is
// opened with ?autostart=1&detect_every=2, so it streams the fake camera to the server over the
// WebSocket, every other frame answered from the tracker's prediction; the test waits until
// results with boxes and text lines have been drawn, checks that no error was reported and
// that predicted boxes were drawn (dashed); then draws a line and a zone on the video with the mouse (as a person
// would), waits until the server took them (`configured`), their counts are shown and events
// are listed, and saves a screenshot to target/browser/demo.png.
// Optional: FRAMEWIRE_WS overrides the page's WebSocket URL (page served from elsewhere),
// FRAMEWIRE_TIMEOUT_MS (default 60000).
// Exit 0 with a one-line summary, or 1 with the page state and console log; then the line
// `browser: N passed, N failed`.

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const base = (process.argv[2] || process.env.FRAMEWIRE_URL || '').replace(/\/+$/, '');
if (!base) {
  console.error('usage: node demo_test.mjs http://HOST:PORT   (or set FRAMEWIRE_URL)');
  process.exit(2);
}
const timeoutMs = Number(process.env.FRAMEWIRE_TIMEOUT_MS || 60000);
const shotDir = path.join(repo, 'target', 'browser');
const shot = path.join(shotDir, 'demo.png');

// Fake camera: concatenated JPEG frames (Chromium's .mjpeg fake capture plays them at 30 fps
// and loops). Results come back some 100 ms after the frame was taken (seconds on a loaded
// machine), so the first photo, which has objects and a sign, is held for 8 s: long enough
// for the test to finish on it, so that the overlay in the screenshot matches the picture.
// The others follow for 2 s each (a person watching the page sees the labels change).
const FRAMES = [
  ['text_cafe_sign_on_coffee_640x480.jpg', 240], // cup, dining table + a sign
  ['photo_cat_640x480.jpg', 60],                 // cat
  ['photo_astronaut_640x480.jpg', 60],           // person
  ['text_street_sign_on_cameraman_640x480.jpg', 60], // person + a sign
];
// Labels the detector finds in those frames (tests/fixtures/reference_detections.json).
const EXPECTED_LABELS = ['cup', 'dining table', 'bowl', 'cat', 'person'];

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'framewire-browser-'));
const camera = path.join(tmp, 'camera.mjpeg');
{
  const fd = fs.openSync(camera, 'w');
  for (const [name, repeat] of FRAMES) {
    const jpeg = fs.readFileSync(path.join(repo, 'tests', 'fixtures', name));
    for (let i = 0; i < repeat; i++) fs.writeSync(fd, jpeg);
  }
  fs.closeSync(fd);
}

const consoleLog = [];
const started = Date.now();
let browser;
let code = 1;
try {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
      `--use-file-for-fake-video-capture=${camera}`,
    ],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.on('console', (m) => consoleLog.push(`console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => consoleLog.push(`pageerror: ${e.message}`));
  page.on('requestfailed', (r) => consoleLog.push(`requestfailed: ${r.url()} ${r.failure()?.errorText}`));

  // detect_every=2: every other frame is answered from the tracker's prediction (drawn dashed).
  let url = `${base}/?autostart=1&pipeline=detect_ocr&fps=5&detect_every=2`;
  if (process.env.FRAMEWIRE_WS) url += `&ws=${encodeURIComponent(process.env.FRAMEWIRE_WS)}`;
  const resp = await page.goto(url, { waitUntil: 'load', timeout: 15000 });
  if (!resp || !resp.ok()) throw new Error(`GET ${url} answered ${resp ? resp.status() : 'nothing'}`);
  const type = resp.headers()['content-type'] || '';
  if (!type.startsWith('text/html')) throw new Error(`GET / has Content-Type "${type}", expected text/html`);

  // Enough results with boxes and text lines drawn, or an error: whichever comes first.
  await page.waitForFunction(() => {
    const s = window.framewireDemo;
    return s && (s.errors.length > 0 || (s.results >= 5 && s.boxesDrawn > 0 && s.textsDrawn > 0));
  }, null, { timeout: timeoutMs, polling: 200 });
  let state = await page.evaluate(() => window.framewireDemo);
  const problems = [];
  if (state.errors.length) problems.push(`page reported errors: ${JSON.stringify(state.errors)}`);
  if (!state.connected) problems.push('not connected');
  if (!state.sessionId) problems.push('no session_started received');
  if (!(state.lastLatencyMs > 0)) problems.push(`no latency measured (${state.lastLatencyMs})`);
  if (!Object.keys(state.labelsSeen).some((l) => EXPECTED_LABELS.includes(l))) {
    problems.push(`none of the expected labels ${EXPECTED_LABELS} in ${JSON.stringify(state.labelsSeen)}`);
  }
  if (problems.length) throw new Error(problems.join('; '));

  // Zones and lines with the mouse: a line dragged across the picture, then a zone.
  const box = await page.locator('#overlay').boundingBox();
  const at = (fx, fy) => [box.x + box.width * fx, box.y + box.height * fy];
  const dragOn = async (button, from, to) => {
    await page.click(button);
    await page.mouse.move(...from);
    await page.mouse.down();
    await page.mouse.move(...to, { steps: 8 });
    await page.mouse.up();
  };
  await dragOn('#draw-line', at(0.3, 0.55), at(0.7, 0.55));
  await page.waitForFunction(() => window.framewireDemo.configured, null, { timeout: 10000, polling: 100 });
  await dragOn('#draw-zone', at(0.35, 0.2), at(0.65, 0.8));
  await page.waitForFunction(() => {
    const s = window.framewireDemo;
    return s.errors.length > 0 || (s.configured && s.zones.length === 1 && 'zone1' in s.counts.zones &&
      'line1' in s.counts.lines && s.events.length > 0);
  }, null, { timeout: timeoutMs, polling: 200 });
  const drawn = await page.evaluate(() => {
    const s = window.framewireDemo;
    return { errors: s.errors, zones: s.zones, lines: s.lines, counts: s.counts, events: s.events.length,
      countsText: document.getElementById('counts').textContent,
      eventItems: document.getElementById('events').children.length };
  });
  if (drawn.errors.length) throw new Error(`page reported errors: ${JSON.stringify(drawn.errors)}`);
  const [[lx1, ly1], [lx2, ly2]] = drawn.lines[0].points;
  if (drawn.lines.length !== 1 || !(lx2 > lx1) || Math.abs(ly2 - ly1) > 2) {
    throw new Error(`the dragged line is not the one sent: ${JSON.stringify(drawn.lines)}`);
  }
  if (!/zone1: \d+ inside/.test(drawn.countsText) || !/line1: in \d+ \/ out \d+/.test(drawn.countsText)) {
    throw new Error(`counts not shown: ${JSON.stringify(drawn.countsText)}`);
  }
  if (drawn.eventItems < 1) throw new Error(`no event listed (${drawn.events} received)`);

  // For the screenshot: wait (a little) for a result with both boxes and text, then pause
  // the video and wait for the result of a frame taken after the pause, so that the overlay
  // belongs to the picture on screen whatever the latency; then one render tick.
  await page.waitForFunction(() => {
    const r = window.framewireDemo.lastResult;
    return r && (r.detections || []).length > 0 && (r.texts || []).length > 0;
  }, null, { timeout: 10000, polling: 100 }).catch(() => {});
  const pausedAt = await page.evaluate(() => { document.getElementById('video').pause(); return window.framewireDemo.sent; });
  await page.waitForFunction((n) => window.framewireDemo.lastFrameIndex > n, pausedAt,
    { timeout: timeoutMs, polling: 100 });
  await page.waitForTimeout(300);
  fs.mkdirSync(shotDir, { recursive: true });
  await page.screenshot({ path: shot });

  state = await page.evaluate(() => window.framewireDemo);
  const dom = await page.evaluate(() => Object.fromEntries(
    ['sent', 'results', 'boxes', 'latency', 'dropped', 'status'].map((id) => [id, document.getElementById(id).textContent])));
  if (state.errors.length) throw new Error(`page reported errors: ${JSON.stringify(state.errors)}`);
  if (Number(dom.results) < 5 || Number(dom.boxes) <= 0 || !/streaming|suggests/.test(dom.status)) {
    throw new Error(`page counters not shown: ${JSON.stringify(dom)}`);
  }
  if (!(state.predictedDrawn > 0)) throw new Error(`no predicted box drawn (detect_every=2): ${state.predictedDrawn}`);
  const labels = Object.keys(state.labelsSeen).sort().join(',');
  const kinds = [...new Set(state.events.map((e) => e.type))].sort().join(',');
  console.log(`browser demo test ok: results=${state.results} sent=${state.sent} boxes=${state.boxesDrawn} ` +
    `texts=${state.textsDrawn} predicted=${state.predictedDrawn} labels=${labels} latency=${state.lastLatencyMs.toFixed(0)}ms ` +
    `server_ms=${Object.entries(state.lastTimings || {}).map(([k, v]) => `${k}:${Math.round(v)}`).join(',')} ` +
    `dropped=${state.dropped} skipped=${state.skipped} events=${state.events.length}(${kinds}) ` +
    `counts=${JSON.stringify(state.counts)} time=${((Date.now() - started) / 1000).toFixed(1)}s ` +
    `screenshot=${path.relative(process.cwd(), shot) || shot}`);
  code = 0;
} catch (e) {
  console.error(`browser demo test FAILED: ${e.message}`);
  try {
    const page = browser && browser.contexts()[0]?.pages()[0];
    if (page) {
      const state = await page.evaluate(() => {
        const s = window.framewireDemo;
        return s && { ...s, lastResult: s.lastResult ? '(omitted)' : null };
      });
      console.error(`state: ${JSON.stringify(state)}`);
      console.error(`status: ${await page.evaluate(() => document.getElementById('status')?.textContent)}`);
      fs.mkdirSync(shotDir, { recursive: true });
      await page.screenshot({ path: path.join(shotDir, 'demo-failed.png') });
      console.error(`screenshot: ${path.join(shotDir, 'demo-failed.png')}`);
    }
  } catch (e2) {
    console.error(`(could not read the page state: ${e2.message})`);
  }
  console.error(`console log (${consoleLog.length} lines):`);
  for (const line of consoleLog) console.error(`  ${line}`);
} finally {
  if (browser) await browser.close().catch(() => {});
  fs.rmSync(tmp, { recursive: true, force: true });
}
// The plain closing line that CI reads when this is the last test command of .ci/run.
console.log(code === 0 ? 'browser: 1 passed, 0 failed' : 'browser: 0 passed, 1 failed');
process.exit(code);
