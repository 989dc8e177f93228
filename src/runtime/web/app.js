// app.js — the page's logic: microphone capture through getUserMedia and the
// Web Audio API, encoded in the page as 16-bit PCM WAV (the server's decoder,
// libsndfile, cannot read the browser's WebM), or a dropped file sent as
// multipart field "audio"; then /api/recommend, the emotion bars, the
// valence–arousal plane (SVG) and the playlist with players and feedback.
// A track starts playing at its representative segment (segment_start), and
// the plane draws the playing track's trajectory (GET /api/tracks/{id}: one
// valence–arousal point per window) with a marker at the window playing.
// While recording, an input level meter; before a recording is sent, a
// "too quiet" / "clipping" warning from its samples (the clip is still sent).
// No libraries. Left out: AudioWorklet capture (ScriptProcessor is enough
// for clips of seconds), offline caching.
'use strict';

const $ = (id) => document.getElementById(id);
const SVGNS = 'http://www.w3.org/2000/svg';
const COLORS = ['#e4572e', '#4c78a8', '#72b7b2', '#f2a541', '#9d4edd', '#54a24b', '#b279a2', '#ff9da6'];
const MAX_SECONDS = 15;
// Recording level checks, on the float samples the page records (full scale 1):
//  - clipping: any sample with |x| >= 0.99 (the converter has reached full
//    scale, so the waveform was probably cut off);
//  - too quiet: the RMS of the voiced part below -45 dBFS, where the voiced
//    part is the capture blocks (4096 samples, ~85 ms at 48 kHz) whose mean
//    square is within 40 dB of the loudest block — the rule the engine's
//    mm_level_voiced_rms uses, so pauses do not count as quietness.
// The meter shows each block's RMS on a -60..0 dBFS scale and the peak held.
const CLIP_PEAK = 0.99;
const QUIET_DBFS = -45;
const VOICED_RANGE_DB = 40;
const METER_FLOOR_DB = -60;

const state = {
  user: null, policy: 'match', last: null, tracks: [], musicLabels: [], rec: null,
  capture: null, timer: null, t0: 0,
  playing: null,         // id of the track last started
  traj: null,            // the playing track's {id, points: [[v, a], …], hop} or null
  trajCache: new Map(),  // id → promise of its /api/tracks/{id} answer

};

function setStatus(text, cls) {
  const s = $('status');
  s.textContent = text;
  s.className = 'status' + (cls ? ' ' + cls : '');
}

function showError(msg) {
  const e = $('error');
  e.textContent = msg || '';
  e.hidden = !msg;
}

function userId() {
  let u = null;
  try { u = localStorage.getItem('melodic-user'); } catch (e) { /* private mode */ }
  if (!u || !/^[A-Za-z0-9._@-]{1,64}$/.test(u)) {
    u = 'listener-' + Math.random().toString(36).slice(2, 10);
    try { localStorage.setItem('melodic-user', u); } catch (e) { /* ignore */ }
  }
  return u;
}

async function getJSON(url) {
  const r = await fetch(url);
  const j = await r.json();
  if (!r.ok) throw new Error(j.error || r.statusText);
  return j;
}

// ---- the plane ----

function el(name, attrs, parent) {
  const e = document.createElementNS(SVGNS, name);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (parent) parent.appendChild(e);
  return e;
}

function labelColor(label) {
  const i = state.musicLabels.indexOf(label);
  return COLORS[(i < 0 ? 0 : i) % COLORS.length];
}

