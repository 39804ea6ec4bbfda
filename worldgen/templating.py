"""Filling the slots of real pipeline templates (AlpacaEval `{name}` fields, distilabel Jinja2).

Only the constructs that occur in the shipped templates are handled: `{{ var }}` with simple filters,
`{% for %}` loops (expanded a few times), `{% if %}` blocks (kept when the variable has a value) and
single-brace `{name}` fields.
"""

from __future__ import annotations

import random
import re

_FOR = re.compile(r"\{%-?\s*for\s+(\w+)\s+in\s+([^%]+?)\s*-?%\}(.*?)\{%-?\s*endfor\s*-?%\}", re.S)
_IF = re.compile(r"\{%-?\s*if\s+([^%]+?)\s*-?%\}(.*?)\{%-?\s*endif\s*-?%\}", re.S)
_ELSE = re.compile(r"\{%-?\s*else\s*-?%\}", re.S)
_VAR = re.compile(r"\{\{\s*(.+?)\s*\}\}", re.S)
_SINGLE = re.compile(r"(?<!\{)\{([a-z_][a-z0-9_]*)\}(?!\})")
_IDENT = re.compile(r"[A-Za-z_]\w*")


def _value(expr: str, values: dict[str, str], n_items: int) -> str:
    if "length" in expr:
        return str(n_items + (1 if "+ 1" in expr else 0))
    m = _IDENT.search(expr)
    name = m.group(0) if m else ""
    return values.get(name, values.get("_default", name))


def render(template: str, values: dict[str, str], items: list[str], rng: random.Random) -> str:
    """Render template with slot values; loops iterate over items (e.g. candidate generations)."""

    def loop(m: re.Match) -> str:
        var, body = m.group(1), m.group(3)
        start = 1 if "range(1" in m.group(2) else 0
        out = []
        for i in range(start, len(items)):
            chunk = body.replace("loop.index", str(i + 1 - start)).replace("index + 1", str(i + 1))
            chunk = re.sub(r"\{\{\s*" + var + r"\s*\}\}", lambda _m, i=i: items[i], chunk)
            out.append(chunk)
        return "".join(out)

    def cond(m: re.Match) -> str:
        name_m = _IDENT.search(m.group(1).replace("not ", ""))
        name = name_m.group(0) if name_m else ""
        parts = _ELSE.split(m.group(2), maxsplit=1)
        keep = bool(values.get(name)) or (name not in values and rng.random() < 0.5)
        return parts[0] if keep else (parts[1] if len(parts) > 1 else "")

    text = _FOR.sub(loop, template)
    text = _IF.sub(cond, text)
    text = _VAR.sub(lambda m: _value(m.group(1), values, len(items)), text)
    return _SINGLE.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def fill(template: str, values: dict[str, str]) -> str:
    """Fill `{name}` slots of our own wordings; unknown names and literal braces are left alone."""
    escaped = template.replace("{{", "\x00").replace("}}", "\x01")
    text = _SINGLE.sub(
        lambda m: values.get(m.group(1), m.group(0)) if m.group(1) in values else m.group(0), escaped
    )
    return text.replace("\x00", "{").replace("\x01", "}")
