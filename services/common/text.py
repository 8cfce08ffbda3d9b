"""What captions and comments say: #hashtags and @mentions; text PostgreSQL can store."""

from __future__ import annotations

import re

from services.common.errors import InvalidArgument

# A tag runs over letters, digits and underscores in any script.
HASHTAG_RE = re.compile(r"(?<![\w#])#(\w{1,100})")
# Not after a word character, so name@example.com is no mention.
MENTION_RE = re.compile(r"(?<![\w@])@([A-Za-z0-9._]{1,30})")
MAX_TAGS = 30


def hashtags(text: str) -> list[str]:
    """Lower-cased, without '#', first appearance first, at most 30."""
    return list(dict.fromkeys(m.lower() for m in HASHTAG_RE.findall(text)))[:MAX_TAGS]


def mentions(text: str) -> list[str]:
    """Lower-cased usernames, without '@', first appearance first, at most 30.

    A trailing '.' is taken as punctuation ("thanks @ada.").
    """
    names = (m.lower().rstrip(".") for m in MENTION_RE.findall(text))
    return list(dict.fromkeys(n for n in names if n))[:MAX_TAGS]


def without_nul(field: str, value: str, *, name: str | None = None, reason: str | None = None) -> str:
    """`value`, else InvalidArgument naming `field` (as `name` in the message, `field` by default): a
    NUL character, which PostgreSQL's text cannot hold and would answer with a 500."""
    if "\x00" in value:
        raise InvalidArgument(field, f"{name or field} must not contain NUL characters", reason=reason)
    return value
