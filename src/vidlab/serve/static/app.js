// vidlab web page: choose or drop a video, play it, show the top-5 and the timeline.
// Plain JS, no external assets (the server may have no internet).
"use strict";

const $ = (id) => document.getElementById(id);
let model = null;
let windows = [];

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
  $("status").textContent = "";
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

function colour(label) {
  // a stable colour per label index (or name hash when unknown)
  let i = model ? model.labels.indexOf(label) : -1;
  if (i < 0) i = [...label].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7);
  return `hsl(${(i * 137.508) % 360}, 62%, 52%)`;
}

function percent(p) {
  return `${(100 * p).toFixed(1)}%`;
}

// The API key (when the server runs with --api-keys) lives in this tab's sessionStorage only.
const KEY_STORE = "vidlab-api-key";
let chosen = null;  // the served model the user picked (null: the server's default)

function api(path, options = {}) {
  const key = sessionStorage.getItem(KEY_STORE);
  const headers = Object.assign({}, options.headers || {});
  if (key) headers["Authorization"] = `Bearer ${key}`;
  return fetch(path, Object.assign({}, options, { headers }));
}

function withModel(path) {
  if (!chosen) return path;
  return path + (path.includes("?") ? "&" : "?") + `model=${encodeURIComponent(chosen)}`;
}

function askForKey(message) {
  $("key-form").hidden = false;
  $("model").textContent = message;
  document.body.dataset.state = "key";
}

async function loadModels() {
  try {
    const resp = await api("/v1/models");
    if (resp.status === 401 || resp.status === 403) {
      askForKey(sessionStorage.getItem(KEY_STORE) ? "that API key was refused; enter another"
                                                  : "this server needs an API key");
      return;
    }
    const data = await resp.json();
    $("key-form").hidden = true;
    const select = $("model-select");
    select.replaceChildren(...data.models.map((m) => {
      const option = document.createElement("option");
      option.value = m.name;
      option.textContent = `${m.name} (${m.labels.length} labels)`;
      return option;
    }));
    chosen = chosen && data.models.some((m) => m.name === chosen) ? chosen : data.default;
    select.value = chosen;
    select.hidden = data.models.length < 2;
    await loadModel();
  } catch (e) {
    $("model").textContent = "model information unavailable";
  }
}

async function loadModel() {
  try {
    const resp = await api(withModel("/v1/model"));
    model = await resp.json();
    $("model").textContent =
      `${model.name} · ${model.labels.length} labels · ${model.runtime} · ${model.version}`;
  } catch (e) {
    $("model").textContent = "model information unavailable";
  }
}

function renderTop(top) {
  const list = $("top5");
  list.replaceChildren();
  for (const { label, prob } of top.slice(0, 5)) {
    const li = document.createElement("li");
    li.className = "pred";
    li.dataset.label = label;
    li.dataset.prob = String(prob);
    const name = document.createElement("span");
    name.className = "label";
    name.textContent = label;
    name.title = label;
    const bar = document.createElement("div");
    bar.className = "bar";
    const fill = document.createElement("div");
    fill.style.width = percent(prob);
    bar.append(fill);
    const value = document.createElement("span");
    value.className = "prob";
    value.textContent = percent(prob);
    li.append(name, bar, value);
    list.append(li);
  }
}

function renderTimeline(result) {
  windows = result.windows || [];
  const box = $("timeline-box");
  const line = $("timeline");
  line.replaceChildren();
  $("legend").replaceChildren();
  if (!windows.length) {
    box.hidden = true;
    return;
  }
  const duration = (result.video && result.video.duration) || windows[windows.length - 1].end;
  const seen = new Set();
  windows.forEach((w, i) => {
    // each window owns the time from its start to the next window's start
    const until = i + 1 < windows.length ? windows[i + 1].start : duration;
    const best = w.top[0];
    const cell = document.createElement("div");
    cell.className = "segment";
    cell.dataset.label = best.label;
    cell.style.flex = `${Math.max(until - w.start, 0.001)} 0 0`;
    cell.style.background = colour(best.label);
    cell.title = `${w.start.toFixed(1)}–${w.end.toFixed(1)} s: ${best.label} ${percent(best.prob)}`;
    cell.addEventListener("click", () => { $("player").currentTime = w.start; });
    line.append(cell);
    seen.add(best.label);
  });
  for (const label of seen) {
    const li = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.style.background = colour(label);
    li.append(swatch, document.createTextNode(label));
    $("legend").append(li);
  }
  box.hidden = false;
}

function followPlayback() {
  const player = $("player");
  if (!windows.length || !player.duration) {
    $("now").textContent = "";
    return;
  }
  const t = player.currentTime;
  $("cursor").style.left = `${(100 * t) / player.duration}%`;
  let best = windows[0];
  for (const w of windows) {
    if (Math.abs((w.start + w.end) / 2 - t) < Math.abs((best.start + best.end) / 2 - t)) best = w;
  }
  $("now").textContent = `· now: ${best.top[0].label}`;
}

