// The duty officer's screen: log in with a token, then everything comes from /v1 with it and
// stays live from /v1/stream. No framework, no build step: the package serves these files.

import { MapView, circlePolygon, distanceM, el, pathOf, project } from "/ui/map.js";
import { fromBase64, parseCheckpoint, verifyConsistency } from "/ui/merkle.js";

export const LANGUAGES = ["en", "tr", "he", "ar", "az"];
const RTL = new Set(["he", "ar"]);
const PALETTE = ["#1f6fd1", "#c8102e", "#2e8b57", "#7b3fb5", "#b8860b", "#008b8b"];
const $ = (id) => document.getElementById(id);

const state = {
  token: sessionStorage.getItem("dcf.token"),
  lang: "en",
  strings: {},
  me: null,
  parties: [],
  colours: {},
  zones: [],
  activities: [],
  conflicts: [],
  tracks: [],
  alerts: new Map(),
  openThread: null,
  draft: { mode: null, points: [] },
  amend: null,
  checked: [],
  lastEvent: null,
  socket: null,
  basemap: null,
  map: null,
  timers: {}, // the periodic refreshes
  coalescing: {}, // the refreshes events asked for, by name (see later)
};

// ---- text, numbers, times -------------------------------------------------------------------

export function t(key, vars = {}) {
  const text = state.strings[key];
  // A missing translation shows as the key in brackets: visible, and the tests look for it.
  if (text === undefined) return `⟦${key}⟧`;
  return text.replace(/\{(\w+)\}/g, (_, name) => (vars[name] ?? `{${name}}`));
}

const num = (n, digits = 0) =>
  new Intl.NumberFormat(state.lang, { maximumFractionDigits: digits }).format(n);

function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const utc = new Intl.DateTimeFormat(state.lang, {
    day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", timeZone: "UTC", hourCycle: "h23",
  }).format(d);
  const local = new Intl.DateTimeFormat(state.lang, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(d);
  return t("time.utc_local", { utc, local });
}

function band(lower, upper) {
  return t("units.band", { lower: num(lower), upper: num(upper), lower_ft: num(lower / 0.3048), upper_ft: num(upper / 0.3048) });
}

function node(tag, attrs = {}, ...children) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") n.className = v;
    else if (k.startsWith("on")) n.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) n.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) n.append(c);
  return n;
}

async function setLanguage(lang) {
  state.lang = LANGUAGES.includes(lang) ? lang : "en";
  const response = await fetch(`/ui/i18n/${state.lang}.json`);
  state.strings = await response.json();
  document.documentElement.lang = state.lang;
  document.documentElement.dir = RTL.has(state.lang) ? "rtl" : "ltr";
  $("lang").value = state.lang;
  for (const n of document.querySelectorAll("[data-i18n]")) n.textContent = t(n.dataset.i18n);
  for (const n of document.querySelectorAll("[data-i18n-label]")) {
    n.setAttribute("aria-label", t(n.dataset.i18nLabel));
    n.setAttribute("title", t(n.dataset.i18nLabel));
  }
  if (state.map) {
    renderAll();
    refreshHotline();
  }
}

// ---- the API ---------------------------------------------------------------------------------

function idempotencyKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function api(path, { method = "GET", body, headers = {} } = {}) {
  const options = { method, headers: { Authorization: `Bearer ${state.token}`, ...headers } };
  if (method !== "GET") options.headers["Idempotency-Key"] = idempotencyKey();
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  const type = response.headers.get("content-type") || "";
  const data = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    const error = new Error((data && data.detail) || (data && data.title) || response.statusText);
    error.status = response.status;
    if (response.status === 401 && state.me) signedOut(error.message);
    throw error;
  }
  return data;
}

// The token was revoked or expired while logged in: back to the login screen, saying why.
function signedOut(reason) {
  sessionStorage.setItem("dcf.signedOut", reason);
  logout();
}

// Coalesce the refreshes a burst of events asks for: one runs `ms` after the first ask, and sees
// the rest (an ask that pushed it back each time would starve it while events keep coming). A
// failed one says so in the header.
function later(name, fn, ms = 300) {
  if (state.coalescing[name] !== undefined) return;
  state.coalescing[name] = setTimeout(() => {
    delete state.coalescing[name];
    Promise.resolve(fn()).catch((e) => alertLine(e.message));
  }, ms);
}

// ---- log in ----------------------------------------------------------------------------------

async function login(token) {
  state.token = token;
  try {
    state.me = await api("/v1/me");
  } catch (error) {
    state.token = null;
    sessionStorage.removeItem("dcf.token");
    $("login-error").textContent = t("login.failed", { reason: error.message });
    return;
  }
  sessionStorage.setItem("dcf.token", token);
  // Who is signed in here: in a shared room, what this browser acknowledges is signed as them.
  $("who").textContent = `${state.me.officer.id} · ${state.me.party.code}`;
  $("who").title = state.me.officer.name;
  state.parties = await api("/v1/parties");
  state.parties.forEach((p, i) => (state.colours[p.code] = PALETTE[i % PALETTE.length]));
  $("login").hidden = true;
  $("app").hidden = false;
  await setLanguage(localStorage.getItem("dcf.lang") || state.me.party.language);
  if (!state.basemap) state.basemap = await (await fetch("/ui/basemap.geojson")).json();
  state.map = state.map || new MapView($("map"), pick);
  state.map.onZoom = () => {
    renderLabels();
    renderTracks();
  };
  fillRecipients();
  defaultWindow();
  await Promise.all([refreshPicture(), refreshConflicts(), refreshHotline(), refreshTracks(), refreshAlerts()]);
  renderAll();
  openStream();
  refreshRecord();
  refreshIncidents();
  refreshAgreements();
  state.timers.tracks = setInterval(refreshTracks, 2000);
  // Notifications without conflicts are not on the stream: the picture refreshes itself too.
  state.timers.picture = setInterval(() => refreshPicture().catch((e) => alertLine(e.message)), 30000);
  state.timers.record = setInterval(() => refreshRecord().catch((e) => alertLine(e.message)), 15000);
  state.timers.tick = setInterval(tick, 1000);
}

