"""Deterministic rehearsal text: the same prompt always yields the same, clearly labelled tokens.

A "token" here is one whitespace-separated word; prompt lengths are counted the same way.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sglfleet_rehearsal import REHEARSAL_LABEL

# The full answer when max_tokens allows it; a longer limit ends with finish_reason "stop".
ANSWER_TOKENS = 32
WORDS = (
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
    "juliett", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo",
    "sierra", "tango", "uniform", "victor", "whiskey", "xray", "yankee", "zulu",
)  # fmt: skip


def count_tokens(text: str) -> int:
    return max(1, len(text.split()))


def chat_prompt_text(messages: Any) -> str:
    """The text of OpenAI chat messages (string content or lists of text parts)."""
    parts: list[str] = []
    if not isinstance(messages, list):
        return ""
    for message in messages:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts += [
                str(p.get("text", "")) for p in content if isinstance(p, dict) and "text" in p
            ]
    return "\n".join(parts)


def answer_tokens(prompt: str) -> list[str]:
    """The full deterministic answer for a prompt, as token texts that concatenate to it."""
    words = REHEARSAL_LABEL.split()
    digest = hashlib.sha256(prompt.encode("utf-8")).digest()
    index = 0
    while len(words) < ANSWER_TOKENS:
        words.append(WORDS[digest[index % len(digest)] % len(WORDS)])
        index += 1
    return [word if i == 0 else " " + word for i, word in enumerate(words)]


def plan_tokens(prompt: str, max_tokens: int | None) -> tuple[list[str], str]:
    """The tokens to emit and the finish reason ("length" when max_tokens cut the answer)."""
    tokens = answer_tokens(prompt)
    if max_tokens is not None and max_tokens < len(tokens):
        return tokens[: max(0, max_tokens)], "length"
    return tokens, "stop"
