// compactd block viewer.
//
// Plain ES2020, no framework, no build step. Served by compactd at <prefix>/static/app.js.
// It fetches the blocks of one view (GET /api/v1/blocks?view=global|loaded), filters them,
// draws a timeline (one row per stream, one lane per resolution, blocks as SVG rects), shows
// a block's details and mark buttons, and polls GET /api/v1/compactor every 2 s for the status
// panels (ownership, halt, backlog, jobs, plan, failovers, audit).
// The DOM hooks a browser test relies on are fixed by the web contract (class "block",
// data-block-id, #block-details, #jobs [data-job-output], data-mark, #mark-detail,
// #mark-result, #halt, #backlog, #ownership, #failovers, #plan, #audit, window.__compactd).
"use strict";

(() => {
  // ---------------------------------------------------------------- constants and state

  const PREFIX = String(window.PATH_PREFIX || "").replace(/\/+$/, "");
  const VIEW = location.pathname.replace(/\/+$/, "").endsWith("/loaded") ? "loaded" : "global";
  const BLOCKS_POLL_MS = 30000;
  const STATUS_POLL_MS = 2000;
  const LANE_NAME_W = 46;   // px, the lane name column
  const SUBROW_H = 18;      // px, one sub-row of a lane (overlapping blocks stack in sub-rows)
  const DAY_MS = 86400000;

  // Level colours (index = level, 6+ uses the last one).
  const LEVEL_COLORS = ["#cfd8dc", "#9ecae1", "#74c476", "#fdd049", "#fd8d3c", "#9e9ac8", "#a1887f"];
  const RESOLUTIONS = { 0: "raw", 300000: "5m", 3600000: "1h" };
  const MARK_KINDS = ["deletion", "no-compact", "no-downsample"];

  const S = {
    blocks: [],            // every block of the fetched view
    byId: new Map(),       // ulid -> block
    label: "",             // grouping label ("" = all external labels)
    refreshedAt: null,
    shown: [],             // blocks after filters (what is drawn)
    rectById: new Map(),   // ulid -> drawn element
    selected: null,        // selected ulid
    planIds: new Set(),    // blocks in the current plan
    jobIds: new Set(),     // inputs of running jobs
    compactor: null,       // last /api/v1/compactor data
    admin: true,           // admin operations enabled
    errors: {},            // source -> error text (status line)
    blocksSeq: 0,          // latest blocks fetch (older answers are dropped)
    statusBusy: false,
    panelCache: {},        // panel id -> last rendered JSON (re-render only on change)
    auditRunning: false,
    markBusy: false,
    metaUrl: null,
    detailsKey: "",        // what the details panel shows (re-rendered only when it changes)
    loaded: false,         // a blocks answer was drawn at least once
    domain: null,          // {lo, hi, width} of the last draw (for zooming)
  };

  const $ = (id) => document.getElementById(id);

  // ---------------------------------------------------------------- small helpers

  /** Escapes text for HTML element content and attribute values. */
  function esc(v) {
    return String(v == null ? "" : v).replace(/[&<>"']/g, (c) =>
      ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  }

  function num(v) { return typeof v === "number" && isFinite(v) ? v : 0; }

  function fmtInt(n) { return num(n).toLocaleString("en-US"); }

  function fmtBytes(b) {
    if (b == null || !isFinite(b)) return "unknown";
    const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let i = 0, v = b;
    while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return (i === 0 ? String(Math.round(v)) : v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)) + " " + units[i];
  }

  /** Formats a duration in ms as e.g. "2d 4h", "45m", "12s". */
  function fmtDur(ms) {
    if (ms == null || !isFinite(ms)) return "unknown";
    let s = Math.round(Math.abs(ms) / 1000);
    if (s < 60) return s + "s";
    const d = Math.floor(s / 86400); s -= d * 86400;
    const h = Math.floor(s / 3600); s -= h * 3600;
    const m = Math.floor(s / 60); s -= m * 60;
    const parts = [];
    if (d) parts.push(d + "d");
    if (h) parts.push(h + "h");
    if (m && !d) parts.push(m + "m");
    if (s && !d && !h) parts.push(s + "s");
    return parts.join(" ") || "0s";
  }

  function fmtSecs(s) { return s == null ? "—" : (s < 60 ? s.toFixed(1) + "s" : fmtDur(s * 1000)); }

  /** UTC ISO text of a Unix ms time ("2026-12-07T20:31:02Z"). */
  function isoMs(ms) {
    const d = new Date(ms);
    // Outside ±8.64e15 ms (a corrupt meta.json) a Date is invalid and toISOString throws.
    return isNaN(d.getTime()) ? "invalid" : d.toISOString().replace(".000Z", "Z");
  }

  /** Relative time of a Unix ms time: "3h 5m ago" / "in 2h". */
  function relMs(ms) {
    const diff = Date.now() - ms;
    if (Math.abs(diff) < 1000) return "now";
    return diff > 0 ? fmtDur(diff) + " ago" : "in " + fmtDur(-diff);
  }

  /** An RFC 3339 text shown as UTC ISO plus relative time. */
  function fmtTs(text) {
    if (!text) return "—";
    const ms = Date.parse(text);
    return isNaN(ms) ? esc(text) : `${esc(isoMs(ms))} <span class="muted">(${esc(relMs(ms))})</span>`;
  }

  /** An RFC 3339 text as a compact UTC "MM-DD HH:MM:SS" (the full time and age in its title). */
  function fmtShortTs(text) {
    const ms = Date.parse(text || "");
    if (isNaN(ms)) return esc(text || "—");
    return `<span title="${esc(isoMs(ms) + " (" + relMs(ms) + ")")}">${esc(isoMs(ms).slice(5, 19).replace("T", " "))}</span>`;
  }

  function resName(r) { return RESOLUTIONS[r] || (r ? fmtDur(r) : "raw"); }

  function levelColor(l) { return LEVEL_COLORS[Math.max(0, Math.min(l, LEVEL_COLORS.length - 1))]; }

  function labelsText(labels) {
    const keys = Object.keys(labels || {}).sort();
    return "{" + keys.map((k) => `${k}="${labels[k]}"`).join(", ") + "}";
  }

  /** Sets the text of one source in the status line ("" clears it). */
  function setError(source, text) {
    if (text) S.errors[source] = text; else delete S.errors[source];
    const parts = Object.keys(S.errors).map((k) => `${k}: ${S.errors[k]}`);
    const el = $("status-line");
    el.textContent = parts.join(" · ");
    el.classList.toggle("bad", parts.length > 0);
  }

  // ---------------------------------------------------------------- fetching

  /** Calls the API; resolves to the envelope's data, rejects with the error text. */
  async function api(path, opts) {
    let res;
    try {
      res = await fetch(PREFIX + path, Object.assign({ cache: "no-store" }, opts));
    } catch (e) {
      throw new Error("network error: " + (e && e.message ? e.message : e));
    }
    const text = await res.text();
    let body = null;
    try { body = JSON.parse(text); } catch (_) { /* not JSON: reported below */ }
    if (!res.ok || !body || body.status !== "success") {
      if (body && body.error) throw new Error(body.error);
      throw new Error(`HTTP ${res.status}${text ? ": " + text.slice(0, 200) : ""}`);
    }
    return body.data;
  }

  /** Fetches the blocks of this view and redraws; t0 starts the renderMs clock. */
  async function loadBlocks() {
    const seq = ++S.blocksSeq;
    const t0 = performance.now();
    const btn = $("refresh");
    btn.disabled = true;
    try {
      const data = await api(`/api/v1/blocks?view=${VIEW}`);
      if (seq !== S.blocksSeq) return;
      setBlocks(data || {});
      setError("blocks", "");
      draw(t0);
      S.loaded = true;
    } catch (e) {
      if (seq !== S.blocksSeq) return;
      setError("blocks", e.message);
      if (!S.loaded) $("timeline").innerHTML = `<p class="pad bad">Could not load the blocks: ${esc(e.message)}</p>`;
    } finally {
      if (seq === S.blocksSeq) btn.disabled = false;
    }
  }

  /** Stores a blocks answer and derives per-block fields used by filters and drawing. */
  function setBlocks(data) {
    S.label = data.label || "";
    S.refreshedAt = data.refreshedAt || null;
    const warn = $("api-err");
    warn.hidden = !data.err;
    warn.textContent = data.err ? `Last bucket refresh failed (showing the previous blocks): ${data.err}` : "";
    $("refreshed").textContent = S.refreshedAt ? `refreshed ${isoMs(Date.parse(S.refreshedAt))}` : "";

    const blocks = Array.isArray(data.blocks) ? data.blocks : [];
    S.blocks = blocks.map(prepBlock);
    S.byId = new Map(S.blocks.map((b) => [b.id, b]));
    updateLevelOptions();
  }

  /** Wraps a meta.json with the derived fields the page needs (the meta stays untouched). */
  function prepBlock(meta) {
    const th = meta.thanos || {};
    const labels = th.labels || {};
    const keys = Object.keys(labels).sort();
    const pairs = keys.map((k) => `${k}=${labels[k]}`.toLowerCase());
    const cd = meta.compactd || {};
    const marks = Array.isArray(cd.marks) ? cd.marks : [];
    const kinds = new Set(marks.map((m) => m.kind));
    const files = Array.isArray(th.files) ? th.files : [];
    const known = files.some((f) => typeof f.size_in_bytes === "number");
    const size = known ? files.reduce((s, f) => s + num(f.size_in_bytes), 0) : null;
    const idx = files.find((f) => f.rel_path === "index");
    return {
      id: String(meta.ulid || ""),
      meta,
      min: num(meta.minTime),
      max: num(meta.maxTime),
      level: num((meta.compaction || {}).level),
      res: num((th.downsample || {}).resolution),
      labels,
      stream: labelsText(labels),
      search: pairs.join("\n") + "\n" + String(meta.ulid || "").toLowerCase(),
      group: S.label ? (S.label in labels ? `${S.label}="${labels[S.label]}"` : `no ${S.label}`)
        : labelsText(labels),
      marks,
      kinds,
      state: cd.state || "visible",
      size,
      indexSize: idx && typeof idx.size_in_bytes === "number" ? idx.size_in_bytes : null,
    };
  }

  // ---------------------------------------------------------------- filtering

  function parseUtcInput(v) {
    if (!v) return null;
    const ms = Date.parse(v.length === 16 ? v + ":00Z" : v + "Z");
    return isNaN(ms) ? null : ms;
  }

  function readFilters() {
    return {
      terms: $("filter-text").value.toLowerCase().split(/[\s,]+/).filter(Boolean),
      from: parseUtcInput($("filter-from").value),
      to: parseUtcInput($("filter-to").value),
      level: parseInt($("filter-level").value, 10) || 0,
      marks: $("filter-marks").value,
      state: VIEW === "global" ? $("filter-state").value : "",
      overlaps: $("filter-overlaps").checked,
    };
  }

  /** The blocks of the view that pass the filters. */
  function applyFilters(f) {
    // Overlap partners: every block of the view passing the state filter.
    let overlapping = null;
    if (f.overlaps) overlapping = findOverlaps(S.blocks.filter((b) => !f.state || b.state === f.state));
    return S.blocks.filter((b) => {
      if (f.state && b.state !== f.state) return false;
      if (f.level && b.level < f.level) return false;
      if (f.from != null && b.max <= f.from) return false;
      if (f.to != null && b.min >= f.to) return false;
      if (f.marks === "any" && b.kinds.size === 0) return false;
      if (f.marks === "none" && b.kinds.size > 0) return false;
      if (f.marks && f.marks !== "any" && f.marks !== "none" && !b.kinds.has(f.marks)) return false;
      for (const t of f.terms) if (!b.search.includes(t)) return false;
      if (overlapping && !overlapping.has(b.id)) return false;
      return true;
    });
  }

  /** Ids of blocks overlapping another block of the same stream (labels) and resolution. */
  function findOverlaps(blocks) {
    const groups = new Map();
    for (const b of blocks) {
      const k = b.stream + "@" + b.res;
      if (!groups.has(k)) groups.set(k, []);
      groups.get(k).push(b);
    }
    const out = new Set();
    for (const list of groups.values()) {
      // Sorted by start, block j > i overlaps i exactly when it starts before i ends.
      list.sort((a, b) => a.min - b.min);
      for (let i = 0; i < list.length; i++) {
        for (let j = i + 1; j < list.length && list[j].min < list[i].max; j++) {
          out.add(list[i].id); out.add(list[j].id);
        }
      }
    }
    return out;
  }

  function updateLevelOptions() {
    const sel = $("filter-level");
    const max = S.blocks.reduce((m, b) => Math.max(m, b.level), 1);
    if (sel.options.length - 1 === max) return;
    const cur = sel.value;
    let html = '<option value="0">any</option>';
    for (let l = 1; l <= max; l++) html += `<option value="${l}">≥ ${l}</option>`;
    sel.innerHTML = html;
    sel.value = cur && parseInt(cur, 10) <= max ? cur : "0";
  }

  // ---------------------------------------------------------------- layout

  /** Picks a tick step (ms) so that ticks are about 120 px apart. */
  function tickStep(spanMs, widthPx) {
    const steps = [60e3, 5 * 60e3, 15 * 60e3, 30 * 60e3, 3600e3, 2 * 3600e3, 3 * 3600e3, 6 * 3600e3,
      12 * 3600e3, DAY_MS, 2 * DAY_MS, 7 * DAY_MS, 14 * DAY_MS, 30 * DAY_MS, 91 * DAY_MS, 365 * DAY_MS];
    const want = spanMs / Math.max(1, widthPx / 120);
    // Beyond a year a step, whole years: a corrupt meta.json's far-off time never makes
    // millions of ticks.
    return steps.find((s) => s >= want) || Math.ceil(want / (365 * DAY_MS)) * 365 * DAY_MS;
  }

  function tickLabel(ms, step) {
    const iso = isoMs(ms);
    if (iso === "invalid") return "";
    if (step >= DAY_MS) return iso.slice(0, 10);
    if (iso.slice(11, 16) === "00:00") return iso.slice(5, 10);
    return iso.slice(11, 16);
  }

  /** Groups blocks into rows (streams) and lanes (resolutions); packs overlaps into sub-rows. */
  function layoutRows(blocks) {
    const rows = new Map();
    for (const b of blocks) {
      if (!rows.has(b.group)) rows.set(b.group, new Map());
      const lanes = rows.get(b.group);
      if (!lanes.has(b.res)) lanes.set(b.res, []);
      lanes.get(b.res).push(b);
    }
    const out = [];
    for (const key of [...rows.keys()].sort()) {
      const lanes = rows.get(key);
      let count = 0;
      const laneList = [...lanes.keys()].sort((a, b) => a - b).map((res) => {
        const list = lanes.get(res);
        count += list.length;
        return { res, ...packLane(list) };
      });
      out.push({ key, count, lanes: laneList });
    }
    return out;
  }

  /** First-fit interval packing: sub-row index per block (no two overlapping in one sub-row). */
  function packLane(list) {
    list.sort((a, b) => a.min - b.min || b.level - a.level);
    const ends = [];
    const placed = [];
    for (const b of list) {
      let r = ends.findIndex((e) => e <= b.min);
      if (r < 0) { r = ends.length; ends.push(0); }
      ends[r] = b.max;
      placed.push([b, r]);
    }
    return { placed, subrows: Math.max(1, ends.length) };
  }

  /** The time domain drawn: the from/to filter, else the span of the shown blocks. */
  function domain(f, blocks) {
    let lo = Infinity, hi = -Infinity;
    for (const b of blocks.length ? blocks : S.blocks) { lo = Math.min(lo, b.min); hi = Math.max(hi, b.max); }
    if (!isFinite(lo)) { hi = Date.now(); lo = hi - DAY_MS; }
    if (f.from == null || f.to == null) {
      const pad = Math.max((hi - lo) * 0.01, 60e3);
      lo -= pad; hi += pad;
    }
    if (f.from != null) lo = f.from;
    if (f.to != null) hi = f.to;
    if (hi <= lo) hi = lo + 3600e3;
    return [lo, hi];
  }

  // ---------------------------------------------------------------- drawing

  /** Filters, lays out and draws the timeline; t0 is when the fetch (or the change) started. */
  function draw(t0) {
    const start = t0 == null ? performance.now() : t0;
    const f = readFilters();
    const shown = applyFilters(f);
    S.shown = shown;
    const tl = $("timeline");
    $("block-count").textContent = `${fmtInt(shown.length)} of ${fmtInt(S.blocks.length)} blocks`;

    const width = Math.max(300, tl.clientWidth - LANE_NAME_W - 18);
    const [lo, hi] = domain(f, shown);
    S.domain = { lo, hi, width };
    const k = width / (hi - lo);
    const x = (t) => (t - lo) * k;
    const step = tickStep(hi - lo, width);
    const ticks = [];
    for (let t = Math.ceil(lo / step) * step; t <= hi; t += step) ticks.push(t);
    const now = Date.now();

    // Grid lines, shared by every lane (one string, reused).
    const grid = (h) => ticks.map((t) => `<line class="grid" x1="${x(t).toFixed(1)}" x2="${x(t).toFixed(1)}" y1="0" y2="${h}"/>`).join("") +
      (now > lo && now < hi ? `<line class="now" x1="${x(now).toFixed(1)}" x2="${x(now).toFixed(1)}" y1="0" y2="${h}"/>` : "");

    const parts = [];
    // Axis (sticky on top of the scrolling timeline).
    parts.push(`<div class="axis" title="drag to zoom, double-click to reset the time range"><div class="lane-name">UTC</div>` +
      `<svg class="axis-svg" width="${width}" height="22"><rect class="brush" x="0" y="0" width="0" height="22"/>`);
    for (const t of ticks) {
      const px = x(t);
      const anchor = px < 30 ? "start" : px > width - 30 ? "end" : "middle";
      parts.push(`<line x1="${px.toFixed(1)}" x2="${px.toFixed(1)}" y1="16" y2="22"/><text x="${px.toFixed(1)}" y="12" text-anchor="${anchor}">${esc(tickLabel(t, step))}</text>`);
    }
    parts.push(`</svg></div>`);

    if (!shown.length) {
      parts.push(`<p class="muted pad">${S.blocks.length ? "No block matches the filters." : "No blocks in this view."}</p>`);
    }
    for (const row of layoutRows(shown)) {
      parts.push(`<div class="row"><div class="row-head"><span class="row-key">${esc(row.key)}</span> <span class="muted">${row.count} block${row.count === 1 ? "" : "s"}</span></div>`);
      for (const lane of row.lanes) {
        const h = lane.subrows * SUBROW_H + 2;
        parts.push(`<div class="lane"><div class="lane-name">${esc(resName(lane.res))}</div><svg class="lane-svg" width="${width}" height="${h}">${grid(h)}`);
        for (const [b, r] of lane.placed) parts.push(blockRect(b, r, x, width));
        parts.push(`</svg></div>`);
      }
      parts.push(`</div>`);
    }
    tl.innerHTML = parts.join("");

    // Index the drawn elements for highlight updates.
    S.rectById = new Map();
    for (const el of tl.querySelectorAll(".block")) S.rectById.set(el.getAttribute("data-block-id"), el);
    applyHighlights();
    refreshDetails();
    void tl.offsetHeight; // force layout so renderMs includes it
    const renderMs = performance.now() - start;
    window.__compactd = { rendered: S.rectById.size, renderMs, view: VIEW };
  }

  /** SVG markup of one block (exactly one element with class "block"). */
  function blockRect(b, subrow, x, width) {
    const x1 = Math.max(0, x(b.min));
    const x2 = Math.min(width, x(b.max));
    let w = x2 - x1;
    if (w > 3) w -= 1; // a 1 px gap between adjacent blocks
    w = Math.max(w, 2);
    const lvl = Math.max(1, Math.min(b.level, 4));
    const h = 8 + 2 * lvl; // taller for higher levels
    const y = subrow * SUBROW_H + 1 + (SUBROW_H - h) / 2;
    let cls = "block";
    if (VIEW === "global" && b.state !== "visible") cls += " dim";
    return `<rect class="${cls}" data-block-id="${esc(b.id)}" x="${x1.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${h}" fill="${fillOf(b)}"/>`;
  }

  /** Fill of a block: its level colour, or a hatch pattern carrying its marks. */
  function fillOf(b) {
    const l = Math.max(0, Math.min(b.level, LEVEL_COLORS.length - 1));
    let m = "";
    for (const k of MARK_KINDS) m += b.kinds.has(k) ? "1" : "0";
    return m === "000" ? LEVEL_COLORS[l] : `url(#p-${l}-${m})`;
  }

  /** Defines the hatch patterns (level colour × mark combination) once, in a hidden SVG. */
  function definePatterns() {
    let defs = "";
    for (let l = 0; l < LEVEL_COLORS.length; l++) {
      for (let m = 1; m < 8; m++) {
        const bits = [m & 4, m & 2, m & 1].map((v) => (v ? "1" : "0")).join("");
        defs += `<pattern id="p-${l}-${bits}" patternUnits="userSpaceOnUse" width="6" height="6">` +
          `<rect width="6" height="6" fill="${LEVEL_COLORS[l]}"/>` +
          (bits[0] === "1" ? `<path d="M-1,1 l2,-2 M0,6 l6,-6 M5,7 l2,-2" stroke="#c62828" stroke-width="1.6"/>` : "") +
          (bits[1] === "1" ? `<path d="M-1,5 l2,2 M0,0 l6,6 M5,-1 l2,2" stroke="#263238" stroke-width="1.2"/>` : "") +
          (bits[2] === "1" ? `<path d="M3,0 v6" stroke="#3949ab" stroke-width="1.4"/>` : "") +
          `</pattern>`;
      }
    }
    const holder = document.createElement("div");
    holder.innerHTML = `<svg class="defs" width="0" height="0" aria-hidden="true"><defs>${defs}</defs></svg>`;
    document.body.appendChild(holder.firstChild);
  }

  function renderLegend() {
    const sw = (fill, cls) => `<svg width="22" height="12"><rect class="${cls || "swatch"}" x="1" y="1" width="20" height="10" fill="${fill}"/></svg>`;
    let html = '<span class="legend-title">Level</span>';
    for (let l = 1; l < LEVEL_COLORS.length; l++) {
      html += `<span class="legend-item">${sw(LEVEL_COLORS[l])}${l === LEVEL_COLORS.length - 1 ? l + "+" : l}</span>`;
    }
    html += '<span class="legend-sep"></span><span class="legend-title">Marks</span>' +
      `<span class="legend-item">${sw("url(#p-1-100)")}deletion</span>` +
      `<span class="legend-item">${sw("url(#p-1-010)")}no-compact</span>` +
      `<span class="legend-item">${sw("url(#p-1-001)")}no-downsample</span>` +
      '<span class="legend-sep"></span>' +
      `<span class="legend-item">${sw(LEVEL_COLORS[2], "swatch plan")}in plan</span>` +
      `<span class="legend-item">${sw(LEVEL_COLORS[2], "swatch job")}being compacted</span>` +
      (VIEW === "global" ? `<span class="legend-item">${sw(LEVEL_COLORS[2], "swatch dim")}hidden (duplicate, deletion-marked)</span>` : "") +
      '<span class="legend-item muted">drag on the axis to zoom</span>';
    $("legend").innerHTML = html;
  }

  /** Applies the plan / running job / selection outlines to the drawn blocks. */
  function applyHighlights() {
    for (const [id, el] of S.rectById) {
      el.classList.toggle("plan", S.planIds.has(id));
      el.classList.toggle("job", S.jobIds.has(id));
      el.classList.toggle("sel", id === S.selected);
    }
  }

  /** Re-applies highlights when the plan or the jobs' inputs changed. */
  function setHighlightSets(planIds, jobIds) {
    const same = (a, b) => a.size === b.size && [...a].every((v) => b.has(v));
    if (same(planIds, S.planIds) && same(jobIds, S.jobIds)) return;
    S.planIds = planIds;
    S.jobIds = jobIds;
    applyHighlights();
    refreshDetails();
  }

  // ---------------------------------------------------------------- zoom (drag on the axis)

  /** A datetime-local value (UTC, minutes) of a Unix ms time. */
  function toUtcInput(ms) { const iso = isoMs(ms); return iso === "invalid" ? "" : iso.slice(0, 16); }

  /** Lets the user drag on the axis to set the from/to filter; double-click resets them. */
  function wireZoom(tl, redraw) {
    let drag = null;
    const pos = (ev, svg) => Math.max(0, Math.min(S.domain.width, ev.clientX - svg.getBoundingClientRect().left));
    tl.addEventListener("mousedown", (ev) => {
      const svg = ev.target.closest && ev.target.closest(".axis-svg");
      if (!svg || !S.domain || ev.button !== 0) return;
      ev.preventDefault();
      drag = { svg, x0: pos(ev, svg), brush: svg.querySelector(".brush") };
    });
    addEventListener("mousemove", (ev) => {
      if (!drag) return;
      const x1 = pos(ev, drag.svg);
      drag.brush.setAttribute("x", Math.min(drag.x0, x1));
      drag.brush.setAttribute("width", Math.abs(x1 - drag.x0));
    });
    addEventListener("mouseup", (ev) => {
      if (!drag) return;
      const { svg, x0 } = drag;
      drag = null;
      const x1 = pos(ev, svg);
      if (Math.abs(x1 - x0) < 4) { svg.querySelector(".brush").setAttribute("width", 0); return; }
      const { lo, hi, width } = S.domain;
      const t = (x) => lo + ((hi - lo) * x) / width;
      $("filter-from").value = toUtcInput(Math.floor(t(Math.min(x0, x1)) / 60e3) * 60e3);
      $("filter-to").value = toUtcInput(Math.ceil(t(Math.max(x0, x1)) / 60e3) * 60e3);
      redraw();
    });
    tl.addEventListener("dblclick", (ev) => {
      if (!(ev.target.closest && ev.target.closest(".axis"))) return;
      $("filter-from").value = "";
      $("filter-to").value = "";
      redraw();
    });
  }

  // ---------------------------------------------------------------- tooltip

  function showTooltip(ev, b) {
    const tip = $("tooltip");
    const marks = b.marks.map((m) => m.kind).join(", ");
    tip.innerHTML = `<b class="mono">${esc(b.id)}</b><br>${esc(b.stream)} · ${esc(resName(b.res))} · level ${b.level}` +
      `<br>${esc(isoMs(b.min))} → ${esc(isoMs(b.max))} (${esc(fmtDur(b.max - b.min))})` +
      `<br>${fmtInt((b.meta.stats || {}).numSeries)} series · ${esc(fmtBytes(b.size))}` +
      (marks ? `<br>marks: ${esc(marks)}` : "") +
      (b.state !== "visible" ? `<br>state: ${esc(b.state)}` : "") +
      (S.jobIds.has(b.id) ? "<br><b>being compacted now</b>" : S.planIds.has(b.id) ? "<br>in the compaction plan" : "");
    tip.hidden = false;
    const pad = 14;
    const r = tip.getBoundingClientRect();
    let left = ev.clientX + pad, top = ev.clientY + pad;
    if (left + r.width > innerWidth - 4) left = ev.clientX - r.width - pad;
    if (top + r.height > innerHeight - 4) top = ev.clientY - r.height - pad;
    tip.style.left = Math.max(4, left) + "px";
    tip.style.top = Math.max(4, top) + "px";
  }

  // ---------------------------------------------------------------- details

  function selectBlock(id, scroll) {
    const prev = S.selected;
    S.selected = id;
    if (prev && S.rectById.has(prev)) S.rectById.get(prev).classList.remove("sel");
    const el = S.rectById.get(id);
    if (el) {
      el.classList.add("sel");
      if (scroll && el.scrollIntoView) el.scrollIntoView({ block: "nearest", inline: "nearest" });
    }
    if (prev !== id) $("mark-result").textContent = "";
    renderDetails(id, true);
    updateMarkControls();
    const panel = $("block-details");
    const r = panel.getBoundingClientRect();
    if (r.top > innerHeight - 80 || r.bottom < 0) panel.scrollIntoView({ block: "nearest" });
  }

  function closeDetails() {
    if (S.selected && S.rectById.has(S.selected)) S.rectById.get(S.selected).classList.remove("sel");
    S.selected = null;
    $("block-details").hidden = true;
  }

  /** meta.json as in the bucket: the block's JSON without the server's "compactd" key. */
  function metaJson(meta) {
    const copy = Object.assign({}, meta);
    delete copy.compactd;
    return JSON.stringify(copy, null, 2) + "\n";
  }

  /** Re-renders the details of the selected block if what they show changed. */
  function refreshDetails() {
    if (S.selected) renderDetails(S.selected, false);
  }

  /** Fills #block-details with a block's details (force: even if nothing changed). */
  function renderDetails(id, force) {
    const panel = $("block-details");
    const body = $("details-body");
    panel.hidden = false;
    const b = S.byId.get(id);
    const key = [id, !!b, S.rectById.has(id), S.planIds.has(id), S.jobIds.has(id), b ? JSON.stringify(b.meta) : ""].join("|");
    if (!force && key === S.detailsKey) return;
    S.detailsKey = key;
    if (!b) {
      body.innerHTML = `<p class="mono">${esc(id)}</p><p class="warn">This block is not in the ${VIEW} view (any more).</p>`;
      return;
    }
    const m = b.meta;
    const st = m.stats || {};
    const comp = m.compaction || {};
    const th = m.thanos || {};
    const sources = Array.isArray(comp.sources) ? comp.sources : [];
    const span = b.max - b.min;
    const daily = b.size != null && span > 0 ? (b.size * DAY_MS) / span : null;
    const ext = (th.extensions || {}).compactd;
    const writer = ext ? `compactd, epoch ${esc(ext.epoch)}, holder ${esc(ext.holder || "—")}` : '<span class="muted">not written by compactd</span>';
    const drawn = S.rectById.has(id) ? "" : ' <span class="muted">(hidden by the filters)</span>';
    const labels = Object.keys(b.labels).sort().map((k) => `<span class="chip">${esc(k)}=${esc(b.labels[k])}</span>`).join(" ") || '<span class="muted">none</span>';
    const marks = b.marks.length
      ? `<table class="tbl"><tr><th>kind</th><th>time</th><th>details</th><th>reason</th></tr>${b.marks.map((mk) =>
        `<tr><td>${esc(mk.kind)}</td><td>${mk.time ? esc(isoMs(mk.time * 1000)) : "—"}</td><td>${esc(mk.details || "")}</td><td>${esc(mk.reason || "")}</td></tr>`).join("")}</table>`
      : '<span class="muted">none</span>';
    const flags = [];
    if (S.jobIds.has(id)) flags.push('<span class="badge job">being compacted now</span>');
    if (S.planIds.has(id)) flags.push('<span class="badge plan">in the compaction plan</span>');

    const row = (k, v) => `<tr><th>${k}</th><td>${v}</td></tr>`;
    body.innerHTML =
      `<div class="ulid mono">${esc(b.id)}${drawn} ${flags.join(" ")}</div>` +
      `<div class="details-grid"><table class="kv">` +
      row("Start", `${esc(isoMs(b.min))} <span class="muted">(${esc(relMs(b.min))})</span>`) +
      row("End", `${esc(isoMs(b.max))} <span class="muted">(${esc(relMs(b.max))})</span>`) +
      row("Duration", esc(fmtDur(span))) +
      row("Series", fmtInt(st.numSeries)) +
      row("Samples", fmtInt(st.numSamples)) +
      row("Chunks", fmtInt(st.numChunks)) +
      row("Total size", esc(fmtBytes(b.size))) +
      row("Index size", esc(fmtBytes(b.indexSize))) +
      row("Daily size", esc(fmtBytes(daily))) +
      `</table><table class="kv">` +
      row("Resolution", esc(resName(b.res))) +
      row("Level", esc(b.level)) +
      row("Source", esc(th.source || "unknown")) +
      row("State", `<span class="state-${esc(b.state)}">${esc(b.state)}</span>`) +
      row("Written by", writer) +
      row("Labels", labels) +
      row("Sources", `${sources.length} <details class="inline"><summary>list</summary><div class="mono small ids">${sources.map(esc).join("<br>")}</div></details>`) +
      row("Meta", `<a id="meta-download" download="meta.json" href="#">Download meta.json</a>`) +
      `</table></div>` +
      `<h3>Marks</h3>${marks}`;

    // The download link: a Blob of the bucket's meta.json.
    if (S.metaUrl) URL.revokeObjectURL(S.metaUrl);
    S.metaUrl = URL.createObjectURL(new Blob([metaJson(m)], { type: "application/json" }));
    const a = $("meta-download");
    a.href = S.metaUrl;
    a.download = `${b.id}-meta.json`;
  }

  /** Enables or disables the mark buttons from admin_operations. */
  function updateMarkControls() {
    const res = $("mark-result");
    for (const btn of document.querySelectorAll("[data-mark]")) btn.disabled = !S.admin || S.markBusy;
    $("mark-detail").disabled = !S.admin;
    if (!S.admin) {
      res.textContent = "admin operations are disabled on this compactd (--disable-admin-operations)";
      res.className = "mark-result muted";
    } else if (res.textContent.startsWith("admin operations are disabled")) {
      res.textContent = "";
    }
  }

  async function sendMark(action) {
    const id = S.selected;
    if (!id || !S.admin || S.markBusy) return;
    const res = $("mark-result");
    S.markBusy = true;
    updateMarkControls();
    res.className = "mark-result muted";
    res.textContent = `sending ${action}…`;
    try {
      const form = new URLSearchParams({ id, action, detail: $("mark-detail").value });
      await api("/api/v1/blocks/mark", { method: "POST", body: form });
      res.className = "mark-result ok";
      res.textContent = `marked ${id} with ${action}`;
      loadBlocks();
    } catch (e) {
      res.className = "mark-result bad";
      res.textContent = `error: ${e.message}`;
    } finally {
      S.markBusy = false;
      updateMarkControls();
    }
  }

  // ---------------------------------------------------------------- status panels

  async function pollStatus() {
    if (S.statusBusy) return;
    S.statusBusy = true;
    try {
      const data = await api("/api/v1/compactor");
      S.compactor = data || {};
      setError("compactor", "");
      renderStatus(S.compactor);
    } catch (e) {
      setError("compactor", e.message);
      if (!S.compactor) {
        for (const id of ["jobs", "plan", "backlog", "ownership", "failovers", "audit-body"]) {
          $(id).innerHTML = '<p class="muted">unavailable (see the status line)</p>';
        }
      }
    } finally {
      S.statusBusy = false;
    }
  }

  /** Sets a panel's HTML only when its data changed (keeps clicks and open <details>). */
  function panel(id, data, render) {
    const key = JSON.stringify(data === undefined ? null : data);
    if (S.panelCache[id] === key) return;
    S.panelCache[id] = key;
    $(id).innerHTML = render(data);
  }

  function renderStatus(c) {
    const admin = c.admin_operations !== false;
    if (admin !== S.admin) { S.admin = admin; updateMarkControls(); }
    renderHalt(c.halt || null);
    panel("ownership", { node: c.node, role: c.role, leader: c.leader, leaderUrl: c.leader_url, lease: c.lease_remaining_seconds, streams: c.streams, admin, at: c.refreshed_at }, renderOwnership);
    panel("backlog", c.backlog || null, renderBacklog);
    panel("jobs", Array.isArray(c.jobs) ? c.jobs : [], renderJobs);
    panel("plan", Array.isArray(c.plan) ? c.plan : [], renderPlan);
    panel("failovers", Array.isArray(c.failovers) ? c.failovers : [], renderFailovers);
    if (!S.auditRunning) panel("audit-body", c.audit || null, renderAudit);

    const plan = new Set();
    for (const g of c.plan || []) for (const id of g.compact || []) plan.add(id);
    const jobs = new Set();
    for (const j of c.jobs || []) for (const id of j.inputs || []) jobs.add(id);
    setHighlightSets(plan, jobs);
  }

  function renderHalt(h) {
    const el = $("halt");
    const key = JSON.stringify(h);
    if (S.panelCache.halt === key) return;
    S.panelCache.halt = key;
    if (!h) {
      el.className = "halt halt-ok";
      el.textContent = "not halted";
      return;
    }
    el.className = "halt halt-on";
    el.innerHTML = `<div class="halt-title">Compactor halted${h.stream ? ` (stream ${esc(h.stream)})` : ""}` +
      `${h.since ? ` <span class="halt-since">since ${fmtTs(h.since)}</span>` : ""}</div>` +
      `<div class="halt-text"><b>Reason:</b> ${esc(h.reason)}</div><div class="halt-text"><b>Fix:</b> ${esc(h.fix)}</div>`;
  }

  function renderOwnership(o) {
    const L = o.leader || {};
    const row = (k, v) => `<tr><th>${k}</th><td>${v}</td></tr>`;
    let html = `<table class="kv">` +
      row("Role", esc(o.role || "—")) +
      row("Node", o.node ? esc(o.node) : '<span class="muted">(none)</span>') +
      row("Leader", L.leader ? `${esc(L.leader)}${L.leader === o.node && o.node ? " (this node)" : ""}` : '<span class="muted">unknown</span>') +
      (o.leaderUrl ? row("Live state", `<a id="leader-link" href="${esc(o.leaderUrl)}">the leader's viewer</a> <span class="muted">(plan, jobs, backlog)</span>`) : "") +
      row("Epoch", L.epoch != null ? esc(L.epoch) : "—") +
      row("Leader since", fmtTs(L.since)) +
      row("Lease remaining", o.lease == null ? '<span class="muted">no lease held</span>' : esc(o.lease.toFixed(1) + " s")) +
      row("Admin operations", o.admin ? "enabled" : '<span class="bad">disabled</span>') +
      row("Loaded view synced", fmtTs(o.at)) +
      `</table>`;
    if (Array.isArray(o.streams) && o.streams.length) {
      html += `<table class="tbl"><tr><th>stream</th><th>labels</th><th>assigned</th><th>held</th><th>epoch</th></tr>` +
        o.streams.map((s) => `<tr><td class="mono">${esc(s.stream)}</td><td>${esc(s.labels)}</td><td>${s.owner_url ? `<a href="${esc(s.owner_url)}">${esc(s.assigned)}</a>` : esc(s.assigned || "—")}</td>` +
          `<td>${s.held ? "yes" : "no"}</td><td>${esc(s.epoch)}</td></tr>`).join("") + `</table>`;
    }
    return html;
  }

  function renderBacklog(b) {
    if (!b) return '<p class="muted">not computed yet</p>';
    const v = (n) => (n == null ? '<span class="muted">unknown</span>' : fmtInt(n));
    return `<div class="stats">` +
      `<div><span class="stat">${v(b.todo_compactions)}</span>compactions</div>` +
      `<div><span class="stat">${v(b.todo_compaction_blocks)}</span>blocks to compact</div>` +
      `<div><span class="stat">${v(b.todo_downsample_blocks)}</span>blocks to downsample</div>` +
      `<div><span class="stat">${v(b.todo_deletion_blocks)}</span>blocks to delete</div>` +
      `</div><p class="muted small">at ${fmtTs(b.at)}</p>`;
  }

  function renderJobs(jobs) {
    if (!jobs.length) return '<p class="muted">no job running</p>';
    return jobs.map((j) => {
      const done = num(j.series_done), total = num(j.series_total);
      const pct = total > 0 ? Math.min(100, (100 * done) / total) : 0;
      const res = j.kind === "downsampling" && j.to_resolution != null
        ? `${resName(j.resolution)} → ${resName(j.to_resolution)}` : resName(j.resolution);
      const inputs = Array.isArray(j.inputs) ? j.inputs : [];
      return `<div class="job" data-job-output="${esc(j.output)}">` +
        `<div class="job-head"><span class="badge ${j.kind === "downsampling" ? "ds" : "cp"}">${esc(j.kind)}</span> ` +
        `<span class="mono">${esc(j.group)}</span> <span class="muted">${esc(res)}</span>` +
        `<span class="right muted">${esc(fmtSecs(j.elapsed_seconds))}</span></div>` +
        `<div class="small">output <a href="#" class="mono" data-select="${esc(j.output)}">${esc(j.output)}</a> · ` +
        `<span title="${esc(inputs.join("\n"))}">${inputs.length} input${inputs.length === 1 ? "" : "s"}</span></div>` +
        `<progress max="100" value="${pct.toFixed(1)}"></progress>` +
        `<div class="small"><span class="job-progress">${done} / ${total} series</span> <span class="muted">(${pct.toFixed(0)}%)</span>` +
        `<span class="right">read ${esc(fmtBytes(num(j.bytes_read)))} · written ${esc(fmtBytes(num(j.bytes_written)))}</span></div>` +
        `</div>`;
    }).join("");
  }

  function idLinks(ids) {
    return ids.map((id) => `<a href="#" class="mono" data-select="${esc(id)}">${esc(id)}</a>`).join("");
  }

  function renderPlan(plan) {
    if (!plan.length) return '<p class="muted">nothing to do</p>';
    return plan.map((g) => {
      const compact = Array.isArray(g.compact) ? g.compact : [];
      const marks = Array.isArray(g.marks) ? g.marks : [];
      return `<div class="plan-group">` +
        `<div><span class="mono">${esc(g.group)}</span> <span class="muted">${esc(resName(g.resolution))} · ${fmtInt(g.blocks)} blocks</span></div>` +
        `<div class="small">${esc(g.labels)}</div>` +
        (g.halts_on_overlap ? `<div class="halt-tag">HALT: overlapping blocks</div>` : "") +
        (marks.length ? `<div class="small">marks first (${marks.length}):</div><div class="ids">${idLinks(marks)}</div>` : "") +
        (compact.length ? `<div class="small">merges ${compact.length} blocks:</div><div class="ids">${idLinks(compact)}</div>` : "") +
        `</div>`;
    }).join("");
  }

  function renderFailovers(list) {
    if (!list.length) return '<p class="muted">none</p>';
    const rows = list.slice().reverse().map((f) =>
      `<tr><td class="nowrap">${fmtShortTs(f.at)}</td><td>${esc(f.what)}</td><td>${esc(f.node)}</td><td>${esc(f.epoch)}</td>` +
      `<td class="mono">${esc(f.stream == null ? "" : f.stream)}</td><td>${esc(f.detail || "")}</td></tr>`).join("");
    return `<div class="scroll"><table class="tbl"><tr><th>at</th><th>what</th><th>node</th><th>epoch</th><th>stream</th><th>detail</th></tr>${rows}</table></div>`;
  }

  function renderAudit(a) {
    if (!a) return '<p class="muted">no audit run yet</p>';
    const list = (title, items) => (Array.isArray(items) && items.length
      ? `<div class="small"><b>${title} (${items.length})</b></div><ul class="small">${items.map((t) => `<li>${esc(t)}</li>`).join("")}</ul>` : "");
    return `<div>${a.clean ? '<span class="badge okb">clean</span>' : '<span class="badge badb">not clean</span>'} <span class="muted small">at ${fmtTs(a.at)}</span></div>` +
      list("Violations", a.violations) + list("Problems", a.problems) +
      (a.text ? `<details><summary class="small">full report</summary><pre>${esc(a.text)}</pre></details>` : "");
  }

  async function runAudit() {
    const btn = $("audit-run");
    if (S.auditRunning) return;
    S.auditRunning = true;
    btn.disabled = true;
    btn.textContent = "Running…";
    const body = $("audit-body");
    try {
      const a = await api("/api/v1/compactor/audit", { method: "POST" });
      S.panelCache["audit-body"] = JSON.stringify(a === undefined ? null : a);
      body.innerHTML = renderAudit(a || null);
      setError("audit", "");
    } catch (e) {
      body.insertAdjacentHTML("afterbegin", `<p class="bad small">error: ${esc(e.message)}</p>`);
      setError("audit", e.message);
    } finally {
      S.auditRunning = false;
      btn.disabled = false;
      btn.textContent = "Run audit";
    }
  }

  // ---------------------------------------------------------------- wiring

  function loadBuildInfo() {
    api("/api/v1/status/buildinfo")
      .then((b) => { if (b && b.version) $("version").textContent = "v" + b.version; })
      .catch(() => { /* the version is decoration only */ });
  }

  /** Runs fn, keeping any exception out of the console (shown in the status line). */
  function safe(fn) {
    return (...args) => {
      try { return fn(...args); } catch (e) { setError("page", e && e.message ? e.message : String(e)); }
      return undefined;
    };
  }

  function init() {
    $(VIEW === "loaded" ? "nav-loaded" : "nav-global").classList.add("active");
    $("nav-global").href = PREFIX + "/blocks";
    $("nav-loaded").href = PREFIX + "/loaded";
    if (VIEW !== "global") $("filter-state-wrap").hidden = true;
    document.title = `compactd · ${VIEW} blocks`;
    definePatterns();
    renderLegend();

    // Filters: redraw on change (text input debounced a little).
    const redraw = safe(() => draw());
    let textTimer = 0;
    $("filter-text").addEventListener("input", () => { clearTimeout(textTimer); textTimer = setTimeout(redraw, 120); });
    for (const id of ["filter-from", "filter-to", "filter-level", "filter-marks", "filter-state", "filter-overlaps"]) {
      $(id).addEventListener("change", redraw);
    }
    $("filter-reset").addEventListener("click", safe(() => {
      for (const id of ["filter-text", "filter-from", "filter-to"]) $(id).value = "";
      for (const id of ["filter-level", "filter-marks", "filter-state"]) $(id).selectedIndex = 0;
      $("filter-overlaps").checked = false;
      draw();
    }));
    $("refresh").addEventListener("click", () => { loadBlocks(); pollStatus(); });

    // Timeline: click selects, hover shows a tooltip (event delegation, no per-block handlers).
    const tl = $("timeline");
    tl.addEventListener("click", safe((ev) => {
      const el = ev.target.closest && ev.target.closest(".block");
      if (el) selectBlock(el.getAttribute("data-block-id"), false);
    }));
    tl.addEventListener("mousemove", safe((ev) => {
      const el = ev.target.closest && ev.target.closest(".block");
      const b = el && S.byId.get(el.getAttribute("data-block-id"));
      if (b) showTooltip(ev, b); else $("tooltip").hidden = true;
    }));
    tl.addEventListener("mouseleave", () => { $("tooltip").hidden = true; });
    wireZoom(tl, redraw);

    // Block ids in the plan and jobs panels select that block.
    document.addEventListener("click", safe((ev) => {
      const a = ev.target.closest && ev.target.closest("[data-select]");
      if (!a) return;
      ev.preventDefault();
      selectBlock(a.getAttribute("data-select"), true);
    }));

    $("details-close").addEventListener("click", safe(closeDetails));
    for (const btn of document.querySelectorAll("[data-mark]")) {
      btn.addEventListener("click", () => { sendMark(btn.getAttribute("data-mark")); });
    }
    $("audit-run").addEventListener("click", () => { runAudit(); });

    // Redraw on resize (the SVG width follows the page).
    let resizeTimer = 0;
    addEventListener("resize", () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(redraw, 150); });

    // Keep unexpected failures out of the console (the status line shows them).
    addEventListener("unhandledrejection", (ev) => {
      ev.preventDefault();
      setError("page", ev.reason && ev.reason.message ? ev.reason.message : String(ev.reason));
    });

    loadBlocks();
    pollStatus();
    loadBuildInfo();
    setInterval(() => { loadBlocks(); }, BLOCKS_POLL_MS);
    setInterval(() => { pollStatus(); }, STATUS_POLL_MS);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", safe(init));
  else safe(init)();
})();