function logout() {
  sessionStorage.removeItem("dcf.token");
  location.reload();
}

// ---- data ------------------------------------------------------------------------------------

async function refreshPicture() {
  [state.zones, state.activities] = await Promise.all([api("/v1/zones"), api("/v1/activities?limit=1000")]);
  renderZones();
  renderActivities();
}

async function refreshConflicts() {
  state.conflicts = await api("/v1/conflicts?limit=500");
  renderConflicts();
}

async function refreshTracks() {
  try {
    state.tracks = await api("/v1/tracks");
  } catch {
    return; // the next poll tries again; a failing poll must not stop the screen
  }
  renderTracks();
}

async function refreshAlerts() {
  for (const alert of await api("/v1/alerts?state=active")) state.alerts.set(alert.id, alert);
  renderAlerts();
}

async function refreshHotline() {
  const lang = `lang=${state.lang}`;
  const [inbox, threads, channels] = await Promise.all([
    api(`/v1/hotline/inbox?pending=true&limit=200&${lang}`),
    api("/v1/hotline/threads?limit=200"),
    api("/v1/hotline/channels"),
  ]);
  renderChannels(channels);
  renderInbox(inbox);
  renderThreads(threads);
  if (state.openThread) await openThread(state.openThread);
}

async function refreshIncidents() {
  const list = $("incidents");
  const mine = state.me.party.code;
  try {
    const incidents = await api("/v1/incidents");
    list.replaceChildren(...incidents.map((i) => node("li", { class: `incident state-${i.state}`, "data-incident-id": i.id },
      node("strong", {}, `#${i.id} ${t(`incident.${i.kind}`)}`), " — ", t(`incident_state.${i.state}`),
      node("div", { class: "meta" }, t("incidents.parties", { party: i.reported_by, other: i.other_party, at: when(i.occurred_at) })),
      node("p", { dir: "auto" }, i.description),
      i.other_party === mine && i.state === "reported"
        ? node("button", { type: "button", class: "ack", onclick: () => act(`/v1/incidents/${i.id}/acknowledge`, refreshIncidents) }, t("incidents.acknowledge"))
        : null)));
    if (!incidents.length) list.append(node("li", { class: "muted" }, t("common.none")));
  } catch (error) {
    list.replaceChildren(node("li", { class: "muted" }, error.status === 404 ? t("common.unavailable") : error.message));
  }
}

async function refreshAgreements() {
  const list = $("agreements");
  const mine = state.me.party.code;
  try {
    const [rounds, commitments, violations] = await Promise.all([
      api("/v1/agreements/rounds"), api("/v1/agreements/commitments"), api("/v1/agreements/violations"),
    ]);
    const counts = {};
    for (const v of violations) counts[v.commitment_id] = (counts[v.commitment_id] || 0) + 1;
    list.replaceChildren(
      node("li", {}, node("h3", {}, t("agreements.rounds")),
        node("ul", { class: "items" }, rounds.map((r) => node("li", { "data-round-id": r.id },
          node("strong", {}, t("agreements.round", { n: num(r.number), venue: r.venue })), " — ",
          new Intl.DateTimeFormat(state.lang, { dateStyle: "medium", timeZone: "UTC" }).format(new Date(r.held_on)), ", ",
          t(`outcome.${r.outcome}`), node("p", { dir: "auto" }, r.summary))))),
      node("li", {}, node("h3", {}, t("agreements.commitments")),
        node("ul", { class: "items" }, commitments.map((c) => {
          const consented = c.parties.some((p) => p.party === mine && p.consented_at);
          const needsMine = c.status === "proposed" && c.parties.some((p) => p.party === mine) && !consented;
          return node("li", { "data-commitment-id": c.id, class: counts[c.id] ? "violated" : "" },
            node("strong", {}, c.title), " — ", t(`commitment.${c.status}`), " — ",
            t("agreements.violations_count", { n: num(counts[c.id] || 0) }),
            needsMine ? node("button", { type: "button", onclick: () => act(`/v1/agreements/commitments/${c.id}/consent`, refreshAgreements) }, t("agreements.consent")) : null);
        }))),
      node("li", {}, node("h3", {}, t("agreements.violations")),
        node("ul", { class: "items" }, violations.length
          ? violations.map((v) => node("li", { "data-violation-id": v.id, dir: "auto" }, `${v.party}, ${when(v.at)}: ${v.description}`))
          : [node("li", { class: "muted" }, t("common.none"))])));
  } catch (error) {
    list.replaceChildren(node("li", { class: "muted" }, error.status === 404 ? t("common.unavailable") : error.message));
  }
}

// A commander cuts off any of the party's officers' devices, an officer only their own: as the API
// allows. Revoking one's own tokens signs this browser out too (the next request gets a 401).
async function refreshOfficers() {
  const list = $("officers");
  const me = state.me.officer;
  try {
    const officers = await api("/v1/officers");
    list.replaceChildren(...officers.map((o) => node("li", { "data-officer-id": o.id },
      node("strong", { dir: "auto" }, o.name), ` (${o.id}), ${t(`role.${o.role}`)}`,
      node("div", { class: "meta" }, t("officers.tokens", { n: num(o.active_tokens) })),
      o.active_tokens > 0 && (me.role === "commander" || o.id === me.id)
        ? node("button", { type: "button", class: "revoke", onclick: () => revokeTokens(o) }, t("officers.revoke"))
        : null)));
  } catch (error) {
    list.replaceChildren(node("li", { class: "muted" }, error.status === 404 ? t("common.unavailable") : error.message));
  }
}

async function revokeTokens(officer) {
  if (!confirm(t("officers.confirm", { name: officer.name }))) return;
  const result = $("officers-result");
  try {
    const done = await api(`/v1/officers/${encodeURIComponent(officer.id)}/tokens/revoke`, { method: "POST" });
    result.textContent = t("officers.revoked", { name: officer.name, n: num(done.revoked) });
  } catch (error) {
    result.textContent = t("common.error", { reason: error.message });
  }
  await refreshOfficers();
}

