"""Recipes: how each kind of exchange turns corpus items into a request.

A recipe renderer is a pure function of (account, item, var, turn): `item` selects the real task text,
`var` seeds every other choice (wrapper, follow-ups, synthetic tool results), `turn` is the position in
a conversation or agent loop whose earlier turns are replayed in `messages`.
"""

from __future__ import annotations

import re
from enum import IntEnum
from functools import lru_cache
from typing import NamedTuple

from distillguard.sim import text as tx
from distillguard.sim.corpora import Corpora, Template
from distillguard.sim.corpora import load as load_corpora
from distillguard.sim.population import Account
from distillguard.sim.world import CLIENT_KINDS, World


class Recipe(IntEnum):
    CHAT = 0
    CHAT_MATH = 1
    CHAT_CODE = 2
    CHAT_IMAGE = 3
    ENTERPRISE = 4
    ENTERPRISE_RECEIPT = 5
    BENCH_MATH = 6
    BENCH_CODE = 7
    BENCH_TOOLS = 8
    CLASS_ASSIGNMENT = 9
    DEV_SESSION = 10
    GRADER = 11
    RESEARCH_ORCA = 12
    RESEARCH_EXPLAIN = 13
    HARVEST_COT = 14
    HARVEST_RUBRIC = 15
    HARVEST_CENSOR = 16
    HARVEST_ORCA = 17
    HARVEST_AGENTIC = 18
    HARVEST_CODE = 19
    HARVEST_DATA = 20
    HARVEST_VISION = 21
    HARVEST_GEN = 22


# Typical visible output length (median tokens, log-normal sigma) of a final answer per recipe.
# Harvesting recipes ask for long, fully worked answers.
OUTPUT_TOKENS: dict[Recipe, tuple[float, float]] = {
    Recipe.CHAT: (320, 0.8), Recipe.CHAT_MATH: (380, 0.6), Recipe.CHAT_CODE: (420, 0.6), Recipe.CHAT_IMAGE: (220, 0.7),
    Recipe.ENTERPRISE: (260, 0.7), Recipe.ENTERPRISE_RECEIPT: (90, 0.3), Recipe.BENCH_MATH: (300, 0.5),
    Recipe.BENCH_CODE: (260, 0.6), Recipe.BENCH_TOOLS: (70, 0.5), Recipe.CLASS_ASSIGNMENT: (450, 0.5),
    Recipe.DEV_SESSION: (450, 0.7), Recipe.GRADER: (260, 0.8), Recipe.RESEARCH_ORCA: (520, 0.6),
    Recipe.RESEARCH_EXPLAIN: (700, 0.6), Recipe.HARVEST_COT: (1400, 0.5), Recipe.HARVEST_RUBRIC: (750, 0.5),
    Recipe.HARVEST_CENSOR: (550, 0.5), Recipe.HARVEST_ORCA: (650, 0.5), Recipe.HARVEST_AGENTIC: (900, 0.6),
    Recipe.HARVEST_CODE: (1200, 0.6), Recipe.HARVEST_DATA: (1500, 0.5), Recipe.HARVEST_VISION: (900, 0.5),
    Recipe.HARVEST_GEN: (1800, 0.5),
}
TOOL_CALL_TOKENS = (130.0, 0.6)

# How many wordings of each wrapper list a naive campaign uses verbatim.
N_CANONICAL = 3


class Prompt(NamedTuple):
    system: str | None
    messages: list[dict]
    tools: tuple[str, ...] | None
    n_images: int


def _user(content: str | list[dict]) -> dict:
    return {"role": "user", "content": content}


def _adaptive(acc: Account) -> bool:
    return acc.params.get("adaptive", 0) == 1


def _wrapper(bank: tuple[str, ...], acc: Account, var: int, n_canonical: int = N_CANONICAL) -> str:
    """A naive campaign repeats its own few wordings verbatim (`n_canonical` entries from its
    `offset` in the list); an adaptive one draws from the whole list and edits each request."""
    if _adaptive(acc):
        return tx.perturb(tx.pick(bank, var, 31), var, 32)
    return bank[(acc.params.get("offset", 0) + tx.mix(var, 31) % n_canonical) % len(bank)]


