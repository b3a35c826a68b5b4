// The labelling page: one item at a time, number keys to label, space to skip, backspace to
// undo; the next item is leased and its image loaded while the current one is shown.
"use strict";

const token = new URLSearchParams(location.hash.slice(1)).get("token") || "";
const $ = (id) => document.getElementById(id);
// `preload`: the lease of the item after the current one, on its way (a promise).
const state = { classes: [], current: null, preload: null, busy: false };

// The annotator's name, kept by the browser. The first one is made unique (annotator-x7k2):
// two people who keep the default would otherwise share one name, and so one set of leases.
const annotatorInput = $("annotator");
let annotatorName = localStorage.getItem("baal-annotator");
if (!annotatorName) {
  annotatorName = "annotator-" + Math.random().toString(36).slice(2, 6).padEnd(4, "0");
  localStorage.setItem("baal-annotator", annotatorName);
}
annotatorInput.value = annotatorName;
const annotator = () => annotatorName;
// A new name: the leases the page holds belong to the old one, so give them back and lease
// under the new name.
function changeAnnotator() {
  const name = annotatorInput.value.trim();
  if (!name) annotatorInput.value = annotatorName;
  if (!name || name === annotatorName) return;
  if (state.busy) {
    setTimeout(changeAnnotator, 50);
    return;
  }
  act(async () => {
    const held = [state.current, state.preload ? await state.preload : null];
    for (const lease of held.filter(Boolean)) {
      await api("/api/skip", { annotator: annotatorName, lease: lease.lease }).catch(() => {});
    }
    annotatorName = name;
    localStorage.setItem("baal-annotator", name);
    state.current = null;
    state.preload = null;
    say(`labelling as ${name}`);
    await advance();
  });
}
annotatorInput.addEventListener("change", changeAnnotator);
// Enter takes the name and returns to labelling.
annotatorInput.addEventListener("keydown", (event) => {
  if (event.key === "Enter") annotatorInput.blur();
});

async function api(path, body) {
  const response = await fetch(path, {
    method: body === undefined ? "GET" : "POST",
    headers: { "Authorization": "Bearer " + token, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(answer.error || response.statusText);
    error.code = answer.code;
    throw error;
  }
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

/// Leases the item after `lease` and loads its image, in the background: the page takes keys
/// for the item it shows meanwhile.
function preloadAfter(lease) {
  state.preload = !lease ? null : fetchNext(lease.lease)
    .then((after) => {
      if (!after || after.lease === lease.lease) return null;
      preloadImage(after);
      return after;
    })
    .catch(() => null);
}

/// Shows the preloaded item (or asks for one), then starts preloading the one after it.
async function advance() {
  const preload = state.preload;
  state.preload = null;
  let lease = preload ? await preload : null;
  if (!lease) lease = await fetchNext(null);
  show(lease);
  preloadAfter(lease);
}

/// Why a label or skip of the page's lease was refused when the lease is no longer the page's
/// to answer: it expired (the page was open longer than the lease lasts), the service
/// restarted and does not know it, or another page under the same name answered it.
function leaseGone(error, lease) {
  switch (error.code) {
    case "expired-lease":
    case "unknown-lease":
    case "foreign-lease":
      return `the lease on item ${lease.item} ended (it was open too long, or the service restarted)`;
    case "already-answered":
      return `item ${lease.item} was labelled already, from another page under this name`;
    default:
      return null;
  }
}

/// Drops the leases the page holds and shows a fresh item.
async function renew(why) {
  state.preload = null;
  say(`not saved: ${why}; here is the next item`, true);
  await advance();
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
    let answer;
    try {
      answer = await api("/api/label", { annotator: annotator(), lease: lease.lease, class: klass });
    } catch (error) {
      const why = leaseGone(error, lease);
      if (why) return renew(why);
      throw error;
    }
    say(`item ${answer.item}: ${state.classes[answer.class]}`);
    await advance();
  });
}

function skip() {
  act(async () => {
    const lease = state.current;
    if (!lease) return;
    try {
      await api("/api/skip", { annotator: annotator(), lease: lease.lease });
    } catch (error) {
      const why = leaseGone(error, lease);
      if (why) return renew(why);
      throw error;
    }
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
  // Typing a name, a held-down key's repeats (one press, one label), and shortcuts such as
  // Ctrl+1 (the browser's tabs) are not labels.
  if (event.target === annotatorInput || event.repeat) return;
  if (event.ctrlKey || event.metaKey || event.altKey) return;
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
