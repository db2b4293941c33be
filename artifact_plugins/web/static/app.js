/* artifact_plugins lineage viewer: a single-page app without a framework (dagre lays out the graph).
 *
 * Safety rule: every string that comes from the registry is put into the page with
 * textContent / setAttribute / DOM APIs only -- never parsed as HTML -- and links to orchestrator
 * UIs are only made for http(s) URLs. All URLs are relative to the app root, so the app
 * works under any mount prefix (e.g. /artifacts inside Airflow).
 */
(function () {
  "use strict";

  // ---------------------------------------------------------------------------------------------
  // Boot: the app root, and the initial route handed over by deep-link pages (/versions/..., /runs)
  const baseEl = document.querySelector("base");
  const ROOT = document.baseURI;
  if (baseEl) baseEl.setAttribute("href", ROOT); // freeze before the URL changes below
  const initial = document.querySelector('meta[name="artifacts-route"]');
  if (initial && initial.content && !location.hash) {
    history.replaceState(null, "", new URL(initial.content, ROOT).href);
  }
  const SVGNS = "http://www.w3.org/2000/svg";
  const timings = { navigations: 0 };
  window.artifactsViewer = { timings: timings, root: ROOT };

  // ---------------------------------------------------------------------------------------------
  // DOM helpers
  function h(tag, attrs) {
    const el = document.createElement(tag);
    setAttrs(el, attrs);
    for (let i = 2; i < arguments.length; i++) append(el, arguments[i]);
    return el;
  }
  function s(tag, attrs) {
    const el = document.createElementNS(SVGNS, tag);
    setAttrs(el, attrs);
    for (let i = 2; i < arguments.length; i++) append(el, arguments[i]);
    return el;
  }
  function setAttrs(el, attrs) {
    if (!attrs) return;
    for (const key of Object.keys(attrs)) {
      const v = attrs[key];
      if (v === undefined || v === null || v === false) continue;
      if (key === "text") el.textContent = String(v);
      else if (key === "class") el.setAttribute("class", v);
      else if (key === "dataset") Object.assign(el.dataset, v);
      else if (key.startsWith("on") && typeof v === "function") el.addEventListener(key.slice(2), v);
      else if (key === "href") el.setAttribute("href", v);
      else el.setAttribute(key, v === true ? "" : String(v));
    }
  }
  function append(el, child) {
    if (child === undefined || child === null || child === false) return;
    if (Array.isArray(child)) child.forEach((c) => append(el, c));
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }

  // ---------------------------------------------------------------------------------------------
  // Formatting and links
  function safeUrl(url) {
    if (typeof url !== "string") return null;
    try {
      const u = new URL(url);
      return u.protocol === "http:" || u.protocol === "https:" ? u.href : null;
    } catch (e) {
      return null;
    }
  }
  function external(url, label) {
    const safe = safeUrl(url);
    return safe ? h("a", { href: safe, target: "_blank", rel: "noopener noreferrer", class: "extlink" }, label) : null;
  }
  function enc(part) { return encodeURIComponent(part); }
  function route() {
    const raw = location.hash.replace(/^#\/?/, "");
    const q = raw.indexOf("?");
    const path = q >= 0 ? raw.slice(0, q) : raw;
    const params = new URLSearchParams(q >= 0 ? raw.slice(q + 1) : "");
    const parts = path.split("/").filter(Boolean).map((p) => {
      try { return decodeURIComponent(p); } catch (e) { return p; }
    });
    return { parts: parts, params: params };
  }
  function hashOf(parts, params) {
    let out = "#/" + parts.map(enc).join("/");
    const qs = params ? new URLSearchParams(Object.entries(params).filter((kv) => kv[1] !== undefined && kv[1] !== null && kv[1] !== "")).toString() : "";
    return qs ? out + "?" + qs : out;
  }
  const link = {
    project: (e, p, params) => hashOf(["projects", e, p], params),
    collection: (e, p, n) => hashOf(["collections", e, p, n]),
    version: (e, p, n, v, params) => hashOf(["versions", e, p, n, v], params),
    run: (id, params) => hashOf(["runs", id], params),
    runs: (params) => hashOf(["runs"], params),
    diff: (e, p, n, a, b) => hashOf(["diff", e, p, n], { from: a, to: b }),
  };
  function parseQualified(q) {
    // entity/project/name:vN (names cannot contain '/' or ':')
    const i = q.lastIndexOf(":");
    const parts = q.slice(0, i).split("/");
    return { entity: parts[0], project: parts[1], name: parts[2], version: q.slice(i + 1) };
  }
  function versionHref(v) { return link.version(v.entity, v.project, v.name, v.version); }
  function bytes(n) {
    if (n === null || n === undefined) return "-";
    const units = ["B", "KB", "MB", "GB", "TB", "PB"];
    let i = 0, x = n;
    while (x >= 1000 && i < units.length - 1) { x /= 1000; i++; }
    return (i === 0 ? String(x) : x.toFixed(x >= 100 ? 0 : x >= 10 ? 1 : 2)) + " " + units[i];
  }
  function when(iso) {
    if (!iso) return h("span", { class: "faint", text: "-" });
    const d = new Date(iso);
    const secs = (Date.now() - d.getTime()) / 1000;
    let rel;
    if (secs < 60) rel = "just now";
    else if (secs < 3600) rel = Math.floor(secs / 60) + " min ago";
    else if (secs < 86400) rel = Math.floor(secs / 3600) + " h ago";
    else if (secs < 86400 * 30) rel = Math.floor(secs / 86400) + " d ago";
    else rel = d.toLocaleDateString();
    return h("time", { datetime: iso, title: d.toLocaleString() }, rel);
  }
  function shortDigest(d) { return d ? d.replace(/^blake3:/, "").slice(0, 12) : ""; }
  function plural(n, word, many) { return n + " " + (n === 1 ? word : many || word + "s"); }
  function chip(text, cls, attrs) { return h("span", Object.assign({ class: "chip " + (cls || "") }, attrs || {}), text); }
  function aliasChips(aliases) {
    return h("span", { class: "chips" }, (aliases || []).map((a) => chip(a, "alias" + (a === "latest" ? " latest" : ""))));
  }
  function statusChip(st) { return st ? chip(st, "status-" + String(st).toLowerCase().replace(/[^a-z]/g, "")) : null; }
  function orchChip(o) { return o ? chip(o, "orch-" + String(o).toLowerCase().replace(/[^a-z]/g, "")) : null; }
  function jsonText(v) { return typeof v === "string" ? v : JSON.stringify(v, null, 2); }

  // ---------------------------------------------------------------------------------------------
  // Data
  async function api(path, params) {
    const url = new URL("api/" + path, ROOT);
    if (params) for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, v);
    const res = await fetch(url.href, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    let body = null;
    try { body = await res.json(); } catch (e) { body = null; }
    if (!res.ok) {
      const err = new Error((body && body.detail) || res.status + " " + res.statusText);
      err.status = res.status;
      throw err;
    }
    return body;
  }
  function versionApi(v) { return "versions/" + [v.entity, v.project, v.name, v.version].map(enc).join("/"); }

  // ---------------------------------------------------------------------------------------------
  // Layout pieces
  const app = document.getElementById("app");
  const crumbsEl = document.getElementById("crumbs");
  function crumbs(items) {
    const out = [];
    items.forEach((it, i) => {
      if (i) out.push(h("span", { class: "sep", "aria-hidden": "true" }, "/"));
      out.push(it.href && i < items.length - 1 ? h("a", { href: it.href }, it.text) : h("span", {}, it.text));
    });
    crumbsEl.replaceChildren.apply(crumbsEl, out);
  }
  function setNav(which) {
    document.querySelectorAll(".topnav a").forEach((a) => a.classList.toggle("active", a.dataset.nav === which));
  }
  function loading(text) { return h("div", { class: "loading" }, h("span", { class: "spinner" }), text || "Loading…"); }
  function errorBox(err) { return h("div", { class: "error", role: "alert" }, h("strong", {}, "Could not load this view. "), String(err && err.message ? err.message : err)); }
  function header(title, sub, actions) {
    return h("div", { class: "header" },
      h("div", { class: "title" }, h("h1", {}, title), sub ? h("div", { class: "sub" }, sub) : null),
      actions ? h("div", { class: "actions" }, actions) : null);
  }
  function panel(title, body, cls) { return h("section", { class: "panel " + (cls || "") }, title ? h("h2", {}, title) : null, body); }
  function table(columns, rows, opts) {
    const thead = h("thead", {}, h("tr", {}, columns.map((c) => h("th", { class: c.cls || "" }, c.title))));
    const tbody = h("tbody", {}, rows.map((r) => h("tr", {}, columns.map((c) => h("td", { class: c.cls || "" }, c.cell(r))))));
    const t = h("table", { class: "data" }, thead, tbody);
    if (opts && opts.id) t.id = opts.id;
    return h("div", { class: "table-wrap" }, t);
  }
  function kv(rows) {
    return h("table", { class: "kv" }, h("tbody", {}, rows.filter(Boolean).map((r) => h("tr", {}, h("th", {}, r[0]), h("td", {}, r[1])))));
  }
  function empty(text) { return h("div", { class: "empty" }, text); }
  function tabs(items, active) {
    return h("nav", { class: "tabs" }, items.map((t) => h("a", { href: t.href, class: t.key === active ? "active" : "", dataset: { tab: t.key } },
      t.label, t.count !== undefined ? h("span", { class: "count" }, String(t.count)) : null)));
  }
  function versionLink(v) {
    return h("a", { href: versionHref(v), title: v.qualified_name }, v.name + ":" + v.version);
  }
  function runLink(r) { return h("a", { href: link.run(r.id), title: r.id }, r.name); }

  // ---------------------------------------------------------------------------------------------
  // Views
  async function viewProjects() {
    setNav("projects");
    crumbs([{ text: "Projects" }]);
    const projects = await api("projects");
    if (!projects.length) {
      return [header("Projects"), panel(null, empty("No artifacts have been logged to this registry yet."))];
    }
    const cards = projects.map((p) => h("a", { class: "card", href: link.project(p.entity, p.project), dataset: { project: p.entity + "/" + p.project } },
      h("div", { class: "card-title" }, p.project),
      h("div", { class: "card-meta" }, p.entity + " · " + plural(p.collection_count, "collection") + " · " + plural(p.version_count, "version")),
      h("div", { class: "chips" }, p.types.map((t) => chip(t.type + " · " + t.collection_count, "type")))));
    return [header("Projects", plural(projects.length, "project")), h("div", { class: "cards" }, cards)];
  }

  async function viewProject(entity, project, params) {
    setNav("projects");
    crumbs([{ text: "Projects", href: "#/" }, { text: entity + "/" + project }]);
    const cols = await api("projects/" + enc(entity) + "/" + enc(project) + "/collections");
    const types = {};
    cols.forEach((c) => { types[c.type] = (types[c.type] || 0) + 1; });
    const active = params.get("type") || "";
    const filter = h("input", { type: "search", placeholder: "Filter collections", "aria-label": "Filter collections" });
    const typeChips = h("div", { class: "chips" },
      h("a", { class: "chip" + (active ? "" : " alias"), href: link.project(entity, project) }, "All · " + cols.length),
      Object.keys(types).sort().map((t) => h("a", { class: "chip" + (active === t ? " alias" : ""), href: link.project(entity, project, { type: t }), dataset: { type: t } }, t + " · " + types[t])));
    const shown = cols.filter((c) => !active || c.type === active);
    const body = h("div", {});
    function draw() {
      const q = filter.value.trim().toLowerCase();
      const rows = shown.filter((c) => !q || c.name.toLowerCase().includes(q) || (c.description || "").toLowerCase().includes(q));
      body.replaceChildren(rows.length ? table([
        { title: "Collection", cell: (c) => h("a", { href: link.collection(c.entity, c.project, c.name) }, c.name) },
        { title: "Type", cell: (c) => chip(c.type, "type") },
        { title: "Versions", cls: "num", cell: (c) => String(c.version_count) },
        { title: "Latest", cell: (c) => c.latest_version ? h("a", { href: link.version(c.entity, c.project, c.name, c.latest_version) }, c.latest_version) : "-" },
        { title: "Description", cell: (c) => h("span", { class: "muted" }, (c.description || "").slice(0, 140)) },
        { title: "Created", cls: "nowrap", cell: (c) => when(c.created_at) },
      ], rows, { id: "collections" }) : empty("No collections match."));
    }
    filter.addEventListener("input", draw);
    draw();
    return [
      header(project, [chip(entity, "type"), plural(cols.length, "collection")]),
      h("div", { class: "toolbar" }, typeChips, h("span", { class: "spacer" }), filter),
      panel(null, body, "flush"),
    ];
  }

  async function viewCollection(entity, project, name) {
    setNav("projects");
    crumbs([{ text: "Projects", href: "#/" }, { text: entity + "/" + project, href: link.project(entity, project) }, { text: name }]);
    const pageSize = 100;
    const c = await api("collections/" + [entity, project, name].map(enc).join("/"), { limit: pageSize });
    const versions = c.versions.slice();
    const runs = Object.assign({}, c.runs);
    const body = h("div", {});
    const more = h("button", { class: "btn", type: "button" }, "Show more");
    const fromSel = h("select", { "aria-label": "Compare from" });
    const toSel = h("select", { "aria-label": "Compare to" });
    function fillSelects() {
      [fromSel, toSel].forEach((sel) => sel.replaceChildren.apply(sel, versions.map((v) => h("option", { value: v.version }, v.version + (v.aliases.length ? " (" + v.aliases.join(", ") + ")" : "")))));
      if (versions.length > 1) { fromSel.value = versions[1].version; toSel.value = versions[0].version; }
    }
    function draw() {
      body.replaceChildren(versions.length ? table([
        { title: "Version", cell: (v) => h("a", { href: versionHref(v) }, v.version) },
        { title: "Aliases", cell: (v) => aliasChips(v.aliases) },
        { title: "Digest", cell: (v) => h("code", { title: v.digest }, shortDigest(v.digest)) },
        { title: "Size", cls: "num", cell: (v) => bytes(v.size) },
        { title: "Files", cls: "num", cell: (v) => String(v.file_count) },
        { title: "Created", cls: "nowrap", cell: (v) => when(v.created_at) },
        { title: "Logged by", cell: (v) => {
          const r = v.created_by ? runs[v.created_by] : null;
          if (!r) return h("span", { class: "faint" }, "-");
          return h("span", { class: "chips" }, h("a", { href: link.run(r.id), title: r.job_type }, r.name), orchChip(r.orchestrator));
        } },
      ], versions, { id: "versions" }) : empty("This collection has no committed versions."));
      more.hidden = versions.length >= c.version_count;
    }
    more.addEventListener("click", async () => {
      more.disabled = true;
      const next = await api("collections/" + [entity, project, name].map(enc).join("/"), { limit: pageSize, offset: versions.length });
      versions.push.apply(versions, next.versions);
      Object.assign(runs, next.runs);
      more.disabled = false;
      fillSelects();
      draw();
    });
    fillSelects();
    draw();
    const compare = h("button", { class: "btn", type: "button", onclick: () => { location.hash = link.diff(entity, project, name, fromSel.value, toSel.value); } }, "Compare");
    const aliasList = Object.entries(c.aliases).map((kv2) => h("a", { class: "chip alias" + (kv2[0] === "latest" ? " latest" : ""), href: link.version(entity, project, name, kv2[1]) }, kv2[0] + " → " + kv2[1]));
    return [
      header(name, [chip(c.type, "type"), plural(c.version_count, "version"), c.description ? h("span", { class: "muted" }, c.description) : null],
        versions.length > 1 ? [fromSel, h("span", { class: "muted" }, "→"), toSel, compare] : null),
      aliasList.length ? h("div", { class: "toolbar" }, h("span", { class: "muted" }, "Aliases"), h("div", { class: "chips" }, aliasList)) : null,
      panel(null, body, "flush"),
      h("div", { class: "toolbar section" }, more),
    ];
  }

  function runBlock(r) {
    if (!r) return h("span", { class: "faint" }, "-");
    return h("div", { class: "runcard" },
      h("div", { class: "runline" }, h("a", { class: "runname", href: link.run(r.id) }, r.name), statusChip(r.status), orchChip(r.orchestrator)),
      h("div", { class: "runline muted" }, "job type ", h("strong", {}, r.job_type),
        r.group ? [" · group ", h("a", { href: link.runs({ group: r.group }), title: r.group }, r.group.length > 40 ? r.group.slice(0, 40) + "…" : r.group)] : null),
      h("div", { class: "runline" }, external(r.url, "Open in " + (r.orchestrator === "airflow" ? "Airflow" : r.orchestrator === "prefect" ? "Prefect" : "orchestrator")),
        external(r.group_url, r.orchestrator === "airflow" ? "DAG run" : "Flow run"), when(r.started_at)));
  }

  async function viewVersion(entity, project, name, version, params) {
    setNav("projects");
    const tab = params.get("tab") || "overview";
    crumbs([{ text: "Projects", href: "#/" }, { text: entity + "/" + project, href: link.project(entity, project) },
      { text: name, href: link.collection(entity, project, name) }, { text: version }]);
    // the lineage request does not need the version's details: start it now, in parallel
    const ref = entity + "/" + project + "/" + name + (version.startsWith("blake3:") ? "@" : ":") + version;
    const graph = tab === "lineage" ? lineagePanel({ ref: ref }, params, (p) => link.version(entity, project, name, version, Object.assign({ tab: "lineage" }, p))) : null;
    const v = await api(versionApi({ entity: entity, project: project, name: name, version: version }));
    const vparams = (t, extra) => Object.assign({ tab: t === "overview" ? undefined : t }, extra || {});
    const tabBar = tabs([
      { key: "overview", label: "Overview", href: link.version(entity, project, name, version, vparams("overview")) },
      { key: "files", label: "Files", count: v.file_count, href: link.version(entity, project, name, version, vparams("files")) },
      { key: "lineage", label: "Lineage", href: link.version(entity, project, name, version, vparams("lineage")) },
    ], tab);
    const compareTo = v.version_index > 0 ? link.diff(entity, project, name, "v" + (v.version_index - 1), v.version) : null;
    const head = header(
      [v.name + " ", chip(v.version, "version")],
      [chip(v.type, "type"), aliasChips(v.aliases), (v.tags || []).map((t) => chip("#" + t, "tag")), h("span", { class: "muted" }, bytes(v.size) + " · " + plural(v.file_count, "file"))],
      [compareTo ? h("a", { class: "btn", href: compareTo }, "Compare with previous") : null,
        h("a", { class: "btn", href: link.collection(entity, project, name) }, "All versions")]);
    let body;
    if (tab === "files") body = await filesView(v, params.get("path") || "");
    else if (tab === "lineage") body = graph;
    else body = overview(v);
    return [head, tabBar, body];
  }

  function overview(v) {
    const meta = Object.keys(v.metadata || {});
    const left = h("div", { class: "stack" },
      panel("Details", kv([
        ["Qualified name", h("code", {}, v.qualified_name)],
        ["Digest", h("span", { class: "digest" }, v.digest)],
        ["Size", bytes(v.size) + " (" + v.size.toLocaleString() + " bytes)"],
        ["Files", String(v.file_count)],
        ["Created", [when(v.created_at), h("span", { class: "faint" }, "  " + new Date(v.created_at).toLocaleString())]],
        ["State", v.state],
        v.ttl_seconds ? ["TTL", v.ttl_seconds + " s"] : null,
        v.collection ? ["Collection", [h("a", { href: link.collection(v.entity, v.project, v.name) }, v.name), h("span", { class: "muted" }, " · " + plural(v.collection.version_count, "version") + ", latest " + (v.collection.latest_version || "-"))]] : null,
      ])),
      panel("Description", v.description ? h("div", { class: "description", id: "description" }, v.description) : h("span", { class: "faint" }, "No description.")),
      panel("Metadata", meta.length ? h("table", { class: "kv", id: "metadata" }, h("tbody", {}, meta.sort().map((k) => h("tr", {}, h("th", {}, k), h("td", {}, h("div", { class: "meta-value" }, jsonText(v.metadata[k]))))))) : h("span", { class: "faint" }, "No metadata.")));
    const right = h("div", { class: "stack" },
      panel("Logged by", runBlock(v.logged_by)),
      panel("Used by" + (v.used_by.length ? " (" + v.used_by.length + ")" : ""), v.used_by.length ? h("div", { class: "runlist" }, v.used_by.slice(0, 50).map(runBlock)) : h("span", { class: "faint" }, "Not used by any run yet.")),
      panel("Alias history", v.alias_history.length ? table([
        { title: "When", cls: "nowrap", cell: (e) => when(e.at) },
        { title: "Alias", cell: (e) => chip(e.alias, "alias" + (e.alias === "latest" ? " latest" : "")) },
        { title: "Change", cell: (e) => (e.previous || "∅") + " → " + (e.version || "removed") },
        { title: "Run", cell: (e) => e.run_id ? h("a", { href: link.run(e.run_id) }, "run") : "-" },
      ], v.alias_history) : h("span", { class: "faint" }, "No alias moves."), "flush"));
    return h("div", { class: "grid" }, left, right);
  }

  async function filesView(v, path) {
    const listing = await api(versionApi(v) + "/files", { path: path });
    const bar = h("div", { class: "pathbar" });
    const segs = path ? path.split("/") : [];
    const go = (p) => link.version(v.entity, v.project, v.name, v.version, { tab: "files", path: p || undefined });
    bar.appendChild(h("a", { href: go("") }, v.name + ":" + v.version));
    segs.forEach((sg, i) => {
      bar.appendChild(h("span", { class: "sep" }, "/"));
      bar.appendChild(i === segs.length - 1 ? h("strong", {}, sg) : h("a", { href: go(segs.slice(0, i + 1).join("/")) }, sg));
    });
    const rows = listing.dirs.map((d) => ({ dir: d })).concat(listing.files.map((f) => ({ file: f })));
    const body = rows.length ? table([
      { title: "Name", cls: "break", cell: (r) => r.dir ? h("a", { href: go(r.dir.path) }, h("span", { class: "ficon dir" }), r.dir.name + "/")
        : [h("span", { class: r.file.ref ? "ficon ref" : "ficon file" }), r.file.name, r.file.ref ? h("div", { class: "muted mono" }, r.file.ref) : null] },
      { title: "Size", cls: "num", cell: (r) => bytes(r.dir ? r.dir.size : r.file.size) },
      { title: "Digest / files", cell: (r) => r.dir ? h("span", { class: "muted" }, plural(r.dir.file_count, "file")) : h("code", { title: r.file.digest }, shortDigest(r.file.digest)) },
      { title: "", cls: "num", cell: (r) => r.file && r.file.download ? h("a", { href: new URL(r.file.download, ROOT).href, download: r.file.name, class: "btn" }, "Download") : null },
    ], rows, { id: "files" }) : empty("This directory is empty.");
    const note = listing.file_total > listing.files.length ? h("div", { class: "notice" }, "Showing " + listing.files.length + " of " + listing.file_total + " files in this directory.") : null;
    return [note, panel(null, [bar, body], "flush")];
  }

  async function viewRuns(params) {
    setNav("runs");
    crumbs([{ text: "Runs" }]);
    const filters = {};
    ["group", "job_type", "orchestrator", "project", "task_id", "map_index"].forEach((k) => { if (params.get(k)) filters[k] = params.get(k); });
    const runs = await api("runs", Object.assign({ limit: 200 }, filters));
    const active = Object.entries(filters).map((kv2) => {
      const rest = Object.assign({}, filters); delete rest[kv2[0]];
      return h("a", { class: "chip alias", href: link.runs(rest), title: "Remove filter" }, kv2[0] + ": " + kv2[1] + "  ×");
    });
    const body = runs.length ? table([
      { title: "Run", cls: "break", cell: (r) => [runLink(r), h("div", { class: "muted" }, r.job_type)] },
      { title: "Orchestrator", cell: (r) => orchChip(r.orchestrator) },
      { title: "Status", cell: (r) => statusChip(r.status) },
      { title: "Used", cell: (r) => h("div", { class: "chips" }, r.used.map(versionLink)) },
      { title: "Logged", cell: (r) => h("div", { class: "chips" }, r.logged.map(versionLink)) },
      { title: "Group", cls: "break", cell: (r) => r.group ? h("a", { href: link.runs({ group: r.group }), class: "muted" }, r.group.length > 36 ? r.group.slice(0, 36) + "…" : r.group) : "-" },
      { title: "Started", cls: "nowrap", cell: (r) => when(r.started_at) },
      { title: "", cell: (r) => external(r.url, r.orchestrator === "airflow" ? "Airflow" : r.orchestrator === "prefect" ? "Prefect" : "Open") },
    ], runs, { id: "runs" }) : empty("No runs match.");
    const out = [header("Runs", active.length ? h("div", { class: "chips" }, active) : plural(runs.length, "run") + (runs.length >= 200 ? " (newest 200)" : "")), panel(null, body, "flush")];
    if (filters.group && runs.length) {
      out.push(h("section", { class: "section" }, h("h2", {}, "Lineage of this group"),
        lineagePanel({ run: runs[0].id }, params, (p) => link.runs(Object.assign({}, filters, p)), "group")));
    }
    return out;
  }

  async function viewRun(id, params) {
    setNav("runs");
    const r = await api("runs/" + enc(id));
    crumbs([{ text: "Runs", href: "#/runs" }, r.group ? { text: r.group.length > 40 ? r.group.slice(0, 40) + "…" : r.group, href: link.runs({ group: r.group }) } : null, { text: r.name }].filter(Boolean));
    const tab = params.get("tab") || "overview";
    const tabBar = tabs([
      { key: "overview", label: "Overview", href: link.run(id) },
      { key: "lineage", label: "Lineage", href: link.run(id, { tab: "lineage" }) },
    ], tab);
    const head = header(r.name, [orchChip(r.orchestrator), statusChip(r.status), h("span", { class: "muted" }, "job type " + r.job_type)],
      [external(r.url, "Open in " + (r.orchestrator === "airflow" ? "Airflow" : r.orchestrator === "prefect" ? "Prefect" : "orchestrator")),
        external(r.group_url, r.orchestrator === "airflow" ? "DAG run" : "Flow run")].filter(Boolean).map((a) => { a.classList.add("btn"); return a; }));
    if (tab === "lineage") return [head, tabBar, lineagePanel({ run: id }, params, (p) => link.run(id, Object.assign({ tab: "lineage" }, p)))];
    const vcols = [
      { title: "Version", cell: (v) => versionLink(v) },
      { title: "Type", cell: (v) => chip(v.type, "type") },
      { title: "Aliases", cell: (v) => aliasChips(v.aliases) },
      { title: "Digest", cell: (v) => h("code", { title: v.digest }, shortDigest(v.digest)) },
      { title: "Size", cls: "num", cell: (v) => bytes(v.size) },
    ];
    const started = r.started_at ? new Date(r.started_at) : null;
    const finished = r.finished_at ? new Date(r.finished_at) : null;
    const left = h("div", { class: "stack" },
      panel("Used (" + r.used.length + ")", r.used.length ? table(vcols, r.used) : h("span", { class: "faint" }, "Used no artifacts."), r.used.length ? "flush" : ""),
      panel("Logged (" + r.logged.length + ")", r.logged.length ? table(vcols, r.logged) : h("span", { class: "faint" }, "Logged no artifacts."), r.logged.length ? "flush" : ""),
      r.group_runs.length ? panel("Other steps of this group (" + r.group_runs.length + ")", table([
        { title: "Run", cell: (x) => runLink(x) },
        { title: "Job type", cell: (x) => x.job_type },
        { title: "Status", cell: (x) => statusChip(x.status) },
        { title: "Started", cls: "nowrap", cell: (x) => when(x.started_at) },
      ], r.group_runs.slice(0, 200)), "flush") : null);
    const right = h("div", { class: "stack" },
      panel("Details", kv([
        ["Run id", h("code", {}, r.id)],
        ["Project", h("a", { href: link.project(r.entity, r.project) }, r.entity + "/" + r.project)],
        ["Group", r.group ? h("a", { href: link.runs({ group: r.group }) }, r.group) : "-"],
        ["Started", started ? started.toLocaleString() : "-"],
        ["Finished", finished ? finished.toLocaleString() : "-"],
        started && finished ? ["Duration", ((finished - started) / 1000).toFixed(1) + " s"] : null,
      ])),
      Object.keys(r.step || {}).length ? panel("Step", kv(Object.keys(r.step).sort().map((k) => [k, h("span", { class: "meta-value" }, jsonText(r.step[k]))]))) : null);
    return [head, tabBar, h("div", { class: "grid" }, left, right)];
  }

  async function viewDiff(entity, project, name, params) {
    setNav("projects");
    crumbs([{ text: "Projects", href: "#/" }, { text: entity + "/" + project, href: link.project(entity, project) },
      { text: name, href: link.collection(entity, project, name) }, { text: "Compare" }]);
    const from = params.get("from"), to = params.get("to");
    const [d, col] = await Promise.all([
      api("diff/" + [entity, project, name].map(enc).join("/"), { from: from, to: to }),
      api("collections/" + [entity, project, name].map(enc).join("/"), { limit: 1000 }),
    ]);
    const sel = (value) => {
      const el = h("select", {}, col.versions.map((v) => h("option", { value: v.version }, v.version + (v.aliases.length ? " (" + v.aliases.join(", ") + ")" : ""))));
      el.value = value;
      return el;
    };
    const fromSel = sel(d.old.version), toSel = sel(d.new.version);
    const update = () => { location.hash = link.diff(entity, project, name, fromSel.value, toSel.value); };
    fromSel.addEventListener("change", update);
    toSel.addEventListener("change", update);
    const sm = d.summary;
    const stat = (n, label, cls) => h("div", { class: "stat " + cls, dataset: { stat: cls } }, h("div", { class: "n" }, String(n)), h("div", { class: "l" }, label));
    const section = (title, rows, cols) => rows.length ? panel(title + " (" + rows.length + ")", table(cols, rows), "flush") : null;
    const meta = d.metadata;
    const metaRows = [].concat(
      Object.keys(meta.added).map((k) => ({ k: k, mark: "+", cls: "added", old: null, nw: meta.added[k] })),
      Object.keys(meta.removed).map((k) => ({ k: k, mark: "−", cls: "removed", old: meta.removed[k], nw: null })),
      Object.keys(meta.changed).map((k) => ({ k: k, mark: "~", cls: "modified", old: meta.changed[k].old, nw: meta.changed[k].new })));
    return [
      header(["Compare ", name], [h("a", { href: versionHref(d.old) }, d.old.version), "→", h("a", { href: versionHref(d.new) }, d.new.version),
        d.same_content ? chip("identical content", "status-finished") : null], [fromSel, h("span", { class: "muted" }, "→"), toSel]),
      h("div", { class: "summary" }, stat(sm.added, "added", "added"), stat(sm.removed, "removed", "removed"), stat(sm.modified, "modified", "modified"),
        stat(sm.renamed, "renamed", "renamed"), stat(sm.unchanged, "unchanged", "unchanged")),
      d.truncated ? h("div", { class: "notice" }, "Long lists are cut at 1000 entries; the counts above are complete.") : null,
      h("div", { class: "stack" },
        section("Added", d.added, [{ title: "", cls: "markcol", cell: () => h("span", { class: "mark added" }, "+") }, { title: "Path", cls: "break wide", cell: (f) => f.path }, { title: "Size", cls: "num", cell: (f) => bytes(f.size) }, { title: "Digest", cell: (f) => h("code", {}, shortDigest(f.digest)) }]),
        section("Removed", d.removed, [{ title: "", cls: "markcol", cell: () => h("span", { class: "mark removed" }, "−") }, { title: "Path", cls: "break wide", cell: (f) => f.path }, { title: "Size", cls: "num", cell: (f) => bytes(f.size) }, { title: "Digest", cell: (f) => h("code", {}, shortDigest(f.digest)) }]),
        section("Modified", d.modified, [{ title: "", cls: "markcol", cell: () => h("span", { class: "mark modified" }, "~") }, { title: "Path", cls: "break wide", cell: (f) => f.path }, { title: "Size", cls: "num", cell: (f) => bytes(f.old_size) + " → " + bytes(f.new_size) }, { title: "Digest", cell: (f) => h("code", {}, shortDigest(f.old_digest) + " → " + shortDigest(f.new_digest)) }]),
        section("References changed", d.references_changed, [{ title: "", cls: "markcol", cell: () => h("span", { class: "mark modified" }, "~") }, { title: "Path", cls: "break wide", cell: (f) => f.path }, { title: "Size", cls: "num", cell: (f) => bytes(f.old_size) + " → " + bytes(f.new_size) }, { title: "Identity", cell: (f) => h("code", {}, shortDigest(f.old_digest) + " → " + shortDigest(f.new_digest)) }]),
        section("Renamed", d.renamed, [{ title: "", cls: "markcol", cell: () => h("span", { class: "mark renamed" }, "→") }, { title: "From", cls: "break", cell: (f) => f.old_path }, { title: "To", cls: "break", cell: (f) => f.new_path }, { title: "Size", cls: "num", cell: (f) => bytes(f.size) }]),
        metaRows.length ? panel("Metadata changes (" + metaRows.length + ")", table([
          { title: "", cls: "markcol", cell: (m) => h("span", { class: "mark " + m.cls }, m.mark) }, { title: "Key", cell: (m) => m.k },
          { title: d.old.version, cell: (m) => m.old === null ? h("span", { class: "faint" }, "-") : h("div", { class: "meta-value" }, jsonText(m.old)) },
          { title: d.new.version, cell: (m) => m.nw === null ? h("span", { class: "faint" }, "-") : h("div", { class: "meta-value" }, jsonText(m.nw)) },
        ], metaRows), "flush") : null,
        d.description_changed ? panel("Description changed", h("div", { class: "grid" }, h("div", {}, h("h3", {}, d.old.version), h("div", { class: "description" }, d.old.description || "-")), h("div", {}, h("h3", {}, d.new.version), h("div", { class: "description" }, d.new.description || "-")))) : null,
        !sm.added && !sm.removed && !sm.modified && !sm.renamed && !sm.references_changed && !metaRows.length ? panel(null, empty("No differences.")) : null),
    ];
  }

  // ---------------------------------------------------------------------------------------------
  // The lineage graph: fetched from api/lineage, laid out left to right by dagre, drawn as SVG.
  // Above this many nodes dagre keeps its initial (depth-first) order instead of sweeping to minimise
  // crossings: the sweeps cost most of the layout time, and lineage neighbourhoods that big are trees
  // of pipelines where the initial order already has few crossings.
  const ORDER_LIMIT = 400;
  const COLLAPSES = [["type", "Collapsed"], ["group", "By run group"], ["explode", "Exploded"]];
  const DEPTHS = [["1", "1"], ["2", "2"], ["3", "3"], ["5", "5"], ["10", "10"], ["all", "All"]];
  const DIRECTIONS = [["both", "Both"], ["upstream", "Upstream"], ["downstream", "Downstream"]];
  const PALETTE = ["#2563eb", "#0891b2", "#7c3aed", "#db2777", "#ea580c", "#16a34a", "#ca8a04", "#4f46e5", "#0d9488", "#9333ea"];
  const ORCH = { prefect: ["P", "#6d28d9"], airflow: ["A", "#0e7490"], script: ["S", "#475569"] };
  function colorFor(text) {
    let x = 0;
    for (let i = 0; i < text.length; i++) x = (x * 31 + text.charCodeAt(i)) >>> 0;
    return PALETTE[x % PALETTE.length];
  }
  let measureCtx = null;
  function textWidth(text, font) {
    if (!measureCtx) measureCtx = document.createElement("canvas").getContext("2d");
    measureCtx.font = font;
    return measureCtx.measureText(text).width;
  }
  function fit(text, font, max) {
    if (textWidth(text, font) <= max) return text;
    let lo = 0, hi = text.length;
    while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (textWidth(text.slice(0, mid) + "…", font) <= max) lo = mid; else hi = mid - 1; }
    return text.slice(0, lo) + "…";
  }
  function describe(n) {
    const d = n.data || {};
    if (n.kind === "artifact") {
      if (n.id.startsWith("t:")) return { t1: d.type, t2: plural(d.count || 1, "version"), color: colorFor(d.type || ""), tip: d.type + ": " + plural(d.count || 1, "version") };
      const aliases = (d.aliases || []).filter((a) => a !== "latest");
      return { t1: n.label, t2: [d.type].concat(aliases.length ? [aliases.join(", ")] : []).join(" · "), color: colorFor(d.type || ""), tip: d.qualified_name + "\n" + d.digest };
    }
    const o = ORCH[d.orchestrator] || ["?", "#475569"];
    if (n.id.startsWith("j:")) return { t1: d.job_type, t2: plural(d.count || 1, "run") + " · " + (d.orchestrator || ""), badge: o, tip: "job type " + d.job_type };
    if (n.id.startsWith("g:")) return { t1: d.title || n.label, t2: (d.subtitle || d.group) + (d.runs ? " · " + plural(d.runs, "step") : ""), badge: o, tip: (d.orchestrator || "") + " group " + d.group, status: d.status };
    const runName = n.label.replace(/^[^:]*:\s*/, "");
    return { t1: d.job_type && d.job_type !== runName ? d.job_type + " / " + runName : runName, t2: [d.orchestrator, d.status].filter(Boolean).join(" · "), badge: o, tip: n.label + "\n" + (d.run_id || ""), status: d.status };
  }
  function nodeHref(n) {
    const d = n.data || {};
    if (n.kind === "artifact" && d.qualified_name) return versionHref(parseQualified(d.qualified_name));
    if (n.id.startsWith("r:")) return link.run(d.run_id);
    if (n.id.startsWith("g:")) return link.runs({ group: d.group });
    return null;
  }

  function lineagePanel(target, params, hrefFor, defaultCollapse) {
    const collapse = params.get("collapse") || defaultCollapse || "type";
    const depth = params.get("depth") || "3";
    const direction = params.get("direction") || "both";
    const state = { collapse: collapse, depth: depth, direction: direction };
    const nav = (change) => { location.hash = hrefFor(Object.assign({}, state, change)); };
    const seg = h("div", { class: "segmented", role: "group", "aria-label": "Collapse" }, COLLAPSES.map((c) =>
      h("button", { type: "button", "aria-pressed": c[0] === collapse ? "true" : "false", dataset: { collapse: c[0] }, onclick: () => nav({ collapse: c[0] }) }, c[1])));
    const depthSel = h("select", { "aria-label": "Depth", id: "lineage-depth" }, DEPTHS.map((d) => h("option", { value: d[0] }, d[1])));
    depthSel.value = depth;
    depthSel.addEventListener("change", () => nav({ depth: depthSel.value }));
    const dirSel = h("select", { "aria-label": "Direction", id: "lineage-direction" }, DIRECTIONS.map((d) => h("option", { value: d[0] }, d[1])));
    dirSel.value = direction;
    dirSel.addEventListener("change", () => nav({ direction: dirSel.value }));
    const svgEl = s("svg", { class: "graph", role: "img", "aria-label": "Lineage graph" });
    const wrap = h("div", { class: "graph-wrap", id: "lineage" }, svgEl,
      h("div", { class: "legend" }, h("span", {}, h("span", { class: "sw art" }), "artifact"), h("span", {}, h("span", { class: "sw run" }), "run"),
        h("span", {}, h("span", { class: "ln" }), "logged"), h("span", {}, h("span", { class: "ln used" }), "used")));
    const info = h("span", { class: "muted", id: "lineage-info" }, "");
    const toolbar = h("div", { class: "toolbar" }, seg, h("label", {}, "Depth", depthSel), h("label", {}, "Direction", dirSel), h("span", { class: "spacer" }), info);
    const container = h("div", {}, toolbar, wrap);
    const q = { direction: direction, collapse: collapse };
    if (depth !== "all") q.depth = depth;
    if (target.ref) q.ref = target.ref; else q.run = target.run;
    const t0 = performance.now();
    api("lineage", q).then((graph) => {
      const t1 = performance.now();
      drawGraph(svgEl, wrap, graph, info, () => nav({ collapse: "explode" }));
      const t2 = performance.now();
      timings.lineage = { fetchMs: t1 - t0, layoutAndDrawMs: t2 - t1, nodes: graph.nodes.length, edges: graph.edges.length };
      timings.lineage.drawnAt = performance.now();
      wrap.dataset.ready = "1";
      wrap.dataset.nodes = String(graph.nodes.length);
    }).catch((err) => { wrap.replaceChildren(errorBox(err)); wrap.dataset.ready = "error"; });
    return container;
  }

  function drawGraph(svgEl, wrap, graph, info, explode) {
    info.textContent = plural(graph.nodes.length, "node") + " · " + plural(graph.edges.length, "edge");
    if (!graph.nodes.length) { wrap.appendChild(h("div", { class: "graph-empty" }, "No lineage recorded.")); return; }
    const F1 = "600 12px " + getComputedStyle(document.body).fontFamily;
    const F2 = "11px " + getComputedStyle(document.body).fontFamily;
    const MAXW = 250, PADL = 14, PADR = 14, H = 46;
    const g = new dagre.graphlib.Graph({ multigraph: false });
    // network simplex ranks best but costs the most; lineage graphs are nearly trees, where tight-tree is as good
    const big = graph.nodes.length > 150;
    g.setGraph({ rankdir: "LR", nodesep: 12, ranksep: 56, edgesep: 8, marginx: 24, marginy: 24, ranker: big ? "tight-tree" : "network-simplex" });
    g.setDefaultEdgeLabel(() => ({}));
    const roots = new Set(graph.root || []);
    const info2 = {};
    for (const n of graph.nodes) {
      const d = describe(n);
      const left = n.kind === "run" ? 36 : PADL + 4;
      const t1 = fit(String(d.t1 || ""), F1, MAXW - left - PADR);
      const t2 = fit(String(d.t2 || ""), F2, MAXW - left - PADR);
      const w = Math.max(120, Math.ceil(Math.max(textWidth(t1, F1), textWidth(t2, F2))) + left + PADR);
      info2[n.id] = { n: n, d: d, t1: t1, t2: t2, left: left };
      g.setNode(n.id, { width: w, height: H });
    }
    for (const e of graph.edges) if (g.hasNode(e.source) && g.hasNode(e.target)) g.setEdge(e.source, e.target, { kind: e.kind });
    const tl = performance.now();
    dagre.layout(g, { disableOptimalOrderHeuristic: graph.nodes.length > ORDER_LIMIT });
    timings.layoutMs = performance.now() - tl;

    const defs = s("defs", {}, s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "9", refY: "5", markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" },
      s("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#9aa8bb" })),
    s("marker", { id: "arrow-hot", viewBox: "0 0 10 10", refX: "9", refY: "5", markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" },
      s("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#2563eb" })));
    const viewport = s("g", { class: "viewport" });
    const edgeLayer = s("g", { class: "edges" });
    const nodeLayer = s("g", { class: "nodes" });
    viewport.appendChild(edgeLayer);
    viewport.appendChild(nodeLayer);
    const edgeEls = {};
    for (const e of g.edges()) {
      const pts = g.edge(e).points || [];
      const kind = g.edge(e).kind;
      const el = s("g", { class: "edge " + kind, dataset: { source: e.v, target: e.w } }, s("path", { d: curve(pts), "marker-end": "url(#arrow)" }));
      (edgeEls[e.v] = edgeEls[e.v] || []).push(el);
      (edgeEls[e.w] = edgeEls[e.w] || []).push(el);
      edgeLayer.appendChild(el);
    }
    for (const id of g.nodes()) {
      const box = g.node(id), it = info2[id], n = it.n, d = it.d;
      const x = box.x - box.width / 2, y = box.y - box.height / 2;
      const grp = s("g", { class: "node " + n.kind + (roots.has(id) ? " root" : ""), transform: "translate(" + x + "," + y + ")", tabindex: "0", role: "link", dataset: { id: id, kind: n.kind } });
      grp.appendChild(s("title", { text: d.tip || n.label }));
      const rx = n.kind === "artifact" ? 7 : box.height / 2;
      grp.appendChild(s("rect", { class: "box", width: box.width, height: box.height, rx: rx }));
      if (n.kind === "artifact") {
        grp.appendChild(s("path", { class: "band", d: "M7,0 H6 V" + box.height + " H7 A7,7 0 0 1 0," + (box.height - 7) + " V7 A7,7 0 0 1 7,0 Z", fill: d.color }));
      } else {
        grp.appendChild(s("circle", { cx: 20, cy: box.height / 2, r: 10, fill: d.badge[1] }));
        grp.appendChild(s("text", { class: "badge-text", x: 20, y: box.height / 2 + 0.5, text: d.badge[0] }));
        if (d.status === "failed" || d.status === "crashed") grp.appendChild(s("circle", { cx: box.width - 10, cy: 10, r: 3.5, fill: "#dc2626" }));
      }
      grp.appendChild(s("rect", { class: "outline", width: box.width, height: box.height, rx: rx }));
      grp.appendChild(s("text", { class: "t1", x: it.left, y: 19, text: it.t1 }));
      grp.appendChild(s("text", { class: "t2", x: it.left, y: 34, text: it.t2 }));
      const href = nodeHref(n);
      const open = () => { if (href) location.hash = href; else explode(); };
      grp.addEventListener("click", (ev) => { if (!moved) open(); ev.stopPropagation(); });
      grp.addEventListener("keydown", (ev) => { if (ev.key === "Enter") open(); });
      grp.addEventListener("mouseenter", () => (edgeEls[id] || []).forEach((el) => { el.classList.add("hot"); el.firstChild.setAttribute("marker-end", "url(#arrow-hot)"); }));
      grp.addEventListener("mouseleave", () => (edgeEls[id] || []).forEach((el) => { el.classList.remove("hot"); el.firstChild.setAttribute("marker-end", "url(#arrow)"); }));
      nodeLayer.appendChild(grp);
    }
    svgEl.replaceChildren(defs, viewport);

    // pan and zoom
    const gw = g.graph().width || 1, gh = g.graph().height || 1;
    const view = { k: 1, x: 0, y: 0 };
    const apply = () => viewport.setAttribute("transform", "translate(" + view.x + "," + view.y + ") scale(" + view.k + ")");
    function fitView(focusRoot) {
      const W = svgEl.clientWidth || 1000, Hh = svgEl.clientHeight || 600;
      view.k = Math.min(1.1, Math.min(W / gw, Hh / gh) * 0.96);
      if (view.k < 0.45 && focusRoot && roots.size) {
        view.k = 0.6;
        const r = g.node(Array.from(roots).find((id) => g.hasNode(id)) || g.nodes()[0]);
        view.x = W / 3 - r.x * view.k; view.y = Hh / 2 - r.y * view.k;
      } else {
        view.x = (W - gw * view.k) / 2; view.y = (Hh - gh * view.k) / 2;
      }
      apply();
    }
    function zoomAt(factor, cx, cy) {
      const k = Math.max(0.08, Math.min(3, view.k * factor));
      view.x = cx - (cx - view.x) * (k / view.k); view.y = cy - (cy - view.y) * (k / view.k); view.k = k; apply();
    }
    let drag = null, moved = false;
    svgEl.addEventListener("wheel", (ev) => { ev.preventDefault(); const r = svgEl.getBoundingClientRect(); zoomAt(Math.exp(-ev.deltaY * 0.0015), ev.clientX - r.left, ev.clientY - r.top); }, { passive: false });
    svgEl.addEventListener("pointerdown", (ev) => { drag = { x: ev.clientX, y: ev.clientY, vx: view.x, vy: view.y }; moved = false; });
    svgEl.addEventListener("pointermove", (ev) => {
      if (!drag) return;
      const dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
      if (!moved && Math.abs(dx) + Math.abs(dy) > 4) { moved = true; svgEl.classList.add("dragging"); svgEl.setPointerCapture(ev.pointerId); }
      if (moved) { view.x = drag.vx + dx; view.y = drag.vy + dy; apply(); }
    });
    const end = () => { drag = null; svgEl.classList.remove("dragging"); setTimeout(() => { moved = false; }, 0); };
    svgEl.addEventListener("pointerup", end);
    svgEl.addEventListener("pointercancel", end);
    const W = () => svgEl.clientWidth, Hh = () => svgEl.clientHeight;
    wrap.appendChild(h("div", { class: "graph-zoom" },
      h("button", { class: "btn icon", type: "button", title: "Zoom in", "aria-label": "Zoom in", onclick: () => zoomAt(1.25, W() / 2, Hh() / 2) }, "+"),
      h("button", { class: "btn icon", type: "button", title: "Zoom out", "aria-label": "Zoom out", onclick: () => zoomAt(0.8, W() / 2, Hh() / 2) }, "−"),
      h("button", { class: "btn icon", type: "button", title: "Fit to view", "aria-label": "Fit to view", onclick: () => fitView(false) }, "⤢")));
    requestAnimationFrame(() => fitView(true));
    fitView(true);
  }

  function curve(pts) {
    if (!pts.length) return "";
    let d = "M" + pts[0].x.toFixed(1) + "," + pts[0].y.toFixed(1);
    if (pts.length === 2) return d + "L" + pts[1].x.toFixed(1) + "," + pts[1].y.toFixed(1);
    for (let i = 0; i < pts.length - 1; i++) { // Catmull-Rom through the points, as cubic Beziers
      const p0 = pts[i - 1] || pts[i], p1 = pts[i], p2 = pts[i + 1], p3 = pts[i + 2] || p2;
      const c1x = p1.x + (p2.x - p0.x) / 6, c1y = p1.y + (p2.y - p0.y) / 6;
      const c2x = p2.x - (p3.x - p1.x) / 6, c2y = p2.y - (p3.y - p1.y) / 6;
      d += "C" + c1x.toFixed(1) + "," + c1y.toFixed(1) + " " + c2x.toFixed(1) + "," + c2y.toFixed(1) + " " + p2.x.toFixed(1) + "," + p2.y.toFixed(1);
    }
    return d;
  }

  // ---------------------------------------------------------------------------------------------
  // Router
  let generation = 0;
  async function render() {
    const gen = ++generation;
    const started = performance.now();
    document.body.dataset.ready = "0";
    const r = route();
    const p = r.parts;
    let view = "projects", work;
    if (p[0] === "projects" && p.length === 3) { view = "project"; work = viewProject(p[1], p[2], r.params); }
    else if (p[0] === "collections" && p.length === 4) { view = "collection"; work = viewCollection(p[1], p[2], p[3]); }
    else if (p[0] === "versions" && p.length === 5) { view = "version"; work = viewVersion(p[1], p[2], p[3], p[4], r.params); }
    else if (p[0] === "runs" && p.length === 2) { view = "run"; work = viewRun(p[1], r.params); }
    else if (p[0] === "runs" && p.length === 1) { view = "runs"; work = viewRuns(r.params); }
    else if (p[0] === "diff" && p.length === 4) { view = "diff"; work = viewDiff(p[1], p[2], p[3], r.params); }
    else work = viewProjects();
    const timer = setTimeout(() => { if (gen === generation) app.replaceChildren(loading()); }, 120);
    let content;
    try { content = await work; } catch (err) { content = [errorBox(err)]; }
    clearTimeout(timer);
    if (gen !== generation) return;
    app.replaceChildren.apply(app, [].concat(content).flat(Infinity).filter(Boolean));
    document.title = (crumbsEl.lastChild ? crumbsEl.lastChild.textContent + " · " : "") + "Artifacts";
    timings.navigations++;
    document.body.dataset.view = view;
    document.body.dataset.nav = String(timings.navigations);
    document.body.dataset.ready = "1";
    timings.lastViewMs = performance.now() - started;
    timings.readyAt = performance.now();
  }
  window.addEventListener("hashchange", render);
  render();
})();