def _image_part(acc: Account, *seed: int) -> dict:
    host = tx.IMAGE_HOSTS[acc.params.get("img_host", 0) % len(tx.IMAGE_HOSTS)]
    url = f"https://{host}/{tx.mix(*seed):016x}.{tx.pick(('jpg', 'png', 'webp'), *seed, 1)}"
    if CLIENT_KINDS[acc.clients[0][0]].style == "top":
        return {"type": "image", "source": {"type": "url", "url": url}}
    return {"type": "image_url", "image_url": {"url": url}}


def _text_part(text: str) -> dict:
    return {"type": "text", "text": text}


def _conversation(first: str | list[dict], topic: str, followups: tuple[str, ...], var: int, turn: int) -> list[dict]:
    """The first user message, then `turn` rounds of (earlier assistant answer, follow-up)."""
    msgs = [_user(first)]
    for k in range(1, turn + 1):
        msgs.extend(_chat_round(topic, followups, var, k))
    return msgs


@lru_cache(maxsize=1 << 16)
def _chat_round(topic: str, followups: tuple[str, ...], var: int, k: int) -> tuple[dict, dict]:
    # Cached: turn n of a conversation replays rounds 1..n-1 rendered for the earlier turns.
    return {"role": "assistant", "content": tx.assistant_reply(topic, var, k)}, _user(tx.pick(followups, var, k))


# -- agent loops ----------------------------------------------------------------------------

_TOOL_LEADS = (
    "Let me look at the relevant code first.", "I'll check the current state.", "Next, I'll run the tests.",
    "Let me search for where this is used.", "Now I'll apply the fix.", "I'll verify the change.", "",
)


def _tool_args(tool: str, path: str, func: str, var: int, k: int) -> str:
    lname = tool.lower()
    if any(w in lname for w in ("bash", "shell", "command", "terminal")):
        return '{"command": "' + tx.pick(("pytest -q", "python -m pytest -x", "ls -la", "git diff", "ruff check ."), var, k) + '"}'
    if any(w in lname for w in ("grep", "search")):
        return '{"pattern": "' + func + '"}'
    if any(w in lname for w in ("read", "write", "edit", "replace", "diff", "view", "create", "list", "glob")):
        return '{"path": "' + path + '"}'
    return '{"query": "' + func + '", "limit": ' + str(1 + tx.mix(var, k, 42) % 10) + "}"


def _tool_call(tool: str, path: str, func: str, var: int, k: int) -> str:
    lead = tx.pick(_TOOL_LEADS, var, k, 41)
    call = '{"name": "' + tool + '", "arguments": ' + _tool_args(tool, path, func, var, k) + "}"
    return (lead + "\n" if lead else "") + call


def _tool_result(tool: str, path: str, func: str, var: int, k: int) -> str:
    """A synthetic but plausible result for a call to `tool` (file contents, test output, search hits)."""
    code = load_corpora().code
    lname = tool.lower()
    if any(w in lname for w in ("read", "view", "glob", "list")):
        return code[tx.mix(var, k, 43) % len(code)].prompt if "read" in lname else "\n".join(
            f"{tx.pick(tx.DEV_DIRS, var, k, j)}/{code[tx.mix(var, k, j) % len(code)].func}.py" for j in range(4)
        )
    if any(w in lname for w in ("grep", "search")):
        return "\n".join(f"{path}:{10 + j * 7}:    return {func}(values)" for j in range(1 + tx.mix(var, k) % 3))
    if any(w in lname for w in ("bash", "shell", "command", "terminal")):
        n = 3 + tx.mix(var, k, 44) % 20
        return tx.pick(tx.SHELL_OUTPUTS, var, k, 45).format(
            n=n, n1=max(1, n - 1), f=func, dots="." * min(n, 30), ms=tx.mix(var, k) % 90 + 10, path=path
        )
    if any(w in lname for w in ("write", "edit", "replace", "diff", "patch", "create")):
        return tx.pick(("File written successfully.", f"Applied edit to {path}.", "OK", f"Updated {path} (1 hunk)."), var, k)
    return '{"status": "ok", "result": ' + str(tx.mix(var, k, 46) % 10_000) + "}"