// ---- the stream ------------------------------------------------------------------------------

function openStream() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const after = state.lastEvent === null ? "" : `&after=${state.lastEvent}`;
  const socket = new WebSocket(`${scheme}://${location.host}/v1/stream?token=${encodeURIComponent(state.token)}&lang=${state.lang}${after}`);
  state.socket = socket;
  socket.onopen = () => {
    setStreamState("live");
    // A stream opened without a last id starts from now: what happened before it opened (since
    // the login's first reads, or during a drop before any event came) is read afresh.
    if (state.lastEvent === null) later("resync", resync, 0);
  };
  socket.onmessage = (message) => {
    const frame = JSON.parse(message.data); // one event, or an array of those ready together
    for (const event of Array.isArray(frame) ? frame : [frame]) onEvent(event);
  };
  socket.onclose = () => {
    setStreamState("reconnecting");
    setTimeout(openStream, 2000); // resumes after the last event seen: nothing lost, nothing twice
  };
}

async function resync() {
  await Promise.all([refreshPicture(), refreshConflicts(), refreshHotline(), refreshAlerts(), refreshIncidents(), refreshAgreements()]);
  renderAll();
}

function setStreamState(name) {
  const badge = $("stream-state");
  // Losing the stream means losing the next FLASH: say it out loud, once per loss.
  if (name === "reconnecting" && badge.dataset.state === "live") play(CHIME);
  badge.dataset.state = name;
  badge.textContent = t(`stream.${name}`);
}

function onEvent(event) {
  state.lastEvent = event.id;
  const kind = event.kind;
  if (kind.startsWith("alert.")) {
    const alert = event.payload.alert;
    if (alert.state === "cleared") state.alerts.delete(alert.id);
    else {
      state.alerts.set(alert.id, alert);
      chimeOnce(`alert-${alert.id}`);
    }
    renderAlerts();
    return;
  }
  if (kind.startsWith("conflict.")) {
    later("conflicts", () => Promise.all([refreshConflicts(), refreshPicture()]));
  }
  if (kind.startsWith("incident.")) later("incidents", refreshIncidents);
  if (kind.startsWith("commitment.") || kind.startsWith("agreement.") || kind.startsWith("violation.")) later("agreements", refreshAgreements);
  if (kind.startsWith("message.") || kind.startsWith("channel.") || kind.includes("escalat") || kind.startsWith("conflict.")) {
    later("hotline", refreshHotline);
  }
  later("record", refreshRecord, 3000);
}

// ---- map layers ------------------------------------------------------------------------------

function renderAll() {
  renderBase();
  renderZones();
  renderActivities();
  renderConflicts();
  renderTracks();
  renderAlerts();
  renderDraft();
  renderLegend();
  renderSliderLabel();
}

function renderBase() {
  const layer = $("layer-base");
  layer.replaceChildren();
  for (const f of state.basemap.features) {
    if (f.properties.kind === "country")
      el("path", { d: pathOf(f.geometry), class: "country" }, layer);
  }
  renderLabels();
}

function renderLabels() {
  const layer = $("layer-labels");
  layer.replaceChildren();
  if (!state.basemap) return;
  for (const f of state.basemap.features) {
    if (f.properties.kind === "country") continue;
    const [x, y] = project(f.geometry.coordinates);
    const g = el("g", { class: `place ${f.properties.kind}`, transform: `translate(${x},${y})` }, layer);
    el("circle", { r: "var(--dot)", class: "dot" }, g);
    // Right to left, a label starts at its right end: keep it clear of the dot either way.
    const dx = RTL.has(state.lang) ? "-0.6em" : "0.6em";
    // Bases sit next to their towns (Hama, Palmyra): their labels go below the town's.
    const dy = f.properties.kind === "base" ? "1.3em" : "0.35em";
    const label = el("text", { class: "label", dx, dy }, g);
    label.textContent = f.properties.names[state.lang] || f.properties.names.en;
  }
}

function zoneGeometry(zone) {
  return zone.footprint || circlePolygon(zone.circle.center, zone.circle.radius_m);
}

function renderZones() {
  const layer = $("layer-zones");
  layer.replaceChildren();
  for (const zone of state.zones) {
    const path = el("path", {
      d: pathOf(zoneGeometry(zone)),
      class: `zone rule-${zone.rule}`,
      stroke: state.colours[zone.owner] || "#555",
      "data-zone-id": zone.id,
    }, layer);
    el("title", {}, path).textContent = `${zone.name} — ${t(`rule.${zone.rule}`)} (${zone.owner}) ${band(zone.altitude.lower_m, zone.altitude.upper_m)}`;
  }
}

function sliderTime() {
  const start = Math.floor(Date.now() / 60000) * 60000;
  return new Date(start + Number($("time-slider").value) * 60000);
}

function renderSliderLabel() {
  $("time-label").textContent = when(sliderTime().toISOString());
}

function renderActivities() {
  const layer = $("layer-activities");
  layer.replaceChildren();
  const at = sliderTime().getTime();
  for (const activity of state.activities) {
    if (activity.state === "cancelled" || activity.state === "completed") continue;
    const g = el("g", { class: "activity", "data-activity-id": activity.id, fill: state.colours[activity.party] || "#555" }, layer);
    for (const volume of activity.volumes) {
      const start = Date.parse(volume.time.start);
      const end = Date.parse(volume.time.end);
      const geometry = volume.footprint || (volume.circle && circlePolygon(volume.circle.center, volume.circle.radius_m));
      if (!geometry) continue;
      el("path", { d: pathOf(geometry), class: start <= at && at < end ? "volume now" : "volume later", stroke: state.colours[activity.party] }, g);
    }
    el("title", {}, g).textContent = `${activity.party} ${activity.title} — ${t(`kind.${activity.kind}`)}, ${when(activity.start)} – ${when(activity.end)}`;
  }
}

