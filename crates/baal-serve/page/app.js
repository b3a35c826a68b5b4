// The labelling page: one item at a time, number keys to label, space to skip, backspace to
// undo; the next item is leased and its image loaded while the current one is shown.
"use strict";

const token = new URLSearchParams(location.hash.slice(1)).get("token") || "";
const $ = (id) => document.getElementById(id);
const state = { classes: [], current: null, preloaded: null, busy: false };

const annotatorInput = $("annotator");
annotatorInput.value = localStorage.getItem("baal-annotator") || "annotator";
annotatorInput.addEventListener("change", () => {
  localStorage.setItem("baal-annotator", annotatorInput.value.trim() || "annotator");
});
const annotator = () => annotatorInput.value.trim() || "annotator";

async function api(path, body) {
  const response = await fetch(path, {
    method: body === undefined ? "GET" : "POST",
    headers: { "Authorization": "Bearer " + token, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(answer.error || response.statusText);
  return answer;
}

function say(text, error = false) {
  $("message").textContent = text;
  $("message").classList.toggle("error", error);
}

const imageUrl = (lease) => lease.image + "?token=" + encodeURIComponent(token);

function preloadImage(lease) {
  const image = new Image();
  image.src = imageUrl(lease);
  return image.decode().catch(() => {});
}

function show(lease) {
  state.current = lease;
  const img = $("item");
  if (!lease) {
    img.hidden = true;
    $("empty").hidden = false;
    $("current").textContent = "–";
    $("score").textContent = "–";
    return;
  }
  img.hidden = false;
  $("empty").hidden = true;
  img.src = imageUrl(lease);
  img.dataset.item = lease.item;
  $("current").textContent = lease.item;
  $("score").textContent = lease.score.toFixed(4);
}

async function fetchNext(except) {
  const answer = await api("/api/next", { annotator: annotator(), except: except ?? null });
  if (answer.lease === null) {
    $("empty").textContent = answer.reason;
    return null;
  }
  return answer;
}

/// Shows the preloaded item (or asks for one), then leases and loads the one after it.
async function advance() {
  let lease = state.preloaded;
  state.preloaded = null;
  if (!lease) lease = await fetchNext(null);
  show(lease);
  if (lease) {
    const after = await fetchNext(lease.lease);
    if (after && after.lease !== lease.lease) {
      state.preloaded = after;
      preloadImage(after);
    }
  }
}

async function act(work) {
  if (state.busy) return;
  state.busy = true;
  try {
    await work();
  } catch (error) {
    say(error.message, true);
  } finally {
    state.busy = false;
    refreshStatus();
  }
}

function label(klass) {
  act(async () => {
    const lease = state.current;
    if (!lease) return;
    const answer = await api("/api/label", { annotator: annotator(), lease: lease.lease, class: klass });
    say(`item ${answer.item}: ${state.classes[answer.class]}`);
    await advance();
  });
}

function skip() {
  act(async () => {
    const lease = state.current;
    if (!lease) return;
    await api("/api/skip", { annotator: annotator(), lease: lease.lease });
    say(`skipped item ${lease.item}`);
    await advance();
  });
}

function undo() {
  act(async () => {
    const answer = await api("/api/undo", { annotator: annotator() });
    say(`undid item ${answer.item} (${state.classes[answer.class]}); it is back in the queue`);
  });
}

function drawCurve(history) {
  const svg = $("curve");
  const points = history.filter((r) => r.accuracy !== null);
  const [w, h, pad] = [220, 130, 22];
  let html = `<line x1="${pad}" y1="${h - pad}" x2="${w - 4}" y2="${h - pad}"/>` +
    `<line x1="${pad}" y1="6" x2="${pad}" y2="${h - pad}"/>`;
  if (points.length > 0) {
    const maxX = Math.max(...points.map((r) => r.n_labelled), 1);
    const x = (n) => pad + (n / maxX) * (w - pad - 8);
    const y = (a) => h - pad - a * (h - pad - 8);
    const coords = points.map((r) => `${x(r.n_labelled).toFixed(1)},${y(r.accuracy).toFixed(1)}`);
    html += `<polyline points="${coords.join(" ")}"/>`;
    html += coords.map((c) => `<circle cx="${c.split(",")[0]}" cy="${c.split(",")[1]}" r="2.5"/>`).join("");
    const last = points[points.length - 1];
    html += `<text x="${w - 6}" y="14" text-anchor="end">${(last.accuracy * 100).toFixed(1)}%</text>`;
    html += `<text x="${w - 6}" y="${h - 8}" text-anchor="end">${maxX} labels</text>`;
  }
  html += `<text x="2" y="12">1</text><text x="2" y="${h - pad}">0</text>`;
  svg.innerHTML = html;
}

async function refreshStatus() {
  try {
    const status = await api("/api/status");
    $("labelled").textContent = status.n_labelled;
    $("pool").textContent = status.n_pool;
    $("model").textContent = status.model_version === 0
      ? (status.training ? "first one training…" : "none yet")
      : `v${status.model_version}` + (status.training ? " (retraining…)" : "");
    drawCurve(status.history);
    return status;
  } catch (error) {
    say(error.message, true);
    return null;
  }
}

function keyToClass(key) {
  if (!/^[0-9]$/.test(key)) return null;
  const klass = key === "0" ? 9 : Number(key) - 1;
  return klass < state.classes.length ? klass : null;
}

document.addEventListener("keydown", (event) => {
  if (event.target === annotatorInput) return;
  const klass = keyToClass(event.key);
  if (klass !== null) {
    event.preventDefault();
    label(klass);
  } else if (event.key === " ") {
    event.preventDefault();
    skip();
  } else if (event.key === "Backspace") {
    event.preventDefault();
    undo();
  }
});

async function start() {
  const status = await refreshStatus();
  if (!status) return;
  state.classes = status.classes;
  const buttons = $("classes");
  status.classes.forEach((name, i) => {
    const button = document.createElement("button");
    const key = i < 9 ? String(i + 1) : i === 9 ? "0" : "";
    button.innerHTML = (key ? `<kbd>${key}</kbd>` : "") + name.replace(/[<>&]/g, "");
    button.dataset.class = i;
    button.addEventListener("click", () => label(i));
    buttons.appendChild(button);
  });
  await act(advance);
  setInterval(refreshStatus, 3000);
}

start();