async function predict(file) {
  clearError();
  const maxMb = model && model.limits ? model.limits.max_upload_mb : null;
  if (maxMb && file.size > maxMb * 1048576) {
    showError(`${file.name} is ${(file.size / 1048576).toFixed(1)} MB; this server accepts ` +
              `at most ${maxMb} MB.`);
    return;
  }
  $("status").textContent = `Predicting ${file.name}…`;
  const form = new FormData();
  form.append("file", file, file.name);
  let resp;
  try {
    resp = await api(withModel("/v1/predict?top_k=5"), { method: "POST", body: form });
  } catch (e) {
    showError(`Could not reach the server (${e.message}).`);
    return;
  }
  let data = null;
  try {
    data = await resp.json();
  } catch (e) {
    showError(`The server answered ${resp.status} ${resp.statusText} without a result.`);
    return;
  }
  if (resp.status === 401) askForKey("this server needs an API key");
  if (!resp.ok) {
    showError(data && data.error ? data.error.message : `The server answered ${resp.status}.`);
    return;
  }
  renderTop(data.top);
  renderTimeline(data);
  const t = data.timing_ms || {};
  $("timing").textContent = `${t.total ?? "?"} ms (decode ${t.decode ?? "?"} ms, ` +
                            `inference ${t.inference ?? "?"} ms)`;
  $("status").textContent = `${data.path}: ${data.top[0].label}`;
  $("result").hidden = false;
  document.body.dataset.state = "done";
}

function choose(file) {
  if (!file) return;
  document.body.dataset.state = "busy";
  const player = $("player");
  if (player.src) URL.revokeObjectURL(player.src);
  player.src = URL.createObjectURL(file);
  $("result").hidden = false;
  predict(file).finally(() => {
    if (document.body.dataset.state === "busy") document.body.dataset.state = "error";
  });
}

function renderStream(s) {
  // one row per watched stream: its newest top label, status, lag, and open events
  const li = document.createElement("li");
  li.className = "stream";
  li.dataset.source = s.source;
  li.dataset.status = s.status || "";
  const w = s.window;
  const best = w ? w.top[0] : null;
  li.dataset.label = best ? best.label : "";
  const dot = document.createElement("span");
  dot.className = "swatch";
  dot.style.background = best ? colour(best.label) : "#c5cbd2";
  const name = document.createElement("span");
  name.className = "source";
  name.textContent = s.source;
  name.title = s.source;
  const now = document.createElement("span");
  now.className = "now";
  now.textContent = best ? `${best.label} ${percent(best.prob)}` : "waiting for frames";
  const info = document.createElement("span");
  info.className = "muted";
  const c = s.counters || {};
  info.textContent = `${s.status || "?"}` + (w ? ` · t ${w.t_end.toFixed(1)} s · ` +
    `${Math.round(w.latency_ms)} ms` : "") + ` · skipped ${c.skipped ?? 0}` +
    ` · reconnects ${c.reconnects ?? 0}`;
  li.append(dot, name, now, info);
  for (const label of s.active || []) {
    const badge = document.createElement("span");
    badge.className = "event";
    badge.textContent = label;
    li.append(badge);
  }
  return li;
}

async function pollStreams() {
  try {
    const resp = await api("/v1/streams");
    if (resp.status === 401 || resp.status === 403) return;  // polled again once a key is given
    const data = await resp.json();
    if (data.streams.length) {
      $("streams").replaceChildren(...data.streams.map(renderStream));
      $("streams-box").hidden = false;
    }
    if (!data.streams.length) return;  // nothing watched: stop polling
  } catch (e) {
    // the server restarts or the network hiccups: try again
  }
  setTimeout(pollStreams, 1000);
}

function setup() {
  const drop = $("drop");
  $("file").addEventListener("change", (e) => choose(e.target.files[0]));
  for (const kind of ["dragenter", "dragover"]) {
    drop.addEventListener(kind, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  for (const kind of ["dragleave", "drop"]) {
    drop.addEventListener(kind, () => drop.classList.remove("over"));
  }
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    choose(e.dataTransfer.files[0]);
  });
  $("player").addEventListener("timeupdate", followPlayback);
  $("player").addEventListener("error", () => {
    $("status").textContent += " (this browser cannot play the file; the prediction still works)";
  });
  $("model-select").addEventListener("change", (e) => {
    chosen = e.target.value;
    loadModel();
  });
  $("key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem(KEY_STORE, $("api-key").value.trim());
    $("api-key").value = "";
    loadModels().then(pollStreams);
  });
  loadModels().then(pollStreams);
}

setup();
