/* New-media preview: the `newmedia` rendering of an answer (plain text, ≤ 300 characters) with a copy button. */
(function () {
  "use strict";
  const { el, badge, safeHref, copyText, toast, chineseMessage, request } = window.PolicyQA;
  const LIMIT = 300; // the channel's limit, counted in characters (code points) as the platforms count them

  const form = document.getElementById("newmedia-form");
  const question = document.getElementById("nm-question");
  const generate = document.getElementById("nm-generate");
  const result = document.getElementById("nm-result");
  const text = document.getElementById("nm-text");
  const count = document.getElementById("nm-count");
  const warning = document.getElementById("nm-warning");
  const sources = document.getElementById("nm-sources");
  const copyButton = document.getElementById("nm-copy");

  function message(status, data) {
    if (status === 0) return "无法连接问答服务，请检查网络后重试。";
    if (status === 429) return chineseMessage(data, "请求过于频繁，请稍后再试。");
    return chineseMessage(data, "生成失败（" + status + "），请稍后再试。");
  }

  async function run() {
    const q = question.value.trim();
    if (!q) {
      question.focus();
      return;
    }
    generate.disabled = true;
    generate.textContent = "正在生成…";
    const { status, data } = await request("POST", "/v1/ask", { body: { question: q, channel: "newmedia" } });
    generate.disabled = false;
    generate.textContent = "生成预览";
    result.hidden = false;
    sources.replaceChildren();
    if (status !== 200 || !data) {
      text.textContent = "";
      count.textContent = "";
      copyButton.disabled = true;
      warning.hidden = false;
      warning.textContent = message(status, data);
      return;
    }
    const body = String(data.answer || "");
    const length = Array.from(body).length;
    text.textContent = body;
    count.textContent = length + " / " + LIMIT + " 字";
    count.classList.toggle("over", length > LIMIT);
    copyButton.disabled = !data.answered;
    // Without POLICYQA_PUBLIC_BASE_URL the server can only give a relative link, useless in a post.
    const relativeLink = /详见：\//.test(body);
    warning.hidden = data.answered && length <= LIMIT && !relativeLink;
    warning.textContent = data.status === "suggest"
      ? "没有确切答案，只有可能相关的条款：请核对原文后再决定是否发布。"
      : !data.answered
      ? "知识库中没有可靠答案，这段文字不适合发布。"
      : length > LIMIT
        ? "超过 " + LIMIT + " 字，请删减后再发布。"
        : "原文链接是相对地址（服务端未设置 POLICYQA_PUBLIC_BASE_URL），发布前请补全网址。";
    const suggested = data.status === "suggest";
    const citations = (suggested ? data.suggestions : data.citations) || [];
    if (citations.length) {
      sources.append(
        el("h3", { text: suggested ? "参考条款（请核对）" : "核对原文" }),
        el(
          "ul",
          { class: "nm-sources" },
          citations.map((c) => {
            const href = safeHref(c.url);
            const label = c.kind === "faq" ? "常见问题：" + (c.title || "") : "《" + (c.title || "") + "》" + (c.section ? " " + c.section : "");
            return el(
              "li",
              {},
              href ? el("a", { href, target: "_blank", rel: "noopener", text: label }) : label,
              " ",
              c.kind === "faq" ? null : badge(c.validity)
            );
          })
        )
      );
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    run();
  });
  question.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      event.preventDefault();
      run();
    }
  });
  copyButton.addEventListener("click", async () => {
    const ok = await copyText(text.textContent);
    toast(ok ? "已复制全文" : "复制失败，请手动选择文字复制");
  });
})();