function drawPlane() {
  const svg = $('plane');
  svg.textContent = '';
  el('rect', { x: -1, y: -1, width: 2, height: 2, class: 'frame' }, svg);
  el('line', { x1: -1, y1: 0, x2: 1, y2: 0, class: 'axis' }, svg);
  el('line', { x1: 0, y1: -1, x2: 0, y2: 1, class: 'axis' }, svg);
  const t = (x, y, s, anchor) => {
    const e = el('text', { x, y, class: 'tick', 'text-anchor': anchor || 'middle' }, svg);
    e.textContent = s;
  };
  t(0.98, -0.03, 'valence +', 'end'); t(-0.98, -0.03, 'valence −', 'start');
  t(0.03, -1.04, 'arousal +', 'start'); t(0.03, 1.1, 'arousal −', 'start');
  const chosen = new Set(state.rec ? state.rec.tracks.map((x) => x.id) : []);
  const dots = el('g', { id: 'dots' }, svg);
  for (const tr of state.tracks) {
    const c = el('circle', {
      cx: tr.valence, cy: -tr.arousal, r: chosen.has(tr.id) ? 0.035 : 0.018,
      fill: labelColor(tr.label), class: chosen.has(tr.id) ? 'dot chosen' : 'dot',
    }, dots);
    const title = el('title', {}, c);
    title.textContent = `${tr.artist} — ${tr.title} (${tr.label})`;
  }
  drawTrajectory(svg);
  if (state.rec) {
    const r = state.rec;
    if (r.policy === 'regulate' && r.target) {
      el('line', { x1: r.valence, y1: -r.arousal, x2: r.target.valence, y2: -r.target.arousal, class: 'path' }, svg);
      el('circle', { cx: r.target.valence, cy: -r.target.arousal, r: 0.04, class: 'target' }, svg);
    }
    el('circle', { id: 'listener', cx: r.valence, cy: -r.arousal, r: 0.055, class: 'listener' }, svg);
    const lab = el('text', { x: r.valence + 0.07, y: -r.arousal + 0.025, class: 'you' }, svg);
    lab.textContent = 'you: ' + r.emotion;
  }
}

// the playing track's trajectory: a polyline through its windows' points, a
// ring at the first window and a marker at the window playing now
function drawTrajectory(svg) {
  const t = state.traj;
  if (!t || t.points.length < 2) return;
  el('polyline', {
    id: 'trajectory', class: 'trajectory',
    points: t.points.map((p) => `${p[0]},${-p[1]}`).join(' '),
  }, svg);
  el('circle', { cx: t.points[0][0], cy: -t.points[0][1], r: 0.025, class: 'traj-start' }, svg);
  el('circle', { id: 'traj-now', cx: t.points[0][0], cy: -t.points[0][1], r: 0.03, class: 'traj-now' }, svg);
}

// move the trajectory's marker to the window holding time s of track id
function markTrajectory(id, s) {
  const t = state.traj, m = $('traj-now');
  if (!t || t.id !== id || !m) return;
  const w = t.hop > 0 ? Math.min(t.points.length - 1, Math.max(0, Math.floor(s / t.hop))) : 0;
  m.setAttribute('cx', t.points[w][0]);
  m.setAttribute('cy', -t.points[w][1]);
}

function trackInfo(id) {
  if (!state.trajCache.has(id)) {
    const p = getJSON('/api/tracks/' + id);
    p.catch(() => state.trajCache.delete(id));   // a failure is retried at the next play
    state.trajCache.set(id, p);
  }
  return state.trajCache.get(id);
}

async function showTrajectory(id, audio) {
  state.playing = id;
  let info;
  try { info = await trackInfo(id); } catch (e) { return; }   // the plane stays as it is
  if (state.playing !== id) return;   // another track started meanwhile
  state.traj = { id, points: info.trajectory || [], hop: info.hop_s || 0 };
  const note = $('traj-note'), n = state.traj.points.length;
  note.hidden = n < 2;
  note.textContent = n < 2 ? '' : `line: how “${info.title || 'the track'}” moves over its ${n} windows` +
    (info.window_s > 0 ? ` of ${info.window_s} s` : '') + ' (ring: its start, dot: now)';
  drawPlane();
  markTrajectory(id, audio.currentTime);
}

// seconds of a player's track heard so far (its played ranges)
function listened(a) {
  let s = 0;
  for (let i = 0; i < a.played.length; i++) s += a.played.end(i) - a.played.start(i);
  return s;
}

function drawLegend() {
  const lg = $('legend');
  lg.textContent = '';
  for (const l of state.musicLabels) {
    const s = document.createElement('span');
    s.innerHTML = '<i></i>';
    s.firstChild.style.background = labelColor(l);
    s.appendChild(document.createTextNode(l));
    lg.appendChild(s);
  }
}

