// The status page's script. Every value from the fleet reaches the page as
// text (textContent, setAttribute), never as HTML: node ids, errors and
// NACK reasons are whatever the data planes sent.
"use strict";

(function () {
  const RETRY_MS = 2000;

  // An element with attributes and children (strings become text nodes).
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value !== undefined && value !== null) node.setAttribute(name, String(value));
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  // A class-safe form of a state word.
  function token(word) {
    return String(word || "unknown").toLowerCase().replace(/[^a-z0-9_]/g, "_");
  }

  function badge(state) {
    return el("span", { class: "state state-" + token(state), "data-state": state }, state || "unknown");
  }

  function table(headings, rows, empty) {
    if (rows.length === 0) return el("p", { class: "empty" }, empty);
    return el("table", {},
      el("thead", {}, el("tr", {}, headings.map((h) => el("th", {}, h)))),
      el("tbody", {}, rows));
  }

  function number(x) {
    return Math.abs(x - Math.round(x)) < 0.05 ? String(Math.round(x)) : x.toFixed(1);
  }

  function ms(x) {
    return x >= 100 ? Math.round(x) + " ms" : x.toFixed(1) + " ms";
  }

  function age(millis) {
    const s = millis / 1000;
    if (s < 60) return s.toFixed(1) + " s";
    const m = Math.floor(s / 60);
    if (m < 60) return m + " min " + Math.floor(s % 60) + " s";
    const h = Math.floor(m / 60);
    return h < 48 ? h + " h " + (m % 60) + " min" : Math.floor(h / 24) + " days";
  }

  function list(items) {
    return items.join(", ");
  }

  function note(label, text) {
    return el("li", {}, el("span", { class: "note-label" }, label + ": "), text);
  }

  function seenChip(seen) {
    let label = seen.node_id;
    if (seen.state === "failing" && seen.consecutive_failures > 0) {
      label += " · " + seen.consecutive_failures + " failures";
    } else if (seen.state === "copies_out") {
      label += " · " + seen.copies_in_rotation + "/" + seen.copies + " copies";
    } else if (seen.state === "ejected") {
      label += " · ejected";
    }
    return el("span", {
      class: "chip chip-" + token(seen.state),
      "data-node": seen.node_id,
      "data-seen": seen.state,
      title: seen.last_error || seen.state,
    }, label);
  }

  function memberRow(member) {
    const chips = member.seen_by.map(seenChip);
    if (member.more_in_rotation > 0) {
      chips.push(el("span", { class: "chip chip-more" }, "+" + member.more_in_rotation + " in rotation"));
    }
    if (member.more_out > 0) {
      chips.push(el("span", { class: "chip chip-failing" }, "+" + member.more_out + " out"));
    }
    if (chips.length === 0) chips.push(el("span", { class: "muted" }, "no data plane reports it"));
    const errors = member.seen_by
      .filter((s) => s.last_error && s.state !== "in_rotation")
      .map((s) => el("div", { class: "error" }, s.node_id + ": " + s.last_error));
    const state = [badge(member.state)];
    if (member.fleet_ejected) state.push(el("span", { class: "muted" }, " out fleet-wide"));
    return el("tr", { "data-member": member.name },
      el("td", { class: "name" }, member.name),
      el("td", {}, state),
      el("td", { class: "num" }, member.weight),
      el("td", {}, el("div", { class: "chips" }, chips), errors));
  }

  function groupCard(group) {
    const notes = [];
    if (group.degraded_on.length) notes.push(note("member out on", list(group.degraded_on)));
    if (group.circuit_open_on.length) notes.push(note("circuit open on", list(group.circuit_open_on)));
    if (group.ejected.length) notes.push(note("ejected", list(group.ejected)));
    for (const warning of group.tool_warnings) notes.push(note("warning", warning));
    return el("div", { class: "group", "data-group": group.name },
      el("div", { class: "group-head" },
        el("h3", {}, group.name),
        badge(group.state),
        el("span", { class: "meta" },
          group.strategy + " · " + group.healthy_members + "/" + group.total_members +
          " members healthy · min_healthy " + group.min_healthy)),
      notes.length ? el("ul", { class: "notes" }, notes) : null,
      table(["Member", "State", "Weight", "As each data plane sees it"],
        group.members.map(memberRow), "No members."));
  }

  function serverRow(s) {
    const healthy = s.reported_by === 0 ? "–" : s.healthy_on + "/" + s.reported_by;
    const latency = s.p99_ms > 0 ? ms(s.p50_ms) + " / " + ms(s.p99_ms) : "–";
    const state = [badge(s.state)];
    if (s.fleet_ejected) state.push(el("span", { class: "muted" }, " out fleet-wide"));
    const error = s.healthy_on < s.reported_by ? s.last_error : "";
    return el("tr", { "data-server": s.name },
      el("td", { class: "name" }, s.name),
      el("td", {}, s.mode === "subprocess" ? "subprocess ×" + s.replicas : s.mode),
      el("td", {}, state),
      el("td", { class: "target" }, s.target),
      el("td", { class: "num" }, healthy),
      el("td", { class: "num" }, s.calls),
      el("td", { class: "num" }, s.errors),
      el("td", { class: "num" }, latency),
      el("td", { class: "error" }, error));
  }

  function planeRow(p, version) {
    const acked = p.behind ? "v" + p.acked_version + " (config is v" + version + ")" : "v" + p.acked_version;
    return el("tr", { "data-plane": p.node_id },
      el("td", { class: "name" }, p.node_id),
      el("td", {}, badge(p.state)),
      el("td", {}, p.listen_addr || "–"),
      el("td", { class: p.behind ? "behind" : "" }, acked),
      el("td", { class: "num" }, age(p.last_report_age_ms) + " ago"),
      el("td", { class: "num" }, p.connected_for_ms > 0 ? age(p.connected_for_ms) : "–"),
      el("td", {}, p.build_version || "–"),
      el("td", { class: "error" }, p.last_nack || "–"));
  }

  function nackRow(n) {
    return el("tr", { "data-nack": n.node_id },
      el("td", { class: "num" }, age(n.age_ms) + " ago"),
      el("td", { class: "name" }, n.node_id),
      el("td", { class: "num" }, "v" + n.version),
      el("td", { class: "error" }, n.reason));
  }

  function limitRow(l) {
    const size = [];
    if (l.rps > 0) size.push(number(l.rps) + "/s burst " + l.burst);
    if (l.per_caller_rps > 0) size.push(number(l.per_caller_rps) + "/s burst " + l.per_caller_burst + " each caller");
    const planes = l.data_planes.map((p) => {
      const part = l.scope === "fleet" && p.share_rps > 0
        ? "share " + number(p.share_rps) + "/s"
        : "admits " + number(p.admitted_rps) + "/s";
      return el("div", {}, p.node_id + ": " + part + ", asked " + number(p.offered_rps) + "/s");
    });
    return el("tr", { "data-limit": l.limit },
      el("td", { class: "name" }, l.name),
      el("td", {}, l.scope),
      el("td", {}, size.length ? size.join(", ") : "–"),
      el("td", { class: "num" }, number(l.admitted_rps) + "/s"),
      el("td", { class: l.refused_rps > 0 ? "num refused" : "num" }, number(l.refused_rps) + "/s"),
      el("td", {}, planes.length ? planes : "–"));
  }

  function render(status) {
    document.getElementById("version").textContent = "config version " + status.version;
    document.getElementById("groups").replaceChildren(
      status.groups.length ? el("div", {}, status.groups.map(groupCard)) : el("p", { class: "empty" }, "No groups in the config."));
    document.getElementById("servers").replaceChildren(table(
      ["Server", "Mode", "State", "Endpoint or command", "Healthy on", "Calls", "Errors", "p50 / p99", "Last error"],
      status.servers.map(serverRow), "No servers in the config."));
    document.getElementById("data-planes").replaceChildren(table(
      ["Data plane", "State", "Listen", "Acked", "Last report", "Connected for", "Build", "Last NACK"],
      status.data_planes.map((p) => planeRow(p, status.version)), "No data plane has connected."));
    document.getElementById("nacks").replaceChildren(table(
      ["When", "Data plane", "Version", "Reason"], status.nacks.map(nackRow), "No snapshot was rejected."));
    document.getElementById("limits").replaceChildren(table(
      ["Rate limit", "Scope", "Size", "Admitted", "Refused", "Data planes"],
      status.rate_limits.map(limitRow), "No rate limits in the config."));
  }

  function live(state, text) {
    const indicator = document.getElementById("live");
    indicator.setAttribute("data-live", state);
    indicator.textContent = text;
  }

  function connect() {
    const events = new EventSource("/status/events");
    events.addEventListener("status", (message) => {
      let status;
      try {
        status = JSON.parse(message.data);
      } catch (err) {
        live("error", "unreadable status");
        return;
      }
      render(status);
      live("live", "live · updated " + new Date().toLocaleTimeString());
    });
    events.addEventListener("error", () => {
      if (events.readyState !== EventSource.CLOSED) {
        live("connecting", "reconnecting…");
        return;
      }
      // Refused (not a broken connection): ask once why, then try again.
      fetch("/status.json", { credentials: "same-origin" }).then((answer) => {
        if (answer.status === 401 || answer.status === 403) {
          live("error", "not allowed: open /?token=ADMIN_TOKEN again");
        } else {
          live("connecting", "reconnecting…");
          setTimeout(connect, RETRY_MS);
        }
      }, () => {
        live("connecting", "control plane unreachable; retrying…");
        setTimeout(connect, RETRY_MS);
      });
    });
  }

  connect();
})();