function renderConflicts() {
  const layer = $("layer-conflicts");
  layer.replaceChildren();
  for (const c of state.conflicts) {
    if (c.state === "resolved") continue;
    const path = el("path", { d: pathOf(c.overlap.region), class: `overlap severity-${c.severity}`, "data-conflict-id": c.id }, layer);
    el("title", {}, path).textContent = conflictTitle(c);
  }
  renderConflictList();
}

function renderTracks() {
  const layer = $("layer-tracks");
  layer.replaceChildren();
  for (const track of state.tracks) {
    const [x, y] = project([track.lon, track.lat]);
    // The glyph keeps its size on screen: scaled with the map's visible width.
    const size = state.map.view.w / 120;
    const g = el("g", { class: "track", "data-track": track.key, transform: `translate(${x},${y}) rotate(${track.course_deg}) scale(${size})`, fill: state.colours[track.party] || "#333" }, layer);
    el("path", { d: "M0,-1.6L1,1.2L0,0.6L-1,1.2Z", class: "glyph" }, g);
    el("path", { d: "M0,-1.6L0,-4", class: "heading", stroke: state.colours[track.party] || "#333" }, g);
    el("title", {}, g).textContent = `${track.callsign || track.id} (${track.party}) ${num(track.alt_m)} m, ${num(track.gs_mps * 1.943844)} kt, ${num(track.course_deg)}°`;
  }
  $("track-count").textContent = t("alerts.track_count", { n: num(state.tracks.length) });
}

function renderAlerts() {
  const layer = $("layer-alerts");
  layer.replaceChildren();
  const list = $("alerts");
  list.replaceChildren();
  for (const alert of state.alerts.values()) {
    if (alert.segment) el("path", { d: pathOf(alert.segment), class: "cpa", "data-alert-id": alert.id }, layer);
    const what = alert.kind === "pair" ? `${alert.a} × ${alert.b}` : `${alert.a} → ${t("alerts.zone")} ${alert.zone}`;
    list.append(node("li", { class: "alert", "data-alert-id": alert.id },
      node("strong", {}, what), " ",
      t("alerts.cpa", { s: num(alert.tcpa_s), m: num(alert.dcpa_m) })));
  }
  if (!state.alerts.size) list.append(node("li", { class: "muted" }, t("common.none")));
}

function renderLegend() {
  const legend = $("legend");
  legend.replaceChildren(
    ...["no_entry", "notify", "caution"].map((rule) => node("span", { class: `key rule-${rule}` }, t(`rule.${rule}`))),
    node("span", { class: "key overlap-key" }, t("map.overlap")),
    node("span", { class: "key cpa-key" }, t("map.cpa")),
    ...state.parties.filter((p) => p.kind === "participant").map((p) => {
      const key = node("span", { class: "key party" }, p.code);
      key.style.setProperty("--c", state.colours[p.code]); // a style attribute breaks the page's CSP
      return key;
    }),
  );
}

// ---- hotline ---------------------------------------------------------------------------------

function myReceipt(message) {
  return message.receipts.find((r) => r.party === state.me.party.code);
}

function escalation(receipt) {
  if (!receipt) return "";
  // Ladders are configured per party: a rung named in the config but not here shows as named.
  const rung = state.strings[`rung.${receipt.rung_name}`] ?? receipt.rung_name.replace(/_/g, " ");
  if (receipt.acknowledged_at) return t("hotline.acknowledged_by", { who: receipt.acknowledged_by, at: when(receipt.acknowledged_at) });
  if (receipt.escalated_at) return t("hotline.escalated", { rung, at: when(receipt.escalated_at) });
  return t("hotline.rung", { rung });
}

function messageItem(message, withActions) {
  const r = myReceipt(message);
  const title = message.rendered ? message.rendered.title : t(`msgtype.${message.type}`);
  const body = message.rendered ? message.rendered.body : "";
  const free = message.text ? node("p", { class: "free", dir: message.text.dir, lang: message.text.language }, message.text.content) : null;
  const actions = [];
  if (withActions && r && !r.acknowledged_at) {
    if (!r.read_at) actions.push(node("button", { type: "button", class: "read", onclick: () => act(`/v1/hotline/messages/${message.id}/read`, refreshHotline) }, t("hotline.read")));
    actions.push(node("button", { type: "button", class: "ack", onclick: () => act(`/v1/hotline/messages/${message.id}/acknowledge`, refreshHotline) }, t("hotline.acknowledge")));
  }
  const countdown = r && !r.acknowledged_at ? node("span", { class: "countdown", "data-deadline": r.deadline_at }, "") : null;
  const from = message.sender.party ? `${message.sender.party} (${message.sender.officer})` : t("hotline.system");
  return node("li", { class: `message priority-${message.priority}`, "data-message-id": message.id },
    node("span", { class: "priority" }, t(`priority.${message.priority}`)), " ",
    node("strong", {}, title), " ", countdown,
    node("div", { class: "meta" }, t("hotline.from", { from, at: when(message.created_at) })),
    body ? node("p", {}, body) : null, free,
    node("div", { class: "escalation" }, escalation(r)),
    node("ul", { class: "receipts" }, message.receipts.filter((x) => x.party !== state.me.party.code || !withActions).map(receiptItem)),
    ...actions);
}

function receiptItem(r) {
  const stage = r.acknowledged_at ? "acknowledged" : r.read_at ? "read" : r.delivered_at ? "delivered" : "sent";
  const at = r.acknowledged_at || r.read_at || r.delivered_at;
  return node("li", { class: `receipt ${stage}`, "data-party": r.party, "data-stage": stage },
    `${r.party}: ${t(`receipt.${stage}`)}${at ? " " + when(at) : ""}${r.overdue && !r.acknowledged_at ? " — " + t("hotline.overdue") : ""}`);
}

// What to answer first: FLASH, then URGENT, then ROUTINE; within each, the nearest deadline.
const PRIORITY_RANK = { FLASH: 0, URGENT: 1, ROUTINE: 2 };

