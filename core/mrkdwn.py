"""Slack mrkdwn text: one escape for the payloads `jobs` builds and the closing messages
`core` queues (core sits below jobs, so it lives here)."""

from __future__ import annotations


def escape(text: str) -> str:
    """Customer text (verbatims, metadata values) and taxonomy labels as Slack should show
    them. `&`, `<` and `>` are mrkdwn's control characters: unescaped, a verbatim containing
    `<!channel>` pinged the whole channel, `<https://x|cliquez>` became a disguised link and a
    masked `<EMAIL>` vanished."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