// ---- results ----

function drawEmotion(r) {
  $('emotion').textContent = r.emotion;
  const bars = $('bars');
  bars.textContent = '';
  const entries = Object.entries(r.proba).sort((a, b) => b[1] - a[1]);
  for (const [label, p] of entries) {
    const row = document.createElement('div');
    row.className = 'bar' + (label === r.emotion ? ' top' : '');
    row.innerHTML = '<span class="name"></span><span class="track"><span class="fill"></span></span><span class="pct"></span>';
    row.querySelector('.name').textContent = label;
    row.querySelector('.fill').style.width = (100 * p).toFixed(1) + '%';
    row.querySelector('.pct').textContent = (100 * p).toFixed(0) + '%';
    bars.appendChild(row);
  }
  $('meta').textContent = `valence ${r.valence.toFixed(2)}, arousal ${r.arousal.toFixed(2)} · ` +
    `${r.duration_s.toFixed(1)} s of audio · answered in ${r.ms.toFixed(0)} ms`;
  // per-user calibration (servers started with --speech-calibrated)
  const c = r.calibration, cal = $('calibration');
  cal.hidden = !c;
  if (c) {
    cal.textContent = c.calibrated
      ? `calibrated to your voice (last ${c.clips} recordings)`
      : `calibrating to your voice: ${c.clips} of ${c.needed} earlier recordings`;
  }
}

async function sendFeedback(track, signal, btn) {
  try {
    const r = await fetch('/api/feedback', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ user: state.user, track, signal }),
    });
    if (r.status !== 204) throw new Error((await r.json()).error);
    if (btn) {
      btn.parentNode.querySelectorAll('button').forEach((b) => b.classList.remove('on'));
      btn.classList.add('on');
    }
  } catch (e) { showError('feedback: ' + e.message); }
}

function drawPlaylist(r) {
  const ol = $('playlist');
  ol.textContent = '';
  $('note').textContent = r.note || '';
  r.tracks.forEach((t, i) => {
    const li = document.createElement('li');
    li.className = 'item';
    li.innerHTML = '<div class="head"><span class="chip"></span><b class="title"></b> <span class="artist"></span></div>' +
      '<div class="reason"></div><div class="controls"><audio controls preload="none"></audio>' +
      '<span class="fb"><button type="button" class="like" title="like">♥ like</button>' +
      '<button type="button" class="dislike" title="dislike">✕ dislike</button></span></div>';
    li.querySelector('.chip').textContent = t.label;
    li.querySelector('.chip').style.background = labelColor(t.label);
    li.querySelector('.title').textContent = t.title || '(untitled)';
    li.querySelector('.artist').textContent = t.artist ? '— ' + t.artist : '';
    li.querySelector('.reason').textContent = t.reason;
    const audio = li.querySelector('audio');
    audio.src = t.url;
    audio.dataset.id = t.id;
    // start at the track's representative segment (once: a later seek is the listener's)
    audio.addEventListener('loadedmetadata', () => {
      const s = t.segment_start || 0;
      if (s > 0 && audio.currentTime < s && !(s >= audio.duration)) audio.currentTime = s;
    }, { once: true });
    audio.addEventListener('play', () => {
      // one player at a time; a track left before 10 s of listening counts as skipped
      document.querySelectorAll('#playlist audio').forEach((a) => {
        if (a !== audio && !a.paused) {
          if (listened(a) < 10) sendFeedback(a.dataset.id, 'skip', null);
          a.pause();
        }
      });
      showTrajectory(t.id, audio);
    });
    audio.addEventListener('timeupdate', () => markTrajectory(t.id, audio.currentTime));
    li.querySelector('.like').addEventListener('click', (e) => sendFeedback(t.id, 'like', e.currentTarget));
    li.querySelector('.dislike').addEventListener('click', (e) => sendFeedback(t.id, 'dislike', e.currentTarget));
    li.dataset.index = i;
    ol.appendChild(li);
  });
}