function byUrgency(a, b) {
  const rank = PRIORITY_RANK[a.priority] - PRIORITY_RANK[b.priority];
  if (rank) return rank;
  return Date.parse(myReceipt(a)?.deadline_at ?? a.created_at) - Date.parse(myReceipt(b)?.deadline_at ?? b.created_at);
}

function renderInbox(messages) {
  const list = $("inbox");
  list.replaceChildren(...messages.slice().sort(byUrgency).map((m) => messageItem(m, true)));
  if (!messages.length) list.append(node("li", { class: "muted" }, t("hotline.nothing_pending")));
  tick();
  renderAttention(messages);
}

// A channel that is not open says so in the header: degraded (a comms check went unanswered: the
// other side may not be hearing) or suspended, since when and why; it chimes when it changes.
function renderChannels(channels) {
  const troubled = channels.filter((c) => c.state !== "open");
  const name = (c) => c.parties.join("–");
  const badge = $("channel-alarm");
  badge.hidden = !troubled.length;
  badge.dataset.state = troubled.some((c) => c.state === "degraded") ? "degraded" : troubled.length ? "suspended" : "open";
  badge.textContent = troubled.map((c) => t("channels.state", { channel: name(c), state: t(`channel_state.${c.state}`) })).join(" · ");
  for (const c of troubled) chimeOnce(`channel-${c.id}-${c.state_since}`);
  const writes = state.me.officer.role !== "observer";
  $("channels").replaceChildren(...channels.map((c) => node("li", { class: `channel state-${c.state}`, "data-channel-id": c.id, "data-state": c.state },
    node("strong", {}, name(c)), " ", t(`channel_state.${c.state}`),
    c.state === "open" ? null : node("div", { class: "meta" }, t("channels.since", { at: when(c.state_since) }), c.reason ? node("span", { dir: "auto" }, ` — ${c.reason}`) : null),
    c.state === "suspended" && writes
      ? node("button", { type: "button", class: "resume", onclick: () => act(`/v1/hotline/channels/${c.id}/resume`, refreshHotline) }, t("channels.resume"))
      : null)));
}

// ---- attention: what must not wait unseen ------------------------------------------------------
// While a FLASH message waits for this party's acknowledgement, the header says so in red and the
// page sounds an alarm every ALARM_EVERY_MS (until it is acknowledged or the sound is turned off);
// a new URGENT message, or a new tactical alert, chimes once. The tab's title carries the count,
// so a tab in the background shows it too. Tones are synthesised: nothing to download.
const ALARM_EVERY_MS = 5000;
const ALARM = [880, 660, 880, 660];
const CHIME = [660, 990];
const sound = {
  context: null,
  on: localStorage.getItem("dcf.sound") !== "off",
  played: 0, // tones sounded: the browser tests count them
  heard: new Set(), // messages and alerts already chimed for
  alarm: null,
};

// Browsers let a page make sound only from a person's click or key: each one may unlock it.
function unlockSound() {
  if (!sound.context) sound.context = new AudioContext();
  if (sound.context.state === "suspended") sound.context.resume().then(renderSoundButton);
  renderSoundButton();
}

function play(frequencies, each = 0.2) {
  const context = sound.context;
  if (!sound.on || !context || context.state !== "running") return;
  let at = context.currentTime;
  for (const frequency of frequencies) {
    const oscillator = context.createOscillator();
    const gain = context.createGain();
    oscillator.frequency.value = frequency;
    gain.gain.setValueAtTime(0.25, at);
    gain.gain.exponentialRampToValueAtTime(0.001, at + each);
    oscillator.connect(gain).connect(context.destination);
    oscillator.start(at);
    oscillator.stop(at + each);
    at += each;
  }
  sound.played += 1;
}

function chimeOnce(key) {
  if (sound.heard.has(key)) return;
  sound.heard.add(key);
  play(CHIME);
}

function renderSoundButton() {
  const button = $("sound");
  const blocked = sound.on && (!sound.context || sound.context.state !== "running");
  button.setAttribute("aria-pressed", String(sound.on));
  const shown = blocked ? "blocked" : sound.on ? "on" : "off";
  button.dataset.state = shown;
  button.textContent = t(`sound.${shown}`);
}

function toggleSound() {
  // A click on a blocked button means "let me hear it": unlock, keep it on.
  if (!sound.on || sound.context?.state === "running") sound.on = !sound.on;
  localStorage.setItem("dcf.sound", sound.on ? "on" : "off");
  renderSoundButton();
}

function renderAttention(pending) {
  const flash = pending.filter((m) => m.priority === "FLASH");
  const urgent = pending.filter((m) => m.priority === "URGENT");
  for (const m of urgent) chimeOnce(`message-${m.id}`);
  const top = flash.length ? "FLASH" : urgent.length ? "URGENT" : null;
  const box = $("attention");
  box.hidden = top === null;
  box.dataset.flash = flash.length;
  box.dataset.urgent = urgent.length;
  box.className = top ? `priority-${top}` : "";
  if (top) $("attention-text").textContent = t("attention.pending", { priority: t(`priority.${top}`), n: num(top === "FLASH" ? flash.length : urgent.length) });
  document.title = pending.length ? `(${num(pending.length)}) ${top === "FLASH" ? `${t("priority.FLASH")} — ` : ""}${t("app.title")}` : t("app.title");
  if (flash.length && !sound.alarm) {
    play(ALARM);
    sound.alarm = setInterval(() => play(ALARM), ALARM_EVERY_MS);
  } else if (!flash.length && sound.alarm) {
    clearInterval(sound.alarm);
    sound.alarm = null;
  }
  renderSoundButton();
}

// The first message of the highest priority waiting: in view, its Acknowledge focused.
function showAttention() {
  selectTab("hotline");
  const item = $("inbox").querySelector("li.priority-FLASH") || $("inbox").querySelector("li.priority-URGENT");
  if (!item) return;
  item.scrollIntoView({ block: "center" });
  item.querySelector("button.ack")?.focus();
}

