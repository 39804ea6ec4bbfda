"""What each kind of session says: system prompt, tools, and the user/tool inputs of every turn.

A generator receives its own random stream, the activity (whose params fix the habits of the actor:
which harness format, which rubric, which app template) and the number of turns, and returns a
Conversation; the responses are added turn by turn as the log is written.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from . import wording as W
from .corpora import Corpora
from .entities import Activity
from .rand import label_key
from .templating import fill, render

Content = str | list[dict]


@dataclass(slots=True)
class Conversation:
    system: str | None
    tools: list[str]
    inputs: list[tuple[str, Content]]  # ("user" | "tool", content) for each turn
    style: str  # response style of the final answer
    out_median: float  # typical answer length in tokens
    history: list[dict] = field(default_factory=list)
    hidden_tokens: int = 0  # context trimmed by the client but still billed
    infra: tuple = ()


# ------------------------------------------------------------------ helpers over the corpora


def chat_prompt(rng: random.Random, c: Corpora) -> str:
    return rng.choice(c.chat_oasst) if rng.random() < 0.68 else rng.choice(c.chat_hh)


def question(rng: random.Random, c: Corpora) -> str:
    r = rng.random()
    if r < 0.4:
        return rng.choice(c.math)
    if r < 0.75:
        return rng.choice(c.chat_oasst)
    return rng.choice(c.orca).text


def short_answer(rng: random.Random, c: Corpora, q: str) -> str:
    if any(ch.isdigit() for ch in q[-80:]) and rng.random() < 0.7:
        return str(rng.randint(2, 2000))
    return " ".join(rng.choice(c.prose) for _ in range(rng.randint(1, 4)))


def model_output(rng: random.Random, c: Corpora, sentences: tuple[int, int] = (2, 8)) -> str:
    return " ".join(rng.choice(c.prose) for _ in range(rng.randint(*sentences)))


def stdlib_slots(rng: random.Random, c: Corpora) -> dict[str, str]:
    func, sig, doc = rng.choice(c.stdlib_funcs)
    func2 = rng.choice(c.stdlib_funcs)[0]
    name, code = rng.choice(c.code_snippets)
    if rng.random() < 0.35:
        code = rng.choice(c.humaneval)
    mod = func.split(".")[0]
    return {
        "func": func,
        "sig": sig,
        "doc": doc,
        "func2": func2,
        "code": code,
        "name": name.split(".")[-1],
        "mod": mod,
        "language": rng.choice(W.LANGUAGES),
    }


def data_table(rng: random.Random) -> str:
    cols = rng.choice(
        (
            ("week", "region", "revenue", "orders"),
            ("month", "channel", "signups", "churned"),
            ("day", "store", "sales", "returns"),
            ("group", "subject", "score", "time_s"),
        )
    )
    rows = [",".join(cols)]
    base = rng.randint(50, 5000)
    for i in range(rng.randint(5, 14)):
        rows.append(
            f"{i + 1},{rng.choice('ABCDE')},{int(base * rng.uniform(0.6, 1.5))},{rng.randint(1, 400)}"
        )
    return "\n".join(rows)


def image_part(rng: random.Random) -> dict:
    return {
        "type": "image_url",
        "image_url": {
            "url": f"https://uploads.imgstore.net/{rng.getrandbits(64):016x}.{rng.choice(('png', 'jpg', 'webp'))}"
        },
    }


def with_image(text: str, rng: random.Random, n: int = 1) -> list[dict]:
    return [{"type": "text", "text": text}] + [image_part(rng) for _ in range(n)]


def tool_result(rng: random.Random, c: Corpora) -> str:
    shape = rng.choice(W.TOOL_RESULT_SHAPES)
    src = rng.choice(c.code_snippets)[1]
    lines = "\n".join(src.splitlines()[: rng.randint(3, 30)])
    return fill(
        shape,
        {
            "lines": lines,
            "mod": rng.choice(c.stdlib_funcs)[0].split(".")[0],
            "k": str(rng.randint(1, 80)),
            "j": str(rng.randint(0, 40)),
        },
    )


def wording(
    rng: random.Random, act: Activity, family: list[list[str]], tag: int = -1, dress: bool = True
) -> str:
    """Pick a wording of a harvest family the way this operator does.

    Naive operators cycle through a small fixed subset of templates, always the canonical wording, in
    lockstep across their accounts when a scheduler tag is given; evasive ones rotate paraphrases and
    dress them up.
    """
    subset: list[int] = act.params.get("templates") or list(range(len(family)))
    subset = [i % len(family) for i in subset]
    if act.account.tactic == "evasive":
        variants = family[rng.choice(subset)]
        text = rng.choice(variants)
        if dress and rng.random() < 0.5:
            text = rng.choice(W.EVASIVE_PREFIXES) + text + rng.choice(W.EVASIVE_SUFFIXES)
        return text
    idx = subset[(tag // 25) % len(subset)] if tag >= 0 else rng.choice(subset)
    return family[idx][0]


# ------------------------------------------------------------------ legitimate kinds


def gen_chat(rng: random.Random, act: Activity, n: int, tag: int, c: Corpora) -> Conversation:
    r = rng.random()
    if r < 0.12:
        first = fill(rng.choice(W.CHAT_TASKS), {"text": rng.choice(c.chat_oasst)[:600]})
    elif r < 0.17:
        first = fill(rng.choice(W.CODING_HELP), stdlib_slots(rng, c))
    else:
        first = chat_prompt(rng, c)
    inputs: list[tuple[str, Content]] = [("user", first)]
    inputs += [
        ("user", rng.choice(W.CHAT_FOLLOWUPS) if rng.random() < 0.7 else chat_prompt(rng, c))
        for _ in range(n - 1)
    ]
    system = act.params.get("system")
    return Conversation(system, [], inputs, "prose", act.params.get("out_median", 260))


def gen_chat_vision(rng: random.Random, act: Activity, n: int, tag: int, c: Corpora) -> Conversation:
    ask = rng.choice(
        (
            "What is this?",
            "Can you read the text in this photo?",
            "What plant is this and how do I care for it?",
            "Explain this chart to me",
            "Is this rash something to worry about?",
            "What's wrong with my code in this screenshot?",
            "Translate the sign in the picture",
            "How much do you think this furniture costs?",
        )
    )
    inputs: list[tuple[str, Content]] = [("user", with_image(ask, rng))]
    inputs += [("user", rng.choice(W.CHAT_FOLLOWUPS)) for _ in range(n - 1)]
    return Conversation(None, [], inputs, "prose", 220)


def gen_coding_help(rng: random.Random, act: Activity, n: int, tag: int, c: Corpora) -> Conversation:
    first = fill(rng.choice(W.CODING_HELP), stdlib_slots(rng, c))
    inputs: list[tuple[str, Content]] = [("user", first)]
    for _ in range(n - 1):
        inputs.append(
            (
                "user",
                rng.choice(
                    (
                        "that still fails:\n" + tool_result(rng, c),
                        rng.choice(W.CHAT_FOLLOWUPS),
                        "thanks, now make it async",
                    )
                ),
            )
        )
    return Conversation(None, [], inputs, "code", 380)


def gen_math_homework(rng: random.Random, act: Activity, n: int, tag: int, c: Corpora) -> Conversation:
    q = rng.choice(c.math)
    first = rng.choice(
        (
            q,
            f"can you help me solve this {q}",
            f"{q} I got a different answer than my friend",
            f"how do I do this one? {q}",
        )
    )
    inputs: list[tuple[str, Content]] = [("user", first)] + [
        ("user", rng.choice(W.CHAT_FOLLOWUPS)) for _ in range(n - 1)
    ]
    return Conversation(None, [], inputs, "steps", 240)


def _tool_loop(
    rng: random.Random, c: Corpora, first: Content, n: int, tool_share: float, followups: list[str]
) -> list[tuple[str, Content]]:
    inputs: list[tuple[str, Content]] = [("user", first)]
    for _ in range(n - 1):
        if rng.random() < tool_share:
            inputs.append(("tool", tool_result(rng, c)))
        else:
            inputs.append(("user", rng.choice(followups)))
    return inputs


_DEV_FOLLOWUPS = [
    "looks good, also update the docs",
    "no, don't change the public API",
    "run the full test suite",
    "that broke the build, revert it",
    "ok now commit this",
    "can you explain why that fixes it?",
    "also handle the Windows path case",
    "perfect, thanks",
    "try a different approach, this is too complex",
    "now do the same for the other endpoint",
]


def gen_agentic_dev(rng: random.Random, act: Activity, n: int, tag: int, c: Corpora) -> Conversation:
    slots = stdlib_slots(rng, c)
    first = fill(rng.choice(W.DEV_TASKS), slots)
    if rng.random() < 0.3:
        first += "\n\n```python\n" + slots["code"] + "```"
    inputs = _tool_loop(rng, c, first, n, act.params.get("tool_share", 0.75), _DEV_FOLLOWUPS)
    return Conversation(act.params["system"], act.params["tools"], inputs, "code", 300)


def gen_tool_use(rng: random.Random, act: Activity, n: int, tag: int, c: Corpora) -> Conversation:
    p = c.agentic[tag % len(c.agentic)] if tag >= 0 else rng.choice(c.agentic)
    inputs: list[tuple[str, Content]] = [("user", p.text)]
    followups = list(p.followups)
    for i in range(n - 1):
        if i < len(followups) and rng.random() < 0.6:
            inputs.append(("user", followups[i]))
        else:
            inputs.append(("tool", '{"result": ' + str(rng.randint(0, 10_000)) + ', "status": "ok"}'))
    system = p.system or act.params.get("system")
    return Conversation(system, list(p.tools) or ["search"], inputs, "prose", 120)


def gen_eval(rng: random.Random, act: Activity, n: int, tag: int, c: Corpora) -> Conversation:
    bench = act.params["bench"]
    fmt = act.params["format"]
    if bench == "math":
        q = c.math[tag % len(c.math)]
        return Conversation(
            act.params.get("system"), [], [("user", fill(W.EVAL_MATH_FORMATS[fmt], {"q": q}))], "steps", 280
        )
    if bench == "code":
        q = c.humaneval[tag % len(c.humaneval)]
        return Conversation(
            act.params.get("system"), [], [("user", fill(W.EVAL_CODE_FORMATS[fmt], {"q": q}))], "code", 220
        )
    p = c.agentic[tag % len(c.agentic)]
    return Conversation(p.system, list(p.tools) or ["search"], [("user", p.text)], "toolcall", 60)


def _rubric_text(rng: random.Random, c: Corpora, template: str, own: bool) -> str:
    instr = rng.choice(c.chat_oasst)[:1500]
    outs = [model_output(rng, c) for _ in range(rng.randint(2, 4))]
    values = {
        "instruction": instr,
        "output_1": outs[0],
        "output_2": outs[1],
        "response": outs[0],
        "response_b": outs[1],
        "response_c": outs[-1],
        "generation": outs[0],
        "criteria": rng.choice(W.RUBRIC_CRITERIA),
        "rubric": rng.choice(W.RUBRIC_CRITERIA),
        "reference": outs[-1],
        "query": instr,
        "question": instr,
        "_default": outs[-1][:200],
    }
    return fill(template, values) if own else render(template, values, outs, rng)


def gen_grader(rng: random.Random, act: Activity, n: int, tag: int, c: Corpora) -> Conversation:
    """A team's own eval pipeline: one or two fixed rubric templates, their product's prompts."""
    src, idx = rng.choice(act.params["rubrics"])
    template = c.rubric_templates[idx] if src == "corpus" else W.RUBRIC_GRADING[idx][0]
    text = _rubric_text(rng, c, template, src != "corpus")
    return Conversation(act.params.get("system"), [], [("user", text)], "rubric", 160)


def _saas_values(rng: random.Random, c: Corpora, act: Activity) -> dict[str, str]:
    return {
        "bot": act.params["bot"],
        "company": act.params["company"],
        "product": act.params["product"],
        "customer": rng.choice(
            ("Maria", "John", "Aiko", "Priya", "Lucas", "Fatima", "Chen", "Olga", "Sam", "Noah")
        )
        + " "
        + rng.choice("ABCDEFGHKLMNPRST")
        + ".",
        "plan": rng.choice(("Free", "Pro", "Business", "Starter")),
        "tone": act.params["tone"],
        "words": str(act.params["words"]),
        "message": chat_prompt(rng, c)[:700],
        "product_item": rng.choice(W.PRODUCTS),
        "order": str(rng.randint(10_000, 99_999)),
        "features": ", ".join(
            rng.sample(
                (
                    "waterproof",
                    "lightweight",
                    "2-year warranty",
                    "recycled materials",
                    "fast charging",
                    "compact",
                    "organic",
                    "handmade",
                ),
                3,
            )
        ),
        "audience": rng.choice(("students", "parents", "runners", "small businesses", "gamers")),
        "transcript": "\n".join(
            f"{rng.choice(('Customer', 'Agent'))}: {rng.choice(c.chat_oasst)[:160]}"
            for _ in range(rng.randint(2, 6))
        ),
        "region": rng.choice(("EMEA", "North America", "APAC", "LATAM")),
        "table": data_table(rng),
        "metric": rng.choice(("revenue", "orders", "conversion")),
        "clause": rng.choice(W.CLAUSES),
        "problem": rng.choice(c.math),
    }


def gen_saas(rng: random.Random, act: Activity, n: int, tag: int, c: Corpora) -> Conversation:
    app = W.SAAS_APPS[act.params["app"]]
    values = _saas_values(rng, c, act)
    system = fill(app["system"], values)
    first_text = fill(rng.choice(app["user"]), values)
    first: Content = with_image(first_text, rng) if app.get("image") else first_text
    inputs: list[tuple[str, Content]] = [("user", first)]
    inputs += [("user", rng.choice(W.CHAT_FOLLOWUPS)) for _ in range(n - 1)]
    style = "json" if app.get("image") else "prose"
    return Conversation(system, [], inputs, style, act.params.get("out_median", 180))


def gen_classroom(rng: random.Random, act: Activity, n: int, tag: int, c: Corpora) -> Conversation:
    assignments: list[int] = act.params["assignments"]
    if rng.random() < 0.75:
        a = W.CLASS_ASSIGNMENTS[assignments[tag % len(assignments)] if tag >= 0 else rng.choice(assignments)]
        first = fill(rng.choice(W.STUDENT_WRAPPERS), {"a": a})
    else:
        first = chat_prompt(rng, c) if rng.random() < 0.6 else rng.choice(c.math)
    inputs: list[tuple[str, Content]] = [("user", first)] + [
        ("user", rng.choice(W.CHAT_FOLLOWUPS)) for _ in range(n - 1)
    ]
    return Conversation(None, [], inputs, "prose", 320)


def gen_research(rng: random.Random, act: Activity, n: int, tag: int, c: Corpora) -> Conversation:
    r = rng.random()
    if r < 0.2:
        p = rng.choice(c.orca)
        return Conversation(p.system, [], [("user", p.text)], "steps", 300)
    if r < 0.35:
        inputs: list[tuple[str, Content]] = [("user", rng.choice(c.chat_hh))] + [
            ("user", rng.choice(W.CHAT_FOLLOWUPS)) for _ in range(n - 1)
        ]
        return Conversation(act.params.get("system"), [], inputs, "prose", 200)
    q = question(rng, c)
    text = fill(rng.choice(act.params["templates"]), {"q": q, "a": short_answer(rng, c, q)})
    inputs = [("user", text)] + [("user", rng.choice(W.CHAT_FOLLOWUPS)) for _ in range(n - 1)]
    return Conversation(act.params.get("system"), [], inputs, "steps", 420)


# ------------------------------------------------------------------ harvest kinds


def gen_h_reasoning(rng: random.Random, act: Activity, n: int, tag: int, c: Corpora) -> Conversation:
    q = c.math[tag % len(c.math)] if tag >= 0 and act.account.tactic != "evasive" else question(rng, c)
    text = fill(
        wording(rng, act, W.REASONING_RECONSTRUCTION, tag), {"question": q, "answer": short_answer(rng, c, q)}
    )
    return Conversation(
        act.params.get("system"), [], [("user", text)], "steps", act.params.get("out_median", 900)
    )


def gen_h_rubric(rng: random.Random, act: Activity, n: int, tag: int, c: Corpora) -> Conversation:
    if act.params.get("corpus_rubric_share", 0.3) > rng.random():
        pool = act.params.get("corpus_rubrics") or list(range(len(c.rubric_templates)))
        idx = (
            pool[(tag // 25) % len(pool)]
            if tag >= 0 and act.account.tactic != "evasive"
            else rng.choice(pool)
        )
        text = _rubric_text(rng, c, c.rubric_templates[idx], own=False)
    else:
        text = _rubric_text(rng, c, wording(rng, act, W.RUBRIC_GRADING, tag), own=True)
    return Conversation(act.params.get("system"), [], [("user", text)], "rubric", 450)


def gen_h_rewrite(rng: random.Random, act: Activity, n: int, tag: int, c: Corpora) -> Conversation:
    topic = rng.choice(W.SENSITIVE_TOPICS)
    q = fill(rng.choice(W.SENSITIVE_QUESTIONS), {"topic": topic})
    text = fill(wording(rng, act, W.CENSORSHIP_REWRITE, tag), {"topic": topic, "question": q})
    return Conversation(act.params.get("system"), [], [("user", text)], "prose", 500)


def gen_h_orca(rng: random.Random, act: Activity, n: int, tag: int, c: Corpora) -> Conversation:
    p = c.orca[tag % len(c.orca)] if tag >= 0 else rng.choice(c.orca)
    return Conversation(p.system, [], [("user", p.text)], "steps", 420)


def gen_h_synthetic(rng: random.Random, act: Activity, n: int, tag: int, c: Corpora) -> Conversation:
    if rng.random() < act.params.get("corpus_generation_share", 0.25):
        t = rng.choice(c.generation_templates)
        values = {
            "_default": rng.choice(W.SYNTHETIC_TOPICS),
            "number": str(rng.choice((5, 10, 20))),
            "num_instructions": "20",
            "language": "English",
            "task": rng.choice(c.chat_oasst)[:300],
            "input": rng.choice(c.chat_oasst)[:300],
        }
        text = render(t, values, [rng.choice(c.chat_oasst)[:300] for _ in range(3)], rng)
    else:
        values = {
            "n": str(rng.choice((5, 10, 10, 20, 25, 50))),
            "topic": rng.choice(W.SYNTHETIC_TOPICS),
            "domain": rng.choice(W.SYNTHETIC_DOMAINS),
            "example": question(rng, c)[:800],
        }
        text = fill(wording(rng, act, W.SYNTHETIC_GENERATION, tag), values)
    return Conversation(act.params.get("system"), [], [("user", text)], "list", 1400)


_HARVEST_FOLLOWUPS = [
    "Continue.",
    "Now write the tests and run them.",
    "Explain your reasoning for that change in detail.",
    "Run the tests again.",
    "Optimise it further and explain each optimisation.",
    "Proceed with the next step.",
]


def gen_h_agentic_coding(rng: random.Random, act: Activity, n: int, tag: int, c: Corpora) -> Conversation:
    slots = stdlib_slots(rng, c)
    first = fill(wording(rng, act, W.HARVEST_CODING_TASKS, tag), slots)
    system = act.params.get("system") or wording(rng, act, W.HARVEST_CODING_SYSTEM, dress=False)
    inputs = _tool_loop(rng, c, first, n, 0.8, _HARVEST_FOLLOWUPS)
    return Conversation(system, act.params["tools"], inputs, "code", 700)


def gen_h_coding(rng: random.Random, act: Activity, n: int, tag: int, c: Corpora) -> Conversation:
    first = fill(wording(rng, act, W.HARVEST_CODING_TASKS, tag), stdlib_slots(rng, c))
    return Conversation(act.params.get("system"), [], [("user", first)], "code", 800)


def gen_h_tool_use(rng: random.Random, act: Activity, n: int, tag: int, c: Corpora) -> Conversation:
    conv = gen_tool_use(rng, act, n, -1, c)
    conv.system = act.params.get("system") or rng.choice(W.AGENTIC_REASONING_SYSTEM)
    conv.out_median = 400
    conv.style = "steps"
    return conv


def gen_h_data_analysis(rng: random.Random, act: Activity, n: int, tag: int, c: Corpora) -> Conversation:
    text = fill(wording(rng, act, W.DATA_ANALYSIS_TASKS, tag), {"table": data_table(rng)})
    system = act.params.get("system") or rng.choice(W.DATA_ANALYST_SYSTEM)
    inputs: list[tuple[str, Content]] = [("user", text)] + [
        ("user", rng.choice(_HARVEST_FOLLOWUPS)) for _ in range(n - 1)
    ]
    return Conversation(system, ["python"] if rng.random() < 0.4 else [], inputs, "steps", 800)


def gen_h_vision(rng: random.Random, act: Activity, n: int, tag: int, c: Corpora) -> Conversation:
    text = fill(wording(rng, act, W.VISION_TASKS, tag), {"goal": rng.choice(W.COMPUTER_GOALS)})
    first = with_image(text, rng, n=1 if rng.random() < 0.8 else rng.randint(2, 4))
    inputs: list[tuple[str, Content]] = [("user", first)]
    for _ in range(n - 1):
        inputs.append(("user", with_image("Next screenshot after the action.", rng)))
    tools = ["computer"] if "computer" in text or "agent" in text else []
    return Conversation(act.params.get("system"), tools, inputs, "steps", 600)


GENERATORS: dict[str, Callable[[random.Random, Activity, int, int, Corpora], Conversation]] = {
    "chat": gen_chat,
    "chat_vision": gen_chat_vision,
    "coding_help": gen_coding_help,
    "math_homework": gen_math_homework,
    "agentic_dev": gen_agentic_dev,
    "tool_use": gen_tool_use,
    "eval": gen_eval,
    "grader": gen_grader,
    "saas": gen_saas,
    "classroom": gen_classroom,
    "research": gen_research,
    "h_reasoning": gen_h_reasoning,
    "h_rubric": gen_h_rubric,
    "h_rewrite": gen_h_rewrite,
    "h_orca": gen_h_orca,
    "h_synthetic": gen_h_synthetic,
    "h_agentic_coding": gen_h_agentic_coding,
    "h_coding": gen_h_coding,
    "h_tool_use": gen_h_tool_use,
    "h_data_analysis": gen_h_data_analysis,
    "h_vision": gen_h_vision,
}


def stable_choice(items: list, *labels: object):
    """The same choice for everyone who passes the same labels (lockstep operators)."""
    return items[label_key(*labels) % len(items)]
