"""Token estimates: for holds, and for when a provider reports no usage (a cut stream).

Text is measured in units, a quarter token each: an ASCII character is one unit (four to a
token, the usual rule for English text and code), any other character is CHARS_PER_TOKEN
units, a whole token. Tokenizers give Chinese, Japanese or Korean text about a token a
character and emoji more than one byte-level token, so counting every non-ASCII character as
a token keeps a hold from falling short for text in any script; Latin text with accents is
over-counted a little, which a hold can afford.
"""

from __future__ import annotations

from typing import Any

CHARS_PER_TOKEN = 4  # ASCII characters a token; a unit is 1 / CHARS_PER_TOKEN of a token


def units(text: str) -> int:
    """The estimate's size of `text`: its length, plus 3 for each non-ASCII character."""
    if text.isascii():
        return len(text)
    ascii_chars = len(text.encode("ascii", "ignore"))  # C speed: no Python loop over chars
    return ascii_chars + (len(text) - ascii_chars) * CHARS_PER_TOKEN


def from_chars(chars: int) -> int:
    """Tokens for `chars` units (see units()), rounded up: an estimate never bills zero for
    real text."""
    return -(-chars // CHARS_PER_TOKEN)


def prompt(body: dict[str, Any]) -> int:
    """Estimated prompt tokens of a chat request (OpenAI's or Anthropic's) or an embeddings
    request."""
    messages = body.get("messages")
    if isinstance(messages, list):  # a chat request (in an embeddings call it is an extra)
        total = 3 + from_chars(_chars(body.get("system")))  # Anthropic's system prompt
        for message in messages:
            if isinstance(message, dict):
                total += 4 + from_chars(_chars(message.get("content")))
                total += from_chars(_chars(message.get("tool_calls")))
        return total + from_chars(_chars(body.get("tools")))
    return from_chars(_chars(body.get("input")))


def images(body: dict[str, Any]) -> int:
    """Image parts in a chat request's messages (OpenAI's image_url or Anthropic's image)."""
    count = 0
    messages = body.get("messages")
    for message in messages if isinstance(messages, list) else ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            count += sum(
                1
                for part in content
                if isinstance(part, dict) and part.get("type") in ("image_url", "image")
            )
    return count


def _chars(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, str):
        return units(value)
    if isinstance(value, list):
        return sum(_chars(v) for v in value)
    if isinstance(value, dict):
        # A content part: count its text; an image (OpenAI's or Anthropic's block) counts as a
        # fixed ~85 tokens' worth, whatever the size of its base64 data.
        if value.get("type") in ("image_url", "image"):
            return 85 * CHARS_PER_TOKEN
        return sum(_chars(v) for k, v in value.items() if k not in ("type", "id"))
    return units(str(value))