function renderThreads(threads) {
  $("threads").replaceChildren(...threads.slice().reverse().map((thread) =>
    node("li", {}, node("button", { type: "button", class: "link", "data-thread-id": thread.id, onclick: () => openThread(thread.id) },
      `#${thread.id} ${thread.subject} (${thread.parties.join(", ")})`))));
}

async function openThread(id) {
  state.openThread = id;
  const thread = await api(`/v1/hotline/threads/${id}?lang=${state.lang}`);
  const reply = node("form", { class: "reply", onsubmit: (e) => sendReply(e, thread) },
    node("label", { for: "reply-text" }, t("hotline.reply")),
    node("textarea", { id: "reply-text", rows: "2", maxlength: "4000" }),
    node("button", { type: "submit" }, t("hotline.send")));
  $("thread-view").replaceChildren(
    node("h3", {}, `#${thread.id} ${thread.subject}`),
    node("ul", { class: "items", id: "thread-messages" }, (thread.messages || []).map((m) => messageItem(m, true))),
    reply);
  tick();
}

async function sendReply(event, thread) {
  event.preventDefault();
  const text = $("reply-text").value.trim();
  if (!text) return;
  const last = thread.messages[thread.messages.length - 1];
  await api(`/v1/hotline/messages?lang=${state.lang}`, { method: "POST", body: { type: "reply", thread: thread.id, in_reply_to: last.id, text, language: state.lang } });
  await refreshHotline();
}

function fillRecipients() {
  $("msg-to").replaceChildren(...state.parties.filter((p) => p.code !== state.me.party.code && p.kind === "participant").map((p) => node("option", { value: p.code }, `${p.code} — ${p.name}`)));
}

async function compose(event) {
  event.preventDefault();
  const type = $("msg-type").value;
  const body = {
    type,
    priority: $("msg-priority").value,
    to: [$("msg-to").value],
    subject: $("msg-subject").value.trim() || t(`msgtype.${type}`),
    language: state.lang,
  };
  const text = $("msg-text").value.trim();
  if (text) body.text = text;
  try {
    if (type === "warning") body.warning = warningFromDraft();
    const message = await api(`/v1/hotline/messages?lang=${state.lang}`, { method: "POST", body });
    $("compose-result").textContent = t("hotline.sent", { id: message.id });
    $("msg-text").value = "";
    state.openThread = message.thread;
    await refreshHotline();
  } catch (error) {
    $("compose-result").textContent = t("common.error", { reason: error.message });
  }
}

function warningFromDraft() {
  const { mode, points } = state.draft;
  if (!points.length) throw new Error(t("hotline.warning_needs_drawing"));
  const [lon, lat] = points[0];
  const radius = mode === "circle" && points.length > 1 ? distanceM(points[0], points[1]) : null;
  const window = timeWindow();
  return {
    hazard: $("warn-hazard").value,
    position: { lat, lon },
    radius_m: radius,
    band: { lower_m: Number($("act-lower").value), upper_m: Number($("act-upper").value) },
    window,
  };
}

// A click on an action button: the write, then the refresh it calls for.
async function act(path, then, headers = {}) {
  try {
    await api(path, { method: "POST", headers });
  } catch (error) {
    alertLine(error.message);
  }
  await then();
}

function alertLine(text) {
  $("stream-state").textContent = t("common.error", { reason: text });
}

function tick() {
  const now = Date.now();
  for (const n of document.querySelectorAll("[data-deadline]")) {
    const left = Math.round((Date.parse(n.dataset.deadline) - now) / 1000);
    if (left <= 0) {
      n.textContent = t("hotline.overdue");
      n.classList.add("overdue");
    } else {
      const m = Math.floor(left / 60);
      const s = String(left % 60).padStart(2, "0");
      n.textContent = t("hotline.left", { time: `${num(m)}:${s}` });
    }
  }
  $("clock").textContent = when(new Date().toISOString());
}

// ---- conflicts -------------------------------------------------------------------------------

function side(s) {
  if (s.activity) return s.title ? `${s.party} “${s.title}”` : t("conflicts.activity_of", { party: s.party });
  return `${s.party} ${t("conflicts.zone")} ${s.title || ""}`;
}

function conflictTitle(c) {
  return `${t(`severity.${c.severity}`)}: ${side(c.a)} × ${side(c.b)}`;
}

function renderConflictList() {
  const list = $("conflicts");
  const mine = state.me.party.code;
  list.replaceChildren(...state.conflicts.map((c) => {
    const stance = c.parties.find((p) => p.party === mine);
    const own = [c.a, c.b].find((s) => s.party === mine && s.activity);
    const buttons = [node("button", { type: "button", onclick: () => state.map.focus(c.overlap.region) }, t("conflicts.show"))];
    if (stance && !stance.acknowledged_at && c.state === "open")
      buttons.push(node("button", { type: "button", class: "ack", onclick: () => act(`/v1/conflicts/${c.id}/acknowledge`, refreshConflicts) }, t("conflicts.acknowledge")));
    if (stance && !stance.accepted_at && (c.state === "open" || c.state === "acknowledged"))
      buttons.push(node("button", { type: "button", class: "accept", onclick: () => act(`/v1/conflicts/${c.id}/accept`, refreshConflicts) }, t("conflicts.accept")));
    if (own && c.state !== "resolved")
      buttons.push(node("button", { type: "button", class: "amend", onclick: () => startAmend(own.activity) }, t("conflicts.amend")));
    const stances = c.parties.map((p) => `${p.party}: ${p.accepted_at ? t("state.accepted") : p.acknowledged_at ? t("state.acknowledged") : t("state.open")}`).join(" · ");
    return node("li", { class: `conflict severity-${c.severity} state-${c.state}`, "data-conflict-id": c.id },
      node("strong", {}, `#${c.id} ${conflictTitle(c)}`),
      node("div", { class: "meta" }, `${t(`state.${c.state}`)} — ${stances}`),
      node("div", {}, `${band(c.overlap.lower_m, c.overlap.upper_m)}, ${when(c.overlap.start)} – ${when(c.overlap.end)}`),
      node("div", { class: "row" }, ...buttons));
  }));
  if (!state.conflicts.length) list.append(node("li", { class: "muted" }, t("common.none")));
}

