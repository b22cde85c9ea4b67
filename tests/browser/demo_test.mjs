// Real-browser test of the demo page (src/server/demo/index.html, served by framewire at GET /).
//
//   node tests/browser/demo_test.mjs http://127.0.0.1:PORT     (or FRAMEWIRE_URL=...)
//
// Drives Debian's /usr/bin/chromium (headless) with playwright-core, no downloaded browser.
// The camera is Chromium's fake capture device playing an MJPEG file built here from the
// 640x480 photos in tests/fixtures (objects for the detector, signs for OCR). Two runs, each in
// a fresh browser:
// - JPEG: the page is opened with ?autostart=1&detect_every=2&codec=jpeg, so it streams the
//   fake camera to the server over the WebSocket as JPEG frames, every other frame answered
//   from the tracker's prediction; the test waits until results with boxes and text lines have
//   been drawn, checks that no error was reported, that the server echoed codec jpeg (#codec),
//   that #uplink shows a rate and that predicted boxes were drawn (dashed); then draws a line
//   and a zone on the video with the mouse (as a person would), waits until the server took
//   them (`configured`), their counts are shown and events are listed, and saves a screenshot
//   to target/browser/demo.png.
// - H.264: the same with codec=h264: the page encodes the frames with WebCodecs' VideoEncoder
//   and sends one access unit per message. The test first checks that this Chromium can encode
//   H.264 at all (VideoEncoder.isConfigSupported; fails, not skips, when it cannot), then that
//   results with boxes arrive, #codec shows h264 (the server's echo), #uplink a rate, no frame
//   was invalid; screenshot target/browser/demo-h264.png.
// Then prints both runs' uplink (kbit/s of binary messages, averaged over the run).
// Optional: FRAMEWIRE_WS overrides the page's WebSocket URL (page served from elsewhere),
// FRAMEWIRE_TIMEOUT_MS (default 60000), FRAMEWIRE_CODECS=jpeg or h264 (one run only).
// Exit 0 with a one-line summary per run, or 1 with the failed run's page state and console
// log; then the line `browser: N passed, N failed`.

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

// Which runs: FRAMEWIRE_CODECS=jpeg or =h264 for one of them (default both, JPEG first).
const CODECS = (process.env.FRAMEWIRE_CODECS || 'jpeg,h264').split(',').map((c) => c.trim()).filter(Boolean);
for (const c of CODECS) {
  if (!['jpeg', 'h264'].includes(c)) {
    console.error(`FRAMEWIRE_CODECS: unknown codec ${c}`);
    fs.rmSync(tmp, { recursive: true, force: true });
    process.exit(2);
  }
}
// What the H.264 run needs from the browser (the page tries these in turn, as here).
const H264_CODECS = ['avc1.42001f', 'avc1.42e01f', 'avc1.42002a'];

const started = Date.now();
const uplink = {}; // codec -> { avgKbps, lastSecondKbps, bytes, sent }

// Pulls a number out of a text like "1234 kbit/s"; NaN if none.
const num = (text) => Number(String(text).replace(/[^0-9.]/g, '') || NaN);

