/* Staff curation pages: login with a staff key (GET /v1/me; the key stays in this tab's sessionStorage),
 * FAQ list / edit / review / publish, import and export; the analytics page's own script is staff.dashboard.js.
 * Server data is only ever set as text (textContent, input values), never as HTML.
 */
(function () {
  "use strict";
  const { el, chineseMessage, request } = window.PolicyQA;
  const toast = (text) => window.PolicyQA.toast(text, 2600);

  const KEY_STORAGE = "policyqa-staff-key";
  const CONSOLE_KEY_STORAGE = "policyqa-console-key"; // one login serves the console and these pages
  const ROLE_RANK = { operator: 1, editor: 2, reviewer: 3, admin: 4 };
  const ROLE_LABELS = { operator: "话务员", editor: "编辑", reviewer: "审核员", admin: "管理员" };
  const STATUS_LABELS = { draft: "草稿", in_review: "待审核", published: "已发布", retired: "已下线" };
  const ACTION_LABELS = {
    import: "导入", "import-update": "导入更新", create: "新建", promote: "由问题分析生成", edit: "编辑",
    submit: "提交审核", review: "审核通过（保密审查）", reject: "退回修改", publish: "发布", retire: "下线", reopen: "恢复为草稿",
  };
  const FIELD_LABELS = {
    question: "问题", answer: "答案", variants: "相似问法", source_titles: "来源文件", source_articles: "条款",
    topic: "主题", publisher: "发布机构", short_answer: "简短答复", department: "主管部门", status: "状态", reviewer: "审核人",
  };
  const CONTENT_FIELDS = ["question", "answer", "variants", "source_titles", "source_articles", "topic", "publisher", "short_answer", "department"];
  const LIST_FIELDS = ["variants", "source_titles", "source_articles"];

  const $ = (id) => document.getElementById(id);
  let apiKey = null;
  let me = null;
  let initialized = false;

  function storage() {
    try {
      return window.sessionStorage;
    } catch (_) {
      return null;
    }
  }

  function message(result, fallback) {
    if (result.status === 0) return "无法连接服务，请检查网络后重试。";
    return chineseMessage(result.data, fallback || "操作失败（" + result.status + "）");
  }

  // -------------------------------------------------------------------------------------------- API
  async function call(method, path, body, raw) {
    const result = await request(method, path, { key: apiKey, body, raw });
    if (result.status === 401 && path !== "/v1/me") {
      logout("登录已失效，请重新输入密钥。");
      return { ok: false, status: 401, data: null };
    }
    return result;
  }

  function may(role) {
    return me && (ROLE_RANK[me.role] || 0) >= ROLE_RANK[role];
  }

  function applyRoles(root) {
    for (const node of (root || document).querySelectorAll("[data-min-role]")) {
      if (!may(node.getAttribute("data-min-role"))) node.hidden = true;
    }
  }

  // -------------------------------------------------------------------------------------------- login
  async function login(key) {
    apiKey = key;
    const result = await call("GET", "/v1/me");
    if (!result.ok) {
      apiKey = null;
      return result;
    }
    me = result.data;
    const store = storage();
    if (store) store.setItem(KEY_STORAGE, key);
    return result;
  }

  function logout(reason) {
    apiKey = null;
    me = null;
    const store = storage();
    if (store) {
      store.removeItem(KEY_STORAGE);
      store.removeItem(CONSOLE_KEY_STORAGE);
    }
    $("staff-app").hidden = true;
    $("whoami").hidden = true;
    $("staff-nav").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = reason || "";
    $("login-key").focus();
  }

  function showApp() {
    $("login").hidden = true;
    $("whoami").hidden = false;
    $("staff-nav").hidden = false;
    $("whoami-name").textContent = me.name + "（" + (ROLE_LABELS[me.role] || me.role) + (me.department ? "，" + me.department : "") + "）";
    const page = $("staff-app").getAttribute("data-page");
    for (const a of document.querySelectorAll("[data-nav]")) {
      if (page.startsWith(a.getAttribute("data-nav").replace(/s$/, ""))) a.setAttribute("aria-current", "page");
    }
    $("staff-app").hidden = false;
    applyRoles();
    initialized = true;
    const init = { faqs: initList, "faq-edit": initEdit, analytics: initAnalytics, safety: initSafety }[page];
    if (init) init();
  }

  async function start() {
    $("login-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const key = $("login-key").value.trim();
      if (!key) return;
      const result = await login(key);
      if (!result.ok) {
        $("login-error").textContent = result.status === 401 ? "密钥无效或已停用。" : message(result);
        return;
      }
      $("login-key").value = "";
      // Another person on a page already set up for someone else: start afresh with their role.
      if (initialized) window.location.reload();
      else showApp();
    });
    $("logout").addEventListener("click", () => logout(""));
    const store = storage();
    const saved = store && (store.getItem(KEY_STORAGE) || store.getItem(CONSOLE_KEY_STORAGE));
    if (saved && (await login(saved)).ok) showApp();
    else logout("");
  }

  // -------------------------------------------------------------------------------------------- helpers
  // "王编辑 #3": names may repeat across keys, the key id tells two people of one name apart.
  function who(name, keyId) {
    return (name || "—") + (keyId != null ? " #" + keyId : "");
  }

  function formatTime(iso) {
    if (!iso) return "";
    const d = new Date(iso.endsWith("Z") || iso.includes("+") ? iso : iso + "Z");
    if (isNaN(d.getTime())) return iso;
    const pad = (n) => String(n).padStart(2, "0");
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " + pad(d.getHours()) + ":" + pad(d.getMinutes());
  }

  function statusBadge(status) {
    return el("span", { class: "status-badge status-" + status, text: STATUS_LABELS[status] || status });
  }

  function download(blob, name) {
    const url = URL.createObjectURL(blob);
    const a = el("a", { href: url, download: name });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }

  // -------------------------------------------------------------------------------------------- FAQ list
  function initList() {
    const params = new URLSearchParams(window.location.search);
    const status = params.get("status") || "";
    const q = params.get("q") || "";
    $("search-q").value = q;
    for (const a of $("status-tabs").querySelectorAll("a")) {
      if (a.getAttribute("data-status") === status) a.setAttribute("aria-current", "page");
    }
    $("search-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const next = new URLSearchParams();
      if (status) next.set("status", status);
      const term = $("search-q").value.trim();
      if (term) next.set("q", term);
      window.location.search = next.toString();
    });
    $("export").addEventListener("click", async () => {
      const result = await call("GET", "/v1/faqs/export" + (status ? "?status=" + encodeURIComponent(status) : ""), undefined, true);
      if (!result.ok) return toast(message(result, "导出失败"));
      download(result.blob, "FAQ-" + (status || "全部") + "-" + new Date().toISOString().slice(0, 10) + ".xlsx");
    });
    $("import-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const file = $("import-file").files[0];
      if (!file) return;
      const form = new FormData();
      form.append("file", file);
      const box = $("import-result");
      box.replaceChildren(el("p", { text: "正在导入……" }));
      const result = await call("POST", "/v1/faqs/import", form);
      const data = result.data || {};
      const lines = [];
      if (result.ok) lines.push(el("p", { text: "新增 " + data.imported + " 条（草稿），更新 " + data.updated + " 条（其中未变化 " + (data.unchanged || 0) + " 条）。" }));
      else lines.push(el("p", { class: "form-error", text: message(result, "导入失败") }));
      const errors = data.errors || [];
      if (errors.length) {
        lines.push(el("p", { text: "以下 " + errors.length + " 行未导入：" }));
        lines.push(el("ul", { class: "import-errors" }, errors.map((e) => el("li", { text: (e.row ? "第 " + e.row + " 行：" : "") + e.error }))));
      }
      const warnings = data.warnings || [];
      if (warnings.length) {
        // Content safety: imported as they are; staff decide whether to change them.
        lines.push(el("p", { text: "以下 " + warnings.length + " 条含有拦截词表中的词语，已按原样导入，请核对：" }));
        lines.push(el("ul", { class: "import-warnings" }, warnings.map((w) => el("li", { text: w.faq_id + "：含“" + w.pattern + "”（" + w.label + "）" }))));
      }
      box.replaceChildren(...lines);
      if (result.ok) loadList(status, q);
    });
    loadList(status, q);
  }

  async function loadList(status, q) {
    const qs = new URLSearchParams();
    if (status) qs.set("status", status);
    if (q) qs.set("q", q);
    $("list-status").textContent = "加载中……";
    const result = await call("GET", "/v1/faqs" + (qs.toString() ? "?" + qs : ""));
    if (!result.ok) {
      $("list-status").textContent = message(result, "加载失败");
      return;
    }
    const rows = result.data.faqs.map((f) =>
      el(
        "tr",
        {},
        el("td", {}, el("a", { href: "/staff/faqs/" + encodeURIComponent(f.faq_id), text: f.faq_id })),
        el("td", { text: f.question }),
        el("td", {}, statusBadge(f.status)),
        el("td", { text: f.topic || "" }),
        el("td", { text: f.department || "" }),
        el("td", { text: f.author || "" }),
        el("td", { text: f.reviewer || "" }),
        el("td", { text: formatTime(f.updated_at) })
      )
    );
    $("faq-rows").replaceChildren(...rows);
    $("list-status").textContent = "共 " + result.data.total + " 条";
  }

  // -------------------------------------------------------------------------------------------- FAQ edit
  let entry = null;

  function fieldValue(name) {
    const value = $("f-" + name).value;
    if (LIST_FIELDS.includes(name)) return value.split("\n").map((s) => s.trim()).filter(Boolean);
    return value.trim();
  }

  function fillForm(f) {
    for (const name of CONTENT_FIELDS) {
      const value = f[name];
      $("f-" + name).value = Array.isArray(value) ? value.join("\n") : value || "";
    }
  }

  function renderEntry(f) {
    entry = f;
    fillForm(f);
    $("edit-title").textContent = f.faq_id;
    document.title = "编辑 " + f.faq_id + " · 政策问答知识库管理";
    $("status-badge").replaceChildren(statusBadge(f.status));
    const meta = ["作者：" + who(f.author, f.author_key_id)];
    if (f.confidentiality_checked_by) meta.push("保密审查：" + who(f.confidentiality_checked_by, f.reviewer_key_id) + "，" + formatTime(f.confidentiality_checked_at));
    if (f.updated_at) meta.push("更新于 " + formatTime(f.updated_at));
    // A key of one department acts only on that department's entries (admins on all); the server enforces it too.
    const ours = !me.department || me.role === "admin" || f.department === me.department;
    if (!ours) meta.push("本条目属于“" + (f.department || "未指定部门") + "”，您只能查看");
    $("edit-meta").textContent = meta.join("　");
    const editable = f.status !== "retired" && ours;
    for (const name of CONTENT_FIELDS) $("f-" + name).disabled = !editable || !may("editor");
    $("save").hidden = !editable || !may("editor");
    $("save").textContent = f.status === "draft" ? "保存草稿" : "保存（将退回草稿，需重新审核）";
    $("submit-review").hidden = f.status !== "draft" || !may("editor") || !ours;
    $("reopen").hidden = f.status !== "retired" || !may("editor") || !ours;
    const panel = $("review-panel");
    panel.hidden = !may("reviewer") || !ours;
    // Four eyes compare keys, not names (two people may share a name); names only for entries written without a key.
    const own = f.author_key_id != null ? f.author_key_id === me.key_id : f.author === me.name;
    $("confidentiality").checked = false;
    const reviewed = f.status === "in_review" && Boolean(f.confidentiality_checked_by);
    $("approve").hidden = !(f.status === "draft" || f.status === "in_review") || reviewed || own;
    $("confidentiality").closest("label").hidden = $("approve").hidden;
    $("reject").hidden = !(f.status === "draft" || f.status === "in_review") || own;
    $("publish").hidden = !reviewed || own;
    $("retire").hidden = f.status === "retired";
    $("review-error").textContent = own && f.status !== "published" && f.status !== "retired" ? "您是本条目的作者，不能审核或发布，请由其他审核员处理。" : "";
    loadHistory(f.faq_id);
  }

  async function loadHistory(faqId) {
    const result = await call("GET", "/v1/faqs/" + encodeURIComponent(faqId) + "/audit");
    if (!result.ok) return;
    const rows = result.data.audit
      .slice()
      .reverse()
      .map((a) => {
        const changes = [];
        const before = a.before || {};
        const after = a.after || {};
        for (const key of Object.keys(FIELD_LABELS)) {
          const b = JSON.stringify(before[key] ?? null);
          const n = JSON.stringify(after[key] ?? null);
          if (a.before && b !== n) changes.push(FIELD_LABELS[key] + (key === "status" ? "：" + (STATUS_LABELS[before[key]] || "") + " → " + (STATUS_LABELS[after[key]] || "") : ""));
        }
        if (after.note) changes.push("备注：" + after.note);
        return el(
          "tr",
          {},
          el("td", { text: formatTime(a.at) }),
          el("td", { text: who(a.actor, a.actor_key_id) }),
          el("td", { text: ACTION_LABELS[a.action] || a.action }),
          el("td", { text: changes.join("；") })
        );
      });
    $("history-rows").replaceChildren(...rows);
    $("history-panel").hidden = false;
  }

  async function transition(path, body, okText) {
    $("review-error").textContent = "";
    $("form-error").textContent = "";
    const result = await call("POST", "/v1/faqs/" + encodeURIComponent(entry.faq_id) + path, body);
    if (!result.ok) {
      const target = path === "/submit" || path === "/reopen" ? "form-error" : "review-error";
      $(target).textContent = message(result);
      return false;
    }
    renderEntry(result.data);
    toast(okText);
    return true;
  }

  function initEdit() {
    const form = $("faq-form");
    const faqId = form.getAttribute("data-faq-id");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      $("form-error").textContent = "";
      const body = {};
      for (const name of CONTENT_FIELDS) body[name] = fieldValue(name);
      let result;
      if (!entry) {
        const id = $("f-faq_id").value.trim();
        if (id) body.faq_id = id;
        result = await call("POST", "/v1/faqs", body);
        if (result.ok) {
          window.location.assign("/staff/faqs/" + encodeURIComponent(result.data.faq_id));
          return;
        }
      } else {
        result = await call("PATCH", "/v1/faqs/" + encodeURIComponent(entry.faq_id), body);
        if (result.ok) {
          renderEntry(result.data);
          toast("已保存");
          return;
        }
      }
      $("form-error").textContent = message(result);
    });
    $("submit-review").addEventListener("click", () => transition("/submit", undefined, "已提交审核"));
    $("reopen").addEventListener("click", () => transition("/reopen", undefined, "已恢复为草稿"));
    $("approve").addEventListener("click", () => {
      if (!$("confidentiality").checked) {
        $("review-error").textContent = "请先勾选并确认已完成保密审查。";
        return;
      }
      transition("/review", { confidentiality_checked: true, comment: $("review-comment").value.trim() || null }, "审核通过，可以发布");
    });
    $("reject").addEventListener("click", () => {
      const comment = $("review-comment").value.trim();
      if (!comment) {
        $("review-error").textContent = "退回时请填写审核意见。";
        return;
      }
      transition("/review", { confidentiality_checked: false, approve: false, comment }, "已退回修改");
    });
    $("publish").addEventListener("click", () => transition("/publish", undefined, "已发布，数秒内在各渠道生效"));
    $("retire").addEventListener("click", () => {
      if (window.confirm("确定下线该条目？下线后各渠道不再使用它回答。")) transition("/retire", undefined, "已下线");
    });
    if (!faqId) {
      $("review-panel").hidden = true;
      return;
    }
    call("GET", "/v1/faqs/" + encodeURIComponent(faqId)).then((result) => {
      if (!result.ok) {
        $("form-error").textContent = message(result, "加载失败");
        form.hidden = true;
        return;
      }
      renderEntry(result.data);
    });
  }

  // -------------------------------------------------------------------------------------------- analytics
  // The dashboard, groups, work-order import and report live in staff.dashboard.js (loaded by that page only).
  function initAnalytics() {
    const run = () => window.PolicyQAStaffAnalytics({ call, may, message, toast, formatTime, download });
    if (typeof window.PolicyQAStaffAnalytics === "function") run();
    else window.addEventListener("load", run, { once: true }); // its script is still loading
  }

  // -------------------------------------------------------------------------------------------- content safety
  // The blocked-word list lives in staff.safety.js (loaded by that page only).
  function initSafety() {
    const run = () => window.PolicyQAStaffSafety({ call, may, message, toast, formatTime });
    if (typeof window.PolicyQAStaffSafety === "function") run();
    else window.addEventListener("load", run, { once: true });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