@lru_cache(maxsize=1 << 16)
def _agent_round(tools: tuple[str, ...], path: str, func: str, var: int, k: int, followup: str | None) -> tuple[dict, ...]:
    """Round `k` of an agent loop: a tool call and its result, and sometimes a user follow-up."""
    tool = tx.pick(tools, var, k, 47) if tools else "run_shell"
    out: tuple[dict, ...] = (
        {"role": "assistant", "content": _tool_call(tool, path, func, var, k)},
        {"role": "tool", "content": _tool_result(tool, path, func, var, k)},
    )
    if followup is not None and tx.unit(var, k, 48) < 0.5:
        out += ({"role": "assistant", "content": tx.completed_response(var, k)}, _user(followup))
    return out


def _agent_loop(
    task: str, tools: tuple[str, ...], path: str, func: str, var: int, turn: int, followups: tuple[str, ...] = (),
) -> list[dict]:
    """The task, then `turn` (tool call, tool result) rounds; follow-up user turns where the source has them."""
    msgs = [_user(task)]
    for k in range(turn):
        msgs.extend(_agent_round(tools, path, func, var, k, followups[k] if k < len(followups) else None))
    return msgs


@lru_cache(maxsize=1 << 16)
def _aider_round(path: str, func: str, var: int, k: int) -> tuple[dict, dict]:
    edit = (f"{path}\n```python\n<<<<<<< SEARCH\n    pass\n=======\n    return sorted(set(values))\n"
            ">>>>>>> REPLACE\n```")
    result = _tool_result("run_shell", path, func, var, k)
    return {"role": "assistant", "content": edit}, _user(result)


def _aider_loop(task: str, code: str, path: str, func: str, var: int, turn: int) -> list[dict]:
    """Tool-less editors send file contents and test output as user turns."""
    msgs = [_user(f"{path}\n```python\n{code}```\n\n{task}")]
    for k in range(turn):
        msgs.extend(_aider_round(path, func, var, k))
    return msgs


# -- judge templates ------------------------------------------------------------------------

_LOOP = re.compile(
    r"\{%-?\s*for (\w+) in (generations|range\((?:(\d+),\s*)?generations\|length\))\s*-?%\}(.*?)\{%-?\s*endfor\s*-?%\}",
    re.DOTALL,
)


def _expand_loops(template: str, generations: list[str]) -> str:
    """Expand the `for` loops over generations used by the packaged UltraFeedback templates."""

    def body(m: re.Match[str]) -> str:
        var, it, start, inner = m.group(1), m.group(2), m.group(3), m.group(4).rstrip()
        parts = []
        if it == "generations":
            for i, g in enumerate(generations):
                parts.append(inner.replace("{{ loop.index }}", str(i + 1)).replace("{{ " + var + " }}", g))
        else:
            for i in range(int(start or 0), len(generations)):
                parts.append(re.sub(r"\{\{\s*" + var + r"\s*\+\s*1\s*\}\}", str(i + 1), inner))
        return "".join(parts)

    # `{%-` trims the whitespace before the tag.
    return _LOOP.sub(body, re.sub(r"\s+(\{%-)", r"\1", template))


def _chatml(text: str) -> tuple[str | None, str]:
    """Split a ChatML-formatted judge prompt into (system, user) as an API client would send it."""
    if "<|im_start|>" not in text:
        return None, text
    parts = dict(re.findall(r"<\|im_start\|>(\w+)\n(.*?)(?:<\|im_end\|>|$)", text, re.DOTALL))
    return (parts.get("system") or "").strip() or None, (parts.get("user") or text).strip()


