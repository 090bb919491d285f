// chatforge's web chat page. Conversations and settings live in this browser's
// localStorage; replies stream from POST v1/chat/completions (server-sent events read
// with fetch, since EventSource cannot POST); ratings go to POST v1/feedback.
// The DOM is built with createElement and textContent only: no model or user text is
// ever parsed as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const STORE = { chats: "chatforge.chats", settings: "chatforge.settings", key: "chatforge.key" };
// maxTokens: 128 leaves room for the conversation in the quickstart model's 256-token context.
const DEFAULTS = { temperature: 0.7, maxTokens: 128, system: "", colour: false, current: null };

function load(name, fallback) {
  try {
    return JSON.parse(localStorage.getItem(name)) ?? fallback;
  } catch {
    return fallback;
  }
}

// chats: newest first; a chat is {id, title, system, messages}; a message is
// {role, content} and, for a reply, also id (the completion id), tokens, rating, finish, note.
// tokens: [text, logprob, [[alternative, logprob], ...]] per piece of the reply, in order:
// their texts joined are the reply (compact arrays: they are most of what is stored).
let chats = load(STORE.chats, []);
const settings = { ...DEFAULTS, ...load(STORE.settings, {}) };
let apiKey = localStorage.getItem(STORE.key) || "";
let busy = null; // the reply being streamed: {controller, chat, msg}

function save() {
  try {
    localStorage.setItem(STORE.settings, JSON.stringify(settings));
    localStorage.setItem(STORE.chats, JSON.stringify(chats));
  } catch {
    // Storage full: drop the token probabilities of the other chats and try once more.
    for (const c of chats) if (c.id !== settings.current) for (const m of c.messages) delete m.tokens;
    try {
      localStorage.setItem(STORE.chats, JSON.stringify(chats));
    } catch {
      showError("This browser's storage is full: the conversation is not saved.");
    }
  }
}

const newId = () => Date.now().toString(36) + Math.random().toString(36).slice(2, 8);
const current = () => chats.find((c) => c.id === settings.current);