async function analyse(body, contentType) {
  state.last = { body, contentType };
  showError('');
  setStatus('listening to you…', 'busy');
  const url = `/api/recommend?n=10&policy=${state.policy}&user=${encodeURIComponent(state.user)}`;
  const opts = { method: 'POST', body };
  if (contentType) opts.headers = { 'Content-Type': contentType };
  try {
    const r = await fetch(url, opts);
    const j = await r.json();
    if (!r.ok) throw new Error(j.error || r.statusText);
    state.rec = j;
    state.traj = null;   // its track is no longer in the list
    state.playing = null;
    $('traj-note').hidden = true;
    drawEmotion(j);
    drawPlaylist(j);
    drawPlane();
    setStatus(`${j.emotion} · ${j.tracks.length} tracks`, 'ok');
  } catch (e) {
    setStatus('error', 'bad');
    showError(e.message);
  }
}

// ---- capture: mono float chunks → 16-bit WAV ----

function encodeWav(chunks, rate) {
  let n = 0;
  for (const c of chunks) n += c.length;
  const buf = new ArrayBuffer(44 + 2 * n);
  const v = new DataView(buf);
  const str = (o, s) => { for (let i = 0; i < s.length; i++) v.setUint8(o + i, s.charCodeAt(i)); };
  str(0, 'RIFF'); v.setUint32(4, 36 + 2 * n, true); str(8, 'WAVE');
  str(12, 'fmt '); v.setUint32(16, 16, true); v.setUint16(20, 1, true); v.setUint16(22, 1, true);
  v.setUint32(24, rate, true); v.setUint32(28, 2 * rate, true); v.setUint16(32, 2, true); v.setUint16(34, 16, true);
  str(36, 'data'); v.setUint32(40, 2 * n, true);
  let o = 44;
  for (const c of chunks) {
    for (let i = 0; i < c.length; i++, o += 2) {
      // round to nearest: x·32768, as 16-bit decoders divide by 32768 (a quantisation that
      // truncated would shift the noise floor, which moves the silence-trimming bounds)
      v.setInt16(o, Math.max(-32768, Math.min(32767, Math.round(c[i] * 32768))), true);
    }
  }
  return new Blob([buf], { type: 'audio/wav' });
}

// ---- input level ----

const dbfs = (ms) => (ms > 0 ? 10 * Math.log10(ms) : -Infinity);

function blockLevel(c) {
  let s = 0, p = 0;
  for (let i = 0; i < c.length; i++) {
    const v = c[i];
    s += v * v;
    const a = Math.abs(v);
    if (a > p) p = a;
  }
  return { ms: c.length ? s / c.length : 0, peak: p };
}

// the meter: the last block's RMS as a bar, the recording's peak as a tick
function showLevel(level) {
  const pos = (db) => Math.max(0, Math.min(1, (db - METER_FLOOR_DB) / -METER_FLOOR_DB)) * 100;
  const last = level ? dbfs(level.last) : -Infinity;
  const peakDb = level && level.peak > 0 ? 20 * Math.log10(level.peak) : -Infinity;
  const fill = $('level-fill');
  fill.style.width = pos(last).toFixed(1) + '%';
  fill.classList.toggle('hot', !!level && level.lastPeak >= CLIP_PEAK);
  $('level-peak').style.left = 'calc(' + pos(peakDb).toFixed(1) + '% - 2px)';
  $('level-peak').hidden = !(peakDb > METER_FLOOR_DB);
  $('level-db').textContent = isFinite(last) ? last.toFixed(0) + ' dBFS' : '−∞ dBFS';
  $('level').querySelector('.meter').setAttribute('aria-valuenow', isFinite(last) ? last.toFixed(0) : METER_FLOOR_DB);
}

// "clipping" / "too quiet" for a finished recording, or null when its level is fine
function levelWarning(level) {
  if (level.peak >= CLIP_PEAK) {
    return 'Clipping: the recording reached full scale, so parts of your voice were cut off. ' +
      'Move back from the microphone or lower its input level, then record again.';
  }
  const top = Math.max(0, ...level.ms);
  const floor = top * Math.pow(10, -VOICED_RANGE_DB / 10);
  let s = 0, k = 0;
  for (const m of level.ms) if (m > floor) { s += m; k++; }
  const voiced = k ? dbfs(s / k) : -Infinity;
  if (voiced < QUIET_DBFS) {
    return `Too quiet: your voice is at ${isFinite(voiced) ? voiced.toFixed(0) : '−∞'} dBFS ` +
      `(below ${QUIET_DBFS}). Speak closer to the microphone or raise its input level; the result may be unreliable.`;
  }
  return null;
}