// One run of the page: a fresh browser (the fake camera starts again from its first photo).
async function run(codec) {
  const consoleLog = [];
  const runStarted = Date.now();
  const shot = path.join(shotDir, codec === 'jpeg' ? 'demo.png' : `demo-${codec}.png`);
  let browser;
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
    let url = `${base}/?autostart=1&pipeline=detect_ocr&fps=5&detect_every=2&codec=${codec}`;
    if (process.env.FRAMEWIRE_WS) url += `&ws=${encodeURIComponent(process.env.FRAMEWIRE_WS)}`;
    const resp = await page.goto(url, { waitUntil: 'load', timeout: 15000 });
    if (!resp || !resp.ok()) throw new Error(`GET ${url} answered ${resp ? resp.status() : 'nothing'}`);
    const type = resp.headers()['content-type'] || '';
    if (!type.startsWith('text/html')) throw new Error(`GET / has Content-Type "${type}", expected text/html`);

    if (codec === 'h264') {
      // The page falls back to JPEG without an H.264 encoder; this test must not.
      const support = await page.evaluate(async (codecs) => {
        if (!('VideoEncoder' in window)) return { ok: false, why: `no VideoEncoder (secure context: ${window.isSecureContext})` };
        const seen = [];
        for (const c of codecs) {
          const config = { codec: c, width: 640, height: 480, avc: { format: 'annexb' }, latencyMode: 'realtime', bitrate: 300000, framerate: 5 };
          try {
            const s = await VideoEncoder.isConfigSupported(config);
            if (s.supported) return { ok: true, codec: c };
            seen.push(`${c}: unsupported`);
          } catch (e) { seen.push(`${c}: ${e.message}`); }
        }
        return { ok: false, why: seen.join('; ') };
      }, H264_CODECS);
      if (!support.ok) {
        throw new Error(`this Chromium (${browser.version()}) cannot encode H.264 with WebCodecs ` +
          `(VideoEncoder.isConfigSupported, 640x480 Annex B realtime: ${support.why}); the demo page's H.264 path ` +
          'cannot be tested (headless Chromium normally offers avc1 baseline through its software OpenH264 encoder)');
      }
    }

    // Enough results with boxes (and, for JPEG, text lines) drawn, or an error: whichever first.
    await page.waitForFunction((c) => {
      const s = window.framewireDemo;
      return s && (s.errors.length > 0 || (s.results >= 5 && s.boxesDrawn > 0 && (c !== 'jpeg' || s.textsDrawn > 0)));
    }, codec, { timeout: timeoutMs, polling: 200 });
    let state = await page.evaluate(() => window.framewireDemo);
    const shown = await page.evaluate(() => ({ codec: document.getElementById('codec').textContent,
      uplink: document.getElementById('uplink').textContent }));
    const problems = [];
    if (state.errors.length) problems.push(`page reported errors: ${JSON.stringify(state.errors)}`);
    if (!state.connected) problems.push('not connected');
    if (!state.sessionId) problems.push('no session_started received');
    if (state.codecUsed !== codec) problems.push(`the page sends ${state.codecUsed}, not ${codec} (${state.codecFallback})`);
    if (shown.codec !== codec) problems.push(`#codec shows "${shown.codec}", expected the server's echo "${codec}"`);
    if (!(num(shown.uplink) > 0)) problems.push(`#uplink shows "${shown.uplink}", expected a positive kbit/s`);
    if (state.invalid) problems.push(`${state.invalid} invalid frame(s)`);
    if (!(state.lastLatencyMs > 0)) problems.push(`no latency measured (${state.lastLatencyMs})`);
    if (!Object.keys(state.labelsSeen).some((l) => EXPECTED_LABELS.includes(l))) {
      problems.push(`none of the expected labels ${EXPECTED_LABELS} in ${JSON.stringify(state.labelsSeen)}`);
    }
    if (problems.length) throw new Error(problems.join('; '));
    const lastSecondKbps = num(shown.uplink);

    if (codec === 'jpeg') {
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
    }

    // For the screenshot: wait (a little) for one more result with text lines, then pause
    // the video and wait for the result of a frame taken after the pause, so that the overlay
    // belongs to the picture on screen whatever the latency; then one render tick. (Counted,
    // not read from lastResult: with detect_every=2 the detector's result, the one with text
    // lines, is followed at once by the next frame's predicted one, so lastResult rarely shows
    // it and the wait ran into its timeout, the camera moving on to the next photo meanwhile.)
    const textsBefore = await page.evaluate(() => window.framewireDemo.textsDrawn);
    await page.waitForFunction((n) => window.framewireDemo.textsDrawn > n, textsBefore,
      { timeout: 10000, polling: 100 }).catch(() => {});
    const pausedAt = await page.evaluate(() => { document.getElementById('video').pause(); return window.framewireDemo.sent; });
    await page.waitForFunction((n) => window.framewireDemo.lastFrameIndex > n, pausedAt,
      { timeout: timeoutMs, polling: 100 });
    await page.waitForTimeout(300);
    fs.mkdirSync(shotDir, { recursive: true });
    await page.screenshot({ path: shot });

    state = await page.evaluate(() => window.framewireDemo);
    const dom = await page.evaluate(() => Object.fromEntries(
      ['sent', 'results', 'boxes', 'latency', 'dropped', 'status', 'invalid', 'codec', 'uplink', 'keyframe-requests']
        .map((id) => [id, document.getElementById(id).textContent])));
    if (state.errors.length) throw new Error(`page reported errors: ${JSON.stringify(state.errors)}`);
    if (Number(dom.results) < 5 || Number(dom.boxes) <= 0 || !/streaming|suggests/.test(dom.status)) {
      throw new Error(`page counters not shown: ${JSON.stringify(dom)}`);
    }
    if (state.invalid || dom.invalid !== '0') throw new Error(`invalid frames: ${JSON.stringify(dom)}`);
    if (codec === 'jpeg' && !(state.predictedDrawn > 0)) {
      throw new Error(`no predicted box drawn (detect_every=2): ${state.predictedDrawn}`);
    }
    // The average uplink over the run: bytes of binary messages / time from the first to the last.
    const span = state.lastSendAt - state.firstSendAt;
    const avgKbps = span > 0 ? (state.bytesSent * 8) / span : NaN; // bits per ms = kbit/s
    uplink[codec] = { avgKbps, lastSecondKbps, bytes: state.bytesSent, sent: state.sent };
    const labels = Object.keys(state.labelsSeen).sort().join(',');
    const kinds = [...new Set(state.events.map((e) => e.type))].sort().join(',');
    const enc = state.encoderConfig;
    console.log(`browser demo test ok (${codec}): results=${state.results} sent=${state.sent} boxes=${state.boxesDrawn} ` +
      `texts=${state.textsDrawn} predicted=${state.predictedDrawn} labels=${labels} latency=${state.lastLatencyMs.toFixed(0)}ms ` +
      `server_ms=${Object.entries(state.lastTimings || {}).map(([k, v]) => `${k}:${Math.round(v)}`).join(',')} ` +
      `dropped=${state.dropped} skipped=${state.skipped} ` +
      (codec === 'jpeg' ? `events=${state.events.length}(${kinds}) counts=${JSON.stringify(state.counts)} `
        : `encoder=${enc ? `${enc.codec},${enc.width}x${enc.height},${enc.framerate}fps,${Math.round(enc.bitrate / 1000)}kbit/s` : '-'} ` +
          `keyframes_sent=${state.keyframesSent} keyframe_requests=${state.keyframeRequests} frames_skipped=${state.framesSkipped} `) +
      `uplink=${avgKbps.toFixed(0)}kbit/s(avg; ${lastSecondKbps}kbit/s last second, ${state.bytesSent} B) ` +
      `time=${((Date.now() - runStarted) / 1000).toFixed(1)}s screenshot=${path.relative(process.cwd(), shot) || shot}`);
    return true;
  } catch (e) {
    console.error(`browser demo test FAILED (${codec}): ${e.message}`);
    try {
      const page = browser && browser.contexts()[0]?.pages()[0];
      if (page) {
        const state = await page.evaluate(() => {
          const s = window.framewireDemo;
          return s && { ...s, lastResult: s.lastResult ? '(omitted)' : null };
        });
        console.error(`state: ${JSON.stringify(state)}`);
        console.error(`status: ${await page.evaluate(() => document.getElementById('status')?.textContent)}`);
        console.error(`page log: ${JSON.stringify(await page.evaluate(() =>
          [...document.querySelectorAll('#log li')].slice(0, 30).map((li) => li.textContent)))}`);
        fs.mkdirSync(shotDir, { recursive: true });
        const failed = path.join(shotDir, codec === 'jpeg' ? 'demo-failed.png' : `demo-${codec}-failed.png`);
        await page.screenshot({ path: failed });
        console.error(`screenshot: ${failed}`);
      }
    } catch (e2) {
      console.error(`(could not read the page state: ${e2.message})`);
    }
    console.error(`console log (${consoleLog.length} lines):`);
    for (const line of consoleLog) console.error(`  ${line}`);
    return false;
  } finally {
    if (browser) await browser.close().catch(() => {});
  }
}

let passed = 0, failed = 0;
try {
  for (const codec of CODECS) {
    if (await run(codec)) passed++; else failed++;
  }
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
const kbps = (c) => (uplink[c] ? `${uplink[c].avgKbps.toFixed(0)} kbit/s` : 'n/a');
if (Object.keys(uplink).length) {
  console.log(`uplink ${CODECS.map((c) => `${c}: ${kbps(c)}`).join(', ')} (average over each run at 5 fps; ` +
    `last second: ${CODECS.map((c) => `${c} ${uplink[c] ? uplink[c].lastSecondKbps : 'n/a'}`).join(', ')} kbit/s)` +
    (uplink.jpeg && uplink.h264 ? `; H.264 sends ${(uplink.jpeg.avgKbps / uplink.h264.avgKbps).toFixed(1)}x less` : ''));
}
console.log(`browser tests took ${((Date.now() - started) / 1000).toFixed(1)}s`);
// The plain closing line that CI reads when this is the last test command of .ci/run.
console.log(`browser: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
