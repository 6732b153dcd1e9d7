// speech-emotion web page: live microphone streaming over WS /v1/stream, and file analysis via /v1/analyze.
// Plain JS, no dependencies: everything the page needs is served by the app itself.

const FALLBACK = ["#64748b", "#0ea5e9", "#84cc16", "#e11d48"];
const WINDOW_S = 30; // seconds shown by the live chart
const $ = (id) => document.getElementById(id);

const state = {
  labels: [],
  colors: {}, // label -> colour: the one palette of the plots (report.EMOTION_COLORS), from /healthz
  auth: false,
  token: null,
  ws: null,
  audio: null, // {ctx, stream, node}
  running: false,
  updates: [], // {start, end, probabilities}
  segments: [], // segment events
  streamTime: 0,
  statusAt: 0,
  speech: false,
  limits: {},
};

const colorOf = (label, i = 0) => state.colors[label] || FALLBACK[i % FALLBACK.length];
const MIB = 1048576; // the upload limit, max_upload_mb, is in MiB (2^20 bytes): sizes are shown in the same unit
const mib = (bytes) => `${(bytes / MIB).toFixed(1)} MiB`;
const pct = (x) => `${Math.round(x * 100)}%`;
// An answer the model's calibration thresholds call uncertain (events' and summaries' "uncertain": true) is shown
// as "angry?", greyed, with this tooltip: the same flag as predict's "?" (docs/calibration.md)
const UNCERTAIN = "uncertain: the model's confidence is low or its top two emotions are close (its calibration thresholds)";
const marked = (label, uncertain) => (uncertain ? `${label}?` : label);
function uncertainTip(el, uncertain, title = "") {
  el.classList.toggle("uncertain", !!uncertain);
  el.title = uncertain ? (title ? `${title} · ${UNCERTAIN}` : UNCERTAIN) : title;
}
const fmtTime = (s) => (s >= 60 ? `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, "0")}` : `${s.toFixed(1)} s`);

// ---------------------------------------------------------------------------------------------- setup

function readToken() {
  const m = location.hash.match(/token=([^&]+)/);
  if (m) {
    sessionStorage.setItem("speech-emotion-token", decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search); // keep it out of the address bar
  }
  return sessionStorage.getItem("speech-emotion-token");
}

function tokenFromAddress() {
  // also when the printed #token= link is opened in a tab already on the page (only the fragment changes)
  const token = readToken();
  if (token) {
    state.token = token;
    $("token-box").hidden = true;
  }
}

async function init() {
  state.token = readToken();
  window.addEventListener("hashchange", tokenFromAddress);
  buildBars();
  buildLegend();
  try {
    const health = await (await fetch("/healthz")).json();
    state.labels = health.labels;
    state.auth = health.auth;
    state.limits = health.limits;
    state.colors = health.colors || {};
    $("model-chip").textContent = `model: ${health.model}`;
    $("upload-limits").textContent = `up to ${health.limits.max_upload_mb} MiB · ${Math.round(health.limits.max_duration_s / 60)} min`;
    buildBars();
    buildLegend();
  } catch (e) {
    showBanner("The service does not answer: is it still running?");
  }
  if (state.auth && !state.token) $("token-box").hidden = false;
  $("token-save").addEventListener("click", () => {
    state.token = $("token-input").value.trim() || null;
    if (state.token) sessionStorage.setItem("speech-emotion-token", state.token);
    $("token-box").hidden = !!state.token;
  });
  $("start").addEventListener("click", () => (state.running ? stop() : start()));
  setupUpload();
  new ResizeObserver(() => { drawLive(); drawFileChart(); }).observe(document.querySelector("main"));
  requestAnimationFrame(tick);
}