_JUDGE_SLOTS = frozenset(
    ("instruction", "output_1", "output_2", "generation", "generations[0]", "generations[1]", "rubric", "reference")
)


@lru_cache(maxsize=256)
def _judge_template(t: Template) -> tuple[tx.Slots | None, tx.Slots]:
    """Loops expanded for two candidates and ChatML split into (system, user), prepared once per template."""
    body = _expand_loops(t.text, ["{{ generations[0] }}", "{{ generations[1] }}"]) if t.origin == "ultrafeedback" else t.text
    system, user = _chatml(body)
    return (tx.Slots(system, _JUDGE_SLOTS) if system else None), tx.Slots(user, _JUDGE_SLOTS)


def judge_prompt(t: Template, instruction: str, outputs: list[str], rubric: str) -> tuple[str | None, str]:
    """Fill a judge template with an instruction, candidate outputs and (for Prometheus) a rubric."""
    values = {
        "instruction": instruction, "output_1": outputs[0], "output_2": outputs[1], "generation": outputs[0],
        "generations[0]": outputs[0], "generations[1]": outputs[1], "rubric": rubric, "reference": outputs[1],
    }
    system, user = _judge_template(t)
    return (system.fill(values) if system else None), user.fill(values)


_JINJA_VAR = re.compile(r"\{\{\s*([\w\.\[\]]+)\s*(?:\|[^}]*)?\}\}")
_JINJA_TAG = re.compile(r"\{%-?.*?-?%\}", re.DOTALL)


def generation_prompt(t: Template, context: str, *seed: int) -> str:
    """Fill a synthetic-data generation template's slots; free-text slots get a real prompt."""

    def slot(m: re.Match[str]) -> str:
        options = tx.GEN_SLOTS.get(m.group(1))
        return tx.pick(options, *seed, len(m.group(1))) if options else context

    return _JINJA_TAG.sub("", _JINJA_VAR.sub(slot, t.text))


# -- renderers ------------------------------------------------------------------------------

