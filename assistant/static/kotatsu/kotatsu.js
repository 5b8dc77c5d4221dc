// Kotatsu's pages: live progress, answers streamed into the thread, and the player that opens a cited second.
"use strict";

// --- Live progress --------------------------------------------------------------------------------------
// An element with data-refresh="URL" is replaced by a fresh copy from URL every REFRESH_MS, for as long as the
// copy still carries data-refresh (the server drops it once nothing is ingesting).
const REFRESH_MS = 1500;

function keepRefreshed(element) {
  setTimeout(async () => {
    if (!element.isConnected) return;
    try {
      const response = await fetch(element.dataset.refresh, { headers: { "X-Requested-With": "fetch" } });
      if (response.ok) {
        const fresh = document.createRange().createContextualFragment(await response.text()).firstElementChild;
        element.replaceWith(fresh);
        if (fresh.dataset.refresh) keepRefreshed(fresh);
        return;
      }
    } catch (error) {
      // The server restarting or the network blinking: try again at the next beat.
    }
    keepRefreshed(element);
  }, REFRESH_MS);
}

// --- The embedded player ---------------------------------------------------------------------------------
// Items carrying data-player (a source of an answer, a search moment) open in the .player of their answer or
// moment, at data-second: YouTube's embed with start=, or <audio>/<video> with the #t= fragment. One plays at a time.
function openPlayer(item) {
  const scope = item.closest(".answer, .moment");
  const container = scope && scope.querySelector(".player");
  if (!container) return false;
  for (const other of document.querySelectorAll(".player")) {
    if (other !== container) { other.replaceChildren(); other.hidden = true; }
  }
  for (const playing of document.querySelectorAll(".playing")) playing.classList.remove("playing");
  const { player: kind, playerSrc: src } = item.dataset;
  const second = Number(item.dataset.second);
  const media = src.split("#")[0];
  const current = container.querySelector("audio, video");
  if (current && current.dataset.media === media) {
    current.currentTime = second;
  } else {
    let element;
    if (kind === "youtube") {
      element = Object.assign(document.createElement("iframe"), { src, title: item.textContent.trim(), allowFullscreen: true });
      element.allow = "autoplay; encrypted-media; picture-in-picture";
    } else {
      element = Object.assign(document.createElement(kind), { src, controls: true, preload: "auto", autoplay: true });
      element.dataset.media = media;
      // The #t= fragment seeks by itself; this covers a browser that ignored it.
      element.addEventListener("loadedmetadata", () => {
        if (Math.abs(element.currentTime - second) > 1) element.currentTime = second;
      }, { once: true });
    }
    const caption = Object.assign(document.createElement("p"), { className: "now-playing" });
    container.replaceChildren(element, caption);
  }
  container.querySelector(".now-playing").textContent = item.textContent.replace(/\s+/g, " ").trim();
  const playable = container.querySelector("audio, video");
  if (playable) playable.play().catch(() => {});  // the browser may still want a click on the player itself
  container.hidden = false;
  item.classList.add("playing");
  container.scrollIntoView({ block: "nearest", behavior: "smooth" });
  return true;
}

document.addEventListener("click", (click) => {
  const link = click.target.closest("a.citation, a.source-link, a.moment-link");
  if (!link || click.button !== 0 || click.ctrlKey || click.metaKey || click.shiftKey) return;
  let item = link.closest("[data-player]");
  if (link.classList.contains("citation")) {
    // A [n] in the answer's text plays its source n, listed beside the answer.
    const answer = link.closest(".answer");
    item = answer && answer.querySelector(`.sources li[data-n="${CSS.escape(link.textContent.replace(/\D/g, ""))}"]`);
  }
  if (item && item.dataset.player && openPlayer(item)) click.preventDefault();
});

// --- Asking ----------------------------------------------------------------------------------------------
// Server-sent events read from a POST response: EventSource can only GET, and the question needs CSRF.
async function* serverSentEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = (block.match(/^event: (.*)$/m) || [, "message"])[1];
      const data = block.split("\n").filter((line) => line.startsWith("data: ")).map((line) => line.slice(6)).join("\n");
      yield { event, data: JSON.parse(data) };
    }
  }
}

