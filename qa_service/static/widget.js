/* policyqa citizen widget: one tag adds a floating button and a chat panel to any page.
 *
 *   <script src="https://HOST/widget.js" data-title="政策问答" async></script>
 *   optional: data-suggestions="失业保险金能领多久？|春节放几天假？"  data-position="left"  data-hotline="12345"
 *
 * Everything lives in a shadow root (host styles cannot reach in, ours cannot leak out). API calls go to
 * the origin (and folder) this script was loaded from. Server data is only ever set as text (textContent,
 * text nodes, attributes), never parsed as HTML.
 * If the host page has a Content-Security-Policy, it must allow this origin in script-src, style-src and
 * connect-src.
 */
(function () {
  "use strict";
  const SERVER_CONFIG = {"hotline": "12345", "max_question": 500};

  const VALIDITY = {
    in_force: "现行有效",
    superseded: "已被修订",
    expired: "已失效",
    unknown: "未标注",
  };

  // ---------------------------------------------------------------------------------------------------
  // DOM helpers: text only
  // ---------------------------------------------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child); // strings become text nodes
    }
    return node;
  }

  // The server's own pages use the same helpers (pages.js): they load this file with `data-helpers`, which shares
  // them as window.policyqaDom and stops before the widget is built.
  if (!window.policyqaDom) window.policyqaDom = Object.freeze({ el: el, VALIDITY: Object.freeze(VALIDITY) });
  const script =
    document.currentScript ||
    Array.from(document.querySelectorAll("script[src]")).find((s) => /\/widget\.js(?:[?#]|$)/.test(s.src));
  if (!script || script.hasAttribute("data-helpers")) return;

  if (window.policyqaWidget) return; // the tag was included twice

  const BASE = new URL(".", script.src); // API and assets sit beside widget.js
  const data = script.dataset;
  const OPTIONS = {
    title: (data.title || "政策问答").slice(0, 40),
    hotline: data.hotline || SERVER_CONFIG.hotline || "12345",
    suggestions: (data.suggestions || "")
      .split("|")
      .map((s) => s.trim())
      .filter(Boolean)
      .slice(0, 4),
    left: data.position === "left",
  };
  const MAX_QUESTION = SERVER_CONFIG.max_question || 500; // the API's limit (MAX_QUESTION_CHARS)
  const TIMEOUT_MS = 30000;
  const LARGE_TEXT_KEY = "policyqa-large-text";

  function svgIcon(kind) {
    const NS = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(NS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    const paths = {
      chat: "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2zm3 6.5a1.5 1.5 0 1 0 0 .01zm5 0a1.5 1.5 0 1 0 0 .01zm5 0a1.5 1.5 0 1 0 0 .01z",
      close: "M6.4 5 12 10.6 17.6 5 19 6.4 13.4 12 19 17.6 17.6 19 12 13.4 6.4 19 5 17.6 10.6 12 5 6.4z",
      send: "M3 20.5 21 12 3 3.5v6.6L15 12 3 13.9z",
      phone: "M6.6 10.8a15.1 15.1 0 0 0 6.6 6.6l2.2-2.2a1 1 0 0 1 1-.25 11.4 11.4 0 0 0 3.6.57 1 1 0 0 1 1 1V20a1 1 0 0 1-1 1A17 17 0 0 1 3 4a1 1 0 0 1 1-1h3.5a1 1 0 0 1 1 1c0 1.25.2 2.45.57 3.57a1 1 0 0 1-.25 1z",
    };
    const path = document.createElementNS(NS, "path");
    path.setAttribute("d", paths[kind]);
    path.setAttribute("fill", "currentColor");
    svg.append(path);
    return svg;
  }

  function safeHref(url) {
    if (!url) return null;
    try {
      const abs = new URL(String(url), BASE);
      return abs.protocol === "http:" || abs.protocol === "https:" ? abs.href : null;
    } catch (_) {
      return null;
    }
  }

  function storageGet(key) {
    try {
      return window.localStorage.getItem(key);
    } catch (_) {
      return null;
    }
  }

  function storageSet(key, value) {
    try {
      window.localStorage.setItem(key, value);
    } catch (_) {
      /* private mode: the setting just is not remembered */
    }
  }

  // ---------------------------------------------------------------------------------------------------
  // API
  // ---------------------------------------------------------------------------------------------------

  async function post(path, body) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
    try {
      const res = await fetch(new URL(path, BASE).href, {
        method: "POST",
        mode: "cors",
        credentials: "omit",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
        signal: controller.signal,
      });
      let payload = null;
      try {
        payload = await res.json();
      } catch (_) {
        payload = null;
      }
      return { status: res.status, ok: res.ok, data: payload };
    } catch (_) {
      return { status: 0, ok: false, data: null };
    } finally {
      clearTimeout(timer);
    }
  }

  function errorMessage(result) {
    const hotline = OPTIONS.hotline;
    if (result.status === 0) return "网络连接出现问题，暂时无法连接问答服务。请检查网络后点击“重试”。";
    if (result.status === 429) {
      const wait = result.data ? Number(result.data.retry_after) : NaN;
      const when = wait > 0 && wait < 600 ? "请 " + Math.ceil(wait) + " 秒后再试" : "请稍等一会儿再试";
      return "您提问有些频繁，" + when + "。如需马上咨询，请拨打 " + hotline + "。";
    }
    if (result.status === 503) return "问答服务暂时不可用，请稍后再试，或拨打 " + hotline + " 咨询。";
    if (result.status >= 400 && result.status < 500 && result.data && typeof result.data.message === "string") {
      // Messages are "中文 / English": citizens see the Chinese half.
      return result.data.message.split(" / ")[0];
    }
    return "服务出现问题，请稍后再试，或拨打 " + hotline + " 咨询。";
  }

  // ---------------------------------------------------------------------------------------------------
  // Widget
  // ---------------------------------------------------------------------------------------------------

  // This visit's conversation: the server issues its id with the first answer (a client-made id is not accepted).
  let sessionId = null;
  const host = document.createElement("policyqa-widget");
  host.setAttribute("data-policyqa", "");
  const shadow = host.attachShadow({ mode: "open" });

  const stylesheet = el("link", { rel: "stylesheet", href: new URL("widget.css", BASE).href });
  const root = el("div", { class: "pq-root" + (OPTIONS.left ? " pq-left" : ""), hidden: true });
  stylesheet.addEventListener("load", () => (root.hidden = false));
  stylesheet.addEventListener("error", () => (root.hidden = false));

  const launcher = el(
    "button",
    {
      type: "button",
      class: "pq-launcher",
      "aria-label": "打开" + OPTIONS.title,
      "aria-expanded": "false",
      "aria-controls": "pq-panel",
      "aria-haspopup": "dialog",
    },
    svgIcon("chat"),
    el("span", { class: "pq-launcher-label", text: "政策问答" })
  );

  const title = el("h2", { class: "pq-title", id: "pq-title", text: OPTIONS.title });
  const largeToggle = el("button", {
    type: "button",
    class: "pq-large-toggle",
    "aria-pressed": "false",
    title: "放大文字（适老化）",
    text: "大字",
  });
  const closeButton = el("button", { type: "button", class: "pq-close", "aria-label": "关闭问答窗口" }, svgIcon("close"));
  const log = el("div", { class: "pq-log", role: "log", "aria-live": "polite", "aria-label": "问答记录", tabindex: "-1" });
  const input = el("textarea", {
    id: "pq-input",
    class: "pq-input",
    rows: "1",
    maxlength: String(MAX_QUESTION),
    placeholder: "请输入您的问题",
    enterkeyhint: "send",
    "aria-label": "输入您的问题，按回车发送",
  });
  const sendButton = el("button", { type: "submit", class: "pq-send", "aria-label": "发送问题" }, svgIcon("send"), el("span", { text: "发送" }));
  const form = el("form", { class: "pq-form", novalidate: true }, input, sendButton);

  const panel = el(
    "section",
    { class: "pq-panel", id: "pq-panel", role: "dialog", "aria-modal": "false", "aria-labelledby": "pq-title", hidden: true },
    el("header", { class: "pq-header" }, title, el("div", { class: "pq-header-tools" }, largeToggle, closeButton)),
    log,
    form,
    el("p", { class: "pq-disclaimer pq-privacy", text: "请勿输入身份证号、手机号、银行卡号等个人信息。" }),
    el("p", { class: "pq-disclaimer", text: "回答摘自公开的政策文件，仅供参考，请以原文为准。" })
  );
  root.append(launcher, panel);
  shadow.append(stylesheet, root);

  function docHref(url) {
    // In 大字模式 the document viewer opens in large text too.
    const href = safeHref(url);
    if (!href) return null;
    const u = new URL(href);
    if (root.classList.contains("pq-large")) u.searchParams.set("large", "1");
    else u.searchParams.delete("large");
    return u.href;
  }

  function setLargeText(on) {
    root.classList.toggle("pq-large", on);
    for (const link of root.querySelectorAll(".pq-doc-link")) link.href = docHref(link.dataset.url) || link.href;
    largeToggle.setAttribute("aria-pressed", on ? "true" : "false");
    largeToggle.textContent = on ? "标准字" : "大字";
    // No aria-label: the visible word is the name (axe label-content-name-mismatch); aria-pressed says the state.
    storageSet(LARGE_TEXT_KEY, on ? "1" : "0");
  }
  setLargeText(storageGet(LARGE_TEXT_KEY) === "1");
  largeToggle.addEventListener("click", () => setLargeText(!root.classList.contains("pq-large")));

  function isOpen() {
    return !panel.hidden;
  }

  function open() {
    if (isOpen()) return;
    panel.hidden = false;
    root.classList.add("pq-open");
    launcher.setAttribute("aria-expanded", "true");
    launcher.setAttribute("aria-label", "关闭" + OPTIONS.title);
    if (!log.childElementCount) log.append(welcome());
    input.focus();
  }

  function close() {
    if (!isOpen()) return;
    panel.hidden = true;
    root.classList.remove("pq-open");
    launcher.setAttribute("aria-expanded", "false");
    launcher.setAttribute("aria-label", "打开" + OPTIONS.title);
    launcher.focus();
  }

  launcher.addEventListener("click", () => (isOpen() ? close() : open()));
  closeButton.addEventListener("click", close);
  // On a phone the panel covers the whole screen: it is then a modal dialog, and Tab cycles inside it
  // instead of wandering into the (hidden) host page. On wider screens it stays a non-modal side panel.
  const fullScreen = window.matchMedia("(max-width: 480px)");
  function syncModal() {
    panel.setAttribute("aria-modal", fullScreen.matches ? "true" : "false");
  }
  syncModal();
  if (fullScreen.addEventListener) fullScreen.addEventListener("change", syncModal);

  function focusables() {
    const selector = 'button:not([disabled]), a[href], textarea:not([disabled]), input:not([disabled]), [tabindex]:not([tabindex="-1"])';
    return Array.from(panel.querySelectorAll(selector)).filter((node) => node.getClientRects().length > 0);
  }

  panel.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      close();
      return;
    }
    if (event.key !== "Tab" || !fullScreen.matches) return;
    const nodes = focusables();
    if (!nodes.length) return;
    const first = nodes[0];
    const last = nodes[nodes.length - 1];
    const current = shadow.activeElement;
    if (event.shiftKey && (current === first || !panel.contains(current))) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && (current === last || !panel.contains(current))) {
      event.preventDefault();
      first.focus();
    }
  });

  input.addEventListener("keydown", (event) => {
    // Enter sends; Shift+Enter is a new line; Enter that confirms an IME candidate is not a send.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      event.preventDefault();
      submit();
    }
  });
  input.addEventListener("input", autosize);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });

  function autosize() {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, 120) + "px";
  }

  // The log scrolls by itself: scrollIntoView would also scroll the fixed panel and the host page.
  function scrollToEnd() {
    log.scrollTop = log.scrollHeight;
  }

  function scrollToTop(node) {
    log.scrollTop += node.getBoundingClientRect().top - log.getBoundingClientRect().top - 8;
  }

  function scrollIntoLog(node) {
    const box = node.getBoundingClientRect();
    const view = log.getBoundingClientRect();
    if (box.bottom > view.bottom) log.scrollTop += Math.min(box.bottom - view.bottom + 8, box.top - view.top - 8);
    else if (box.top < view.top) log.scrollTop -= view.top - box.top + 8;
  }

  function chip(question) {
    return el("button", {
      type: "button",
      class: "pq-chip",
      text: question,
      onclick: () => ask(question),
    });
  }

  function welcome() {
    const hotline = OPTIONS.hotline;
    return el(
      "div",
      { class: "pq-msg pq-bot pq-welcome" },
      el("p", { text: "您好！我可以帮您查找政策文件里的规定，回答会注明出处。请直接输入您的问题。" }),
      OPTIONS.suggestions.length
        ? el("div", { class: "pq-chips", role: "group", "aria-label": "常见问题示例" }, OPTIONS.suggestions.map(chip))
        : null,
      el("p", { class: "pq-muted", text: "找不到答案时，可拨打政务服务便民热线 " + hotline + "。" })
    );
  }

  let busy = false;

  function submit() {
    const question = input.value.trim();
    if (!question) {
      input.focus();
      return;
    }
    if (busy) return;
    input.value = "";
    autosize();
    ask(question);
  }

  async function ask(question) {
    if (busy) return;
    question = String(question).trim().slice(0, MAX_QUESTION);
    if (!question) return;
    open();
    busy = true;
    sendButton.disabled = true;
    log.append(el("div", { class: "pq-msg pq-user" }, el("span", { class: "pq-sr", text: "您的问题：" }), question));
    const pending = el(
      "div",
      { class: "pq-msg pq-bot pq-pending", "aria-busy": "true" },
      el("span", { class: "pq-dots", "aria-hidden": "true" }, el("i"), el("i"), el("i")),
      el("span", { text: "正在查找相关政策…" })
    );
    log.append(pending);
    scrollToEnd();

    const result = await post("v1/ask", { question: question, channel: "web", session_id: sessionId });
    if (result.ok && result.data && typeof result.data.session_id === "string") sessionId = result.data.session_id;
    pending.remove();
    busy = false;
    sendButton.disabled = false;

    let node;
    if (result.ok && result.data && typeof result.data === "object") {
      const choices = Array.isArray(result.data.choices) ? result.data.choices.filter(Boolean).map(String) : [];
      node = choices.length ? renderChoices(result.data, choices) : result.data.answered ? renderAnswer(result.data) : result.data.status === "suggest" ? renderSuggest(result.data) : renderRefusal(result.data);
    } else {
      node = renderError(result, question);
    }
    log.append(node);
    scrollToTop(node.previousElementSibling || node); // the question, then as much of the answer as fits
    if (isOpen() && shadow.activeElement !== input && !panel.contains(shadow.activeElement)) input.focus();
  }

  // ---------------------------------------------------------------------------------------------------
  // Rendering: answers, citations, refusals, errors
  // ---------------------------------------------------------------------------------------------------

  function badge(validity) {
    const key = Object.prototype.hasOwnProperty.call(VALIDITY, validity) ? validity : "unknown";
    return el("span", { class: "pq-badge pq-badge-" + key, text: VALIDITY[key] });
  }

  function answerText(text, citationNodes) {
    // "……第十七条规定……[1]" → text nodes with [n] as buttons that open citation n.
    const paragraph = el("p", { class: "pq-answer-text" });
    const pattern = /\[(\d{1,2})\]/g;
    let last = 0;
    let match;
    while ((match = pattern.exec(text)) !== null) {
      const target = citationNodes.get(Number(match[1]));
      if (!target) continue;
      paragraph.append(text.slice(last, match.index));
      paragraph.append(
        el("button", {
          type: "button",
          class: "pq-ref",
          text: "[" + match[1] + "]",
          "aria-label": "查看出处 " + match[1],
          onclick: () => target.expand(true),
        })
      );
      last = match.index + match[0].length;
    }
    paragraph.append(text.slice(last));
    return paragraph;
  }

  function citationItem(c, index) {
    const rank = Number(c.rank) || index + 1;
    const detailId = "pq-cite-" + Math.random().toString(36).slice(2, 10);
    const isFaq = c.kind === "faq";
    const section = c.section ? String(c.section) : "";
    const article = section.split(">").pop().trim(); // "第三章 失业保险待遇 > 第十七条" → "第十七条"
    const title = c.title ? String(c.title) : "";
    const toggle = el(
      "button",
      { type: "button", class: "pq-cite-toggle", "aria-expanded": "false", "aria-controls": detailId },
      el("span", { class: "pq-cite-rank", text: "[" + rank + "]" }),
      el(
        "span",
        { class: "pq-cite-name" },
        isFaq ? el("span", { class: "pq-tag", text: "常见问题" }) : null,
        isFaq ? title : "《" + title + "》",
        article && !isFaq ? el("span", { class: "pq-cite-section", text: " " + article }) : null,
        isFaq ? null : " ",
        isFaq ? null : badge(c.validity)
      ),
      el("span", { class: "pq-cite-more", "aria-hidden": "true" })
    );

    const facts = el("dl", { class: "pq-facts" });
    function fact(label, value) {
      if (!value) return;
      facts.append(el("div", {}, el("dt", { text: label }), el("dd", {}, value)));
    }
    if (isFaq) {
      const sources = Array.isArray(c.source_titles) ? c.source_titles.filter(Boolean).map(String) : [];
      fact("依据文件", sources.length ? sources.map((s) => "《" + s + "》").join("、") : "");
      fact("发布机构", c.publisher ? String(c.publisher) : "");
    } else {
      fact("文件", "《" + title + "》");
      fact("条款", section.replace(/\s*>\s*/g, " "));
      fact("文号", c.doc_number ? String(c.doc_number) : "未标注");
      fact("发布机构", c.publisher ? String(c.publisher) : "");
      fact("发布日期", c.published_date ? String(c.published_date) : "");
      fact("有效性", badge(c.validity));
    }

    const href = docHref(c.url);
    const highlight = c.highlight ? String(c.highlight) : "";
    const detail = el(
      "div",
      { class: "pq-cite-detail", id: detailId, hidden: true },
      c.quote ? el("blockquote", { class: "pq-quote" }, ...marked(String(c.quote), highlight)) : null,
      facts,
      c.validity === "superseded" || c.validity === "expired"
        ? el("p", { class: "pq-warn", text: c.validity === "superseded" ? "注意：该文件已被修订，请以现行有效版本为准。" : "注意：该文件已失效，仅供参考。" })
        : null,
      href
        ? el("a", {
            class: "pq-doc-link",
            href: href,
            "data-url": String(c.url),
            target: "_blank",
            rel: "noopener noreferrer",
            text: "查看原文" + (article && !isFaq ? "（" + article + "）" : "") + " ↗",
          })
        : null
    );
    const item = el(
      "li",
      { class: "pq-cite" + (isFaq ? " pq-cite-faq" : "") },
      toggle,
      highlight ? el("p", { class: "pq-highlight" }, el("mark", { text: highlight })) : null,
      detail
    );
    item.expand = function (focus) {
      detail.hidden = false;
      toggle.setAttribute("aria-expanded", "true");
      item.classList.add("pq-cite-open");
      if (focus) {
        toggle.focus({ preventScroll: true });
        scrollIntoLog(item);
      }
    };
    toggle.addEventListener("click", () => {
      if (detail.hidden) item.expand(false);
      else {
        detail.hidden = true;
        toggle.setAttribute("aria-expanded", "false");
        item.classList.remove("pq-cite-open");
      }
    });
    return [rank, item];
  }

  function relatedChips(data) {
    const related = Array.isArray(data.related_questions) ? data.related_questions.filter(Boolean).map(String).slice(0, 4) : [];
    if (!related.length) return null;
    return el(
      "div",
      { class: "pq-related" },
      el("p", { class: "pq-related-title", text: "您可能还想问：" }),
      el("div", { class: "pq-chips", role: "group", "aria-label": "相关问题" }, related.map(chip))
    );
  }

  // Issue 10: how a follow-up was understood, and clarifying choices as buttons.
  function understood(data) {
    if (!data.understood_question) return null;
    return el("p", { class: "pq-understood", text: "您是问：" + String(data.understood_question) });
  }

  function renderChoices(data, choices) {
    return el(
      "article",
      { class: "pq-msg pq-bot pq-clarify", "aria-label": "请选择您想了解的内容", "data-query-id": data.query_id || "" },
      el("p", { class: "pq-clarify-title", text: "您想了解的是：" }),
      el("div", { class: "pq-chips pq-choices", role: "group", "aria-label": "请选择" }, choices.slice(0, 3).map(chip))
    );
  }

  function feedback(queryId) {
    if (!queryId) return null;
    const note = el("span", { class: "pq-feedback-note", role: "status" });
    const yes = el("button", { type: "button", class: "pq-fb pq-fb-yes", "aria-pressed": "false", text: "有帮助" });
    const no = el("button", { type: "button", class: "pq-fb pq-fb-no", "aria-pressed": "false", text: "没帮助" });
    async function send(helpful, button) {
      yes.disabled = no.disabled = true;
      button.setAttribute("aria-pressed", "true");
      note.textContent = "正在提交…";
      const result = await post("v1/feedback", { query_id: String(queryId), helpful: helpful });
      if (result.ok) {
        note.textContent = helpful ? "感谢您的反馈！" : "感谢反馈，我们会改进这个回答。";
        box.classList.add("pq-feedback-done");
      } else {
        note.textContent = result.status === 429 ? "提交太频繁，请稍后再试。" : "反馈没有提交成功，请稍后再试。";
        button.setAttribute("aria-pressed", "false");
        yes.disabled = no.disabled = false;
      }
    }
    yes.addEventListener("click", () => send(true, yes));
    no.addEventListener("click", () => send(false, no));
    const box = el("div", { class: "pq-feedback", role: "group", "aria-label": "这个回答有帮助吗" }, el("span", { class: "pq-feedback-q", text: "这个回答有帮助吗？" }), yes, no, note);
    return box;
  }

  function renderAnswer(data) {
    const citations = Array.isArray(data.citations) ? data.citations : [];
    const byRank = new Map();
    const list = el("ol", { class: "pq-cites", "aria-label": "答案出处" });
    citations.forEach((c, i) => {
      if (!c || typeof c !== "object") return;
      const [rank, item] = citationItem(c, i);
      byRank.set(rank, item);
      list.append(item);
    });
    const text = String(data.answer || "");
    return el(
      "article",
      { class: "pq-msg pq-bot pq-answer", "aria-label": "回答", "data-query-id": data.query_id || "" },
      understood(data),
      data.faq_id ? el("span", { class: "pq-tag pq-tag-faq", text: "常见问题解答" }) : null,
      answerText(text, byRank),
      citations.length ? el("p", { class: "pq-cites-title", text: "出处（点击查看原文条款）：" }) : null,
      citations.length ? list : null,
      relatedChips(data),
      feedback(data.query_id)
    );
  }

  // The article text with the sentence closest to the question marked (text nodes only: nothing is parsed as HTML).
  function marked(quote, highlight) {
    const at = highlight ? quote.indexOf(highlight) : -1;
    if (at < 0) return [quote];
    return [quote.slice(0, at), el("mark", { text: highlight }), quote.slice(at + highlight.length)];
  }

  // No confident answer, but rules that may help: each article with its closest sentence marked.
  function renderSuggest(data) {
    const hotline = OPTIONS.hotline;
    const suggestions = Array.isArray(data.suggestions) ? data.suggestions : [];
    const list = el("ol", { class: "pq-cites pq-suggestions", "aria-label": "参考条款" });
    suggestions.forEach((c, i) => {
      if (!c || typeof c !== "object") return;
      list.append(citationItem(c, i)[1]);
    });
    return el(
      "article",
      { class: "pq-msg pq-bot pq-suggest", "aria-label": "参考条款", "data-query-id": data.query_id || "" },
      understood(data),
      el("p", { class: "pq-refusal-title", text: "可能相关的规定" }),
      el("p", { class: "pq-answer-text", text: String(data.answer || "") }),
      el("p", { class: "pq-cites-title", text: "参考条款（请以原文为准）：" }),
      list,
      el(
        "a",
        { class: "pq-hotline", href: "tel:" + hotline.replace(/[^0-9+]/g, "") },
        svgIcon("phone"),
        el("span", { text: "拨打 " + hotline + " 政务服务便民热线" })
      ),
      relatedChips(data),
      feedback(data.query_id)
    );
  }

  function renderRefusal(data) {
    const hotline = OPTIONS.hotline;
    const text = String(data.answer || "") || "抱歉，知识库中没有找到能回答这个问题的政策规定。";
    return el(
      "article",
      { class: "pq-msg pq-bot pq-refusal", "aria-label": "未找到答案", "data-query-id": data.query_id || "" },
      understood(data),
      el("p", { class: "pq-refusal-title", text: "没有找到可靠的答案" }),
      el("p", { class: "pq-answer-text", text: text }),
      el(
        "a",
        { class: "pq-hotline", href: "tel:" + hotline.replace(/[^0-9+]/g, "") }, // named by its visible text
        svgIcon("phone"),
        el("span", { text: "拨打 " + hotline + " 政务服务便民热线" })
      ),
      el("p", { class: "pq-muted", text: "也可以换个说法，或说得更具体些再问一次。" }),
      relatedChips(data),
      feedback(data.query_id)
    );
  }

  function renderError(result, question) {
    const retry = el("button", { type: "button", class: "pq-retry", text: "重试" });
    const node = el(
      "div",
      { class: "pq-msg pq-bot pq-error" + (result.status === 429 ? " pq-error-rate" : ""), role: "alert" },
      el("p", { text: errorMessage(result) }),
      result.status === 0 || result.status === 429 || result.status >= 500 ? retry : null
    );
    retry.addEventListener("click", () => {
      node.remove();
      // The question bubble stays; ask again without repeating it.
      const bubbles = log.querySelectorAll(".pq-user");
      const lastBubble = bubbles[bubbles.length - 1];
      if (lastBubble) lastBubble.remove();
      ask(question);
    });
    return node;
  }

  function mount() {
    document.body.append(host);
  }
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);

  // A small API for host pages: a "咨询" link elsewhere on the page can open the panel or ask directly.
  window.policyqaWidget = Object.freeze({ open: open, close: close, ask: ask });
})();