function buildBars() {
  const ul = $("bars");
  ul.replaceChildren();
  state.labels.forEach((label, i) => {
    const li = document.createElement("li");
    li.dataset.label = label;
    li.innerHTML = `<span class="bar-label"></span><span class="bar-track"><span class="bar-fill"></span></span><span class="bar-value">–</span>`;
    li.querySelector(".bar-label").textContent = label;
    li.querySelector(".bar-fill").style.background = colorOf(label, i);
    ul.append(li);
  });
}

const DIMENSIONS = ["arousal", "valence", "dominance"];

// Arousal, valence, dominance (0-1, 0.5 = neutral): three bars, shown only when the model gives them
function buildDims(ul) {
  ul.replaceChildren();
  for (const name of DIMENSIONS) {
    const li = document.createElement("li");
    li.dataset.dimension = name;
    li.innerHTML = `<span class="bar-label"></span><span class="bar-track"><span class="bar-fill"></span><span class="bar-mid"></span></span><span class="bar-value">–</span>`;
    li.querySelector(".bar-label").textContent = name;
    ul.append(li);
  }
}

function showDims(ul, values) {
  const present = values && typeof values.arousal === "number";
  ul.hidden = !present;
  if (!present) return;
  if (!ul.children.length) buildDims(ul);
  for (const li of ul.children) {
    const v = values[li.dataset.dimension];
    li.querySelector(".bar-fill").style.width = `${Math.round(v * 100)}%`;
    li.querySelector(".bar-value").textContent = v.toFixed(2);
  }
}

function buildLegend() {
  const ul = $("legend");
  ul.replaceChildren();
  state.labels.forEach((label, i) => {
    const li = document.createElement("li");
    li.innerHTML = `<span class="key"></span>`;
    li.querySelector(".key").style.background = colorOf(label, i);
    li.append(label);
    ul.append(li);
  });
}

function showBanner(text, kind = "error") {
  const b = $("banner");
  b.textContent = text;
  b.dataset.kind = kind;
  b.hidden = !text;
}

function setConn(text, kind) {
  const chip = $("conn-chip");
  chip.textContent = text;
  chip.dataset.kind = kind;
  document.body.dataset.state = kind;
}

// --------------------------------------------------------------------------------------------- live

async function start() {
  if (state.auth && !state.token) {
    $("token-box").hidden = false;
    showBanner("Enter the API token first.");
    return;
  }
  showBanner("");
  $("start").disabled = true;
  try {
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
    const ctx = new AudioContext();
    await ctx.audioWorklet.addModule("/static/capture-worklet.js");
    const source = ctx.createMediaStreamSource(stream);
    const node = new AudioWorkletNode(ctx, "pcm16-capture", { processorOptions: { targetRate: 16000, chunkMs: 100 } });
    const mute = ctx.createGain();
    mute.gain.value = 0;
    source.connect(node).connect(mute).connect(ctx.destination); // keeps the graph pulling audio
    state.audio = { ctx, stream, node };
    await ctx.resume();
    openSocket(node);
  } catch (e) {
    showBanner(`Cannot open the microphone: ${e.message || e}`);
    cleanupAudio();
    $("start").disabled = false;
  }
}

function openSocket(node) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const protocols = ["speech-emotion"];
  if (state.token) protocols.push(`bearer.${state.token}`);
  const ws = new WebSocket(`${scheme}://${location.host}/v1/stream`, protocols);
  ws.binaryType = "arraybuffer";
  state.ws = ws;
  state.updates = [];
  state.segments = [];
  state.streamTime = 0;
  state.statusAt = performance.now();
  $("live-segments").replaceChildren();
  setConn("connecting…", "connecting");
  ws.onopen = () => {
    ws.send(JSON.stringify({ type: "config", sample_rate: 16000, format: "pcm16", live: true }));
    node.port.onmessage = (e) => {
      if (ws.readyState === WebSocket.OPEN) ws.send(e.data.pcm);
      setLevel(e.data.peak);
    };
    state.running = true;
    $("start").textContent = "Stop";
    $("start").classList.add("stop");
    $("start").disabled = false;
    setConn("live", "live");
    setSpeech(false, "listening");
  };
  ws.onmessage = (e) => handleEvent(JSON.parse(e.data));
  ws.onclose = (e) => {
    if (state.ws === ws) {
      if (e.code !== 1000 && e.code !== 1005) showBanner(`Stream closed (${e.code}${e.reason ? `: ${e.reason}` : ""})`);
      finishLive();
    }
  };
  ws.onerror = () => showBanner("Connection to the stream failed.");
}