class Renderer:
    """Renders event rows of every recipe against the corpora."""

    def __init__(self, c: Corpora) -> None:
        self.c = c
        self.n_mixed = len(c.math) + c.n_oasst + len(c.orca)  # the pool chain-of-thought harvesting draws from
        self._by_recipe = [getattr(self, "_" + r.name.lower()) for r in Recipe]
        self._shots: dict[int, str] = {}
        self._family_slots = [
            frozenset(re.findall(r"\{(\w+)\}", system + user)) for system, user in tx.ENTERPRISE_FAMILIES
        ]

    def mixed_task(self, i: int) -> str:
        c = self.c
        i %= self.n_mixed
        if i < len(c.math):
            return c.math[i]
        i -= len(c.math)
        if i < c.n_oasst:
            return c.chat[i]
        return c.orca[i - c.n_oasst][1]

    def render(self, recipe: int, acc: Account, item: int, var: int, turn: int) -> Prompt:
        return self._by_recipe[recipe](acc, item, var, turn)

    # ordinary users

    def _system_of(self, acc: Account) -> str | None:
        s = acc.params.get("user_system", -1)
        return tx.USER_SYSTEM_PROMPTS[s] if s >= 0 else None

    def _chat(self, acc: Account, item: int, var: int, turn: int) -> Prompt:
        prompt = self.c.chat[item % len(self.c.chat)]
        return Prompt(self._system_of(acc), _conversation(prompt, prompt, tx.FOLLOWUPS_CHAT, var, turn), None, 0)

    def _chat_math(self, acc: Account, item: int, var: int, turn: int) -> Prompt:
        q = self.c.math[item % len(self.c.math)]
        first = tx.pick(tx.CHAT_MATH, var, 51).format(q=q)
        return Prompt(self._system_of(acc), _conversation(first, q, tx.FOLLOWUPS_MATH, var, turn), None, 0)

    def _chat_code(self, acc: Account, item: int, var: int, turn: int) -> Prompt:
        code = self.c.code[item % len(self.c.code)]
        first = tx.pick(tx.CHAT_CODE, var, 52).replace("{code}", code.prompt)
        return Prompt(self._system_of(acc), _conversation(first, code.func, tx.FOLLOWUPS_CODE, var, turn), None, 0)

    def _chat_image(self, acc: Account, item: int, var: int, turn: int) -> Prompt:
        ask = tx.pick(tx.CHAT_IMAGE, item, 53)
        first = [_text_part(ask), _image_part(acc, var, 54)]
        return Prompt(self._system_of(acc), _conversation(first, ask, tx.FOLLOWUPS_CHAT, var, turn), None, 1)

    def _enterprise(self, acc: Account, item: int, var: int, turn: int) -> Prompt:
        family = acc.params["family"]
        system_t, user_t = tx.ENTERPRISE_FAMILIES[family]
        values = self._enterprise_values(self._family_slots[family], acc, item, var)
        return Prompt(tx.fill_braces(system_t, values), [_user(tx.fill_braces(user_t, values))], None, 0)

    def _enterprise_values(self, names: frozenset[str], acc: Account, item: int, var: int) -> dict[str, str]:
        """Only the slots the family's template uses: some (tables) are costly to make."""
        c = self.c
        values = {"company": World.company_name(acc.email_domain)}
        if "n" in names:
            values["n"] = str(10_000 + tx.mix(var, 61) % 990_000)
        if "lang" in names:
            values["lang"] = tx.LANGUAGES[acc.params.get("lang", 0)]
        if "plan" in names:
            values["plan"] = tx.pick(tx.PLANS, var, 62)
        if "text" in names:
            values["text"] = c.chat[item % len(c.chat)]
        if "product" in names:
            values["product"] = tx.product(item)
        if "table" in names:
            values["table"] = tx.data_table(var, 63)
        if "code" in names:
            values["code"] = c.code[item % len(c.code)].prompt
        if "q" in names:
            values["q"] = c.math[item % len(c.math)]
        if "attempt" in names:
            values["attempt"] = tx.pick(("I multiplied first", "no idea", "I got 42 but it's wrong", "I added them"), var, 64)
        return values

    def _enterprise_receipt(self, acc: Account, item: int, var: int, turn: int) -> Prompt:
        system_t = tx.ENTERPRISE_FAMILIES[2][0]
        content = [_image_part(acc, var, 65), _text_part(tx.ENTERPRISE_IMAGE_PROMPT)]
        return Prompt(system_t, [_user(content)], None, 1)

    def _bench_math(self, acc: Account, item: int, var: int, turn: int) -> Prompt:
        c = self.c
        harness = tx.BENCH_MATH[acc.params.get("harness", 0) % len(tx.BENCH_MATH)]
        if "{shots}" in harness:
            harness = harness.replace("{shots}", self._few_shot(acc.params.get("shots", 7)))
        user = harness.replace("{q}", c.math[item % len(c.math)]).replace("{{}}", "{}")
        return Prompt(None, [_user(user)], None, 0)

    def _few_shot(self, seed: int) -> str:
        """A harness's fixed few-shot prefix: four worked questions."""
        if seed not in self._shots:
            c = self.c
            self._shots[seed] = "".join(
                f"Question: {c.math[(seed + 97 * j) % len(c.math)]}\nAnswer: Let's think step by step. "
                f"{tx.completed_response(seed, j)}\n\n"
                for j in range(4)
            )
        return self._shots[seed]

    def _bench_code(self, acc: Account, item: int, var: int, turn: int) -> Prompt:
        harness = tx.BENCH_CODE[acc.params.get("harness", 0) % len(tx.BENCH_CODE)]
        return Prompt(None, [_user(harness.replace("{code}", self.c.code[item % len(self.c.code)].prompt))], None, 0)

    def _bench_tools(self, acc: Account, item: int, var: int, turn: int) -> Prompt:
        task = self.c.agentic[item % len(self.c.agentic)]
        system = task.system or tx.BENCH_TOOLS_SYSTEM[acc.params.get("harness", 0) % len(tx.BENCH_TOOLS_SYSTEM)]
        return Prompt(system, [_user(task.text)], task.tools, 0)

    def _class_assignment(self, acc: Account, item: int, var: int, turn: int) -> Prompt:
        c = self.c
        task = c.code[item % len(c.code)].prompt if acc.params.get("course", 0) == 1 else c.math[item % len(c.math)]
        assignment = tx.CLASS_ASSIGNMENTS[acc.params.get("assignment", 0)].format(
            week=1 + (item // 7) % 12, p=1 + item % 7, task=task
        )
        first = tx.pick(tx.STUDENT_PREFIXES, var, 71) + assignment
        follow = tx.FOLLOWUPS_CODE if acc.params.get("course", 0) == 1 else tx.FOLLOWUPS_MATH
        return Prompt(self._system_of(acc), _conversation(first, task, follow, var, turn), None, 0)

    def _dev_session(self, acc: Account, item: int, var: int, turn: int) -> Prompt:
        code = self.c.code[item % len(self.c.code)]
        tool_name = list(tx.AGENT_TOOLS)[acc.params.get("agent", 0)]
        tools, system = tx.AGENT_TOOLS[tool_name]
        path = f"{tx.pick(tx.DEV_DIRS, var, 81)}/{code.func}.py"
        task = tx.pick(tx.DEV_TASKS, var, 82).format(func=code.func, path=path)
        if not tools:
            return Prompt(system, _aider_loop(task, code.prompt, path, code.func, var, turn), None, 0)
        return Prompt(system, _agent_loop(task, tools, path, code.func, var, turn), tools, 0)

    def _grader(self, acc: Account, item: int, var: int, turn: int) -> Prompt:
        c = self.c
        t = c.rubrics[(acc.params["rubric"] + (var & 1) * acc.params.get("rubric2", 0)) % len(c.rubrics)]
        instruction = c.chat[item % len(c.chat)] if var % 3 else c.math[item % len(c.math)]
        outputs = [tx.completed_response(var, 1), tx.completed_response(var, 2)]
        system, user = judge_prompt(t, instruction, outputs, tx.PROMETHEUS_RUBRICS[acc.params.get("criterion", 0)])
        return Prompt(system, [_user(user)], None, 0)

    def _research_orca(self, acc: Account, item: int, var: int, turn: int) -> Prompt:
        system, user = self.c.orca[item % len(self.c.orca)]
        return Prompt(system, _conversation(user, user, tx.FOLLOWUPS_RESEARCH, var, turn), None, 0)

    def _research_explain(self, acc: Account, item: int, var: int, turn: int) -> Prompt:
        q = self.c.math[item % len(self.c.math)] if var % 4 else self.c.chat[item % self.c.n_oasst]
        first = tx.pick(tx.RESEARCH_PROMPTS, var, 91).format(q=q)
        return Prompt(None, _conversation(first, q, tx.FOLLOWUPS_RESEARCH, var, turn), None, 0)

    # campaigns

    def _harvest_cot(self, acc: Account, item: int, var: int, turn: int) -> Prompt:
        task = self.mixed_task(item)
        user = tx.fill_braces(_wrapper(tx.COT_WRAPPERS, acc, var), {
            "task": task, "response": tx.completed_response(item, 101),
        })
        return Prompt(None, [_user(user)], None, 0)

    def _harvest_rubric(self, acc: Account, item: int, var: int, turn: int) -> Prompt:
        c = self.c
        if _adaptive(acc):
            t = c.rubrics[tx.mix(var, 111) % len(c.rubrics)]
            suffix = tx.perturb(tx.pick(tx.RUBRIC_SUFFIXES, var, 112), var, 113) if tx.unit(var, 114) < 0.5 else ""
        else:
            t = c.rubrics[(acc.params.get("rubric", 0) + (var & 1)) % len(c.rubrics)]
            suffix = tx.RUBRIC_SUFFIXES[1]
        instruction = self.mixed_task(item)
        outputs = [tx.completed_response(item, 115), tx.completed_response(var, 116)]
        system, user = judge_prompt(t, instruction, outputs, tx.pick(tx.PROMETHEUS_RUBRICS, var, 117))
        return Prompt(system, [_user(user + suffix)], None, 0)

    def _harvest_censor(self, acc: Account, item: int, var: int, turn: int) -> Prompt:
        q = self.c.political[item % len(self.c.political)]
        return Prompt(None, [_user(tx.fill_braces(_wrapper(tx.CENSOR_WRAPPERS, acc, var), {"q": q}))], None, 0)

    def _harvest_orca(self, acc: Account, item: int, var: int, turn: int) -> Prompt:
        system, user = self.c.orca[item % len(self.c.orca)]
        if _adaptive(acc):
            system = tx.perturb(tx.pick(tx.ORCA_SYSTEM_PARAPHRASES, var, 121), var, 122)
        return Prompt(system, [_user(user)], None, 0)

    def _harvest_agentic(self, acc: Account, item: int, var: int, turn: int) -> Prompt:
        task = self.c.agentic[item % len(self.c.agentic)]
        system = _wrapper(tx.AGENT_SYSTEM_PROMPTS, acc, acc.params.get("sys", 0) if not _adaptive(acc) else var)
        if task.system:
            system = f"{system}\n\n{task.system}"
        tools = task.tools or ("search", "python")
        path = f"data/{tx.mix(var, 131) % 1000:03d}.json"
        msgs = _agent_loop(task.text, tools, path, tools[0], var, turn, task.followups)
        return Prompt(system, msgs, tools, 0)

    def _harvest_code(self, acc: Account, item: int, var: int, turn: int) -> Prompt:
        code = self.c.code[item % len(self.c.code)]
        system = _wrapper(tx.CODING_SYSTEM_PROMPTS, acc, acc.params.get("sys", 0) if not _adaptive(acc) else var, 2)
        tools = tx.CODING_TOOLS[acc.params.get("toolset", 0) % len(tx.CODING_TOOLS)]
        path = f"{tx.pick(tx.DEV_DIRS, item, 141)}/{code.func}.py"
        task_t = _wrapper(tx.CODING_TASKS, acc, var, 2)
        task = tx.fill_braces(task_t, {"func": code.func, "path": path, "code": code.prompt})
        return Prompt(system, _agent_loop(task, tools, path, code.func, var, turn), tools, 0)

    def _harvest_data(self, acc: Account, item: int, var: int, turn: int) -> Prompt:
        system = _wrapper(tx.AGENT_SYSTEM_PROMPTS, acc, 0 if not _adaptive(acc) else var, 1)
        user = tx.fill_braces(_wrapper(tx.DATA_PROMPTS, acc, var, 2), {"table": tx.data_table(item, 151)})
        return Prompt(system, [_user(user)], None, 0)

    def _harvest_vision(self, acc: Account, item: int, var: int, turn: int) -> Prompt:
        n = 1 + tx.mix(var, 161) % 3
        parts = [_image_part(acc, item, j) for j in range(n)]
        return Prompt(None, [_user([*parts, _text_part(_wrapper(tx.VISION_PROMPTS, acc, var))])], None, n)

    def _harvest_gen(self, acc: Account, item: int, var: int, turn: int) -> Prompt:
        c = self.c
        t = c.generation[(acc.params.get("gen", 0) + var % 4) % len(c.generation)] if not _adaptive(acc) else \
            c.generation[tx.mix(var, 171) % len(c.generation)]
        user = generation_prompt(t, c.chat[item % c.n_oasst], var)
        return Prompt(None, [_user(tx.perturb(user, var) if _adaptive(acc) else user)], None, 0)
