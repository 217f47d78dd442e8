/* The analytics page: dashboard charts (Apache ECharts, vendored), each with a text alternative and a table
 * (CSV export); question groups with their 12345 tickets and the 建议主动公开 flag; work-order import with a
 * remembered column mapping; the weekly report. staff.js logs in and hands over its API helpers:
 *
 *   window.PolicyQAStaffAnalytics({ call, may, message, toast, formatTime, download });
 *
 * Server data is only ever set as text (textContent / ECharts series data), never as HTML.
 */
(function () {
  "use strict";
  const { el } = window.PolicyQA;
  const $ = (id) => document.getElementById(id);
  const CHANNEL_LABELS = { web: "网站", hotline: "热线坐席", newmedia: "新媒体", ticket: "12345工单" };
  const SUGGESTIONS = { publish: "建议主动公开", faq: "建议编写FAQ" };
  // Colour-blind-safe palette (Okabe–Ito), one colour per channel in every chart.
  const COLOURS = { web: "#0072B2", hotline: "#E69F00", newmedia: "#009E73", ticket: "#CC79A7" };
  const pct = (r) => (r === null || r === undefined ? "—" : Math.round(r * 100) + "%");
  let api = null;
  const charts = {};
  const tables = {};

  function filters() {
    const qs = new URLSearchParams();
    const days = $("a-days").value;
    if ($("a-from").value) qs.set("from", $("a-from").value);
    else if (days) qs.set("days", days);
    if ($("a-to").value) qs.set("to", $("a-to").value);
    if ($("a-channel").value) qs.set("channel", $("a-channel").value);
    if ($("a-department").value) qs.set("department", $("a-department").value);
    return qs;
  }

  // ------------------------------------------------------------------------------------------ charts
  function chart(id, option, alt, table) {
    const box = $("chart-" + id);
    if (window.echarts) {
      if (!charts[id]) charts[id] = window.echarts.init(box, null, { renderer: "svg" });
      charts[id].setOption({ animation: false, textStyle: { fontFamily: "inherit" }, ...option }, true);
    } else {
      box.textContent = "图表组件未能加载，请查看下方表格。";
    }
    $("alt-" + id).textContent = alt;
    tables[id] = table;
    const [thead, tbody] = [$("table-" + id).tHead, $("table-" + id).tBodies[0]];
    thead.replaceChildren(el("tr", {}, table.header.map((h) => el("th", { scope: "col", text: h }))));
    tbody.replaceChildren(...table.rows.map((r) => el("tr", {}, r.map((c, i) => (i === 0 ? el("th", { scope: "row", text: String(c) }) : el("td", { text: String(c) }))))));
  }

  function peak(days, values) {
    let best = -1;
    values.forEach((v, i) => {
      if (v !== null && (best < 0 || v > values[best])) best = i;
    });
    return best < 0 ? "" : "，最高为 " + days[best] + " 的 " + values[best];
  }

  function render(data) {
    const days = data.days;
    const channels = Object.keys(data.channels);
    const total = (c) => data.asks[c].reduce((a, b) => a + b, 0);
    const perDay = days.map((_, i) => channels.reduce((n, c) => n + data.asks[c][i], 0));
    const axis = { type: "category", data: days.map((d) => d.slice(5)) };
    chart(
      "asks",
      {
        tooltip: { trigger: "axis" },
        legend: { top: 0 },
        grid: { left: 40, right: 16, top: 36, bottom: 28 },
        xAxis: axis,
        yAxis: { type: "value", minInterval: 1 },
        series: channels.map((c) => ({ name: data.channels[c], type: "bar", stack: "asks", data: data.asks[c], itemStyle: { color: COLOURS[c] } })),
      },
      days[0] + " 至 " + days[days.length - 1] + " 共 " + data.totals.asks + " 次提问：" +
        channels.map((c) => data.channels[c] + " " + total(c)).join("，") + peak(days, perDay) + " 次。",
      { header: ["日期", ...channels.map((c) => data.channels[c]), "合计"], rows: days.map((d, i) => [d, ...channels.map((c) => data.asks[c][i]), perDay[i]]) }
    );
    chart(
      "rates",
      {
        tooltip: { trigger: "axis", valueFormatter: (v) => pct(v) },
        legend: { top: 0 },
        grid: { left: 48, right: 16, top: 36, bottom: 28 },
        xAxis: axis,
        yAxis: { type: "value", min: 0, max: 1, axisLabel: { formatter: (v) => Math.round(v * 100) + "%" } },
        series: [
          { name: "回答率", type: "line", data: data.answer_rate, connectNulls: false, itemStyle: { color: "#0072B2" } },
          { name: "拒答率", type: "line", data: data.refusal_rate, connectNulls: false, itemStyle: { color: "#D55E00" }, lineStyle: { type: "dashed" } },
        ],
      },
      "整体回答率 " + pct(data.totals.answer_rate) + "，拒答率 " + pct(data.totals.asks ? 1 - data.totals.answer_rate : null) + "（按日见表格）。",
      { header: ["日期", "回答率", "拒答率"], rows: days.map((d, i) => [d, pct(data.answer_rate[i]), pct(data.refusal_rate[i])]) }
    );
    chart(
      "feedback",
      {
        tooltip: { trigger: "axis" },
        legend: { top: 0 },
        grid: { left: 40, right: 16, top: 36, bottom: 28 },
        xAxis: axis,
        yAxis: { type: "value", minInterval: 1 },
        series: [
          { name: "有帮助", type: "bar", data: data.helpful, itemStyle: { color: "#009E73" } },
          { name: "没帮助", type: "bar", data: data.unhelpful, itemStyle: { color: "#D55E00" } },
        ],
      },
      "共收到评价 " + (data.totals.helpful + data.totals.unhelpful) + " 次：有帮助 " + data.totals.helpful + "，没帮助 " + data.totals.unhelpful + "。",
      { header: ["日期", "有帮助", "没帮助"], rows: days.map((d, i) => [d, data.helpful[i], data.unhelpful[i]]) }
    );
    groupChart("topics", data.top, "高频问题");
    groupChart("unanswered", data.unanswered, "未能回答的问题");
  }

  function groupChart(id, groups, label) {
    const shown = groups.slice(0, 10).reverse();
    const channels = Object.keys(CHANNEL_LABELS);
    chart(
      id,
      {
        tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
        legend: { top: 0 },
        grid: { left: 190, right: 24, top: 36, bottom: 24 },
        xAxis: { type: "value", minInterval: 1 },
        yAxis: { type: "category", data: shown.map((g) => g.representative), axisLabel: { width: 180, overflow: "truncate" } },
        series: channels.map((c) => ({ name: CHANNEL_LABELS[c], type: "bar", stack: "n", data: shown.map((g) => (g.channels || {})[c] || 0), itemStyle: { color: COLOURS[c] } })),
      },
      groups.length
        ? label + "前 " + Math.min(10, groups.length) + " 组，最多的是“" + groups[0].representative + "”，共 " + groups[0].count + " 次。"
        : "该时间范围内没有" + label + "。",
      {
        header: ["问题", "次数", ...channels.map((c) => CHANNEL_LABELS[c]), "建议"],
        rows: groups.slice(0, 10).map((g) => [g.representative, g.count, ...channels.map((c) => (g.channels || {})[c] || 0), SUGGESTIONS[g.suggestion] || ""]),
      }
    );
  }

  function renderTotals(data) {
    const items = [
      ["提问总数", data.totals.asks],
      ...Object.keys(data.channels).map((c) => [data.channels[c], data.totals["asks_" + c]]),
      ["回答率", pct(data.totals.answer_rate)],
      ["有帮助 / 没帮助", data.totals.helpful + " / " + data.totals.unhelpful],
      ["已拦截", data.totals.blocked || 0],
    ];
    $("totals").replaceChildren(...items.map(([k, v]) => el("div", { class: "total" }, el("dt", { text: k }), el("dd", { text: String(v) }))));
  }

  // Content safety: questions refused for a blocked word, by category (not counted in the asks above).
  function renderBlocked(data) {
    const rows = data.blocked || [];
    const total = rows.reduce((n, r) => n + r.count, 0);
    $("blocked-summary").textContent = total
      ? "共拦截 " + total + " 次提问：" + rows.map((r) => r.label + " " + r.count + " 次").join("，") + "。这些提问以固定话术答复，不计入上方提问量和回答率。"
      : "所选范围内没有被拦截的提问。";
    $("blocked-rows").replaceChildren(...rows.map((r) => el("tr", {}, el("td", { text: r.label }), el("td", { text: String(r.count) }))));
  }

  function fillDepartments(list) {
    const select = $("a-department");
    const current = select.value;
    const options = [el("option", { value: "", text: "全部部门" }), ...list.map((d) => el("option", { value: d, text: d }))];
    select.replaceChildren(...options);
    select.value = list.includes(current) ? current : "";
  }

  async function loadDashboard() {
    $("dashboard-status").textContent = "加载中……";
    const result = await api.call("GET", "/v1/analytics/dashboard?" + filters());
    if (!result.ok) {
      $("dashboard-status").textContent = api.message(result, "加载失败");
      return null;
    }
    const data = result.data;
    fillDepartments(data.departments || []);
    renderTotals(data);
    renderBlocked(data);
    render(data);
    $("dashboard-status").textContent = data.from + " 至 " + data.to + "：共 " + data.totals.asks + " 次提问。";
    return data;
  }

  function exportCsv(id) {
    const table = tables[id];
    if (!table) return;
    const quote = (v) => '"' + String(v).replace(/"/g, '""') + '"';
    const lines = [table.header, ...table.rows].map((r) => r.map(quote).join(","));
    const blob = new Blob(["\ufeff" + lines.join("\r\n")], { type: "text/csv;charset=utf-8" });
    api.download(blob, $("title-" + id).textContent + ".csv");
  }

  // ------------------------------------------------------------------------------------------ groups
  async function loadGroups() {
    const qs = filters();
    qs.set("kind", $("a-kind").value);
    $("analytics-status").textContent = "加载中……";
    const result = await api.call("GET", "/v1/analytics/groups?" + qs);
    if (!result.ok) {
      $("analytics-status").textContent = api.message(result, "加载失败");
      return;
    }
    const groups = result.data.groups;
    $("analytics-status").textContent = groups.length ? "共 " + groups.length + " 组" : "该时间范围内没有记录。";
    $("group-rows").replaceChildren(...groups.map((g) => groupRow(g, qs)));
  }

  function groupRow(g, qs) {
    const others = g.examples.filter((e) => e !== g.representative);
    const channels = Object.entries(g.channels || {}).map(([c, n]) => (CHANNEL_LABELS[c] || c) + " " + n).join("，");
    const actions = [];
    if (api.may("editor")) {
      const promote = el("button", { type: "button", class: "button-quiet", text: "转为FAQ草稿" });
      promote.addEventListener("click", () => promoteGroup(g, qs, promote));
      actions.push(promote);
    }
    if (g.tickets) {
      const show = el("button", { type: "button", class: "button-quiet", text: "查看工单（" + g.tickets + "）" });
      show.addEventListener("click", () => showTickets(g, qs));
      actions.push(show);
    }
    if (g.conversations && g.conversations.length) {
      const show = el("button", { type: "button", class: "button-quiet", text: "查看对话（" + g.conversations.length + "）" });
      show.addEventListener("click", () => showConversations(g));
      actions.push(show);
    }
    return el(
      "tr",
      {},
      el("td", {}, el("strong", { text: g.representative }), g.faq_ids && g.faq_ids.length ? el("div", { class: "muted", text: "已由 " + g.faq_ids.join("、") + " 回答" }) : null),
      // A follow-up counts with the topic its conversation opened, not as a question of its own.
      el("td", {}, String(g.count), g.follow_ups ? el("div", { class: "muted", text: "另有追问 " + g.follow_ups }) : null),
      el("td", { text: pct(g.answered_rate) }),
      el("td", {}, others.length ? el("ul", { class: "examples" }, others.slice(0, 6).map((e) => el("li", { text: e }))) : el("span", { class: "muted", text: "—" })),
      el("td", { text: channels }),
      el("td", {}, g.suggestion ? el("span", { class: "suggestion suggestion-" + g.suggestion, text: SUGGESTIONS[g.suggestion] }) : null),
      el("td", { class: "row-actions" }, actions)
    );
  }

  async function promoteGroup(group, qs, button) {
    button.disabled = true;
    const body = { kind: qs.get("kind") };
    if (qs.get("days")) body.days = Number(qs.get("days"));
    if (qs.get("from")) body.from = qs.get("from");
    if (qs.get("to")) body.to = qs.get("to");
    if (qs.get("channel") && qs.get("channel") !== "ticket") body.channel = qs.get("channel");
    const result = await api.call("POST", "/v1/analytics/groups/" + encodeURIComponent(group.id) + "/promote", body);
    if (!result.ok) {
      button.disabled = false;
      api.toast(api.message(result, "生成草稿失败"));
      return;
    }
    window.location.assign("/staff/faqs/" + encodeURIComponent(result.data.faq.faq_id));
  }

  async function showTickets(group, qs) {
    const result = await api.call("GET", "/v1/analytics/groups/" + encodeURIComponent(group.id) + "/tickets?" + qs);
    if (!result.ok) return api.toast(api.message(result, "加载工单失败"));
    $("tickets-title").textContent = "“" + group.representative + "”的相关工单（" + result.data.total + " 件）";
    $("ticket-rows").replaceChildren(
      ...result.data.tickets.map((t) =>
        el("tr", {}, el("td", { text: t.ticket_no }), el("td", { text: api.formatTime(t.received_at) }), el("td", { text: t.content }),
          el("td", { text: t.department || "" }), el("td", { text: t.result || "" }))
      )
    );
    $("tickets-panel").hidden = false;
    $("tickets-panel").focus();
  }

  async function showConversations(group) {
    const rows = [];
    for (const sid of group.conversations) {
      const result = await api.call("GET", "/v1/analytics/conversations/" + encodeURIComponent(sid));
      if (!result.ok) return api.toast(api.message(result, "加载对话失败"));
      for (const t of result.data.turns) {
        const first = t.sources[0];
        const source = first ? "《" + first.title + "》" + (first.section || "").split(">").pop().trim() : "";
        rows.push(el("tr", {}, el("td", { text: api.formatTime(t.at) }), el("td", { text: String(t.turn || "") }),
          el("td", { text: t.asked }), el("td", { text: t.understood || "—" }),
          el("td", { text: t.answered ? "已回答" : "未回答" }), el("td", { text: source })));
      }
    }
    $("conversations-title").textContent = "“" + group.representative + "”的对话（" + group.conversations.length + " 个，含追问）";
    $("conversation-rows").replaceChildren(...rows);
    $("conversations-panel").hidden = false;
    $("conversations-panel").focus();
  }

  // ------------------------------------------------------------------------------------------ work orders
  let labels = {};
  async function loadMapping() {
    const result = await api.call("GET", "/v1/workorders/mapping");
    if (!result.ok) return;
    labels = result.data.labels;
    $("wo-mapping").replaceChildren(
      ...Object.keys(labels).map((field) => {
        const hint = "wo-hint-" + field;
        const input = el("input", { id: "wo-map-" + field, name: field, type: "text", autocomplete: "off", "aria-describedby": hint,
          placeholder: (result.data.defaults[field] || [])[0] || "" });
        input.value = result.data.mapping[field] || "";
        return el("div", { class: "field" }, el("label", { for: "wo-map-" + field, text: labels[field] + " 列" }), input,
          el("span", { class: "muted", id: hint, text: "留空则自动识别：" + (result.data.defaults[field] || []).join("、") }));
      })
    );
  }

  function mapping() {
    const out = {};
    for (const field of Object.keys(labels)) {
      const value = $("wo-map-" + field).value.trim();
      if (value) out[field] = value;
    }
    return out;
  }

  // The import runs on the server as a job (POST answers 202 at once); its progress is polled until it finishes.
  const IMPORT_POLL_MS = 1000;
  const IMPORT_STAGES = { queued: "排队等待", running: "开始导入", reading: "读取表格", checking: "逐条隐去个人信息",
    embedding: "与群众提问归类", answering: "核对知识库能否解答", saving: "保存" };

  function importProgress(job) {
    const stage = IMPORT_STAGES[job.stage] || "导入中";
    const counted = job.total ? "：" + job.done + " / " + job.total + " 条" : (job.done ? "：已读 " + job.done + " 行" : "");
    return "正在导入（" + stage + counted + "）……";
  }

  async function waitForImport(job, box) {
    while (job.state === "queued" || job.state === "running") {
      box.replaceChildren(el("p", { text: importProgress(job) }));
      await new Promise((resolve) => setTimeout(resolve, IMPORT_POLL_MS));
      const polled = await api.call("GET", "/v1/workorders/jobs/" + encodeURIComponent(job.id));
      if (!polled.ok) return polled;
      job = polled.data;
    }
    if (job.state === "done") return { ok: true, status: 200, data: job.result };
    return { ok: false, status: 422, data: job.error };
  }

  async function importTickets(event) {
    event.preventDefault();
    const file = $("wo-file").files[0];
    if (!file) return;
    const form = new FormData();
    form.append("file", file);
    form.append("mapping", JSON.stringify(mapping()));
    const box = $("wo-result");
    box.replaceChildren(el("p", { text: "正在上传……" }));
    const started = await api.call("POST", "/v1/workorders/import", form);
    const result = started.ok ? await waitForImport(started.data, box) : started;
    const data = result.data || {};
    const lines = [];
    if (result.ok) lines.push(el("p", { text: "共 " + data.rows + " 行：新增 " + data.added + " 件，已导入过 " + data.duplicates + " 件，有误 " + data.errors.length + " 行。" }));
    else lines.push(el("p", { class: "form-error", text: api.message(result, "导入失败") }));
    if ((data.errors || []).length) {
      lines.push(el("ul", { class: "import-errors" }, data.errors.slice(0, 50).map((e) => el("li", { text: "第 " + e.row + " 行：" + e.error }))));
    }
    box.replaceChildren(...lines);
    if (result.ok) {
      loadMapping();
      refresh();
    }
  }

  // ------------------------------------------------------------------------------------------ report
  let period = null;
  async function report(format) {
    if (!period) return;
    const qs = new URLSearchParams({ from: period.from, to: period.to, format });
    const result = await api.call("GET", "/v1/analytics/report?" + qs, undefined, true);
    if (!result.ok) return api.toast(api.message(result, "生成周报失败"));
    api.download(result.blob, "政策问答周报-" + period.from + "-" + period.to + "." + format);
  }

  async function refresh() {
    const data = await loadDashboard();
    if (data) period = { from: data.from, to: data.to };
    loadGroups();
  }

  // pages.js freezes window.PolicyQA, so this page's entry point is a global of its own.
  window.PolicyQAStaffAnalytics = function (helpers) {
    api = helpers;
    $("analytics-form").addEventListener("submit", (event) => {
      event.preventDefault();
      refresh();
    });
    $("a-days").addEventListener("change", () => {
      if ($("a-days").value) $("a-from").value = "";
    });
    $("a-kind").addEventListener("change", loadGroups);
    for (const button of document.querySelectorAll("[data-export]")) button.addEventListener("click", () => exportCsv(button.getAttribute("data-export")));
    $("report-xlsx").addEventListener("click", () => report("xlsx"));
    $("report-html").addEventListener("click", () => report("html"));
    $("conversations-close").addEventListener("click", () => {
      $("conversations-panel").hidden = true;
    });
    $("tickets-close").addEventListener("click", () => {
      $("tickets-panel").hidden = true;
    });
    $("wo-form").addEventListener("submit", importTickets);
    window.addEventListener("resize", () => Object.values(charts).forEach((c) => c.resize()));
    for (const d of document.querySelectorAll("details.chart-table")) d.addEventListener("toggle", () => Object.values(charts).forEach((c) => c.resize()));
    if (api.may("editor")) loadMapping();
    refresh();
  };
})();