function handleEvent(ev) {
  switch (ev.type) {
    case "update": {
      state.updates.push(ev);
      showCurrent(ev);
      document.body.dataset.updates = String(Number(document.body.dataset.updates) + 1);
      advance(ev.end);
      break;
    }
    case "segment": {
      state.segments.push(ev);
      addSegmentChip(ev);
      break;
    }
    case "status": {
      advance(ev.time);
      setSpeech(ev.speech, ev.speech ? "speech" : "silence");
      break;
    }
    case "warning":
      showBanner(`${ev.message} (${ev.dropped_s} s so far)`, "warning");
      break;
    case "error":
      showBanner(`Stream error: ${ev.message}`);
      break;
    case "end":
      break;
    default:
      break;
  }
  const cutoff = state.streamTime - WINDOW_S - 5;
  while (state.updates.length && state.updates[0].end < cutoff) state.updates.shift();
  while (state.segments.length > 200) state.segments.shift();
}

function advance(t) {
  if (t >= state.streamTime) {
    state.streamTime = t;
    state.statusAt = performance.now();
  }
}

function showCurrent(ev) {
  $("emotion-label").textContent = marked(ev.label, ev.uncertain);
  $("emotion-label").style.color = ev.uncertain ? "" : colorOf(ev.label, state.labels.indexOf(ev.label));
  uncertainTip($("emotion-label"), ev.uncertain);
  const unsure = ev.uncertain ? " · uncertain" : "";
  $("emotion-confidence").textContent = `${pct(ev.confidence)} confident${unsure} · ${fmtTime(ev.end)}`;
  $("emotion-swatch").style.background = colorOf(ev.label, state.labels.indexOf(ev.label));
  $("emotion-swatch").classList.add("on");
  const best = ev.label;
  for (const li of $("bars").children) {
    const p = ev.probabilities[li.dataset.label] ?? 0;
    li.querySelector(".bar-fill").style.width = pct(p);
    li.querySelector(".bar-value").textContent = pct(p);
    li.classList.toggle("best", li.dataset.label === best);
  }
  showDims($("dims"), ev);
}

function setSpeech(on, text) {
  const pill = $("speech-pill");
  pill.dataset.speech = on ? "on" : text === "microphone off" ? "off" : "silence";
  $("speech-text").textContent = text;
  state.speech = on;
}

function setLevel(peak) {
  const db = 20 * Math.log10(Math.max(peak, 1e-5));
  $("level").style.width = `${Math.max(0, Math.min(100, ((db + 60) / 60) * 100))}%`;
}

function addSegmentChip(seg) {
  const li = document.createElement("li");
  li.style.setProperty("--c", colorOf(seg.label, state.labels.indexOf(seg.label)));
  li.textContent = `${marked(seg.label, seg.uncertain)} ${pct(seg.confidence)}`;
  uncertainTip(li, seg.uncertain, `${fmtTime(seg.start)} – ${fmtTime(seg.end)}`);
  const list = $("live-segments");
  list.prepend(li);
  while (list.children.length > 12) list.lastChild.remove();
}

function stop() {
  const ws = state.ws;
  if (state.audio) state.audio.node.port.postMessage("flush");
  if (ws && ws.readyState === WebSocket.OPEN) {
    setTimeout(() => ws.readyState === WebSocket.OPEN && ws.send(JSON.stringify({ type: "end" })), 150);
  }
  cleanupAudio();
  setConn("finishing…", "connecting");
  setTimeout(() => { if (state.ws === ws && ws.readyState !== WebSocket.CLOSED) ws.close(); finishLive(); }, 5000);
}