function newChat() {
  const empty = current();
  if (!empty || empty.messages.length) {
    chats.unshift({ id: newId(), title: "New chat", system: settings.system, messages: [] });
    settings.current = chats[0].id;
  }
  save();
  render();
  $("input").focus();
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

// -- talking to the server ---------------------------------------------------------------

// fetch with the API key; a 401 asks for a key and tries again. Paths are relative, so
// the page also works behind a proxy that serves it under a prefix.
async function api(path, body, signal) {
  for (let refused = false; ; refused = true) {
    const headers = { "Content-Type": "application/json" };
    if (apiKey) headers.Authorization = "Bearer " + apiKey;
    const res = await fetch(path, { method: body ? "POST" : "GET", headers, body: body && JSON.stringify(body), signal });
    if (res.status !== 401) {
      if (!res.ok) throw new Error(await errorText(res));
      return res;
    }
    await askKey(refused || apiKey ? "The server refused that key. Try another." : null);
  }
}

async function errorText(res) {
  let message = "";
  try {
    message = (await res.json()).error.message;
  } catch {
    /* not our JSON error shape */
  }
  if (res.status === 429) return "The server is busy. Try again in a moment.";
  return message || `The server answered ${res.status} ${res.statusText}.`;
}

let keyWait = null; // one dialog, however many requests got a 401 at once
function askKey(why) {
  if (keyWait) return keyWait;
  keyWait = new Promise((resolve, reject) => {
    const dialog = $("key-dialog");
    $("key-why").textContent = why || "This server asks for an API key. It is kept in this browser only (localStorage).";
    $("key-input").value = "";
    dialog.returnValue = "";
    dialog.addEventListener("close", () => {
      keyWait = null;
      const key = $("key-input").value.trim();
      if (dialog.returnValue !== "ok" || !key) return reject(new Error("This server needs an API key."));
      apiKey = key;
      localStorage.setItem(STORE.key, key);
      $("forget-key").hidden = false;
      resolve();
    }, { once: true });
    dialog.showModal();
  });
  return keyWait;
}

// Server-sent events by hand: events end with a blank line, sse-starlette ends lines with
// \r\n, and a network chunk may stop mid-line (so the last partial line waits in `buf`).
// onData gets each event's data; it returns true at the end of the stream.
async function readEvents(res, onData) {
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  let data = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error("The connection closed before the reply was complete.");
      buf += value;
      const lines = buf.split("\n");
      buf = lines.pop();
      for (let line of lines) {
        line = line.replace(/\r$/, "");
        if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        else if (line === "" && data.length) {
          const end = onData(data.join("\n"));
          data = [];
          if (end) return;
        } // comments (": ping") and other fields are not used
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

// The messages the model sees for a reply at `upto` (exclusive): the system prompt and the turns.
function conversation(chat, upto = chat.messages.length) {
  const turns = chat.messages.slice(0, upto).filter((m) => m.content).map((m) => ({ role: m.role, content: m.content }));
  return chat.system.trim() ? [{ role: "system", content: chat.system }, ...turns] : turns;
}

// Ask the model to answer the end of `chat`, streaming the reply into the page.
async function ask(chat) {
  hideError();
  const messages = conversation(chat);
  const msg = { role: "assistant", content: "", tokens: [] };
  chat.messages.push(msg);
  const view = messageView(chat, msg);
  view.setAttribute("aria-busy", "true");
  $("log").append(view);
  scrollDown(true);
  const body = view.querySelector(".body");
  const controller = new AbortController();
  busy = { controller, chat, msg };
  setBusy(true);
  let pending = null; // probabilities of tokens whose text has not arrived yet (part of a character)
  let failed = null;
  try {
    const res = await api("v1/chat/completions", {
      messages, stream: true, temperature: settings.temperature, max_tokens: settings.maxTokens, logprobs: true, top_logprobs: 3,
    }, controller.signal);
    await readEvents(res, (data) => {
      if (data === "[DONE]") return true;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new Error(chunk.error.message || String(chunk.error));
      msg.id = msg.id || chunk.id;
      const choice = chunk.choices && chunk.choices[0];
      if (!choice) return false; // the usage chunk
      if (choice.finish_reason) msg.finish = choice.finish_reason;
      // A token's text can be empty (the first bytes of a character): its probability
      // joins the next piece that has text (the product, as logprobs add).
      for (const t of (choice.logprobs && choice.logprobs.content) || []) {
        if (pending) pending[1] += t.logprob;
        else pending = ["", t.logprob, (t.top_logprobs || []).map((a) => [a.token, a.logprob])];
      }
      const text = (choice.delta && choice.delta.content) || "";
      if (!text) return false;
      const piece = pending || ["", null, []];
      piece[0] = text;
      pending = null;
      msg.content += text;
      msg.tokens.push(piece);
      const near = scrollDown(false);
      body.append(settings.colour ? tokenView(piece) : text);
      if (near) scrollDown(true);
      return false;
    });
  } catch (e) {
    if (e.name === "AbortError") msg.note = "Stopped.";
    else if (e instanceof TypeError) failed = `Could not reach the server (${e.message}).`; // fetch's network errors
    else failed = e.message;
  } finally {
    busy = null;
    setBusy(false);
  }
  if (!msg.content) chat.messages.splice(chat.messages.indexOf(msg), 1); // nothing came: no empty reply in the history
  else if (failed) msg.note = failed;
  save();
  render();
  if (failed && !msg.content) showError(failed, true);
  // The log is not a live region (re-drawing it would re-read the whole chat): a screen
  // reader hears each finished reply once, from here.
  $("announce").textContent = msg.content ? "Assistant: " + msg.content : "";
}

async function send() {
  const input = $("input");
  const text = input.value;
  if (!text.trim() || busy) return;
  let chat = current();
  if (!chat) {
    newChat();
    chat = current();
  }
  chat.messages.push({ role: "user", content: text });
  if (chat.title === "New chat") chat.title = text.trim().replace(/\s+/g, " ").slice(0, 60);
  chats = [chat, ...chats.filter((c) => c !== chat)]; // the latest conversation on top
  input.value = "";
  save();
  render();
  await ask(chat);
}

// Re-ask the last user turn: drop the reply after it (if any) and ask again.
function regenerate() {
  const chat = current();
  if (busy || !chat || !chat.messages.length) return;
  if (chat.messages.at(-1).role === "assistant") chat.messages.pop();
  ask(chat);
}

async function sendFeedback(chat, msg, rating, comment) {
  const at = chat.messages.indexOf(msg);
  const body = { completion_id: msg.id || "", rating, messages: conversation(chat, at), reply: msg.content };
  if (comment.trim()) body.comment = comment.trim();
  await api("v1/feedback", body);
  msg.rating = rating;
  save();
}

async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
  // Plain http on a LAN address is not a secure context: no Clipboard API there.
  const area = el("textarea");
  area.value = text;
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.append(area);
  area.select();
  const ok = document.execCommand("copy");
  area.remove();
  if (!ok) throw new Error("copy failed");
}

// -- drawing -----------------------------------------------------------------------------

function tokenView([text, logprob, alternatives]) {
  const span = el("span", "tok", text);
  if (logprob === null) return span;
  const p = Math.exp(logprob);
  // Red where the model was unsure, through yellow, to green where it was sure.
  span.style.backgroundColor = `hsl(${Math.round(p * 120)} 85% var(--tok-l))`;
  const pct = (x) => (100 * Math.exp(x)).toFixed(1) + "%";
  const alts = alternatives.map(([t, lp]) => `${JSON.stringify(t)} ${pct(lp)}`).join(", ");
  span.title = `${JSON.stringify(text)}: ${pct(logprob)}` + (alts ? `\ntop alternatives: ${alts}` : "");
  return span;
}

function fillBody(body, msg) {
  if (settings.colour && msg.tokens && msg.tokens.length) body.replaceChildren(...msg.tokens.map(tokenView));
  else body.textContent = msg.content;
}

const NOTES = { length: "Cut off at the max tokens limit (see Settings).", content_filter: "Refused by the server's safety filter." };

function messageView(chat, msg) {
  const view = el("article", "msg " + msg.role);
  view.setAttribute("aria-label", msg.role === "user" ? "You" : "Assistant");
  const body = el("div", "body");
  fillBody(body, msg);
  view.append(body);
  if (msg.role !== "assistant") return view;
  const note = msg.note || NOTES[msg.finish];
  if (note) view.append(el("p", "note", note));
  view.append($("reply-tools").content.cloneNode(true));
  const [tools, form] = [view.querySelector(".tools"), view.querySelector(".feedback")];
  const status = tools.querySelector(".status");
  const button = (act) => view.querySelector(`[data-act="${act}"]`);
  const last = chat.messages.at(-1) === msg;
  button("regen").hidden = !last;
  let rating = msg.rating || null;
  const press = () => ["up", "down"].forEach((r) => button(r).setAttribute("aria-pressed", String(rating === r)));
  press();
  if (msg.rating) status.textContent = "Feedback recorded.";
  tools.addEventListener("click", async (e) => {
    const act = e.target.closest("button")?.dataset.act;
    if (act === "copy") {
      try {
        await copyText(msg.content);
        status.textContent = "Copied.";
      } catch {
        status.textContent = "Could not copy.";
      }
    } else if (act === "up" || act === "down") {
      rating = act;
      press();
      form.hidden = false;
      form.elements.comment.focus();
    } else if (act === "regen") regenerate();
  });
  button("cancel").addEventListener("click", () => {
    rating = msg.rating || null;
    press();
    form.hidden = true;
  });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    status.textContent = "Sending…";
    try {
      await sendFeedback(chat, msg, rating, form.elements.comment.value);
      form.hidden = true;
      form.reset();
      status.textContent = "Feedback recorded. Thank you!";
    } catch (err) {
      status.textContent = "Feedback not sent: " + err.message;
    }
  });
  return view;
}

