"""mkdocs hook: turn the Sphinx roles left in numpydoc docstrings into links.

The docstrings use Sphinx roles (``:class:`Stream```, ``:meth:`~Stream.write```);
mkdocstrings renders them literally as ``:class:<code>Stream</code>``. This hook
drops the role and, when the target is known, makes an autorefs cross-reference:
full names (``vampires.x.Y``) resolve anywhere in the site, short names
(``Stream.write``) against the objects documented on the same page. Unknown
targets stay plain code, without a warning. reST's ``::`` before a literal
block becomes ``:`` (the block itself already renders as code).
"""

from __future__ import annotations

import html
import re

_ROLE = re.compile(
    r":(?:py:)?(?:class|meth|func|mod|attr|data|exc|obj|const):<code>(?P<target>[^<]+)</code>"
)
#: reST literal-block markers: a paragraph that is only ``::``, or one ending in ``::``.
_LITERAL_ALONE = re.compile(r"<p>::</p>\n?")
_LITERAL_END = re.compile(r"::</p>")
_OBJECT_ID = re.compile(r'id="(vampires(?:\.[A-Za-z_][A-Za-z0-9_]*)+)"')


def _suffixes(identifier: str) -> list[str]:
    parts = identifier.split(".")
    return [".".join(parts[i:]) for i in range(1, len(parts))]


def on_page_content(html_text: str, **kwargs: object) -> str:
    """Replace role markup in one page's HTML (runs before autorefs fixes references)."""
    html_text = _LITERAL_END.sub(":</p>", _LITERAL_ALONE.sub("", html_text))
    if ":<code>" not in html_text:
        return html_text
    known: dict[str, str | None] = {}
    for identifier in _OBJECT_ID.findall(html_text):
        for suffix in _suffixes(identifier):
            if known.get(suffix, identifier) != identifier:
                known[suffix] = None  # ambiguous on this page
            else:
                known[suffix] = identifier

    def replace(match: re.Match[str]) -> str:
        target = html.unescape(match["target"]).strip().rstrip("()")
        short = target.startswith("~")
        target = target.lstrip("~.")
        shown = target.rsplit(".", 1)[-1] if short else target
        code = f"<code>{html.escape(shown)}</code>"
        identifier = target if target.startswith("vampires.") else known.get(target)
        if not identifier:
            return code
        return f'<autoref identifier="{html.escape(identifier)}" optional>{code}</autoref>'

    return _ROLE.sub(replace, html_text)
