// amcompanion live console: the alerts firing and acknowledged, who is on call, and the responder's buttons.
// Plain ES2020, no dependencies. Every piece of data reaches the page through textContent or setAttribute
// (the h() helper below), never through innerHTML. The state lives in `state`; render() draws it.
"use strict";

(() => {
  const DEFAULT_SEVERITIES = ["emergency", "critical", "warning", "info"]; // most urgent first
  const ALERT_EVENTS = [
    "alert.firing", "alert.acknowledged", "alert.resolved", "alert.escalated",
    "notification.sent", "notification.failed",
  ];
  const ACTIONS = {
    ack: { label: "Acknowledge", busy: "Acknowledging…", verb: "acknowledge", done: "Acknowledged" },
    resolve: { label: "Resolve", busy: "Resolving…", verb: "resolve", done: "Resolved" },
    escalate: { label: "Escalate", busy: "Escalating…", verb: "escalate", done: "Escalated" },
  };
  const ACTING_ROLES = ["responder", "admin"];
  const RECENT_LIMIT = 8; // resolved alerts kept in the "recently resolved" strip
  const PAGED_SHOWN = 6; // notifications listed on a card; the timeline has them all
  const REQUEST_TIMEOUT_MS = 20000;
  const MAX_RETRY_MS = 30000;
  const LIVE_TEXT = { connecting: "connecting…", live: "live", reconnecting: "reconnecting…" };

  const state = {
    me: readMe(),
    severities: DEFAULT_SEVERITIES,
    alerts: new Map(), // id (as a string) → ALERT, firing or acknowledged
    recent: [], // resolved alerts, newest first
    oncall: [],
    clockOffset: 0, // server clock minus this machine's, so "12 min ago" agrees with the server
    filters: readFilters(),
    pending: new Set(), // "7:ack" while the server's answer to a click is awaited
    timelines: new Map(), // id → {entries} | {error} | {} (loading), for the cards whose timeline is open
    timelineRequests: new Map(), // id → number of the latest request, so a slow older answer cannot win
    loaded: false,
    seen: NaN, // the id of the newest event applied (or the snapshot's last_event_id)
    resync: null, // {buffer, again} while /api/v1/console is being fetched
    stale: false, // the event stream broke: resync once it is open again
    streamRetryMs: 1000,
    loadRetryMs: 1000,
    messageTimer: null,
    messageTopic: null, // what the message shown is about, so that it can be taken back when that is mended
  };
  const baseTitle = document.title;
  const signatures = new WeakMap(); // card element → the data it was drawn from, to redraw only what changed
  const $ = (id) => document.getElementById(id);

  /** Whether the alert is the signed-in person's: they were paged for it, are on call for it, or acknowledged it. */
  function isMine(alert) {
    const me = state.me.contact;
    if (!me) return false;
    return alert.acked_by === me
      || (alert.paged || []).some((page) => page.recipient === me)
      || (alert.oncall || []).some((entry) => entry.people.some((person) => person.contact === me));
  }

  // -- building DOM ---------------------------------------------------------------------------------------
  /** An element with attributes (null/false skipped, true as a bare attribute) and children (strings as text). */
  function h(tag, attributes = {}, ...children) {
    const element = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
      if (value === null || value === undefined || value === false) continue;
      element.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      element.append(child instanceof Node ? child : String(child));
    }
    return element;
  }

  function joined(items, separator = ", ") {
    return items.flatMap((item, index) => (index ? [separator, item] : [item]));
  }

  // -- time -----------------------------------------------------------------------------------------------
  /** Milliseconds of an ISO time; the server sends microseconds, which not every Date.parse accepts. */
  function parseTime(iso) {
    if (!iso) return null;
    const ms = Date.parse(String(iso).replace(/(\.\d{3})\d+/, "$1"));
    return Number.isNaN(ms) ? null : ms;
  }

  const now = () => Date.now() + state.clockOffset;

  function span(minutes) {
    if (minutes < 60) return `${minutes} min`;
    if (minutes < 24 * 60) {
      const hours = Math.floor(minutes / 60);
      return minutes % 60 ? `${hours} h ${minutes % 60} min` : `${hours} h`;
    }
    const days = Math.floor(minutes / (24 * 60));
    const hours = Math.floor((minutes % (24 * 60)) / 60);
    return hours ? `${days} d ${hours} h` : `${days} d`;
  }

  /** "12 min ago", "in 4 min"; kind "due" says "due now" once the moment has passed (a late escalation step). */
  function relative(ms, kind) {
    const seconds = (ms - now()) / 1000;
    if (seconds <= 0 && kind === "due") return "due now";
    // a past moment a little ahead of this machine's clock (the offset is measured, not exact) is "just now"
    if (seconds > 0 && (kind === "due" || seconds >= 60)) return `in ${span(Math.max(1, Math.ceil(seconds / 60)))}`;
    return seconds > -60 ? "just now" : `${span(Math.floor(-seconds / 60))} ago`;
  }

  function absolute(ms) {
    return new Date(ms).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "long" });
  }

  /** A <time> showing a relative time (refreshed by tick()), with the absolute one in its title. */
  function ago(iso, kind) {
    const ms = parseTime(iso);
    if (ms === null) return h("span", { class: "muted" }, "unknown");
    const attributes = { datetime: iso, title: absolute(ms), "data-relative": iso, "data-kind": kind };
    return h("time", attributes, relative(ms, kind));
  }

  /** A <time> showing the clock time ("23:00"; with the day when it is not today). */
  function at(iso) {
    const ms = parseTime(iso);
    if (ms === null) return h("span", { class: "muted" }, "unknown");
    const date = new Date(ms);
    const today = new Date(now());
    const options = { hour: "2-digit", minute: "2-digit" };
    if (date.toDateString() !== today.toDateString()) {
      const withinAWeek = Math.abs(ms - now()) < 6 * 86400000;
      Object.assign(options, withinAWeek ? { weekday: "short" } : { month: "short", day: "numeric" });
    }
    return h("time", { datetime: iso, title: absolute(ms) }, date.toLocaleString(undefined, options));
  }

  function tick() {
    const clock = $("clock");
    const options = { hour: "2-digit", minute: "2-digit", timeZoneName: "short" };
    const text = new Date(now()).toLocaleTimeString(undefined, options);
    if (clock.textContent !== text) clock.textContent = text;
    for (const element of document.querySelectorAll("time[data-relative]")) {
      const fresh = relative(parseTime(element.dataset.relative), element.dataset.kind);
      if (element.textContent !== fresh) element.textContent = fresh;
    }
  }

  // -- who I am, filters ----------------------------------------------------------------------------------
  function readMe() {
    try {
      return JSON.parse(document.querySelector('meta[name="me"]').content) || {};
    } catch {
      return {};
    }
  }

  const canAct = () => ACTING_ROLES.includes(state.me.role);
  const csrf = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  function readFilters() {
    const query = new URLSearchParams(location.search);
    return {
      team: query.get("team") || "",
      severity: query.get("severity") || "",
      mine: ["1", "true"].includes(query.get("mine")),
    };
  }

  /** The filters go in the URL (replacing, not adding, a history entry) so that a link reproduces the view. */
  function writeFilters() {
    const query = new URLSearchParams(location.search);
    for (const [name, value] of [["team", state.filters.team], ["severity", state.filters.severity]]) {
      if (value) query.set(name, value);
      else query.delete(name);
    }
    if (state.filters.mine) query.set("mine", "1");
    else query.delete("mine");
    const search = query.toString();
    history.replaceState(null, "", `${location.pathname}${search ? `?${search}` : ""}${location.hash}`);
  }

  function shown(alert) {
    const { team, severity, mine } = state.filters;
    return (!team || alert.team === team) && (!severity || alert.severity === severity) && (!mine || isMine(alert));
  }

  // -- order ----------------------------------------------------------------------------------------------
  function severityRank(severity) {
    const index = state.severities.indexOf(severity);
    return index === -1 ? state.severities.length : index;
  }

  /** Most severe first, then the oldest (burning longest), then by id so the order never flickers. */
  function compareAlerts(a, b) {
    return (
      severityRank(a.severity) - severityRank(b.severity) ||
      String(a.severity).localeCompare(String(b.severity)) ||
      (parseTime(a.starts_at) ?? 0) - (parseTime(b.starts_at) ?? 0) ||
      Number(a.id) - Number(b.id)
    );
  }

  /** [service, alerts] pairs; alerts arrive sorted, so the service with the most urgent alert comes first. */
  function byService(alerts) {
    const groups = new Map();
    for (const alert of alerts) {
      const service = alert.service || "";
      if (!groups.has(service)) groups.set(service, []);
      groups.get(service).push(alert);
    }
    return [...groups];
  }

  // -- talking to the server ------------------------------------------------------------------------------
  /** JSON from the API; a refusal throws an Error carrying the server's {"error": reason}. */
  async function api(path, { method = "GET", body } = {}) {
    const headers = { Accept: "application/json" };
    const options = { method, headers, credentials: "same-origin", signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) };
    if (method !== "GET") {
      headers["Content-Type"] = "application/json";
      headers["X-CSRF-Token"] = csrf();
      options.body = JSON.stringify(body ?? {});
    }
    let response;
    try {
      response = await fetch(path, options);
    } catch (error) {
      const timedOut = error.name === "TimeoutError";
      throw new Error(timedOut ? "no answer from the server in time" : "the server could not be reached");
    }
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      const refused = data && typeof data.error === "string";
      let reason = refused ? data.error : `HTTP ${response.status} ${response.statusText}`.trim();
      if (response.status === 401) reason += " (your session may have ended: reload the page to sign in)";
      throw new Error(reason);
    }
    if (data === null) throw new Error("the server's answer was not JSON");
    return data;
  }

  function say(text, kind = "error", topic = null) {
    const box = $("message");
    clearTimeout(state.messageTimer);
    state.messageTopic = topic;
    box.dataset.kind = kind;
    box.replaceChildren(
      h("span", { class: "text" }, text),
      h("button", { type: "button", class: "dismiss", "data-dismiss": true, "aria-label": "Dismiss" }),
    );
    box.hidden = false;
    if (kind !== "error") state.messageTimer = setTimeout(() => { box.hidden = true; }, 6000); // errors stay
  }

  function nameOf(id) {
    const alert = state.alerts.get(id);
    return alert ? `${alert.alertname} (#${id})` : `alert #${id}`;
  }

  async function act(id, action) {
    const key = `${id}:${action}`;
    if (state.pending.has(key)) return;
    const name = nameOf(id);
    state.pending.add(key);
    renderAlerts();
    try {
      const path = `/api/v1/alerts/${encodeURIComponent(id)}`;
      await api(`${path}/${action}`, { method: "POST", body: {} });
      say(`${ACTIONS[action].done} ${name}.`, "info");
      // the action's answer is the API's alert, not a card: redraw from the card (the event stream brings it
      // too, but a card must not wait for a stream that may be reconnecting)
      const { alert } = await api(`${path}/timeline`);
      if (alert && alert.id !== undefined) upsert(alert);
    } catch (error) {
      say(`Could not ${ACTIONS[action].verb} ${name}: ${error.message}`);
    } finally {
      state.pending.delete(key);
      render();
      refocus(id, action);
    }
  }

  /** Back to the clicked button (or its card's first) when the redraw took the focus away from it. */
  function refocus(id, action) {
    if (document.activeElement && document.activeElement !== document.body) return;
    const card = cardOf(id);
    if (!card) return;
    const buttons = [...card.querySelectorAll("button:not([disabled])")];
    const target = buttons.find((button) => button.dataset.action === action) || buttons[0];
    if (target) target.focus();
  }

  function cardOf(id) {
    return [...document.querySelectorAll("article.alert")].find((card) => card.dataset.alertId === id);
  }

  async function toggleTimeline(id) {
    if (state.timelines.has(id)) {
      state.timelines.delete(id);
      renderAlerts();
      return;
    }
    state.timelines.set(id, {});
    renderAlerts();
    await loadTimeline(id);
  }

  /** (Re)load an open timeline; the old entries stay on screen until the new ones arrive. */
  async function loadTimeline(id) {
    const request = (state.timelineRequests.get(id) || 0) + 1;
    state.timelineRequests.set(id, request);
    let result;
    try {
      const data = await api(`/api/v1/alerts/${encodeURIComponent(id)}/timeline`);
      result = { entries: Array.isArray(data.timeline) ? data.timeline : [] };
    } catch (error) {
      result = { error: error.message }; // shown in the card, where the reader looks for the timeline
    }
    if (state.timelineRequests.get(id) !== request || !state.timelines.has(id)) return; // closed, or superseded
    state.timelines.set(id, result);
    renderAlerts();
  }

  // -- the state ------------------------------------------------------------------------------------------
  function upsert(alert) {
    const id = String(alert.id);
    state.recent = state.recent.filter((other) => String(other.id) !== id);
    if (alert.status === "resolved") {
      state.alerts.delete(id);
      state.timelines.delete(id);
      state.recent = [alert, ...state.recent].slice(0, RECENT_LIMIT);
    } else {
      state.alerts.set(id, alert);
      if (state.timelines.has(id)) loadTimeline(id);
    }
  }

  function applySnapshot(data) {
    if (data.me && typeof data.me === "object") state.me = data.me;
    if (Array.isArray(data.severities) && data.severities.length) state.severities = data.severities;
    const serverNow = parseTime(data.now);
    if (serverNow !== null) state.clockOffset = serverNow - Date.now();
    state.alerts = new Map();
    if (Array.isArray(data.resolved)) { // the server's recently resolved, newest first; else the page's own memory
      const newestFirst = (a, b) => (parseTime(b.resolved_at) ?? 0) - (parseTime(a.resolved_at) ?? 0);
      state.recent = [...data.resolved].sort(newestFirst).slice(0, RECENT_LIMIT);
    }
    for (const alert of data.alerts || []) upsert(alert);
    for (const id of state.timelines.keys()) if (!state.alerts.has(id)) state.timelines.delete(id);
    state.oncall = Array.isArray(data.oncall) ? data.oncall : [];
  }

  function applyEvent({ type, data }) {
    if (type === "oncall.changed") {
      if (Array.isArray(data.oncall)) state.oncall = data.oncall;
    } else if (data.alert && typeof data.alert === "object") {
      upsert(data.alert);
    }
  }

  /**
   * Fetch the whole picture. Events that arrive meanwhile are applied at once and also kept: those newer than
   * the snapshot's last_event_id are applied again on top of it, so neither the snapshot nor an event is lost.
   */
  async function resync() {
    if (state.resync) {
      state.resync.again = true;
      return;
    }
    state.resync = { buffer: [], again: false };
    try {
      const data = await api("/api/v1/console");
      applySnapshot(data);
      state.seen = Number(data.last_event_id); // set, not raised: a restarted server counts from 1 again
      for (const event of state.resync.buffer) if (!(event.id <= state.seen)) applyEvent(event); // id-less: again
      state.loaded = true;
      state.loadRetryMs = 1000;
      if (state.messageTopic === "load") $("message").hidden = true;
    } catch (error) {
      const wait = Math.round(state.loadRetryMs / 1000);
      say(`Could not load the console: ${error.message}. Trying again in ${wait} s.`, "error", "load");
      setTimeout(resync, state.loadRetryMs);
      state.loadRetryMs = Math.min(state.loadRetryMs * 2, MAX_RETRY_MS);
    } finally {
      const again = state.resync.again;
      state.resync = null;
      render();
      tick(); // the clock may have been corrected
      if (again) resync();
    }
  }

  function onEvent(message) {
    let data;
    try {
      data = JSON.parse(message.data);
    } catch {
      say(`A live update (${message.type}) could not be read; the page may be out of date until reloaded.`);
      return;
    }
    if (!data || typeof data !== "object") return;
    const event = { type: message.type, id: message.lastEventId === "" ? NaN : Number(message.lastEventId), data };
    if (event.id <= state.seen) return; // a replay of what the snapshot already holds: applying it would go back
    if (state.resync) state.resync.buffer.push(event);
    applyEvent(event);
    if (!Number.isNaN(event.id)) state.seen = event.id;
    render();
  }

  function setLive(live) {
    const indicator = $("live");
    indicator.dataset.state = live;
    indicator.textContent = LIVE_TEXT[live];
    indicator.title = live === "live" ? "Live updates are arriving." : "The live connection broke; reconnecting.";
  }

  /**
   * The browser's EventSource reconnects by itself (with Last-Event-ID) unless the server refused the stream;
   * then a new one is made here, resuming with ?after= (a new EventSource forgets the last id). The first one
   * is opened before the first snapshot is fetched, so it needs no ?after= (see resync).
   */
  function connect() {
    const source = new EventSource(Number.isNaN(state.seen) ? "/api/v1/events" : `/api/v1/events?after=${state.seen}`);
    source.addEventListener("open", () => {
      setLive("live");
      state.streamRetryMs = 1000;
      if (state.stale) {
        state.stale = false;
        resync();
      }
    });
    source.addEventListener("error", () => {
      setLive("reconnecting");
      state.stale = true;
      if (source.readyState === EventSource.CLOSED) { // refused (an HTTP error, say): the browser will not retry
        setTimeout(connect, state.streamRetryMs);
        state.streamRetryMs = Math.min(state.streamRetryMs * 2, MAX_RETRY_MS);
      }
    });
    for (const name of [...ALERT_EVENTS, "oncall.changed"]) source.addEventListener(name, onEvent);
  }

  // -- drawing --------------------------------------------------------------------------------------------
  function render() {
    renderMe();
    renderOncall();
    renderFilters();
    renderAlerts();
    renderRecent();
    renderCounts();
  }

  function renderMe() {
    const { name, contact, role } = state.me;
    const who = [name || contact || "unknown", role || "no role"];
    if (role && !canAct()) who.push("read only");
    $("me").textContent = who.join(" · ");
  }

  function people(list) {
    if (!Array.isArray(list) || !list.length) return h("span", { class: "nobody" }, "nobody");
    return joined(list.map((person) => {
      const mine = person.contact === state.me.contact;
      const attributes = { class: mine ? "person me" : "person", title: person.contact };
      return h("span", attributes, person.name || person.contact, mine ? " (you)" : "");
    }));
  }

  function renderOncall() {
    const list = $("oncall-list");
    if (!state.oncall.length) {
      list.replaceChildren(h("li", { class: "muted" }, state.loaded ? "No on-call schedules." : "Loading…"));
      return;
    }
    list.replaceChildren(...state.oncall.map((entry) => h("li", { class: "schedule", "data-schedule": entry.schedule },
      h("h3", {}, entry.schedule),
      h("p", { class: "people" }, people(entry.people)),
      entry.until
        ? h("p", { class: "until" }, "until ", at(entry.until), " (", ago(entry.until), ")")
        : h("p", { class: "until muted" }, entry.people.length ? "no hand-off within a year" : "nobody on call"),
      entry.next ? h("p", { class: "next" }, "next: ", people(entry.next.people), " at ", at(entry.next.at)) : null,
      feeds(entry),
    )));
  }

  /** Calendar subscriptions: the schedule's shifts, and the signed-in person's own (links carry their key). */
  function feeds(entry) {
    if (!entry.feed) return null;
    const links = [h("a", { href: entry.feed, class: "feed" }, "calendar")];
    if (entry.my_feed) links.push(" · ", h("a", { href: entry.my_feed, class: "feed" }, "my shifts"));
    return h("p", { class: "feeds muted" }, "subscribe: ", links);
  }

  function fillSelect(select, values, allLabel, current) {
    const options = [...new Set([...values, current].filter(Boolean))];
    const signature = options.join("\n");
    if (select.dataset.options !== signature) { // rebuilding an open <select> would close it under the user
      const choices = options.map((value) => h("option", { value }, value));
      select.replaceChildren(h("option", { value: "" }, allLabel), ...choices);
      select.dataset.options = signature;
    }
    select.value = current;
  }

  function renderFilters() {
    const alerts = [...state.alerts.values()];
    const teams = [...new Set(alerts.map((alert) => alert.team).filter(Boolean))].sort();
    const present = alerts.map((alert) => alert.severity).filter(Boolean);
    const severities = [...new Set([...state.severities, ...present])];
    severities.sort((a, b) => severityRank(a) - severityRank(b));
    fillSelect($("filter-team"), teams, "all teams", state.filters.team);
    fillSelect($("filter-severity"), severities, "all severities", state.filters.severity);
    $("filter-mine").checked = state.filters.mine;
  }

  function renderCounts() {
    const alerts = [...state.alerts.values()];
    const firing = alerts.filter((alert) => alert.status === "firing").length;
    const hidden = alerts.filter((alert) => !shown(alert)).length;
    const parts = [`${firing} firing`, `${alerts.length - firing} acknowledged`];
    if (hidden) parts.push(`${hidden} hidden by the filters`);
    $("counts").textContent = state.loaded ? parts.join(" · ") : "";
    document.title = firing ? `(${firing}) ${baseTitle}` : baseTitle;
  }

  function emptyState(total) {
    if (!state.loaded) return h("p", { class: "empty" }, "Loading…");
    if (!total) return h("p", { class: "empty" }, "Nothing is firing.");
    return h("p", { class: "empty" },
      `Nothing matches these filters (${total} ${total === 1 ? "alert is" : "alerts are"} hidden). `,
      h("button", { type: "button", class: "link", "data-clear-filters": true }, "Show all"));
  }

  function renderAlerts() {
    const container = $("alerts");
    const alerts = [...state.alerts.values()];
    const visible = alerts.filter(shown).sort(compareAlerts);
    if (!visible.length) {
      container.replaceChildren(emptyState(alerts.length));
      return;
    }
    const previous = new Map();
    for (const card of container.querySelectorAll("article.alert")) previous.set(card.dataset.alertId, card);
    container.replaceChildren(...byService(visible).map(([service, group]) => h(
      "section", { class: "service", "data-service": service },
      h("h2", {}, service || "no service", " ", h("span", { class: "count" }, String(group.length))),
      h("div", { class: "cards" }, group.map((alert) => cardFor(alert, previous.get(String(alert.id))))),
    )));
  }

  /** The previous card when nothing it shows has changed (so it keeps its focus and selection), else a new one. */
  function cardFor(alert, previous) {
    const id = String(alert.id);
    const signature = JSON.stringify([
      alert, state.me.role, state.me.contact, state.timelines.get(id) || null,
      Object.keys(ACTIONS).filter((action) => state.pending.has(`${id}:${action}`)),
    ]);
    if (previous && signatures.get(previous) === signature) return previous;
    const fresh = card(alert);
    signatures.set(fresh, signature);
    return fresh;
  }

  function badge(severity) {
    return h("span", { class: "badge", "data-severity": severity || "" }, severity || "no severity");
  }

  function card(alert) {
    const id = String(alert.id);
    return h("article", {
      class: "alert", "data-alert-id": id, "data-status": alert.status, "data-severity": alert.severity || "",
      "data-mine": isMine(alert) ? "true" : null, "aria-labelledby": `alert-${id}-name`,
    },
      h("header", { class: "card-head" },
        badge(alert.severity),
        h("h3", { id: `alert-${id}-name` }, alert.alertname),
        alert.status === "acknowledged" ? h("span", { class: "pill acked" }, "acknowledged") : null,
        isMine(alert) ? h("span", { class: "pill mine" }, "mine") : null,
      ),
      alert.summary ? h("p", { class: "summary" }, alert.summary) : null,
      h("dl", { class: "facts" }, facts(alert)),
      actions(alert),
      timeline(alert),
    );
  }

  function fact(label, ...value) {
    return [h("dt", {}, label), h("dd", {}, ...value)];
  }

  function facts(alert) {
    const where = [alert.service, alert.team && `team ${alert.team}`].filter(Boolean);
    return [
      where.length ? fact("Where", where.join(" · ")) : null,
      fact("Firing since", ago(alert.starts_at)),
      fact("Escalation", escalation(alert)),
      fact("Paged", paged(alert.paged)),
      fact("On call", oncallOf(alert.oncall)),
      alert.acked_by || alert.acked_at
        ? fact("Acknowledged", "by ", alert.acked_by_name || alert.acked_by || "someone", " ", ago(alert.acked_at))
        : null,
    ];
  }

  function escalation(alert) {
    const parts = [alert.policy ? `${alert.policy}: ` : ""];
    parts.push(alert.escalation_level > 0 ? `step ${alert.escalation_level} of ${alert.steps}` : "not paged yet");
    if (alert.next_step_at) parts.push(" · next step ", ago(alert.next_step_at, "due"));
    else if (alert.status === "acknowledged") parts.push(" · stopped by the acknowledgement");
    else if (alert.escalation_level >= alert.steps) parts.push(" · last step");
    return parts;
  }

  function paged(notifications) {
    if (!Array.isArray(notifications) || !notifications.length) return h("span", { class: "muted" }, "nobody yet");
    const latest = notifications.slice(-PAGED_SHOWN);
    const earlier = notifications.length - latest.length;
    return [
      h("ul", { class: "paged" }, latest.map((page) => h("li", { "data-status": page.status },
        h("span", { class: "channel" }, page.channel), " → ", page.recipient_name || page.recipient,
        ` · step ${page.step} · `, ago(page.at),
        page.status === "sent" ? null : h("span", { class: "page-status" }, ` · ${page.status}`),
        page.error ? h("span", { class: "page-error" }, `: ${page.error}`) : null,
      ))),
      earlier ? h("p", { class: "muted" }, `and ${earlier} earlier (see the timeline)`) : null,
    ];
  }

  function oncallOf(schedules) {
    if (!Array.isArray(schedules) || !schedules.length) return h("span", { class: "muted" }, "no schedule");
    const lines = schedules.map((entry) => h("li", {}, `${entry.schedule}: `, people(entry.people)));
    return h("ul", { class: "oncall-of" }, lines);
  }

  function actions(alert) {
    const id = String(alert.id);
    const buttons = [];
    if (canAct()) {
      if (alert.status === "firing") buttons.push(actionButton(id, "ack"));
      buttons.push(actionButton(id, "resolve"), actionButton(id, "escalate"));
    }
    const open = state.timelines.has(id);
    buttons.push(h("button", {
      type: "button", class: "link", "data-toggle": "timeline",
      "aria-expanded": String(open), "aria-controls": `timeline-${id}`,
    }, open ? "Hide timeline" : "Timeline"));
    return h("div", { class: "actions" }, buttons);
  }

  function actionButton(id, action) {
    const busy = state.pending.has(`${id}:${action}`);
    return h("button", {
      type: "button", "data-action": action, class: action === "ack" ? "primary" : null,
      disabled: busy, "aria-busy": busy ? "true" : null,
    }, busy ? ACTIONS[action].busy : ACTIONS[action].label);
  }

  function timeline(alert) {
    const id = String(alert.id);
    const open = state.timelines.get(id);
    if (!open) return null;
    let body;
    if (open.error) body = h("p", { class: "page-error" }, `The timeline could not be loaded: ${open.error}`);
    else if (!open.entries) body = h("p", { class: "muted" }, "Loading the timeline…");
    else if (!open.entries.length) body = h("p", { class: "muted" }, "Nothing has happened yet.");
    else body = h("ol", {}, open.entries.map((entry) => h("li", { "data-what": entry.what }, at(entry.at), " ", entry.text)));
    return h("div", { class: "timeline", id: `timeline-${id}` }, body);
  }

  function renderRecent() {
    const recent = state.recent.filter(shown);
    $("resolved").hidden = !recent.length;
    $("resolved-list").replaceChildren(...recent.map((alert) => h(
      "li", { "data-alert-id": alert.id, "data-status": "resolved" },
      badge(alert.severity), " ", h("strong", {}, alert.alertname), alert.service ? ` · ${alert.service}` : "",
      " · resolved ", alert.resolved_at ? ago(alert.resolved_at) : "",
    )));
  }

  // -- wiring ---------------------------------------------------------------------------------------------
  function onClick(event) {
    const button = event.target.closest("button");
    if (!button || button.disabled) return;
    if (button.hasAttribute("data-dismiss")) {
      $("message").hidden = true;
    } else if (button.hasAttribute("data-clear-filters")) {
      state.filters = { team: "", severity: "", mine: false };
      writeFilters();
      render();
    } else {
      const card = button.closest("article.alert");
      if (!card) return;
      if (button.dataset.action in ACTIONS) act(card.dataset.alertId, button.dataset.action);
      else if (button.dataset.toggle === "timeline") toggleTimeline(card.dataset.alertId);
    }
  }

  function onFilter() {
    const [team, severity, mine] = [$("filter-team").value, $("filter-severity").value, $("filter-mine").checked];
    state.filters = { team, severity, mine };
    writeFilters();
    render();
  }

  function start() {
    document.addEventListener("click", onClick);
    $("filters").addEventListener("change", onFilter);
    $("filters").addEventListener("submit", (event) => event.preventDefault());
    setLive("connecting");
    render();
    tick();
    setInterval(tick, 1000);
    connect(); // first, so that events during the first fetch are kept (see resync)
    resync();
  }

  start();
})();
