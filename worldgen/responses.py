"""The model's side of an exchange: answer text of a plausible length, usage and stop reason."""

from __future__ import annotations

import math
import random

from .corpora import Corpora

CHARS_PER_TOKEN = 3.9

_OPENERS = (
    "Sure! Here's a breakdown.",
    "Great question.",
    "Here is what I found.",
    "Let's work through this.",
    "Short answer: it depends.",
    "Here's a clear way to think about it.",
    "Happy to help with that.",
    "There are a few things to consider.",
    "",
)
_CLOSERS = (
    "Let me know if you'd like more detail on any of these points.",
    "I hope this helps!",
    "Would you like me to expand on any part?",
    "If you share more context, I can tailor this further.",
    "",
)
_TOOL_NOTES = (
    "I'll start by looking at the relevant file.",
    "Let me run the tests to see the failure.",
    "Checking the directory layout first.",
    "I'll search the codebase for usages.",
    "Let me apply the fix.",
    "Running the command now.",
    "I need to inspect the config.",
    "",
)
_RUBRIC_WORDS = (
    "accurate",
    "clear",
    "well organised",
    "partially correct",
    "missing a key step",
    "verbose",
    "concise",
    "thorough",
)


def _fill_prose(rng: random.Random, c: Corpora, budget: int, out: list[str]) -> None:
    n = 0
    prose = c.prose
    while n < budget:
        s = prose[rng.randrange(len(prose))]
        out.append(s)
        n += len(s) + 1


def render_text(rng: random.Random, c: Corpora, style: str, tokens: int) -> str:
    """Answer text of about `tokens` tokens in a shape that suits the request (steps, code, list...)."""
    budget = max(8, int(tokens * CHARS_PER_TOKEN))
    out: list[str] = []
    if style == "toolcall":
        return rng.choice(_TOOL_NOTES)
    if style == "steps":
        k = 1
        while sum(len(x) for x in out) < budget - 60:
            part: list[str] = []
            _fill_prose(rng, c, min(300, budget // 4 + 40), part)
            out.append(f"Step {k}: " + " ".join(part) + f" This gives {rng.randint(2, 900)}.")
            k += 1
        out.append(f"Final answer: {rng.randint(1, 5000)}")
        return "\n\n".join(out)[: budget + 40]
    if style == "code":
        src = c.code_snippets[rng.randrange(len(c.code_snippets))][1]
        intro: list[str] = []
        _fill_prose(rng, c, min(400, budget // 3), intro)
        body = src
        while len(body) < budget * 0.6:
            body += "\n\n" + c.code_snippets[rng.randrange(len(c.code_snippets))][1]
        text = " ".join(intro) + "\n\n```python\n" + body[: int(budget * 0.75)] + "\n```\n\n"
        tail: list[str] = []
        _fill_prose(rng, c, max(0, budget - len(text)), tail)
        return text + " ".join(tail)
    if style == "rubric":
        _fill_prose(rng, c, budget - 40, out)
        word = rng.choice(_RUBRIC_WORDS)
        return f"The response is {word}. " + " ".join(out) + f"\n\nScore: {rng.randint(1, 10)}"
    if style == "list":
        k = 1
        pool = c.chat_oasst
        while sum(len(x) for x in out) < budget:
            item = pool[rng.randrange(len(pool))].split("\n")[0][:300]
            extra: list[str] = []
            _fill_prose(rng, c, rng.randint(80, 400), extra)
            out.append(f"{k}. {item}\n   {' '.join(extra)}")
            k += 1
        return "\n".join(out)[: budget + 40]
    if style == "json":
        fields = [f'"{k}": "{rng.choice(c.prose)[:60]}"' for k in ("vendor", "date", "summary", "category")]
        text = "{" + ", ".join(fields) + f', "total": {rng.randint(3, 900)}.{rng.randint(0, 99):02d}' + "}"
        return text[: budget + 10] if budget > 60 else text
    opener = rng.choice(_OPENERS)
    _fill_prose(rng, c, budget - len(opener), out)
    closer = rng.choice(_CLOSERS) if budget > 400 else ""
    return " ".join(x for x in (opener, " ".join(out), closer) if x)


def count_tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / CHARS_PER_TOKEN))


def draw_output_tokens(rng: random.Random, median: float, sigma: float = 0.6) -> int:
    return max(1, int(rng.lognormvariate(math.log(median), sigma)))
