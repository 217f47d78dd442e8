/* The 12345 operator console: key login (GET /v1/me), search as you type (GET /v1/search), the hotline
 * answer script (POST /v1/ask with channel "hotline"), copy buttons, related FAQ entries, this session's
 * questions, and keyboard shortcuts. Server data is only ever set as text.
 */
(function () {
  "use strict";
  const { el, badge, safeHref, copyText, toast, chineseMessage, request } = window.PolicyQA;

  const KEY_STORAGE = "policyqa-console-key";
  const HISTORY_STORAGE = "policyqa-console-history";
  const SEARCH_DEBOUNCE_MS = 250; // one request per pause in typing, not per keystroke
  const SEARCH_MIN_CHARS = 2;
  const HISTORY_LIMIT = 20;
  const ROLE_LABELS = { operator: "话务员", editor: "编辑", reviewer: "审核员", admin: "管理员" };

  const $ = (id) => document.getElementById(id);
  const loginSection = $("login");
  const consoleSection = $("console");
  const loginForm = $("login-form");
  const keyInput = $("key");
  const loginError = $("login-error");
  const operatorBox = $("operator");
  const operatorName = $("operator-name");
  const searchForm = $("search-form");
  const q = $("q");
  const resultsList = $("results");
  const resultsStatus = $("results-status");
  const faqList = $("faqs");
  const historyList = $("history");
  const scriptPanel = $("script-panel");
  const scriptBox = $("script");
  const copyScriptButton = $("copy-script");

  // One conversation per caller (issue 10): follow-ups are completed from this caller's turns; 新来电 starts afresh.
  // The server issues the id with the caller's first answer.
  let sessionId = null;
  let caller = 0; // counts 新来电, so an answer arriving after it does not carry the last caller's id over
  let apiKey = null;
  let current = null; // {question, answer} of the last script shown
  let searchTimer = null;
  let searchSeq = 0;
  let searchAbort = null;

  function storage(kind) {
    try {
      return kind === "session" ? window.sessionStorage : window.localStorage;
    } catch (_) {
      return null;
    }
  }

  // -------------------------------------------------------------------------------------------------
  // API
  // -------------------------------------------------------------------------------------------------

  function call(method, path, body, signal) {
    return request(method, path, { key: apiKey, body, signal });
  }

  function failure(result) {
    if (result.status === 0) return "无法连接问答服务，请检查网络后重试。";
    if (result.status === 401) return "登录已失效，请重新输入坐席密钥。";
    if (result.status === 429) return chineseMessage(result.data, "请求过于频繁，请稍后再试。");
    if (result.status === 503) return chineseMessage(result.data, "知识库暂不可用，请稍后再试。");
    return chineseMessage(result.data, "服务出现问题（" + result.status + "），请稍后再试。");
  }

  // -------------------------------------------------------------------------------------------------
  // Login
  // -------------------------------------------------------------------------------------------------

  async function login(key, quiet) {
    apiKey = key;
    const result = await call("GET", "/v1/me");
    if (result.ok && result.data && result.data.role) {
      const s = storage("session");
      if (s) s.setItem(KEY_STORAGE, key);
      operatorName.textContent = (result.data.name || "坐席") + " · " + (ROLE_LABELS[result.data.role] || result.data.role);
      operatorBox.hidden = false;
      loginSection.hidden = true;
      consoleSection.hidden = false;
      renderHistory();
      q.focus();
      return;
    }
    apiKey = null;
    if (quiet) return showLogin();
    if (result.status === 401) loginError.textContent = "密钥无效或已停用，请核对后重试。";
    else if (result.status === 403) loginError.textContent = "该密钥没有使用坐席助手的权限。";
    else if (result.status === 404) loginError.textContent = "服务端尚未启用坐席登录。";
    else loginError.textContent = failure(result);
    keyInput.select();
  }

  function showLogin() {
    const s = storage("session");
    if (s) s.removeItem(KEY_STORAGE);
    apiKey = null;
    operatorBox.hidden = true;
    consoleSection.hidden = true;
    loginSection.hidden = false;
    keyInput.value = "";
    keyInput.focus();
  }

  loginForm.addEventListener("submit", (event) => {
    event.preventDefault();
    loginError.textContent = "";
    const key = keyInput.value.trim();
    if (!key) {
      loginError.textContent = "请输入坐席密钥。";
      return;
    }
    login(key, false);
  });
  $("logout").addEventListener("click", showLogin);

  // -------------------------------------------------------------------------------------------------
  // Citations: copy text and rendering
  // -------------------------------------------------------------------------------------------------

  function article(section) {
    return section ? String(section).split(">").pop().trim() : "";
  }

  function citationLine(c) {
    if (c.kind === "faq") {
      const sources = (c.source_titles || []).map((t) => "《" + t + "》").join("、");
      return "常见问题：" + (c.title || "") + (sources ? "（依据" + sources + "）" : "");
    }
    const number = c.doc_number ? "（" + c.doc_number + "）" : "";
    return "《" + (c.title || "") + "》" + number + article(c.section);
  }

  function citationCopyText(c) {
    return citationLine(c) + (c.quote ? "：" + c.quote : "");
  }

  async function copy(text, label) {
    const ok = await copyText(text);
    toast(ok ? "已复制" + (label ? "：" + label : "") : "复制失败，请手动选择文字复制");
    return ok;
  }

  function copyButton(text, label, shortcut) {
    return el(
      "button",
      {
        type: "button",
        class: "button-copy",
        "aria-keyshortcuts": shortcut || null,
        onclick: () => copy(text, label),
      },
      // Named by its content, "复制依据 1": an aria-label that differs from the visible "复制" fails WCAG 2.5.3.
      "复制",
      el("span", { class: "visually-hidden", text: label }),
      shortcut ? el("kbd", { text: shortcut, "aria-hidden": "true" }) : null // announced by aria-keyshortcuts
    );
  }

  function docLink(c, label) {
    const href = safeHref(c.url);
    return href ? el("a", { class: "doc-link", href, target: "_blank", rel: "noopener", text: label || "原文" }) : null;
  }

  function resultItem(c) {
    const meta = [c.doc_number, article(c.section), c.publisher].filter(Boolean).join(" · ");
    return el(
      "li",
      { class: "result" },
      el(
        "div",
        { class: "result-head" },
        el("span", { class: "result-title", text: "《" + (c.title || "") + "》" }),
        badge(c.validity)
      ),
      meta ? el("div", { class: "result-meta", text: meta }) : null,
      c.quote ? el("p", { class: "result-quote", text: c.quote }) : null,
      el("div", { class: "result-actions" }, copyButton(citationCopyText(c), "条款 " + citationLine(c)), docLink(c))
    );
  }

  function faqItem(c) {
    const sources = (c.source_titles || []).map((t) => "《" + t + "》").join("、");
    return el(
      "li",
      { class: "faq" },
      el("div", { class: "faq-q", text: c.title || "" }),
      c.quote ? el("p", { class: "faq-a", text: c.quote }) : null,
      sources ? el("div", { class: "result-meta", text: "依据：" + sources + (c.section ? " " + c.section : "") }) : null,
      el("div", { class: "result-actions" }, copyButton((c.title ? c.title + "\n" : "") + (c.quote || ""), "常见问题答案"))
    );
  }

  function renderFaqs(citations) {
    const seen = new Set();
    const faqs = citations.filter((c) => c && c.kind === "faq" && !seen.has(c.title) && seen.add(c.title));
    faqList.replaceChildren(...(faqs.length ? faqs.map(faqItem) : [el("li", { class: "empty", text: "没有匹配的常见问题。" })]));
  }

  // -------------------------------------------------------------------------------------------------
  // Search as you type
  // -------------------------------------------------------------------------------------------------

  function scheduleSearch() {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(search, SEARCH_DEBOUNCE_MS);
  }

  async function search() {
    const text = q.value.trim();
    if (searchAbort) searchAbort.abort();
    if (text.length < SEARCH_MIN_CHARS) {
      resultsStatus.textContent = "";
      resultsList.replaceChildren();
      return;
    }
    const seq = ++searchSeq;
    searchAbort = new AbortController();
    resultsStatus.textContent = "正在查找…";
    const result = await call("GET", "/v1/search?q=" + encodeURIComponent(text) + "&k=8", undefined, searchAbort.signal);
    if (seq !== searchSeq || result.aborted) return; // a newer keystroke has taken over
    if (!result.ok || !result.data) {
      resultsStatus.textContent = failure(result);
      if (result.status === 401) showLogin();
      return;
    }
    const all = Array.isArray(result.data.results) ? result.data.results : [];
    const docs = all.filter((c) => c && c.kind !== "faq");
    resultsList.replaceChildren(...docs.map(resultItem));
    resultsStatus.textContent = docs.length ? "找到 " + docs.length + " 条" : "没有找到相关条款";
    if (!current || current.question !== text) renderFaqs(all);
  }

  q.addEventListener("input", scheduleSearch);

  // -------------------------------------------------------------------------------------------------
  // The hotline script
  // -------------------------------------------------------------------------------------------------

  function scriptText(question, answer) {
    const s = answer.script || {};
    const lines = [];
    if (s.opening) lines.push(s.opening);
    lines.push(s.answer || answer.answer || "");
    if (s.notice) lines.push("提示：" + s.notice);
    if (Array.isArray(s.key_points) && s.key_points.length) {
      lines.push("要点：");
      s.key_points.forEach((p, i) => lines.push(i + 1 + ". " + p));
    }
    if (Array.isArray(s.sources) && s.sources.length) lines.push("依据：" + s.sources.join("；"));
    if (s.suggestion) lines.push("处置建议：" + s.suggestion);
    if (s.closing) lines.push(s.closing);
    return lines.filter(Boolean).join("\n");
  }

  function step(label, ...content) {
    return el("div", { class: "script-step" }, el("div", { class: "script-label", text: label }), el("div", { class: "script-text" }, ...content));
  }

  function relatedChips(questions) {
    if (!questions.length) return null;
    return el(
      "div",
      { class: "related" },
      el("h3", { text: "相关问题" }),
      el(
        "div",
        { class: "chips" },
        questions.map((text) => el("button", { type: "button", class: "chip", text, onclick: () => askQuestion(text) }))
      )
    );
  }

  function feedbackBox(queryId) {
    if (!queryId) return null;
    const note = el("span", { class: "feedback-note", role: "status" });
    const buttons = [];
    async function send(helpful, button) {
      buttons.forEach((b) => (b.disabled = true));
      button.setAttribute("aria-pressed", "true");
      const result = await call("POST", "/v1/feedback", { query_id: String(queryId), helpful });
      if (result.ok) note.textContent = "已记录，谢谢。";
      else {
        note.textContent = failure(result);
        button.setAttribute("aria-pressed", "false");
        buttons.forEach((b) => (b.disabled = false));
      }
    }
    const yes = el("button", { type: "button", class: "button-quiet", "aria-pressed": "false", text: "有帮助" });
    const no = el("button", { type: "button", class: "button-quiet", "aria-pressed": "false", text: "没帮助" });
    yes.addEventListener("click", () => send(true, yes));
    no.addEventListener("click", () => send(false, no));
    buttons.push(yes, no);
    return el("div", { class: "feedback" }, el("span", { text: "这个口径有用吗？" }), yes, no, note);
  }

  function renderScript(question, answer) {
    const s = answer.script || {};
    const suggested = answer.status === "suggest";
    // An answer's sources, or a suggest outcome's articles (unconfirmed: the operator checks them)
    const citations = (suggested ? answer.suggestions : answer.citations) || [];
    const others = Array.isArray(answer.related) ? answer.related : [];
    const points = Array.isArray(s.key_points) ? s.key_points.filter(Boolean) : [];
    const sources = Array.isArray(s.sources) ? s.sources.filter(Boolean) : [];
    const related = (Array.isArray(s.related_questions) ? s.related_questions : answer.related_questions || [])
      .filter(Boolean)
      .slice(0, 5);

    const cites = el("ol", { class: "cite-list" });
    citations.forEach((c, i) => {
      const n = i + 1;
      const meta = [c.doc_number ? "文号 " + c.doc_number : null, article(c.section), c.publisher].filter(Boolean).join(" · ");
      cites.append(
        el(
          "li",
          { class: "cite" },
          el(
            "div",
            { class: "result-head" },
            el("span", { class: "cite-n", text: String(n) }),
            el("span", { class: "result-title", text: c.kind === "faq" ? "常见问题：" + (c.title || "") : "《" + (c.title || "") + "》" }),
            c.kind === "faq" ? null : badge(c.validity)
          ),
          meta ? el("div", { class: "result-meta", text: meta }) : null,
          c.highlight ? el("p", { class: "result-highlight" }, el("mark", { text: c.highlight })) : null,
          c.quote ? el("p", { class: "result-quote", text: c.quote }) : null,
          el(
            "div",
            { class: "result-actions" },
            copyButton(citationCopyText(c), "依据 " + n, n <= 9 ? String(n) : null),
            docLink(c, "查看原文")
          )
        )
      );
    });
    const children = [el("p", { class: "script-question" }, el("span", { class: "script-label-inline", text: "来电问题" }), question)];
    if (answer.understood_question) {
      children.push(el("p", { class: "script-understood" }, el("span", { class: "script-label-inline", text: "理解为" }), String(answer.understood_question)));
    }
    const choices = Array.isArray(answer.choices) ? answer.choices.filter(Boolean).map(String) : [];
    if (choices.length) {
      children.push(
        el("div", { class: "script-choices", role: "group", "aria-label": "请来电人选择" },
          el("span", { class: "script-label-inline", text: "请来电人选择" }),
          ...choices.map((c) => el("button", { type: "button", class: "button-quiet script-choice", text: c, onclick: () => askQuestion(c) })))
      );
    } else if (suggested) children.push(el("p", { class: "script-refusal", text: "系统没有把握：以下条款可能相关，请核对原文后再答复。" }));
    else if (!answer.answered) children.push(el("p", { class: "script-refusal", text: "知识库中没有可靠依据，请勿自行答复。" }));
    if (s.notice) children.push(el("p", { class: "script-notice", text: s.notice }));
    const steps = el("div", { class: "script-steps" });
    if (s.opening) steps.append(step("开场", s.opening));
    steps.append(step("答复", el("strong", { class: "script-answer", text: s.answer || answer.answer || "" })));
    if (points.length) steps.append(step("要点", el("ol", { class: "script-points" }, points.map((p) => el("li", { text: p })))));
    if (sources.length) steps.append(step("依据", el("ul", { class: "script-sources" }, sources.map((p) => el("li", { text: p })))));
    if (s.suggestion) steps.append(step("处置建议", el("span", { class: "script-suggestion", text: s.suggestion })));
    if (s.closing) steps.append(step("结束语", s.closing));
    children.push(steps);
    if (citations.length) children.push(el("h3", { text: suggested ? "参考条款（未确认）" : "政策依据原文" }), cites);
    if (others.length) {
      children.push(
        el("h3", { text: answer.answered ? "其他检索结果" : "检索到的条文（未经确认，仅供坐席参考）" }),
        el("ul", { class: "related-passages" },
          others.map((c) => el("li", {}, el("span", { class: "result-title", text: "《" + (c.title || "") + "》" }), " " + article(c.section), " ", docLink(c, "查看原文"))))
      );
    }
    children.push(relatedChips(related), feedbackBox(answer.query_id));
    scriptBox.replaceChildren(...children.filter(Boolean));
    copyScriptButton.disabled = false;
  }

  async function askQuestion(text) {
    const question = String(text || "").trim();
    if (!question) return;
    if (q.value.trim() !== question) q.value = question;
    clearTimeout(searchTimer);
    search();
    copyScriptButton.disabled = true;
    scriptBox.replaceChildren(el("p", { class: "loading", text: "正在生成答复口径…" }));
    const askedFor = caller;
    const result = await call("POST", "/v1/ask", { question, channel: "hotline", session_id: sessionId });
    if (result.ok && result.data && askedFor === caller && typeof result.data.session_id === "string") sessionId = result.data.session_id;
    if (!result.ok || !result.data) {
      scriptBox.replaceChildren(el("p", { class: "form-error", role: "alert", text: failure(result) }));
      if (result.status === 401) showLogin();
      return;
    }
    current = { question, answer: result.data };
    renderScript(question, result.data);
    renderFaqs(Array.isArray(result.data.citations) ? result.data.citations : []);
    remember(question, result.data.answered);
    // Focus moves to the script so that C and 1–9 copy at once; / or Esc returns to the search box.
    if (document.activeElement === q || document.activeElement === document.body) scriptPanel.focus();
  }

  searchForm.addEventListener("submit", (event) => {
    event.preventDefault();
    askQuestion(q.value);
  });

  copyScriptButton.addEventListener("click", () => {
    if (current) copy(scriptText(current.question, current.answer), "答复口径");
  });

  function copyCitation(n) {
    if (!current) return;
    const citations = current.answer.citations || [];
    const c = citations[n - 1];
    if (c) copy(citationCopyText(c), "依据 " + n);
    else toast("没有第 " + n + " 条依据");
  }

  // -------------------------------------------------------------------------------------------------
  // This session's questions
  // -------------------------------------------------------------------------------------------------

  function loadHistory() {
    const s = storage("session");
    try {
      const items = JSON.parse((s && s.getItem(HISTORY_STORAGE)) || "[]");
      return Array.isArray(items) ? items : [];
    } catch (_) {
      return [];
    }
  }

  function remember(question, answered) {
    const items = loadHistory().filter((item) => item.q !== question);
    const now = new Date();
    const time = String(now.getHours()).padStart(2, "0") + ":" + String(now.getMinutes()).padStart(2, "0");
    items.unshift({ q: question, answered: !!answered, time });
    const s = storage("session");
    if (s) s.setItem(HISTORY_STORAGE, JSON.stringify(items.slice(0, HISTORY_LIMIT)));
    renderHistory();
  }

  function renderHistory() {
    const items = loadHistory();
    if (!items.length) {
      historyList.replaceChildren(el("li", { class: "empty", text: "还没有提问。" }));
      return;
    }
    historyList.replaceChildren(
      ...items.map((item) =>
        el(
          "li",
          {},
          el(
            "button",
            { type: "button", class: "history-item", onclick: () => askQuestion(item.q) },
            el("span", { class: "history-time", text: String(item.time || "") }),
            el("span", { class: "history-q", text: String(item.q || "") }),
            item.answered ? null : el("span", { class: "badge badge-unknown", text: "未答" })
          )
        )
      )
    );
  }

  $("new-caller").addEventListener("click", () => {
    sessionId = null;
    caller += 1;
    current = null;
    const s = storage("session");
    if (s) s.removeItem(HISTORY_STORAGE);
    renderHistory();
    copyScriptButton.disabled = true;
    scriptBox.replaceChildren(el("p", { class: "empty", text: "新来电：上一位来电人的对话已清空，请输入本次来电的问题。" }));
    q.value = "";
    q.focus();
    toast("已开始新来电");
  });

  $("clear-history").addEventListener("click", () => {
    const s = storage("session");
    if (s) s.removeItem(HISTORY_STORAGE);
    renderHistory();
  });

  // -------------------------------------------------------------------------------------------------
  // Keyboard
  // -------------------------------------------------------------------------------------------------

  function inTextField(target) {
    return target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.isContentEditable);
  }

  function resultButtons() {
    return Array.from(resultsList.querySelectorAll(".button-copy"));
  }

  document.addEventListener("keydown", (event) => {
    if (consoleSection.hidden || event.isComposing) return;
    const typing = inTextField(event.target);
    const plain = !event.ctrlKey && !event.metaKey && !event.altKey;
    if (event.key === "Escape") {
      event.preventDefault();
      q.focus();
      q.select();
      return;
    }
    if (event.key === "/" && plain && !typing) {
      event.preventDefault();
      q.focus();
      q.select();
      return;
    }
    // Shortcuts: plain keys outside text fields; Alt + key anywhere (event.code: Alt changes event.key on macOS).
    const shortcut = (plain && !typing) || (event.altKey && !event.ctrlKey && !event.metaKey);
    if (!shortcut) {
      if (event.key === "ArrowDown" && event.target === q && resultButtons().length) {
        event.preventDefault();
        resultButtons()[0].focus();
      }
      return;
    }
    const digit = /^Digit([1-9])$/.exec(event.code);
    if (digit) {
      event.preventDefault();
      copyCitation(Number(digit[1]));
    } else if (event.code === "KeyC") {
      event.preventDefault();
      if (current) copy(scriptText(current.question, current.answer), "答复口径");
    } else if ((event.key === "ArrowDown" || event.key === "ArrowUp") && resultsList.contains(event.target)) {
      event.preventDefault();
      const buttons = resultButtons();
      const i = buttons.indexOf(event.target);
      const next = event.key === "ArrowDown" ? i + 1 : i - 1;
      if (next < 0) q.focus();
      else if (next < buttons.length) buttons[next].focus();
    }
  });

  // -------------------------------------------------------------------------------------------------
  // Start: a key from this tab's earlier login is checked again silently.
  // -------------------------------------------------------------------------------------------------

  const stored = storage("session") && storage("session").getItem(KEY_STORAGE);
  if (stored) login(stored, true);
  else keyInput.focus();
})();