function cleanupAudio() {
  if (!state.audio) return;
  state.audio.stream.getTracks().forEach((t) => t.stop());
  setTimeout(() => state.audio && state.audio.ctx.close().catch(() => {}), 300);
  const a = state.audio;
  setTimeout(() => { if (state.audio === a) state.audio = null; }, 350);
}

function finishLive() {
  state.running = false;
  state.ws = null;
  cleanupAudio();
  $("start").textContent = "Start";
  $("start").classList.remove("stop");
  $("start").disabled = false;
  setConn("not connected", "idle");
  setSpeech(false, "microphone off");
  setLevel(0);
}

// -------------------------------------------------------------------------------------------- charts

function sizeCanvas(canvas) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth;
  const h = canvas.clientHeight;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const g = canvas.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  return { g, w, h };
}

// Stacked probability areas of `points` over [t0, t1], speech `segments` as a strip, silence shaded.
function drawTimeline(canvas, { points, segments, t0, t1, until, labels, emptyText }) {
  const { g, w, h } = sizeCanvas(canvas);
  const pad = { l: 44, r: 18, t: 8, b: 40 };
  const stripH = 12;
  const ch = h - pad.t - pad.b - stripH - 6;
  const x = (t) => pad.l + ((t - t0) / Math.max(1e-6, t1 - t0)) * (w - pad.l - pad.r);
  const y = (p) => pad.t + (1 - p) * ch;
  g.clearRect(0, 0, w, h);
  // grid
  g.strokeStyle = "#e7eaf1";
  g.fillStyle = "#8a94a6";
  g.lineWidth = 1;
  g.font = "11px system-ui, sans-serif";
  g.textAlign = "right";
  g.textBaseline = "middle";
  for (const p of [0, 0.5, 1]) {
    g.beginPath();
    g.moveTo(pad.l, y(p) + 0.5);
    g.lineTo(w - pad.r, y(p) + 0.5);
    g.stroke();
    g.fillText(`${p * 100}%`, pad.l - 6, y(p));
  }
  // silence background up to `until` (the audio heard so far), speech spans painted over it below
  const upTo = Math.min(x(until ?? t1), w - pad.r);
  g.fillStyle = "#f1f3f8";
  if (upTo > pad.l) g.fillRect(pad.l, pad.t, upTo - pad.l, ch);
  // runs of consecutive updates (a gap > 1.5 s is silence)
  const runs = [];
  let run = [];
  for (const pt of points) {
    if (pt.end < t0 - 2 || pt.end > t1 + 1) continue;
    if (run.length && pt.end - run[run.length - 1].end > 1.5) { runs.push(run); run = []; }
    run.push(pt);
  }
  if (run.length) runs.push(run);
  g.save();
  g.beginPath();
  g.rect(pad.l, pad.t - 1, w - pad.l - pad.r, ch + 2);
  g.clip();
  for (const r of runs) {
    const xs = [Math.max(r[0].start, r[0].end - 0.5), ...r.map((p) => p.end)];
    const ps = [r[0], ...r];
    g.fillStyle = "#ffffff";
    g.fillRect(x(xs[0]), pad.t, x(xs[xs.length - 1]) - x(xs[0]), ch);
    const base = new Array(ps.length).fill(0);
    labels.forEach((label, i) => {
      const top = ps.map((p, k) => base[k] + (p.probabilities[label] || 0));
      g.beginPath();
      xs.forEach((t, k) => (k ? g.lineTo(x(t), y(top[k])) : g.moveTo(x(t), y(top[k]))));
      for (let k = xs.length - 1; k >= 0; k--) g.lineTo(x(xs[k]), y(base[k]));
      g.closePath();
      g.fillStyle = colorOf(label, i);
      g.globalAlpha = 0.85;
      g.fill();
      g.globalAlpha = 1;
      top.forEach((v, k) => (base[k] = v));
    });
  }
  g.restore();
  if (until !== undefined && until < t1 && upTo > pad.l) {
    g.strokeStyle = "#c7cbd6";
    g.setLineDash([3, 3]);
    g.beginPath();
    g.moveTo(upTo + 0.5, pad.t);
    g.lineTo(upTo + 0.5, pad.t + ch);
    g.stroke();
    g.setLineDash([]);
  }
  // segment strip
  const sy = pad.t + ch + 6;
  g.fillStyle = "#eef0f5";
  g.fillRect(pad.l, sy, w - pad.l - pad.r, stripH);
  for (const s of segments) {
    if (s.end < t0 || s.start > t1) continue;
    const a = Math.max(x(s.start), pad.l);
    const b = Math.min(x(s.end), w - pad.r);
    g.fillStyle = colorOf(s.label, labels.indexOf(s.label));
    roundRect(g, a, sy, Math.max(2, b - a), stripH, 3);
  }
  // time axis
  g.fillStyle = "#8a94a6";
  g.textAlign = "center";
  g.textBaseline = "top";
  const span = t1 - t0;
  const step = span > 600 ? 120 : span > 120 ? 30 : span > 40 ? 10 : 5;
  for (let t = Math.ceil(Math.max(0, t0) / step) * step; t <= t1 + 1e-6; t += step) {
    g.textAlign = x(t) > w - pad.r - 12 ? "right" : "center";
    g.fillText(fmtTime(t).replace(".0 s", " s"), Math.min(x(t), w - 2), sy + stripH + 8);
  }
  if (!runs.length && emptyText) {
    g.fillStyle = "#8a94a6";
    g.font = "13px system-ui, sans-serif";
    g.textAlign = "center";
    g.textBaseline = "middle";
    g.fillText(emptyText, pad.l + (w - pad.l - pad.r) / 2, pad.t + ch / 2);
  }
}

