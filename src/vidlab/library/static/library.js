// The library page: search by label, "more like this", a player that opens at the moment,
// the video's label timeline under it, and label corrections. No external assets.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { current: null, duration: 0 };

function pathUrl(base, video) {
  return base + video.split("/").map(encodeURIComponent).join("/");
}

const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
                 "#ff9da7", "#9c755f", "#bab0ac"];
const colours = new Map();

function colour(label) {
  // a label that names a colour is drawn in it; the others take the next palette entry
  if (!colours.has(label)) {
    colours.set(label, CSS.supports("color", label) ? label
      : PALETTE[colours.size % PALETTE.length]);
  }
  return colours.get(label);
}

function fmt(seconds) {
  const s = Math.max(0, seconds);
  const m = Math.floor(s / 60);
  return `${m}:${(s - 60 * m).toFixed(1).padStart(4, "0")}`;
}

async function api(path, options) {
  const response = await fetch(path, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const message = body && body.error ? body.error.message : `HTTP ${response.status}`;
    throw new Error(message);
  }
  return body;
}

function showError(error) {
  $("error").textContent = error ? String(error.message || error) : "";
  $("error").hidden = !error;
}

async function loadInfo() {
  try {
    const info = await api("/library/api/info");
    $("info").textContent = `${info.videos} videos · ${info.windows} windows · ` +
      `${info.hours.toFixed(2)} h · model ${info.model}`;
    const list = $("labels");
    list.replaceChildren(...info.labels.map((name) => {
      const option = document.createElement("option");
      option.value = name;
      return option;
    }));
    document.body.dataset.ready = "1";
  } catch (error) {
    showError(error);
  }
}

function renderResults(results, what) {
  const box = $("results");
  box.replaceChildren();
  $("status").textContent = `${results.length} moments ${what}`;
  for (const r of results) {
    const card = document.createElement("article");
    card.className = "result";
    Object.assign(card.dataset, { video: r.video, start: r.start, end: r.end,
                                  label: r.label, score: r.score });
    const img = document.createElement("img");
    img.className = "thumb";
    img.alt = `${r.label} at ${fmt(r.start)}`;
    img.loading = "lazy";
    img.src = pathUrl("/library/thumb/", r.video) + `?t=${((r.start + r.end) / 2).toFixed(2)}`;
    const meta = document.createElement("div");
    meta.className = "meta";
    const name = document.createElement("b");
    name.textContent = r.label;
    const where = document.createElement("span");
    where.className = "muted range";
    where.textContent = `${r.video} · ${fmt(r.start)}–${fmt(r.end)} · ${r.score.toFixed(3)}`;
    meta.append(name, where);
    const like = document.createElement("button");
    like.className = "like secondary";
    like.type = "button";
    like.textContent = "More like this";
    like.addEventListener("click", (event) => { event.stopPropagation(); moreLike(r); });
    card.append(img, meta, like);
    card.addEventListener("click", () => open(r, card));
    box.append(card);
  }
  document.body.dataset.state = "results";
}

async function searchLabel(label) {
  showError(null);
  document.body.dataset.state = "searching";
  try {
    const found = await api(`/library/api/search?label=${encodeURIComponent(label)}&top=48`);
    renderResults(found.results, `labelled ${label}`);
  } catch (error) {
    showError(error);
    document.body.dataset.state = "error";
  }
}

async function moreLike(r) {
  showError(null);
  document.body.dataset.state = "searching";
  const q = new URLSearchParams({ like: r.video, start: r.start, end: r.end, top: 24 });
  try {
    const found = await api(`/library/api/search?${q}`);
    renderResults(found.results, `like ${r.video} ${fmt(r.start)}–${fmt(r.end)}`);
  } catch (error) {
    showError(error);
    document.body.dataset.state = "error";
  }
}

function setMoment(video, start, end, label) {
  state.current = { video, start, end, label };
  $("moment").textContent = `${video} · ${fmt(start)}–${fmt(end)} · now: ${label}`;
  $("moment").dataset.start = start;
  $("moment").dataset.end = end;
  $("moment").dataset.label = label;
}

function open(r, card) {
  for (const c of document.querySelectorAll(".result.active")) c.classList.remove("active");
  if (card) card.classList.add("active");
  $("viewer").hidden = false;
  $("now-playing").textContent = r.video;
  setMoment(r.video, r.start, r.end, r.label);
  const player = $("player");
  const src = pathUrl("/library/media/", r.video);
  const seek = () => {
    player.currentTime = r.start;
    document.body.dataset.playing = r.video;
    player.play().catch(() => {});
  };
  if (player.dataset.video !== r.video) {
    player.dataset.video = r.video;
    player.addEventListener("loadedmetadata", seek, { once: true });
    player.src = src;
  } else {
    seek();
  }
  loadTimeline(r.video);
}

async function loadTimeline(video) {
  try {
    const t = await api(`/library/api/timeline?video=${encodeURIComponent(video)}`);
    state.duration = t.duration;
    const line = $("timeline");
    const cursor = $("cursor");
    line.replaceChildren(cursor);
    const seen = new Map();
    for (const s of t.segments) {
      const seg = document.createElement("div");
      seg.className = "segment";
      const corrected = t.corrections.some((c) => c.new === s.label &&
        c.start <= s.start + 1e-3 && c.end >= s.end - 1e-3);
      if (corrected) seg.classList.add("corrected");
      Object.assign(seg.dataset, { label: s.label, start: s.start, end: s.end });
      seg.style.left = `${(100 * s.start) / t.duration}%`;
      seg.style.width = `${(100 * (s.end - s.start)) / t.duration}%`;
      seg.style.background = colour(s.label);
      seg.title = `${s.label} ${fmt(s.start)}–${fmt(s.end)}`;
      seg.addEventListener("click", () => {
        $("player").currentTime = s.start;
        setMoment(video, s.start, s.end, s.label);
      });
      line.append(seg);
      seen.set(s.label, colour(s.label));
    }
    $("legend").replaceChildren(...[...seen].map(([name, c]) => {
      const item = document.createElement("li");
      const swatch = document.createElement("i");
      swatch.style.background = c;
      item.append(swatch, name);
      return item;
    }));
    document.body.dataset.timeline = video;
  } catch (error) {
    showError(error);
  }
}

async function saveCorrection(event) {
  event.preventDefault();
  const m = state.current;
  if (!m) return;
  const who = $("who").value.trim();
  localStorage.setItem("vidlab-who", who);
  const body = { video: m.video, start: m.start, end: m.end, label: $("new-label").value.trim(),
                 who };
  try {
    const saved = await api("/library/api/corrections", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    $("correct-status").textContent =
      `Saved: ${saved.old ?? "?"} → ${saved.new} by ${saved.who} at ${saved.when}`;
    setMoment(m.video, m.start, m.end, saved.new);
    document.body.dataset.corrected = String(saved.id);
    await loadTimeline(m.video);
  } catch (error) {
    $("correct-status").textContent = `Not saved: ${error.message}`;
  }
}

$("player").addEventListener("timeupdate", () => {
  const player = $("player");
  const duration = state.duration || player.duration || 1;
  $("cursor").style.left = `${(100 * player.currentTime) / duration}%`;
});
$("search-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const label = $("query").value.trim();
  if (label) searchLabel(label);
});
$("correct-form").addEventListener("submit", saveCorrection);
$("who").value = localStorage.getItem("vidlab-who") || "";
loadInfo();
