"""The HTML page of a shared chat: readable without JavaScript, rendered here.

Answers are Markdown, rendered by markdown-it-py (CommonMark, linear in its
input) with raw HTML off, so every tag a message holds arrives as text; links
keep only http, https and mailto targets (`javascript:` and the like stay
plain text), and images become links, so a shared page loads nothing from
elsewhere. Questions are shown as the text they were typed.
"""

from __future__ import annotations

import datetime as dt
import html

from markdown_it import MarkdownIt

_SAFE_SCHEMES = ("http://", "https://", "mailto:")


def _safe_link(url: str) -> bool:
    return url.strip().lower().startswith(_SAFE_SCHEMES)


def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"]).disable("image")
    md.validateLink = _safe_link  # type: ignore[method-assign]

    def link_open(renderer, tokens, idx, options, env):
        # a shared page must not pass its address on, nor lend its rank to a link
        tokens[idx].attrSet("rel", "nofollow noopener noreferrer")
        return renderer.renderToken(tokens, idx, options, env)

    md.add_render_rule("link_open", link_open)
    return md


_MD = _markdown()


def render_markdown(text: str) -> str:
    return _MD.render(text)


def _source(source: dict) -> str:
    title = html.escape(source.get("title") or source.get("url") or "source")
    url = source.get("url") or ""
    if url and _safe_link(url):
        return f'<li><a href="{html.escape(url)}" rel="nofollow noopener noreferrer">{title}</a></li>'
    return f"<li>{title}</li>"


def _message(message: dict) -> str:
    assistant = message["role"] == "assistant"
    body = (render_markdown(message["content"]) if assistant
            else f'<p class="question">{html.escape(message["content"])}</p>')
    sources = message.get("sources") or []
    listed = (f'<details class="sources"><summary>Sources ({len(sources)})</summary><ol>'
              + "".join(_source(s) for s in sources) + "</ol></details>") if sources else ""
    # read by whoever holds the link, not by the one who asked: no "You"
    who = "Assistant" if assistant else "User"
    return (f'<article class="message {message["role"]}"><h2 class="who">{who}</h2>'
            f'<div class="content">{body}</div>{listed}</article>')


def page(snapshot: dict, stylesheet: str) -> str:
    """The whole document for a snapshot (title, created_at, messages)."""
    title = html.escape(snapshot["title"])
    shared: dt.datetime = snapshot["created_at"]
    when = shared.astimezone(dt.UTC)
    messages = "\n".join(_message(m) for m in snapshot["messages"])
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<meta name="referrer" content="no-referrer">
<title>{title}</title>
<link rel="stylesheet" href="{html.escape(stylesheet)}">
</head>
<body class="shared">
<header><h1>{title}</h1>
<p class="note">A read-only copy, shared <time datetime="{when.isoformat()}">{when:%Y-%m-%d %H:%M} UTC</time>.</p>
</header>
<main>
{messages}
</main>
</body>
</html>
"""