function roundRect(g, x, y, w, h, r) {
  g.beginPath();
  g.moveTo(x + r, y);
  g.arcTo(x + w, y, x + w, y + h, r);
  g.arcTo(x + w, y + h, x, y + h, r);
  g.arcTo(x, y + h, x, y, r);
  g.arcTo(x, y, x + w, y, r);
  g.fill();
}

function liveNow() {
  if (!state.running) return state.streamTime;
  return state.streamTime + Math.min(0.5, (performance.now() - state.statusAt) / 1000);
}

function drawLive() {
  const now = liveNow();
  const t1 = Math.max(WINDOW_S, now);
  drawTimeline($("live-chart"), {
    points: state.updates,
    segments: state.segments,
    t0: t1 - WINDOW_S,
    t1,
    until: now,
    labels: state.labels,
    emptyText: state.running ? "waiting for speech…" : "press Start to see emotion over time",
  });
}

function tick() {
  drawLive();
  requestAnimationFrame(tick);
}

// -------------------------------------------------------------------------------------------- upload

let fileTimeline = null;

/** The reason a file is over the service's upload limit (from /healthz), or null. */
function tooLarge(f) {
  const limit = state.limits && state.limits.max_upload_mb;
  if (!limit || f.size <= limit * MIB) return null;
  return `${f.name} is ${mib(f.size)}: the limit is ${limit} MiB`;
}

function setupUpload() {
  const input = $("file");
  const drop = $("drop");
  const pick = () => {
    const f = input.files[0];
    $("drop-text").textContent = f ? `${f.name} · ${mib(f.size)}` : "Drop an audio file here or choose one";
    const problem = f && tooLarge(f);
    showBanner(problem || "");
    $("analyse").disabled = !f || !!problem;
  };
  input.addEventListener("change", pick);
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files.length) { input.files = e.dataTransfer.files; pick(); }
  });
  $("upload-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = input.files[0];
    if (!f) return;
    const problem = tooLarge(f);
    if (problem) { showBanner(problem); return; } // checked here, not after uploading it
    const button = $("analyse");
    button.disabled = true;
    button.textContent = "Analysing…";
    showBanner("");
    clearResult(); // the previous file's result never stands under this file's name
    try {
      const body = new FormData();
      body.append("file", f);
      const headers = state.token ? { Authorization: `Bearer ${state.token}` } : {};
      const res = await fetch("/v1/analyze", { method: "POST", body, headers });
      const data = await res.json();
      if (!res.ok) throw new Error(data.message || `HTTP ${res.status}`);
      fileTimeline = data;
      showTimeline(data);
    } catch (err) {
      showBanner(`Analysis failed: ${err.message}`);
    } finally {
      button.disabled = false;
      button.textContent = "Analyse";
    }
  });
}