async function startRecording() {
  showError('');
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    showError('This browser cannot record here (microphone access needs localhost or HTTPS). Drop a file instead.');
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false } });
  } catch (e) {
    showError('No microphone: ' + e.message);
    return;
  }
  const ctx = new (window.AudioContext || window.webkitAudioContext)();
  await ctx.resume();
  const src = ctx.createMediaStreamSource(stream);
  const proc = ctx.createScriptProcessor(4096, 1, 1);
  const mute = ctx.createGain();
  mute.gain.value = 0;
  const chunks = [];
  const level = { ms: [], peak: 0, last: 0, lastPeak: 0 };
  proc.onaudioprocess = (e) => {
    const c = new Float32Array(e.inputBuffer.getChannelData(0));
    chunks.push(c);
    const b = blockLevel(c);
    level.ms.push(b.ms);
    level.peak = Math.max(level.peak, b.peak);
    level.last = b.ms;
    level.lastPeak = b.peak;
  };
  src.connect(proc); proc.connect(mute); mute.connect(ctx.destination);
  state.capture = { stream, ctx, src, proc, mute, chunks, level };
  showLevel(null);
  $('level').hidden = false;
  $('level-warn').hidden = true;
  state.t0 = performance.now();
  $('record').disabled = true; $('stop').disabled = false;
  $('record').classList.add('recording');
  setStatus('recording…', 'rec');
  state.timer = setInterval(() => {
    const s = (performance.now() - state.t0) / 1000;
    $('timer').textContent = s.toFixed(1) + ' s';
    if (state.capture) showLevel(state.capture.level);
    if (s >= MAX_SECONDS) stopRecording();
  }, 100);
}

async function stopRecording() {
  const c = state.capture;
  if (!c) return;
  state.capture = null;
  clearInterval(state.timer);
  c.src.disconnect(); c.proc.disconnect(); c.mute.disconnect();
  c.stream.getTracks().forEach((t) => t.stop());
  const rate = c.ctx.sampleRate;
  await c.ctx.close();
  $('record').disabled = false; $('stop').disabled = true;
  $('record').classList.remove('recording');
  $('level').hidden = true;
  if (!c.chunks.length) { showError('Nothing was recorded.'); return; }
  const warn = levelWarning(c.level);
  $('level-warn').textContent = warn || '';
  $('level-warn').hidden = !warn;
  await analyse(encodeWav(c.chunks, rate), 'audio/wav');
}

function sendFile(file) {
  if (!file) return;
  const fd = new FormData();
  fd.append('audio', file, file.name);
  analyse(fd, null);   // the browser sets multipart/form-data with its boundary
}

// ---- wiring ----

async function init() {
  state.user = userId();
  $('record').addEventListener('click', startRecording);
  $('stop').addEventListener('click', stopRecording);
  $('file').addEventListener('change', (e) => sendFile(e.target.files[0]));
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault(); drop.classList.remove('over');
    sendFile(e.dataTransfer.files[0]);
  });
  document.querySelectorAll('input[name=policy]').forEach((r) => r.addEventListener('change', (e) => {
    state.policy = e.target.value;
    if (state.last) analyse(state.last.body, state.last.contentType);
  }));
  try {
    const h = await getJSON('/api/health');
    state.musicLabels = h.music_labels || [];
    const t = await getJSON('/api/tracks?limit=10000');
    state.tracks = t.tracks;
    drawLegend();
    drawPlane();
    setStatus(`ready · ${h.tracks} tracks · voice model knows ${h.speech_labels.join(', ')}`, 'ok');
  } catch (e) {
    setStatus('server unreachable', 'bad');
    showError(e.message);
  }
}

init();