function render() {
  const chat = current();
  const list = $("chats");
  list.replaceChildren(...chats.map((c) => {
    const item = el("li", c.id === settings.current ? "current" : "");
    const open = el("button", "open", c.title);
    open.type = "button";
    if (c.id === settings.current) open.setAttribute("aria-current", "true");
    open.addEventListener("click", () => {
      if (busy) busy.controller.abort(); // the stream belongs to the chat being left
      hideError();
      settings.current = c.id;
      save();
      render();
      closeSideOnPhone();
    });
    const del = el("button", "icon del", "×");
    del.type = "button";
    del.setAttribute("aria-label", `Delete chat: ${c.title}`);
    del.addEventListener("click", () => deleteChat(c));
    item.append(open, del);
    return item;
  }));
  $("system").value = chat ? chat.system : settings.system;
  const log = $("log");
  const views = chat ? chat.messages.map((m) => messageView(chat, m)) : [];
  log.replaceChildren(...(views.length ? views : [$("empty")]));
  scrollDown(true);
}

function deleteChat(c) {
  if (!confirm(`Delete the chat "${c.title}"?`)) return;
  if (busy && busy.chat === c) busy.controller.abort();
  chats = chats.filter((x) => x !== c);
  if (settings.current === c.id) settings.current = chats.length ? chats[0].id : null;
  save();
  render();
}

