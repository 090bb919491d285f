"""The web chat page in a real browser: Debian's Chromium, headless, driven by Playwright,
against a real `chatforge serve` on 127.0.0.1 with a tiny random model.

Needs the `playwright` Python package (the `test` extra) and a Chromium at /usr/bin/chromium
(`apt-get install -y chromium`; never `playwright install`). Without them the tests skip and
say why, unless CHATFORGE_E2E_REQUIRED=1 (set by .ci/run), where they fail instead."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import torch
from serve_helpers import serving, tiny_model_dir

from chatforge.checkpoint import load_model_dir, save_model_dir
from chatforge.feedback.store import FeedbackStore
from chatforge.serve.config import Limits
from chatforge.tokenizer import SPECIAL_TOKENS

CHROMIUM = os.environ.get("CHATFORGE_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"]
KEY = "sk-web-0123456789"
QUESTION = "Where is my order?"


def _unavailable(reason: str) -> None:
    if os.environ.get("CHATFORGE_E2E_REQUIRED") == "1":
        pytest.fail(f"browser test required (CHATFORGE_E2E_REQUIRED=1) but {reason}")
    pytest.skip(f"BROWSER TEST SKIPPED: {reason}")


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as e:
        _unavailable(f"the playwright package is missing ({e}): pip install playwright (the `test` extra has it)")
    pw = sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
    except Exception as e:
        pw.stop()
        _unavailable(f"Chromium at {CHROMIUM} does not start ({str(e).splitlines()[0]}); install it with `apt-get install -y chromium`")
    yield b
    b.close()
    pw.stop()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """The tiny random model with its weights 10x larger: its replies then depend on the
    prompt (at the usual initial scale every prompt gets the same greedy reply, so a page
    that sent the wrong messages would go unnoticed)."""
    root = tmp_path_factory.mktemp("web")
    model = load_model_dir(tiny_model_dir(root))
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.mul_(10)
    save_model_dir(root / "loud", model, tokenizer_dir=root / "tok")
    return root / "loud"


@contextmanager
def talking(app, words: bool = True, delay: float = 0.0) -> Iterator[None]:
    """The served model never picks a special token, so a reply is never empty and always
    runs to max_tokens; with `words`, no lone byte either (readable screenshots); `delay`
    seconds per step make it slow."""
    banned = torch.arange(len(SPECIAL_TOKENS) + (256 if words else 0))

    def hook(module, args, logits):
        time.sleep(delay)
        return logits.index_fill(-1, banned, float("-inf"))

    handle = app.state.server.engine.model.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


@contextmanager
def _page(browser, base: str, width: int = 1100, height: int = 760):
    """A fresh browser profile (empty localStorage) with the page open."""
    context = browser.new_context(viewport={"width": width, "height": height})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    page = context.new_page()
    page.on("dialog", lambda d: d.accept())  # "Delete the chat?"
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))  # an uncaught exception in the page's script
    page.js_errors = errors
    page.set_default_timeout(20_000)
    page.goto(base + "/")
    try:
        yield page
    finally:
        context.close()


def _settings(page, temperature: str, max_tokens: str) -> None:
    # as a person does it: type, then leave the field (the page reads it on change)
    page.fill("#temperature", temperature)
    page.press("#temperature", "Tab")
    page.fill("#max-tokens", max_tokens)
    page.press("#max-tokens", "Tab")


def _ask(page, text: str) -> None:
    """Send `text` with Enter and wait for the whole reply."""
    n = page.locator(".msg").count()
    page.fill("#input", text)
    page.press("#input", "Enter")
    _wait_done(page, n + 2)


def _wait_done(page, messages: int) -> None:
    """Wait for `messages` messages on the page and no reply streaming."""
    page.wait_for_function(f"document.querySelectorAll('.msg').length === {messages} && !document.querySelector('.msg[aria-busy]')")
    page.wait_for_selector("#stop", state="hidden")


def _stored(page) -> list[dict]:
    return page.evaluate("JSON.parse(localStorage.getItem('chatforge.chats'))")


def _greedy(base: str, messages: list[dict], max_tokens: int, headers: dict | None = None, **kw) -> dict:
    """The server's reply to a plain (not streamed) greedy request."""
    r = httpx.post(base + "/v1/chat/completions", json={"messages": messages, "temperature": 0, "max_tokens": max_tokens, **kw}, headers=headers or {}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["choices"][0]


def _screenshot(page, path: Path) -> None:
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")


def test_chat_stream_feedback_and_probabilities(browser, model_dir, tmp_path):
    db = tmp_path / "feedback.db"
    with serving(model_dir, store=str(db)) as (base, app), talking(app), _page(browser, base) as page:
        page.wait_for_selector("#model-name:has-text('tiny')")
        _settings(page, "0", "20")
        page.fill("#input", "first line")
        page.press("#input", "Shift+Enter")  # a new line, not a send
        assert page.input_value("#input") == "first line\n" and page.locator(".msg").count() == 0
        _ask(page, QUESTION)

        # The streamed reply is what the server answers to the same greedy request.
        want = _greedy(base, [{"role": "user", "content": QUESTION}], 20)["message"]["content"]
        assert want.strip()
        assert page.locator(".msg.user .body").text_content() == QUESTION
        assert page.locator(".msg.assistant .body").text_content() == want
        assert page.locator("#announce").text_content() == "Assistant: " + want  # for screen readers
        (chat,) = _stored(page)
        assert [m["role"] for m in chat["messages"]] == ["user", "assistant"] and chat["title"] == QUESTION
        reply = chat["messages"][1]
        assert reply["content"] == want and reply["id"].startswith("chatcmpl-")
        assert "".join(t[0] for t in reply["tokens"]) == want

        # Copy puts the reply on the clipboard.
        page.click(".msg.assistant [aria-label='Copy reply']")
        page.wait_for_selector(".msg.assistant .status:has-text('Copied')")
        assert page.evaluate("navigator.clipboard.readText()") == want

        # Thumbs down with a comment reaches the server's feedback store.
        page.click(".msg.assistant [aria-label='Bad reply']")
        page.fill(".msg.assistant .feedback textarea", "Too vague: where is it?")
        page.click(".msg.assistant .feedback button[type=submit]")
        page.wait_for_selector(".msg.assistant .status:has-text('Feedback recorded')")
        (record,) = FeedbackStore.open(db).ratings()
        assert record["thumb"] == -1 and record["turn_id"] == reply["id"]
        assert record["comment"] == "Too vague: where is it?" and record["reply"] == want
        assert record["messages"] == [{"role": "user", "content": QUESTION}]
        assert page.get_attribute(".msg.assistant [aria-label='Bad reply']", "aria-pressed") == "true"

        # Probability colours: one span per piece of the reply, its tooltip the token's probability.
        page.check("#colour")
        spans = page.locator(".msg.assistant .body span.tok")
        assert spans.count() > 0 and "".join(spans.all_text_contents()) == want
        first = _greedy(base, [{"role": "user", "content": QUESTION}], 20, logprobs=True, top_logprobs=3)["logprobs"]["content"][0]
        title = spans.first.get_attribute("title")
        assert f"{100 * math.exp(first['logprob']):.1f}%" in title and "top alternatives" in title
        assert json.dumps(first["top_logprobs"][1]["token"]) in title
        colours = spans.evaluate_all("spans => spans.map(s => getComputedStyle(s).backgroundColor)")
        assert all(c.startswith("rgb(") for c in colours), colours  # coloured, not transparent
        assert page.is_visible("#legend")
        _screenshot(page, tmp_path / "page.png")

        # A reload keeps the conversation, the rating and the settings.
        page.reload()
        assert page.locator(".msg.assistant .body").text_content() == want
        assert page.locator(".msg.assistant .status").text_content() == "Feedback recorded."
        assert page.input_value("#temperature") == "0" and page.input_value("#max-tokens") == "20" and page.is_checked("#colour")

        # Regenerate re-asks the last user turn: greedy, so the same reply, in place of the old one.
        page.uncheck("#colour")
        page.click("[aria-label='Regenerate reply']")
        _wait_done(page, 2)
        (chat,) = _stored(page)
        assert [m["content"] for m in chat["messages"]] == [QUESTION, want]
        assert chat["messages"][1]["id"] != reply["id"] and "rating" not in chat["messages"][1]

        # A new chat with a system prompt; the server sees it.
        page.click("#new-chat")
        assert page.locator(".msg").count() == 0 and page.locator("#chats li").count() == 2
        page.fill("#system", "You help Larkspur Goods customers.")
        _ask(page, "Hello")
        messages = [{"role": "system", "content": "You help Larkspur Goods customers."}, {"role": "user", "content": "Hello"}]
        second = _greedy(base, messages, 20)["message"]["content"]
        assert page.locator(".msg.assistant .body").text_content() == second
        assert second != _greedy(base, messages[1:], 20)["message"]["content"]  # the system prompt mattered
        assert [c["title"] for c in _stored(page)] == ["Hello", QUESTION]  # the latest on top

        # Switching back shows the first chat; deleting it leaves the other.
        page.click(f"#chats .open:has-text('{QUESTION}')")
        assert page.locator(".msg.assistant .body").text_content() == want
        assert page.input_value("#system") == ""
        page.click(f"[aria-label='Delete chat: {QUESTION}']")
        assert [c["title"] for c in _stored(page)] == ["Hello"] and page.locator("#chats li").count() == 1
        assert page.locator(".msg.assistant .body").text_content() == second

        # Phone width: one column, the sidebar behind a button, nothing wider than the screen.
        page.set_viewport_size({"width": 390, "height": 760})
        assert not page.is_visible("#side") and page.is_visible("#toggle-side") and page.is_visible("#input")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        _screenshot(page, tmp_path / "page-phone.png")
        page.click("#toggle-side")
        assert page.is_visible("#side") and page.get_attribute("#toggle-side", "aria-expanded") == "true"
        _screenshot(page, tmp_path / "page-phone-sidebar.png")
        assert not page.js_errors


def test_stop_ends_the_stream_and_the_server_cancels(browser, model_dir):
    # A slow model (50 ms a token) sampling bytes too, so pieces of characters come in.
    with serving(model_dir) as (base, app), talking(app, words=False, delay=0.05):
        engine = app.state.server.engine
        with _page(browser, base) as page:
            _settings(page, "1", "100")
            page.check("#colour")
            page.fill("#input", QUESTION)
            page.press("#input", "Enter")
            page.wait_for_function("document.querySelectorAll('.msg.assistant .body .tok').length >= 3")
            assert engine.active == 1 and page.is_visible("#stop") and not page.is_visible("#send")
            page.click("#stop")
            page.wait_for_selector("#send:visible")
            for _ in range(100):  # the page hung up: the server cancels the sequence at once, long before 100 tokens
                if engine.active == 0:
                    break
                time.sleep(0.02)
            assert engine.active == 0
            assert page.locator(".msg.assistant .note").text_content() == "Stopped."
            (chat,) = _stored(page)
            reply = chat["messages"][1]
            shown = page.locator(".msg.assistant .body").text_content()
            assert reply["content"] == shown and 0 < len(reply["tokens"]) < 100
            # the coloured pieces are the reply, even where a character took several tokens
            assert "".join(page.locator(".msg.assistant .body .tok").all_text_contents()) == shown
            assert not page.js_errors


def test_errors_are_shown_and_a_reply_cut_by_an_error_is_kept(browser, model_dir):
    with serving(model_dir, limits=Limits(timeout=1.5)) as (base, app), talking(app, delay=0.05), _page(browser, base) as page:
        # Refused before streaming (400: the reply would not fit the 128-token context):
        # the server's message, the question kept, no empty reply.
        _settings(page, "0", "1000")
        page.fill("#input", QUESTION)
        page.press("#input", "Enter")
        page.wait_for_selector("#error:visible")
        assert "context is 128 tokens" in page.locator("#error-text").text_content()
        (chat,) = _stored(page)
        assert [m["role"] for m in chat["messages"]] == ["user"] and page.locator(".msg").count() == 1
        # Retry with room for the reply; the server's time limit (1.5 s, 50 ms a token) ends
        # the stream with an error event: the reply so far stays, with the reason.
        _settings(page, "0", "100")
        page.click("#retry")
        _wait_done(page, 2)
        assert not page.is_visible("#error")
        reply = _stored(page)[0]["messages"][1]
        assert reply["content"] and len(reply["tokens"]) < 100
        assert "longer than 1.5 s" in page.locator(".msg.assistant .note").text_content()
        assert not page.js_errors


def test_the_page_asks_for_the_api_key(browser, model_dir, tmp_path):
    with serving(model_dir, api_key=KEY) as (base, app), talking(app), _page(browser, base) as page:
        page.wait_for_selector("#key-dialog[open]")  # GET v1/models got 401
        page.fill("#key-input", "wrong")
        page.press("#key-input", "Enter")
        page.wait_for_selector("#key-dialog[open] #key-why:has-text('refused')")
        _screenshot(page, tmp_path / "page-key-dialog.png")
        page.fill("#key-input", KEY)
        page.click("#key-dialog button[type=submit]")
        page.wait_for_selector("#model-name:has-text('tiny')")
        assert page.evaluate("localStorage.getItem('chatforge.key')") == KEY
        _settings(page, "0", "20")
        _ask(page, QUESTION)
        want = _greedy(base, [{"role": "user", "content": QUESTION}], 20, headers={"Authorization": f"Bearer {KEY}"})["message"]["content"]
        assert page.locator(".msg.assistant .body").text_content() == want
        _screenshot(page, tmp_path / "page-key.png")
        # The key is remembered: a reload does not ask again.
        page.reload()
        page.wait_for_selector("#model-name:has-text('tiny')")
        assert not page.is_visible("#key-dialog")
        # "Forget API key" forgets it: the next request asks again.
        page.click("#forget-key")
        page.reload()
        page.wait_for_selector("#key-dialog[open]")
        assert not page.js_errors