// ---- drawing and notifying -------------------------------------------------------------------

function pick(lonLat) {
  const d = state.draft;
  if (!d.mode) return;
  if (d.mode === "circle" && d.points.length >= 2) d.points = [];
  d.points.push(lonLat);
  renderDraft();
}

function setMode(mode) {
  state.draft = { mode, points: [] };
  state.checked = [];
  for (const b of document.querySelectorAll("#draw-modes [data-mode]")) b.setAttribute("aria-pressed", String(b.dataset.mode === mode));
  renderDraft();
}

function draftGeometry() {
  const { mode, points } = state.draft;
  if (mode === "polygon" && points.length >= 3) return { type: "Polygon", coordinates: [[...points, points[0]]] };
  if (mode === "circle" && points.length === 2) return circlePolygon(points[0], distanceM(points[0], points[1]));
  if (mode === "route" && points.length >= 2) return { type: "LineString", coordinates: points };
  return null;
}

function renderDraft() {
  const layer = $("layer-draft");
  layer.replaceChildren();
  const { mode, points } = state.draft;
  const geometry = draftGeometry();
  if (geometry) el("path", { d: pathOf(geometry), class: mode === "route" ? "draft route" : "draft" }, layer);
  for (const p of points) {
    const [x, y] = project(p);
    el("circle", { cx: x, cy: y, r: 1.2, class: "vertex" }, layer);
  }
  for (const c of state.checked) el("path", { d: pathOf(c.overlap.region), class: "overlap proposed" }, layer);
  const counts = { polygon: t("notify.points", { n: num(points.length) }), circle: points.length === 2 ? t("notify.radius", { km: num(distanceM(points[0], points[1]) / 1000, 1) }) : t("notify.points", { n: num(points.length) }), route: t("notify.points", { n: num(points.length) }) };
  $("draw-state").textContent = mode ? `${t(`notify.${mode}`)}: ${counts[mode]}` : "";
}

const toInput = (d) => d.toISOString().slice(0, 16);
const fromInput = (v) => new Date(`${v}:00Z`);

function defaultWindow() {
  const start = new Date(Math.ceil((Date.now() + 30 * 60000) / 600000) * 600000);
  $("act-start").value = toInput(start);
  $("act-end").value = toInput(new Date(start.getTime() + 2 * 3600000));
}

function timeWindow() {
  return { start: fromInput($("act-start").value).toISOString(), end: fromInput($("act-end").value).toISOString() };
}

function plan() {
  const { mode, points } = state.draft;
  const altitude = { lower_m: Number($("act-lower").value), upper_m: Number($("act-upper").value), reference: "MSL" };
  const window = timeWindow();
  const body = { kind: $("act-kind").value, title: $("act-title").value.trim(), callsign: $("act-callsign").value.trim() || null };
  if (!body.title) throw new Error(t("notify.needs_title"));
  if (mode === "route") {
    if (points.length < 2) throw new Error(t("notify.needs_shape"));
    // Times along the route in proportion to distance: the server turns legs into volumes.
    const legs = points.slice(1).map((p, i) => distanceM(points[i], p));
    const total = legs.reduce((a, b) => a + b, 0) || 1;
    const t0 = Date.parse(window.start);
    const span = Date.parse(window.end) - t0;
    let run = 0;
    const waypoints = points.map((p, i) => {
      if (i) run += legs[i - 1];
      return { lon: p[0], lat: p[1], time: new Date(t0 + (span * run) / total).toISOString() };
    });
    body.route = { waypoints, half_width_m: Number($("act-width").value), altitude };
    return body;
  }
  if (mode === "circle" && points.length === 2) {
    body.volumes = [{ circle: { center: points[0], radius_m: distanceM(points[0], points[1]) }, altitude, time: window }];
    return body;
  }
  if (mode === "polygon" && points.length >= 3) {
    body.volumes = [{ footprint: { type: "Polygon", coordinates: [[...points, points[0]]] }, altitude, time: window }];
    return body;
  }
  if (state.amend) {
    body.volumes = state.amend.volumes.map((v) => ({ ...v, altitude, time: window }));
    return body;
  }
  throw new Error(t("notify.needs_shape"));
}

async function check() {
  const out = $("notify-result");
  try {
    state.checked = await api("/v1/activities/check", { method: "POST", body: plan() });
  } catch (error) {
    out.replaceChildren(node("p", { class: "error" }, t("common.error", { reason: error.message })));
    return;
  }
  renderDraft();
  out.replaceChildren(
    node("p", { class: "check-summary" }, t("notify.would_conflict", { n: num(state.checked.length) })),
    node("ul", { class: "items" }, state.checked.map((c) =>
      node("li", { class: `conflict proposed severity-${c.severity}` },
        `${t(`severity.${c.severity}`)}: ${side(c.b)} — ${band(c.overlap.lower_m, c.overlap.upper_m)}, ${when(c.overlap.start)} – ${when(c.overlap.end)}`))));
}

async function notify(event) {
  event.preventDefault();
  const out = $("notify-result");
  try {
    const body = plan();
    const activity = state.amend
      ? await api(`/v1/activities/${state.amend.id}`, { method: "PUT", body, headers: { "If-Match": `"${state.amend.version}"` } })
      : await api("/v1/activities", { method: "POST", body });
    const found = activity.conflicts ? activity.conflicts.length : 0;
    const vars = { id: activity.id, n: num(found) };
    const said = state.amend ? t("notify.amended", vars) : t("notify.done", vars);
    out.replaceChildren(node("p", { class: "notified", "data-activity-id": activity.id }, said));
    state.amend = null;
    $("amending").hidden = true;
    setMode(null);
    await Promise.all([refreshPicture(), refreshConflicts()]);
  } catch (error) {
    out.replaceChildren(node("p", { class: "error" }, t("common.error", { reason: error.message })));
  }
}

