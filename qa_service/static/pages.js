/* Shared by the server's own pages (document viewer, console, new-media preview, staff pages): the 大字模式
 * toggle and small helpers (the widget is self-contained: it runs on other sites' pages without this file; these pages
 * load widget.js first, with data-helpers, and take its el() and VALIDITY). Data from the server is only ever set as text.
 *
 *   const { el, copyText, badge, request } = window.PolicyQA;
 *   list.append(el("li", { class: "result" }, el("strong", { text: citation.title }), badge(citation.validity)));
 */
(function () {
  "use strict";
  const LARGE_TEXT_KEY = "policyqa-large-text";

  // The DOM helper and validity labels are the widget's own (widget.js, loaded before this file with data-helpers).
  const { el, VALIDITY } = window.policyqaDom;

  function badge(validity) {
    const key = Object.prototype.hasOwnProperty.call(VALIDITY, validity) ? validity : "unknown";
    return el("span", { class: "badge badge-" + key, text: VALIDITY[key] });
  }

  function safeHref(url) {
    if (!url) return null;
    try {
      const abs = new URL(String(url), window.location.href);
      return abs.protocol === "http:" || abs.protocol === "https:" ? abs.href : null;
    } catch (_) {
      return null;
    }
  }

  async function copyText(text) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch (_) {
      // Older browsers, or clipboard permission refused: the selection-based fallback.
      const area = el("textarea", { class: "visually-hidden", readonly: true });
      area.value = text;
      document.body.append(area);
      area.select();
      let ok = false;
      try {
        ok = document.execCommand("copy");
      } catch (_) {
        ok = false;
      }
      area.remove();
      return ok;
    }
  }

  let toastTimer = null;
  function toast(message, ms = 2200) {
    const box = document.getElementById("toast");
    if (!box) return;
    box.textContent = message;
    box.classList.add("toast-visible");
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => box.classList.remove("toast-visible"), ms);
  }

  // One JSON API call: {ok, status, data} (status 0: no connection; `aborted` when `signal` cancelled it).
  // `key` is sent as a Bearer token; a FormData body goes as multipart; with `raw`, a 2xx answer comes back
  // as {ok, status, blob, headers} instead (downloads).
  async function request(method, path, { key, body, signal, raw } = {}) {
    const headers = { Accept: "application/json" };
    if (key) headers.Authorization = "Bearer " + key;
    let payload;
    if (body instanceof FormData) payload = body;
    else if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, { method, headers, body: payload, signal });
    } catch (err) {
      return { ok: false, status: 0, data: null, aborted: !!err && err.name === "AbortError" };
    }
    if (raw && res.ok) return { ok: true, status: res.status, blob: await res.blob(), headers: res.headers };
    let data = null;
    try {
      data = await res.json();
    } catch (_) {
      data = null;
    }
    return { ok: res.ok, status: res.status, data };
  }

  function chineseMessage(data, fallback) {
    return data && typeof data.message === "string" ? data.message.split(" / ")[0] : fallback;
  }

  function setLargeText(on) {
    document.documentElement.classList.toggle("large-text", on);
    for (const button of document.querySelectorAll(".large-text-toggle")) {
      button.setAttribute("aria-pressed", on ? "true" : "false");
      button.textContent = on ? "标准字号" : "大字模式";
    }
    try {
      localStorage.setItem(LARGE_TEXT_KEY, on ? "1" : "0");
    } catch (_) {
      /* not remembered in private mode */
    }
  }

  function initLargeText() {
    let stored = null;
    try {
      stored = localStorage.getItem(LARGE_TEXT_KEY);
    } catch (_) {
      stored = null;
    }
    // A citation link from the widget in 大字模式 carries ?large=1: the viewer opens in large text too.
    const fromLink = new URLSearchParams(window.location.search).get("large");
    setLargeText(fromLink === "1" || (fromLink === null && stored === "1"));
    for (const button of document.querySelectorAll(".large-text-toggle")) {
      button.addEventListener("click", () => setLargeText(!document.documentElement.classList.contains("large-text")));
    }
  }

  window.PolicyQA = Object.freeze({ el, badge, safeHref, copyText, toast, chineseMessage, request, VALIDITY });
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", initLargeText);
  else initLargeText();
})();