// Scroll the log to the bottom (force), or report whether it is near the bottom already:
// a reader who scrolled up to read is not pulled down by new tokens.
function scrollDown(force) {
  const log = $("log");
  if (force) log.scrollTop = log.scrollHeight;
  return log.scrollHeight - log.scrollTop - log.clientHeight < 60;
}

function setBusy(on) {
  $("send").hidden = on;
  $("stop").hidden = !on;
  for (const b of document.querySelectorAll('[data-act="regen"]')) b.disabled = on;
  if (!on && matchMedia("(hover: hover)").matches) $("input").focus(); // not on phones: no keyboard popping up
}

function showError(text, retry = false) {
  $("error-text").textContent = text;
  $("retry").hidden = !retry;
  $("error").hidden = false;
}

function hideError() {
  $("error").hidden = true;
}

function closeSideOnPhone() {
  document.body.classList.remove("side-open");
  $("toggle-side").setAttribute("aria-expanded", "false");
}

// -- wiring ------------------------------------------------------------------------------

function number(input, min, max, fallback) {
  const v = input.valueAsNumber;
  return Number.isFinite(v) ? Math.min(max, Math.max(min, v)) : fallback;
}

function init() {
  if (!current() && chats.length) settings.current = chats[0].id;
  $("temperature").value = settings.temperature;
  $("max-tokens").value = settings.maxTokens;
  $("colour").checked = settings.colour;
  $("legend").hidden = !settings.colour;
  $("forget-key").hidden = !apiKey;

  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    send();
  });
  $("input").addEventListener("keydown", (e) => {
    // Enter sends, Shift+Enter is a new line; not while an input method composes a character.
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      send();
    } else if (e.key === "Escape" && busy) busy.controller.abort();
  });
  $("stop").addEventListener("click", () => busy && busy.controller.abort());
  $("new-chat").addEventListener("click", () => {
    if (busy) busy.controller.abort();
    hideError();
    newChat();
    closeSideOnPhone();
  });
  $("retry").addEventListener("click", regenerate);
  $("system").addEventListener("input", (e) => {
    settings.system = e.target.value; // also the default for new chats
    const chat = current();
    if (chat) chat.system = e.target.value;
    save();
  });
  $("temperature").addEventListener("change", (e) => {
    settings.temperature = number(e.target, 0, 2, DEFAULTS.temperature);
    e.target.value = settings.temperature;
    save();
  });
  $("max-tokens").addEventListener("change", (e) => {
    settings.maxTokens = Math.round(number(e.target, 1, 1e6, DEFAULTS.maxTokens));
    e.target.value = settings.maxTokens;
    save();
  });
  $("colour").addEventListener("change", (e) => {
    settings.colour = e.target.checked;
    $("legend").hidden = !settings.colour;
    save();
    const chat = current();
    const views = $("log").querySelectorAll(".msg");
    if (chat) chat.messages.forEach((m, i) => m.role === "assistant" && views[i] && fillBody(views[i].querySelector(".body"), m));
  });
  $("toggle-side").addEventListener("click", () => {
    const open = document.body.classList.toggle("side-open");
    $("toggle-side").setAttribute("aria-expanded", String(open));
  });
  document.querySelector("main").addEventListener("click", closeSideOnPhone); // tap beside the sidebar
  $("forget-key").addEventListener("click", () => {
    apiKey = "";
    localStorage.removeItem(STORE.key);
    $("forget-key").hidden = true;
  });

  render();
  $("input").focus();
  // The model's name for the header; on a server with keys this is where the key is asked for.
  api("v1/models")
    .then((res) => res.json())
    .then((list) => ($("model-name").textContent = list.data[0].id))
    .catch((e) => showError("Could not reach the server: " + e.message));
}

init();
