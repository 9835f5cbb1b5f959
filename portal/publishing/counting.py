"""How each network counts a caption's length, as the network itself does.

* Mastodon: grapheme clusters, after every ``http(s)://`` link is replaced by a
  23-character placeholder and a remote mention ``@user@domain`` by ``@user``
  (mastodon/mastodon app/validators/status_length_validator.rb; docs.joinmastodon.org
  user/posting.md "links count as 23").
* X: twitter-text v3 weighted length over the NFC-normalised text: code points in
  U+0000-U+10FF, U+2000-U+200D, U+2010-U+201F and U+2032-U+2037 weigh 1, every other
  code point 2, an emoji (with its modifiers and joiners) 2 in all, and a link 23
  whatever its length; 280 is the ceiling (twitter-text config/v3.json). We count a
  bare domain (``example.org/path``) as a link of at least 23 too: X links many of
  them, and counting one too long is safe where counting it too short is a refusal.
* Bluesky: extended grapheme clusters (``\\X``), with a second ceiling in UTF-8 bytes
  (lexicons app/bsky/feed/post.json: maxGraphemes 300, maxLength 3000).
* Everything else: code points (Facebook and Instagram document no rule; unverified).
"""

from __future__ import annotations

import unicodedata

import regex

from portal.publishing.limits import Counting

GRAPHEME = regex.compile(r"\X")
# A link as the networks' extractors see one: a scheme, then anything up to a space.
# Closing punctuation right after a link is not part of it (a sentence's full stop).
URL = regex.compile(r"https?://[^\s<>\"]+?(?=[.,;:!?)\]}'\"]*(?:\s|$))")
BARE_DOMAIN = regex.compile(
    r"(?<![\w@./-])(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,63}(?:/[^\s]*)?(?![\w])",
    regex.IGNORECASE,
)
REMOTE_MENTION = regex.compile(r"(?<![\w/])@(\w+)@[\w.-]+\w")
X_LIGHT_RANGES = ((0x0000, 0x10FF), (0x2000, 0x200D), (0x2010, 0x201F), (0x2032, 0x2037))
EMOJI = regex.compile(r"^(?:\p{Extended_Pictographic}|\p{Regional_Indicator})|\u20e3")
URL_WEIGHT = 23


def graphemes(text: str) -> list[str]:
    return GRAPHEME.findall(text)


def _x_weight(text: str) -> int:
    """X's weight of text that holds no link (in units of one light character)."""
    total = 0
    for cluster in graphemes(unicodedata.normalize("NFC", text)):
        if EMOJI.search(cluster):
            total += 2
            continue
        for char in cluster:
            code = ord(char)
            total += 1 if any(lo <= code <= hi for lo, hi in X_LIGHT_RANGES) else 2
    return total


def _x_length(text: str) -> int:
    text = unicodedata.normalize("NFC", text)
    links = [(m.start(), m.end(), False) for m in URL.finditer(text)]
    links += [
        (m.start(), m.end(), True)
        for m in BARE_DOMAIN.finditer(text)
        if not any(start <= m.start() < end for start, end, _ in links)
    ]
    total = 0
    position = 0
    for start, end, bare in sorted(links):
        total += _x_weight(text[position:start])
        link = _x_weight(text[start:end])
        total += max(URL_WEIGHT, link) if bare else URL_WEIGHT
        position = end
    return total + _x_weight(text[position:])


def _mastodon_length(text: str) -> int:
    text = URL.sub("x" * URL_WEIGHT, text)
    text = REMOTE_MENTION.sub(r"@\1", text)
    return len(graphemes(text))


def count_length(text: str, counting: Counting) -> int:
    """The caption's length as the network counts it."""
    if counting == "mastodon":
        return _mastodon_length(text)
    if counting == "x":
        return _x_length(text)
    if counting == "graphemes":
        return len(graphemes(text))
    return len(text)


def count_bytes(text: str) -> int:
    return len(text.encode("utf-8"))