function clearResult() {
  fileTimeline = null;
  $("result").hidden = true;
  $("stats").replaceChildren();
  showDims($("file-dims"), null);
  $("segment-table").querySelector("tbody").replaceChildren();
  document.body.dataset.analysed = "0";
}

function showTimeline(tl) {
  $("result").hidden = false;
  const s = tl.summary;
  const stats = [
    ["duration", fmtTime(tl.duration_s)],
    ["speech", `${fmtTime(s.speech_s)} (${pct(s.speech_share)})`],
    ["segments", String(s.segments)],
    // "mostly X", "mixed: X / Y" or "no speech", as the API and the CLI say, and "(uncertain)" as they do
    ["verdict", s.uncertain ? `${s.verdict} (uncertain)` : s.verdict],
  ];
  if (s.uncertain_share > 0) stats.push(["uncertain", `${pct(s.uncertain_share)} of speech`]);
  // what every door notes (a file cut short, a level too low, samples clipped), as the CLI's warning lines
  for (const note of tl.notes || []) stats.push(["note", note]);
  const box = $("stats");
  box.replaceChildren();
  for (const [k, v] of stats) {
    const div = document.createElement("div");
    div.className = "stat";
    div.innerHTML = `<span class="stat-k"></span><span class="stat-v"></span>`;
    div.querySelector(".stat-k").textContent = k;
    div.querySelector(".stat-v").textContent = v;
    if (k === "verdict" && s.top && s.top.length === 1) {
      if (!s.uncertain) div.querySelector(".stat-v").style.color = colorOf(s.dominant, tl.labels.indexOf(s.dominant));
      div.querySelector(".stat-v").classList.add("label");
    }
    if (k === "verdict") uncertainTip(div.querySelector(".stat-v"), s.uncertain);
    if (k === "uncertain") div.title = "share of the speech time in segments whose answer is uncertain";
    box.append(div);
  }
  showDims($("file-dims"), s); // the summary's speech-weighted arousal, valence, dominance
  const tbody = $("segment-table").querySelector("tbody");
  tbody.replaceChildren();
  for (const seg of tl.segments.slice(0, 200)) {
    const tr = document.createElement("tr");
    for (const v of [fmtTime(seg.start), fmtTime(seg.end), seg.label, pct(seg.confidence)]) {
      const td = document.createElement("td");
      td.textContent = v;
      tr.append(td);
    }
    tr.children[2].innerHTML = `<span class="tag"></span>`;
    tr.children[2].firstChild.textContent = marked(seg.label, seg.uncertain);
    tr.children[2].firstChild.style.setProperty("--c", colorOf(seg.label, tl.labels.indexOf(seg.label)));
    uncertainTip(tr.children[2].firstChild, seg.uncertain);
    tbody.append(tr);
  }
  document.body.dataset.analysed = "1";
  drawFileChart();
}

function drawFileChart() {
  if (!fileTimeline) return;
  drawTimeline($("file-chart"), {
    points: fileTimeline.windows,
    segments: fileTimeline.segments,
    t0: 0,
    t1: Math.max(fileTimeline.duration_s, 1),
    until: fileTimeline.duration_s,
    labels: fileTimeline.labels,
    emptyText: "no speech found in this recording",
  });
}

init();