function element(html) {
  return document.createRange().createContextualFragment(html).firstElementChild;
}

function remember(conversation, form, thread) {
  // A follow-up question continues the same conversation.
  let field = form.querySelector("[name=conversation]");
  if (!field) {
    field = Object.assign(document.createElement("input"), { type: "hidden", name: "conversation" });
    form.append(field);
  }
  field.value = conversation.conversation_id;
  if (thread.hasAttribute("data-follow-conversation")) history.replaceState(null, "", conversation.conversation_url);
  const list = document.querySelector("#conversation-list ul");
  if (!list) return;
  for (const link of list.querySelectorAll("a[aria-current]")) link.removeAttribute("aria-current");
  let link = list.querySelector(`a[data-conversation="${conversation.conversation_id}"]`);
  if (!link) {
    const item = document.createElement("li");
    link = Object.assign(document.createElement("a"), { href: conversation.conversation_url, textContent: conversation.conversation_title });
    link.dataset.conversation = conversation.conversation_id;
    item.append(link);
    list.prepend(item);
  }
  link.setAttribute("aria-current", "page");
}

function setUpAskForm(form) {
  const said = form.dataset;
  const status = document.getElementById("ask-status");
  const thread = document.getElementById("thread");
  const question = form.querySelector("#question");
  const button = form.querySelector("#ask-button");

  question.addEventListener("keydown", (key) => {
    // Enter asks, Shift+Enter starts a new line; never while an input method (Japanese) is composing.
    if (key.key === "Enter" && !key.shiftKey && !key.isComposing) {
      key.preventDefault();
      form.requestSubmit();
    }
  });

  form.addEventListener("submit", async (submitted) => {
    submitted.preventDefault();
    if (button.disabled || !question.value.trim()) return;
    button.disabled = true;
    status.textContent = said.saidSearching;
    const body = new FormData(form);
    const previous = document.getElementById("streamed-answer");
    if (previous) previous.removeAttribute("id");
    thread.append(Object.assign(document.createElement("p"), { className: "question", textContent: question.value.trim() }));
    let answer = element('<article id="streamed-answer" class="answer"><div class="answer-body"><p class="answer-text"></p></div></article>');
    thread.append(answer);
    answer.scrollIntoView({ block: "nearest" });
    const text = answer.querySelector(".answer-text");
    question.value = "";
    try {
      const response = await fetch(form.action, {
        method: "POST", body, headers: { "X-CSRFToken": body.get("csrfmiddlewaretoken") },
      });
      if (!response.ok) throw new Error(`${said.saidServerAnswered} ${response.status}`);
      for await (const { event, data } of serverSentEvents(response)) {
        if (event === "delta") {
          status.textContent = said.saidAnswering;
          text.textContent += data.text;
        } else if (event === "done") {
          const finished = element(data.html);
          finished.id = "streamed-answer";
          answer.replaceWith(finished);
          answer = finished;
          status.replaceChildren(`${said.saidAnswered} `, Object.assign(document.createElement("a"), { href: data.conversation_url, textContent: said.saidOpen }));
          remember(data, form, thread);
        } else if (event === "error") {
          throw new Error(data.message);
        }
      }
    } catch (error) {
      status.textContent = `${said.saidCouldNotAnswer} ${error.message}`;
      if (!text.textContent) answer.remove();
    } finally {
      button.disabled = false;
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  for (const section of document.querySelectorAll("[data-refresh]")) keepRefreshed(section);
  const form = document.getElementById("ask-form");
  if (form) setUpAskForm(form);
  // A conversation opens at its latest answer, as chats do.
  const thread = document.querySelector("#thread[data-follow-conversation]");
  if (thread && thread.lastElementChild) thread.lastElementChild.scrollIntoView({ block: "nearest" });
});
