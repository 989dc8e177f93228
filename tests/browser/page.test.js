// page.test.js — the web page in a real browser: Debian's chromium driven by
// playwright-core, its microphone faked by a RAVDESS clip
// (--use-file-for-fake-audio-capture). Clicks record, waits ~3.5 s, stops,
// expects an emotion with one probability bar per class, the listener's
// point on the valence–arousal plane and a playlist; starts the first track
// and checks it plays, from its segment_start, with its trajectory drawn on
// the plane when the library has one (required with EXPECT_TRAJECTORY=1:
// run.sh's own library is indexed in windows); switches to regulate; saves
// a screenshot.
// Usage: node page.test.js URL VOICE.wav SCREENSHOT.png   (run.sh does it)
'use strict';
const { chromium } = require('playwright-core');

const [url, voice, shot] = process.argv.slice(2);
if (!url || !voice || !shot) {
  console.error('usage: node page.test.js URL VOICE.wav SCREENSHOT.png');
  process.exit(2);
}

function check(cond, what) {
  if (!cond) throw new Error('browser test: ' + what);
  console.log('ok - ' + what);
}

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--use-fake-ui-for-media-stream',
      '--use-fake-device-for-media-stream', `--use-file-for-fake-audio-capture=${voice}`,
      '--autoplay-policy=no-user-gesture-required'],
  });
  let failed = false;
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 1100 } })).newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  // keep a copy of the first recording the page uploads ($UPLOAD_COPY), to check its WAV encoding
  await page.addInitScript(() => {
    const orig = window.fetch;
    window.fetch = async (u, o) => {
      if (!window.__upload && o && o.body instanceof Blob && String(u).includes('/api/recommend')) {
        const b = new Uint8Array(await o.body.arrayBuffer());
        let s = '';
        for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode.apply(null, b.subarray(i, i + 8192));
        window.__upload = btoa(s);
      }
      return orig(u, o);
    };
  });
  try {
    await page.goto(url, { waitUntil: 'load' });
    await page.waitForFunction(() => document.querySelectorAll('#dots circle').length > 0, null, { timeout: 20000 });
    const dots = await page.locator('#dots circle').count();
    check(dots > 0, `plane shows the library (${dots} tracks)`);

    await page.click('#record');
    await page.waitForTimeout(3500);
    await page.click('#stop');
    await page.waitForFunction(() => document.querySelectorAll('#playlist li').length > 0, null, { timeout: 60000 });
    const emotion = (await page.textContent('#emotion')).trim();
    const bars = await page.locator('#bars .bar').count();
    const labels = (await (await page.request.get(url + 'api/health')).json()).speech_labels;
    check(labels.includes(emotion), `emotion shown: ${emotion}`);
    check(bars === labels.length, `one probability bar per class (${bars})`);
    check(await page.locator('#listener').count() === 1, "the listener's point is on the plane");
    if (process.env.CALIBRATED) {   // a server with a calibrated model counts this user's recordings
      const cal = (await page.textContent('#calibration')).trim();
      check(/calibrating to your voice: 0 of \d+ earlier recordings/.test(cal) && await page.isVisible('#calibration'),
            `calibration progress shown: "${cal}"`);
    } else {
      check(!(await page.isVisible('#calibration')), 'no calibration line without a calibrated model');
    }
    const items = await page.locator('#playlist li').count();
    check(items > 0, `playlist of ${items} tracks`);
    if (process.env.UPLOAD_COPY) {
      const b64 = await page.evaluate(() => window.__upload || '');
      require('fs').writeFileSync(process.env.UPLOAD_COPY, Buffer.from(b64, 'base64'));
    }
    const reason = (await page.textContent('#playlist li .reason')).trim();
    check(reason.length > 0, `first track has a reason: "${reason}"`);

    // play the first track: it must load and advance (0.3 s heard, wherever it started)
    await page.locator('#playlist li audio').first().evaluate((a) => a.play());
    await page.waitForFunction(() => {
      const a = document.querySelector('#playlist li audio');
      let heard = 0;
      for (let i = 0; a && i < a.played.length; i++) heard += a.played.end(i) - a.played.start(i);
      return a && !a.paused && heard > 0.3;
    }, null, { timeout: 20000 });
    check(true, 'first track is playing');
    // it started at its representative segment, and its trajectory is on the plane
    const first = await page.locator('#playlist li audio').first().getAttribute('data-id');
    const info = await (await page.request.get(url + 'api/tracks/' + first)).json();
    const startedAt = await page.locator('#playlist li audio').first().evaluate((a) => a.played.length ? a.played.start(0) : -1);
    check(Math.abs(startedAt - (info.segment_start || 0)) < 0.5,
          `playback started at segment_start ${info.segment_start} s (at ${startedAt.toFixed(2)} s)`);
    const windows = (info.trajectory || []).length;
    if (process.env.EXPECT_TRAJECTORY) check(windows >= 2, `the library has a trajectory for the track (${windows} windows)`);
    if (windows >= 2) {
      await page.waitForSelector('#trajectory', { timeout: 10000 });
      const pts = (await page.getAttribute('#trajectory', 'points')).trim().split(/\s+/);
      const [v0, a0] = pts[0].split(',').map(Number);
      check(pts.length === windows && Math.abs(v0 - info.trajectory[0][0]) < 1e-6 && Math.abs(a0 + info.trajectory[0][1]) < 1e-6,
            `trajectory of the playing track drawn on the plane (${pts.length} points)`);
      check(await page.isVisible('#traj-note'), 'trajectory explained under the plane');
    } else {
      console.log('ok - no trajectory to draw (library indexed without windows)');
    }

    await page.locator('#playlist li .like').first().click();
    await page.waitForSelector('#playlist li .like.on', { timeout: 5000 });
    check(true, 'like recorded (204)');

    await page.check('input[name=policy][value=regulate]');
    await page.waitForFunction(() => /tracks/.test(document.getElementById('status').textContent) &&
      document.querySelector('#plane .target') !== null, null, { timeout: 60000 });
    check(true, 'regulate playlist with its target on the plane');
    await page.locator('#playlist li audio').first().evaluate((a) => a.pause());
    check(errors.length === 0, 'no script errors' + (errors.length ? ': ' + errors.join('; ') : ''));
  } catch (e) {
    failed = true;
    console.error(e.message);
  } finally {
    await page.screenshot({ path: shot, fullPage: true });
    console.log('screenshot: ' + shot);
    await browser.close();
  }
  process.exit(failed ? 1 : 0);
})();
