/* The content-safety page (/staff/safety): the blocked words and patterns (GET/POST/PATCH/DELETE /v1/safety/terms),
 * a text to try (POST /v1/safety/check) and the change history (GET /v1/safety/audit). Administrators only; the
 * server enforces it. Started by staff.js after login:
 *   window.PolicyQAStaffSafety({ call, may, message, toast, formatTime });
 * Server data is only ever set as text.
 */
(function () {
  "use strict";
  const { el } = window.PolicyQA;
  const $ = (id) => document.getElementById(id);
  const ACTIONS = { seed: "初始词表", create: "添加", edit: "修改", delete: "删除" };

  // pages.js freezes window.PolicyQA, so this page's entry point is a global of its own.
  window.PolicyQAStaffSafety = function ({ call, may, message, toast, formatTime }) {
    if (!may("admin")) {
      $("safety-denied").hidden = false;
      return;
    }
    let labels = {};
    let editing = null; // the term being changed, or null when adding

    function describe(t) {
      if (!t) return "";
      return (t.is_regex ? "规则 " : "词语 ") + t.pattern + "（" + (labels[t.category] || t.category) + (t.note ? "，" + t.note : "") + "）";
    }

    function resetForm() {
      editing = null;
      $("term-form").reset();
      $("term-save").textContent = "添加";
      $("term-cancel").hidden = true;
      $("term-form-title").textContent = "添加词语或规则";
      $("term-error").textContent = "";
    }

    function startEdit(t) {
      editing = t;
      $("t-pattern").value = t.pattern;
      $("t-category").value = t.category;
      $("t-note").value = t.note || "";
      $("t-regex").checked = t.is_regex;
      $("term-save").textContent = "保存修改";
      $("term-cancel").hidden = false;
      $("term-form-title").textContent = "修改“" + t.pattern + "”";
      $("t-pattern").focus();
    }

    async function load() {
      $("terms-status").textContent = "加载中……";
      const result = await call("GET", "/v1/safety/terms");
      if (!result.ok) {
        $("terms-status").textContent = message(result, "加载失败");
        return;
      }
      const select = $("t-category");
      if (!select.options.length) {
        for (const c of result.data.categories) select.append(el("option", { value: c.id, text: c.label }));
      }
      labels = Object.fromEntries(result.data.categories.map((c) => [c.id, c.label]));
      const rows = result.data.terms.map((t) =>
        el(
          "tr",
          {},
          el("td", {}, el("code", { text: t.pattern })),
          el("td", { text: t.is_regex ? "正则表达式" : "词语" }),
          el("td", { text: t.label }),
          el("td", { text: t.note || "" }),
          el("td", { text: t.created_by || "" }),
          el("td", { text: formatTime(t.updated_at) }),
          el(
            "td",
            { class: "row-actions" },
            el("button", { type: "button", class: "button-quiet", text: "修改", "aria-label": "修改 " + t.pattern, onclick: () => startEdit(t) }),
            el("button", {
              type: "button",
              class: "button-quiet danger",
              text: "删除",
              "aria-label": "删除 " + t.pattern,
              onclick: () => remove(t),
            })
          )
        )
      );
      $("term-rows").replaceChildren(...rows);
      $("terms-status").textContent = "共 " + result.data.terms.length + " 条";
      loadAudit();
    }

    async function loadAudit() {
      const result = await call("GET", "/v1/safety/audit");
      if (!result.ok) return;
      const rows = result.data.audit.map((a) =>
        el(
          "tr",
          {},
          el("td", { text: formatTime(a.at) }),
          el("td", { text: a.actor + (a.actor_key_id != null ? " #" + a.actor_key_id : "") }),
          el("td", { text: ACTIONS[a.action] || a.action }),
          el("td", {
            text: a.action === "seed" ? "默认词表 " + ((a.after || {}).terms || 0) + " 条"
              : a.action === "edit" ? describe(a.before) + " → " + describe(a.after)
              : describe(a.after || a.before),
          })
        )
      );
      $("safety-audit-rows").replaceChildren(...rows);
    }

    async function remove(t) {
      if (!window.confirm("确定删除“" + t.pattern + "”？删除后含有它的提问将正常作答。")) return;
      const result = await call("DELETE", "/v1/safety/terms/" + t.id);
      if (!result.ok) return toast(message(result, "删除失败"));
      if (editing && editing.id === t.id) resetForm();
      toast("已删除");
      load();
    }

    $("term-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      $("term-error").textContent = "";
      const body = {
        pattern: $("t-pattern").value.trim(),
        category: $("t-category").value,
        is_regex: $("t-regex").checked,
        note: $("t-note").value.trim() || null,
      };
      const result = editing ? await call("PATCH", "/v1/safety/terms/" + editing.id, body) : await call("POST", "/v1/safety/terms", body);
      if (!result.ok) {
        $("term-error").textContent = message(result, "保存失败");
        $("t-pattern").focus();
        return;
      }
      toast(editing ? "已保存修改，数秒内在各渠道生效" : "已添加，数秒内在各渠道生效");
      resetForm();
      load();
    });
    $("term-cancel").addEventListener("click", resetForm);

    $("check-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const text = $("c-text").value.trim();
      if (!text) return;
      const result = await call("POST", "/v1/safety/check", { text });
      if (!result.ok) {
        $("check-result").textContent = message(result, "检测失败");
        return;
      }
      const r = result.data;
      $("check-result").textContent = r.blocked ? "会被拦截：类别“" + r.label + "”，命中“" + r.pattern + "”。" : "不会被拦截。";
    });

    load();
  };
})();