async function startAmend(id) {
  const activity = await api(`/v1/activities/${id}`);
  state.amend = { id, version: activity.version, volumes: activity.volumes.map(({ footprint, circle }) => (footprint ? { footprint } : { circle })) };
  const first = activity.volumes[0];
  $("act-kind").value = activity.kind;
  $("act-title").value = activity.title;
  $("act-callsign").value = activity.callsign || "";
  $("act-lower").value = first.altitude.lower_m;
  $("act-upper").value = first.altitude.upper_m;
  $("act-start").value = toInput(new Date(activity.start));
  $("act-end").value = toInput(new Date(activity.end));
  $("amending").textContent = t("notify.amending", { id, version: activity.version });
  $("amending").hidden = false;
  setMode(null);
  selectTab("notify");
}

// ---- the record ------------------------------------------------------------------------------

async function refreshRecord() {
  const status = $("consistency");
  let checkpoint;
  try {
    checkpoint = parseCheckpoint(await api("/v1/ledger/checkpoint"));
  } catch (error) {
    status.textContent = t("common.error", { reason: error.message });
    return;
  }
  $("checkpoint").replaceChildren(
    node("dt", {}, t("record.origin")), node("dd", {}, checkpoint.origin),
    node("dt", {}, t("record.size")), node("dd", { id: "checkpoint-size" }, num(checkpoint.size)),
    node("dt", {}, t("record.root")), node("dd", { class: "hash" }, checkpoint.root));
  if (!crypto.subtle) {
    status.dataset.state = "unavailable";
    status.textContent = t("record.no_subtle");
    return;
  }
  const key = `dcf.checkpoint.${checkpoint.origin}`;
  const seen = JSON.parse(localStorage.getItem(key) || "null");
  if (!seen) {
    localStorage.setItem(key, JSON.stringify({ size: checkpoint.size, root: checkpoint.root }));
    status.dataset.state = "first";
    status.textContent = t("record.first_seen", { size: num(checkpoint.size) });
    return;
  }
  if (seen.size === checkpoint.size && seen.root === checkpoint.root && status.dataset.state === "verified") return;
  const proof = await api(`/v1/ledger/proof/consistency?old=${seen.size}&new=${checkpoint.size}`);
  const ok = proof.root === checkpoint.root && (await verifyConsistency(seen.size, checkpoint.size, fromBase64(seen.root), fromBase64(checkpoint.root), proof.proof.map(fromBase64)));
  if (ok) {
    localStorage.setItem(key, JSON.stringify({ size: checkpoint.size, root: checkpoint.root }));
    status.dataset.state = "verified";
    status.textContent = t("record.verified", { old: num(seen.size), size: num(checkpoint.size) });
  } else {
    // Keep the old checkpoint: the log this server shows does not extend what we saw before.
    status.dataset.state = "failed";
    status.textContent = t("record.failed", { old: num(seen.size), size: num(checkpoint.size) });
  }
}

// ---- tabs and wiring -------------------------------------------------------------------------

function selectTab(name) {
  for (const tab of document.querySelectorAll("[role=tab]")) {
    const on = tab.id === `tab-${name}`;
    tab.setAttribute("aria-selected", String(on));
    tab.tabIndex = on ? 0 : -1;
    $(tab.getAttribute("aria-controls")).hidden = !on;
  }
  if (name === "incidents") refreshIncidents();
  if (name === "agreements") refreshAgreements();
  if (name === "record") refreshRecord();
  if (name === "officers") refreshOfficers();
}

function wire() {
  $("login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    unlockSound();
    login($("token").value.trim());
  });
  // A page opened without a click (a reload) stays silent until the first one.
  document.addEventListener("pointerdown", () => sound.context?.state !== "running" && unlockSound(), true);
  document.addEventListener("keydown", () => sound.context?.state !== "running" && unlockSound(), true);
  $("sound").addEventListener("click", toggleSound);
  $("attention-show").addEventListener("click", showAttention);
  $("logout").addEventListener("click", logout);
  $("lang").addEventListener("change", (e) => {
    localStorage.setItem("dcf.lang", e.target.value);
    setLanguage(e.target.value);
  });
  const tabs = [...document.querySelectorAll("[role=tab]")];
  tabs.forEach((tab, i) => {
    tab.addEventListener("click", () => selectTab(tab.id.slice(4)));
    tab.addEventListener("keydown", (e) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[e.key];
      if (!step) return;
      const rtl = document.documentElement.dir === "rtl" ? -1 : 1;
      const next = tabs[(i + step * rtl + tabs.length) % tabs.length];
      next.focus();
      selectTab(next.id.slice(4));
    });
  });
  $("zoom-in").addEventListener("click", () => state.map.zoom(1 / 1.5));
  $("zoom-out").addEventListener("click", () => state.map.zoom(1.5));
  $("time-slider").addEventListener("input", () => {
    renderSliderLabel();
    renderActivities();
  });
  for (const b of document.querySelectorAll("#draw-modes [data-mode]")) b.addEventListener("click", () => setMode(b.dataset.mode));
  $("draw-clear").addEventListener("click", () => setMode(null));
  $("notify-check").addEventListener("click", check);
  $("notify").addEventListener("submit", notify);
  $("compose").addEventListener("submit", compose);
  $("msg-type").addEventListener("change", () => ($("warning-fields").hidden = $("msg-type").value !== "warning"));
  $("verify").addEventListener("click", refreshRecord);
  selectTab("hotline");
}

// For the browser tests: where a place is on screen, so they click the map as a person would.
window.dcf = { toScreen: (lon, lat) => state.map.toScreen([lon, lat]), state, sound, onEvent };

wire();
setLanguage(localStorage.getItem("dcf.lang") || navigator.language.slice(0, 2)).then(() => {
  const ended = sessionStorage.getItem("dcf.signedOut");
  if (ended) {
    sessionStorage.removeItem("dcf.signedOut");
    $("login-error").textContent = t("login.ended", { reason: ended });
  }
  if (state.token) login(state.token);
});
