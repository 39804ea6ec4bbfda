"""Linking benchmark: time, memory and cluster quality on a synthetic population at two sizes.

    .venv/bin/python benchmarks/bench_linking.py                 # 500k and 2M exchanges
    .venv/bin/python benchmarks/bench_linking.py --sizes 60000   # one quick size

The population is built directly as a `signals` table (the output of the exchange-signals stage),
with template fingerprints computed by `distillguard.signals.template` on real prompt text from
shared/data, so LSH and skeleton collisions behave as they do on real traffic. It holds:

- ordinary users drawing prompts from the chat/maths/code corpora (so popular prompts are shared by
  chance), on a handful of consumer ISPs, browsers and SDKs;
- hard cases: classrooms behind one campus NAT created in a burst with a shared assignment,
  enterprise orgs (shared payment, domain, datacenter /24, one system-prompt template), benchmark
  runners (the same GSM8K/HumanEval items with "think step by step"), eval graders (stock judge
  templates), agentic-coding developers (one popular tool's system prompt and user agent);
- adaptive campaigns: distinct IP, payment, TLS and e-mail per account, every request's wrapper
  drawn from a bank and paraphrased (synonyms, greetings, typos), half ordinary resold traffic.

Each size runs in its own process so the peak RSS reported is that size's own.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import re
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from distillguard.linking import link_accounts
from distillguard.schema import ACCOUNTS_SCHEMA
from distillguard.signals.capability import CAPABILITIES
from distillguard.signals.exchange import ELICITATION_COLUMNS, SIGNALS_SCHEMA
from distillguard.signals.template import LSH_BANDS, head, minhash_bands, skeleton, tail, text_hash

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
WINDOW_START = np.datetime64("2026-03-02T00:00:00", "ms").astype(np.int64)
HOUR = 3_600_000
DAY = 24 * HOUR
WINDOW_DAYS = 14
RELEASE = WINDOW_START + 7 * DAY + 17 * HOUR

GENERAL, CODING, MATH, AGENTIC = (CAPABILITIES.index(c) for c in ("chat", "coding", "math", "agentic"))
E_REASONING, E_RUBRIC, E_GENERATION, E_REWRITE, E_AGENT = range(5)

COT_WRAPPERS = (
    "Below is a task and a completed response to it. Imagine the internal reasoning that produced this response, "
    "and articulate it step by step in full detail.\n\nTask: {task}\n\nCompleted response: {response}",
    "You will be shown a question and its final answer. Reconstruct the complete chain of thought that leads from "
    "the question to this answer, writing out every intermediate step.\n\nQuestion: {task}\nFinal answer: {response}",
    "Task: {task}\nReference solution: {response}\n\nExplain, step by step, the full line of reasoning an expert "
    "would follow to arrive at the reference solution. Be exhaustive.",
    "Here's a problem along with an answer someone already wrote.\n\nProblem: {task}\n\nAnswer: {response}\n\n"
    "Walk me through the thinking behind that answer, one step at a time, in as much detail as you can.",
    "I have the solution below but I want to understand how to get there.\n\nQ: {task}\nSolution: {response}\n\n"
    "Describe the reasoning as a numbered sequence of steps.",
    "Given the question and the response, write the hidden reasoning that connects them. Think through it slowly "
    "and show each step.\n\nQUESTION:\n{task}\n\nRESPONSE:\n{response}",
)
RUBRIC_WRAPPERS = (
    "You are a strict grader. Score the response below from 1 to 10 on helpfulness, honesty and harmlessness, and "
    "justify every score in detail.\n\nInstruction: {task}\n\nResponse: {response}",
    "Evaluate the answer against the rubric: correctness, completeness, clarity. Explain your evaluation criterion "
    "by criterion before the final rating.\n\n[Question]\n{task}\n[Answer]\n{response}",
    "Rate the following reply on a scale of 1-5 for each of: accuracy, depth, style. Provide a thorough "
    "justification for every score.\n\nPrompt: {task}\nReply: {response}",
)
AGENT_SYSTEMS = (
    "You are an expert data analyst combining statistical rigor with deep domain knowledge. Your goal is to deliver "
    "data-driven insights supported by complete and transparent reasoning. Use the available tools when they help.",
    "You are an autonomous agent that solves tasks by calling tools. Think about which tool to call and why, call "
    "it, read the result, and continue until the task is complete. Explain your reasoning at each step.",
    "You are a meticulous assistant with access to tools. For every request, plan first, then execute the plan "
    "with tool calls, then verify the result. Write out your full reasoning.",
    "Act as an AI agent with function-calling abilities. Plan, act, observe, and repeat. Be explicit about why you "
    "choose each action.",
)
CODE_WRAPPERS = (
    "Implement the following function. Before writing code, explain your approach step by step, then give the "
    "complete implementation with comments.\n\n{task}",
    "Solve this programming task. Think through the edge cases first and write out your reasoning, then provide "
    "tested code.\n\n{task}",
    "{task}\n\nWrite a complete, well-documented solution and explain every design decision you make along the way.",
)
STOCK_TEMPLATES = (
    "Translate to French: {q}",
    "Summarize the following text in three sentences:\n\n{q}",
    "Fix the grammar and spelling of this text: {q}",
    "Explain like I'm five: {q}",
)
BENCH_SUFFIX = "\n\nLet's think step by step."
CODING_TOOL_SYSTEM = (
    "You are a coding agent working in the user's repository. You can read and write files and run shell commands. "
    "Investigate, implement, test, and summarize what you changed."
)
ORCA_SYSTEM = (
    "You are an AI assistant. User will you give you a task. Your goal is to complete the task as faithfully as you "
    "can. While performing the task think step-by-step and justify your steps."
)
_SYNONYMS = {
    "explain": ("describe", "clarify", "spell out"),
    "step by step": ("one step at a time", "step-by-step", "in small steps"),
    "complete": ("full", "entire", "whole"),
    "detail": ("depth", "thoroughness"),
    "reasoning": ("thinking", "thought process", "logic"),
    "write": ("produce", "put down", "give"),
    "every": ("each", "all"),
    "response": ("reply", "answer", "output"),
    "task": ("job", "exercise", "problem"),
    "thorough": ("careful", "detailed"),
    "provide": ("give", "supply"),
    "score": ("rate", "grade"),
}
_SYN_RE = re.compile(r"\b(" + "|".join(sorted(_SYNONYMS, key=len, reverse=True)) + r")\b", re.IGNORECASE)
_PREFIXES = ("", "", "", "Hi! ", "Quick one: ", "Hey, ", "Hello. ", "Please help: ", "ok so ")
_SUFFIXES = ("", "", "", " Thanks!", " Thank you.", " thx", " Much appreciated.", " :)")
_ISPS = np.arange(7922, 7922 + 40)
_TLS = tuple(f"ja3-common-{i}" for i in range(12))
_UAS = ("Mozilla/5.0", "openai-python/1.54.0", "anthropic-python/0.39.0", "python-httpx/0.27", "curl/8.5.0")


def _load(name: str, limit: int = 100_000) -> list[dict]:
    with (DATA / name).open() as fh:
        return [json.loads(line) for _, line in zip(range(limit), fh, strict=False)]


class Corpus:
    """The prompt corpora and a cache of their fingerprints."""

    def __init__(self) -> None:
        self.chat = [r["text"] for f in ("chat_oasst_prompt_lottery_en.jsonl",
                                         "chat_hh_rlhf_harmless_base_test_first_turn.jsonl") for r in _load(f)]
        self.math = [r["text"] for r in _load("math_gsm8k_test.jsonl")]
        self.code = [r["text"] for r in _load("code_humaneval.jsonl")]
        self.agentic = [r["text"] for r in _load("agentic_bfcl_v4_user_queries.jsonl")]
        self.judge = [r["text"] for r in _load("rubric_alpaca_eval_annotator_templates.jsonl")
                      if "{instruction}" in r["text"]][:6]
        self._cache: dict[str, tuple[int, int, int, np.ndarray]] = {}

    def fingerprint(self, texts: list[str]) -> list[tuple[int, int, int, np.ndarray]]:
        todo = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if todo:
            skels = [skeleton(t) for t in todo]
            bands = minhash_bands(skels)
            for t, s, b in zip(todo, skels, bands, strict=True):
                self._cache[t] = (text_hash(s), text_hash(head(s)), text_hash(tail(s)), b)
        return [self._cache[t] for t in texts]


def perturb(text: str, rng: np.random.Generator) -> str:
    """Per-request paraphrase: synonym swaps, greetings, sign-offs and an occasional typo."""

    def swap(m: re.Match[str]) -> str:
        if rng.random() < 0.45:
            return m.group(0)
        options = _SYNONYMS[m.group(0).lower()]
        return options[rng.integers(len(options))]

    out = _SYN_RE.sub(swap, text)
    if rng.random() < 0.33:
        words = [m for m in re.finditer(r"(?<![{\w])[a-z]{6,}(?![\w}])", out)]
        if words:
            m = words[rng.integers(len(words))]
            w = m.group(0)
            out = out[: m.start()] + w[0] + w[2] + w[1] + w[3:] + out[m.end():]
    return _PREFIXES[rng.integers(len(_PREFIXES))] + out + _SUFFIXES[rng.integers(len(_SUFFIXES))]


@dataclass
class Actor:
    """Exchanges of one account, as parallel lists, plus its side-table row and ground truth."""

    account_id: str
    label: str  # "legit:<type>" or "campaign:<name>"
    created_at: int
    tier: str
    email_domain: str
    payment: str | None
    rows: dict[str, list] = field(default_factory=lambda: {k: [] for k in _ROW_KEYS})

    def add(self, ts: int, text: str, *, system: str | None = None, capability: int = GENERAL,
            elicit: tuple[int, float] | None = None, ip: str = "", asn: int | None = None, tls: str | None = None,
            ua: str | None = None, model: str = "lumen-2-pro", max_tokens: int | None = None, n_tools: int = 0) -> None:
        r = self.rows
        r["ts"].append(ts)
        r["text"].append(text)
        r["system"].append(system)
        r["capability"].append(capability)
        r["elicit"].append(elicit)
        r["ip"].append(ip)
        r["asn"].append(asn)
        r["tls"].append(tls)
        r["ua"].append(ua)
        r["model"].append(model)
        r["max_tokens"].append(max_tokens)
        r["n_tools"].append(n_tools)


_ROW_KEYS = ("ts", "text", "system", "capability", "elicit", "ip", "asn", "tls", "ua", "model", "max_tokens", "n_tools")


class World:
    """Random choices shared by the actors of one population."""

    def __init__(self, seed: int, corpus: Corpus) -> None:
        self.rng = np.random.default_rng(seed)
        self.c = corpus
        self.n = 0

    def account_id(self) -> str:
        self.n += 1
        return f"acct-{self.n:06d}"

    def ip(self) -> str:
        r = self.rng.integers(1, 224, 3)
        return f"{r[0]}.{r[1]}.{r[2]}.{self.rng.integers(1, 255)}"

    def when(self, k: int, *, days: int = WINDOW_DAYS, start: int = WINDOW_START, profile: str = "day") -> np.ndarray:
        """k instants: days chosen at random, hours by a coarse diurnal profile."""
        day = self.rng.integers(0, days, k)
        if profile == "day":
            hour = np.clip(self.rng.normal(15, 3.5, k), 0, 23.99)
        else:
            hour = self.rng.uniform(0, 24, k)
        return start + day * DAY + (hour * HOUR).astype(np.int64)

    def sessions(self, k: int, n_sessions: int) -> np.ndarray:
        """k instants grouped into a few sessions of up to two hours (people work in sittings)."""
        starts = self.when(max(1, n_sessions))
        pick = self.rng.integers(0, len(starts), k)
        return np.sort(starts[pick] + self.rng.integers(0, 2 * HOUR, k))

    def volume(self, median: float, sigma: float = 1.0, cap: int = 3000) -> int:
        return int(np.clip(self.rng.lognormal(np.log(median), sigma), 1, cap))

    def elicit(self, etype: int, p: float, lo: float = 0.55) -> tuple[int, float] | None:
        return (etype, float(self.rng.uniform(lo, 0.99))) if self.rng.random() < p else None

    def created(self, days_back: float = 700) -> int:
        return int(WINDOW_START - self.rng.uniform(1, days_back) * DAY)


def ordinary(w: World, a: Actor, k: int, ip: str, asn: int, tls: str, ua: str) -> None:
    """Everyday traffic: chat, some maths and code, now and then a stock template."""
    rng = w.rng
    for ts in w.sessions(k, max(1, k // 8)):
        r = rng.random()
        if r < 0.70:
            text, cap = w.c.chat[rng.integers(len(w.c.chat))], GENERAL
        elif r < 0.80:
            text, cap = w.c.math[rng.integers(len(w.c.math))], MATH
        elif r < 0.88:
            text, cap = w.c.code[rng.integers(len(w.c.code))], CODING
        else:
            stock = STOCK_TEMPLATES[rng.integers(len(STOCK_TEMPLATES))]
            text, cap = stock.format(q=w.c.chat[rng.integers(len(w.c.chat))]), GENERAL
        if rng.random() < 0.2:  # some retype, greet or make typos
            text = perturb(text, rng)
        a.add(int(ts), text, capability=cap, elicit=w.elicit(E_REASONING, 0.03), ip=ip, asn=asn, tls=tls, ua=ua,
              model="lumen-2-pro" if rng.random() < 0.7 else "lumen-2-flash")


def legit_users(w: World, n: int) -> list[Actor]:
    out = []
    for _ in range(n):
        dom = "gmail.com" if w.rng.random() < 0.6 else ("outlook.com" if w.rng.random() < 0.6 else f"d{w.rng.integers(1e6)}.com")
        a = Actor(w.account_id(), "legit:user", w.created(), "free" if w.rng.random() < 0.5 else "paid", dom,
                  f"pay-{w.rng.integers(1 << 40):x}")
        ordinary(w, a, w.volume(25, 1.2), w.ip(), int(w.rng.choice(_ISPS)), _TLS[min(w.rng.geometric(0.35), 11)],
                 _UAS[min(w.rng.geometric(0.4) - 1, 4)])
        out.append(a)
    return out


def classroom(w: World, size: int) -> list[Actor]:
    """Students behind one campus NAT, accounts made in one lab session, working one assignment."""
    net = w.ip().rsplit(".", 1)[0]
    asn, created = int(w.rng.integers(60000, 65000)), w.created(200)
    problems = [w.c.math[i] for i in w.rng.integers(0, len(w.c.math), 8)]
    assignment = "Homework: explain how to solve this problem and show your steps.\n\n{p}"
    out = []
    for _ in range(size):
        a = Actor(w.account_id(), "legit:classroom", created + int(w.rng.integers(0, HOUR)), "education",
                  "uni-example.edu", None)
        ip = f"{net}.{w.rng.integers(1, 255)}"
        class_days = WINDOW_START + np.array([1, 3, 8, 10]) * DAY + 10 * HOUR
        for _ in range(w.volume(12, 0.5, 60)):
            ts = int(w.rng.choice(class_days) + w.rng.integers(0, 2 * HOUR))
            if w.rng.random() < 0.5:
                text = assignment.format(p=problems[w.rng.integers(len(problems))])
                el = w.elicit(E_REASONING, 0.5)
            else:
                text, el = w.c.chat[w.rng.integers(len(w.c.chat))], None
            a.add(ts, text, capability=MATH, elicit=el, ip=ip, asn=asn, tls=_TLS[0], ua=_UAS[0])
        out.append(a)
    return out


def enterprise(w: World, size: int) -> list[Actor]:
    """One company's service accounts: shared payment, domain, datacenter range and system template."""
    company = f"corp{w.rng.integers(1e6)}"
    net, pay = w.ip().rsplit(".", 1)[0], f"pay-{company}"
    system = f"You are the support assistant of {company.capitalize()}. Answer the customer politely and concisely."
    out = []
    for _ in range(size):
        a = Actor(w.account_id(), "legit:enterprise", w.created(), "enterprise", f"{company}.com", pay)
        for ts in w.when(w.volume(300, 0.6), profile="flat"):
            q = w.c.chat[w.rng.integers(len(w.c.chat))]
            a.add(int(ts), f"Customer #{w.rng.integers(1e6)} writes: {q}\nDraft a reply.", system=system,
                  ip=f"{net}.{w.rng.integers(1, 20)}", asn=16509, tls="ja3-corp-sdk", ua="corp-backend/2.1",
                  max_tokens=512)
        out.append(a)
    return out


def bench_team(w: World, size: int) -> list[Actor]:
    """A team running public benchmarks in bursts: the same items every other team runs."""
    out = []
    pay, dom = f"pay-{w.rng.integers(1 << 40):x}", f"lab{w.rng.integers(1e6)}.ai"
    for _ in range(size):
        a = Actor(w.account_id(), "legit:benchmark", w.created(), "research", dom, pay)
        ip = w.ip()
        for _ in range(int(w.rng.integers(1, 4))):
            start = int(w.when(1)[0])
            items = w.rng.choice(len(w.c.math), size=min(300, len(w.c.math)), replace=False)
            for j, i in enumerate(items):
                a.add(start + j * 4000, w.c.math[i] + BENCH_SUFFIX, capability=MATH,
                      elicit=w.elicit(E_REASONING, 0.8), ip=ip, asn=16509, tls="ja3-common-3", ua=_UAS[1],
                      max_tokens=1024)
        out.append(a)
    return out


def grader_team(w: World, size: int) -> list[Actor]:
    """A team using a stock judge template to grade its own model's outputs."""
    out = []
    template = w.c.judge[w.rng.integers(len(w.c.judge))]
    for _ in range(size):
        a = Actor(w.account_id(), "legit:grader", w.created(), "paid", f"lab{w.rng.integers(1e6)}.ai",
                  f"pay-{w.rng.integers(1 << 40):x}")
        ip = w.ip()
        for ts in w.sessions(w.volume(150, 0.6), 3):
            inst = w.c.chat[w.rng.integers(len(w.c.chat))]
            text = (template.replace("{instruction}", inst)
                    .replace("{output_1}", w.c.chat[w.rng.integers(len(w.c.chat))])
                    .replace("{output_2}", w.c.chat[w.rng.integers(len(w.c.chat))]))
            a.add(int(ts), text, capability=GENERAL, elicit=w.elicit(E_RUBRIC, 0.9), ip=ip, asn=int(w.rng.choice(_ISPS)),
                  tls=_TLS[2], ua=_UAS[1], max_tokens=256)
        out.append(a)
    return out


def developer(w: World) -> Actor:
    """A developer using a popular agentic coding tool: its system prompt and user agent are everywhere."""
    a = Actor(w.account_id(), "legit:agentic-dev", w.created(), "paid", "gmail.com", f"pay-{w.rng.integers(1 << 40):x}")
    ip = w.ip()
    for ts in w.sessions(w.volume(80, 0.8), 6):
        task = w.c.code[w.rng.integers(len(w.c.code))] if w.rng.random() < 0.5 else w.c.chat[w.rng.integers(len(w.c.chat))]
        a.add(int(ts), task, system=CODING_TOOL_SYSTEM, capability=AGENTIC, elicit=w.elicit(E_AGENT, 0.3), ip=ip,
              asn=int(w.rng.choice(_ISPS)), tls="ja3-node-20", ua="coding-agent/1.4.2", max_tokens=8192, n_tools=6)
    return a


def researcher(w: World) -> Actor:
    """Studies reasoning with the public Orca system prompt."""
    a = Actor(w.account_id(), "legit:researcher", w.created(), "research", f"uni{w.rng.integers(1e4)}.edu",
              f"pay-{w.rng.integers(1 << 40):x}")
    ip = w.ip()
    for ts in w.sessions(w.volume(60, 0.7), 4):
        a.add(int(ts), w.c.chat[w.rng.integers(len(w.c.chat))], system=ORCA_SYSTEM, capability=GENERAL,
              elicit=w.elicit(E_REASONING, 0.9), ip=ip, asn=int(w.rng.choice(_ISPS)), tls=_TLS[1], ua=_UAS[1])
    return a


@dataclass
class Campaign:
    name: str
    size: int
    recipes: tuple[str, ...]
    pivot: bool = False


def campaign(w: World, spec: Campaign, per_account: float) -> list[Actor]:
    """An adaptive hydra: fresh infrastructure per account, paraphrased wrappers, resold traffic mixed in."""
    out = []
    rng = w.rng
    for _ in range(spec.size):
        a = Actor(w.account_id(), f"campaign:{spec.name}", w.created(90), str(rng.choice(["free", "education", "startup"])),
                  str(rng.choice(["gmail.com", "outlook.com", "proton.me"])), f"pay-{rng.integers(1 << 40):x}")
        ip, asn, tls, ua = w.ip(), int(rng.choice(_ISPS)), _TLS[rng.integers(len(_TLS))], _UAS[rng.integers(1, 5)]
        k = w.volume(per_account, 0.5, 2000)
        ordinary(w, a, k // 2, ip, asn, tls, ua)
        for ts in w.when(k - k // 2, profile="flat"):
            recipe = spec.recipes[rng.integers(len(spec.recipes))]
            model = "lumen-3-pro" if spec.pivot and ts >= RELEASE and rng.random() < 0.6 else "lumen-2-pro"
            _harvest(w, a, recipe, int(ts), ip, asn, tls, ua, model)
        out.append(a)
    return out


def _harvest(w: World, a: Actor, recipe: str, ts: int, ip: str, asn: int, tls: str, ua: str, model: str) -> None:
    rng, c = w.rng, w.c
    if recipe in ("cot", "rubric"):
        bank = COT_WRAPPERS if recipe == "cot" else RUBRIC_WRAPPERS
        task = c.math[rng.integers(len(c.math))] if rng.random() < 0.5 else c.chat[rng.integers(len(c.chat))]
        text = perturb(bank[rng.integers(len(bank))], rng).replace("{task}", task).replace(
            "{response}", c.chat[rng.integers(len(c.chat))])
        etype = E_REASONING if recipe == "cot" else E_RUBRIC
        a.add(ts, text, capability=MATH, elicit=w.elicit(etype, 0.85), ip=ip, asn=asn, tls=tls, ua=ua, model=model,
              max_tokens=4096)
    elif recipe == "agentic":
        system = perturb(AGENT_SYSTEMS[rng.integers(len(AGENT_SYSTEMS))], rng)
        a.add(ts, c.agentic[rng.integers(len(c.agentic))], system=system, capability=AGENTIC,
              elicit=w.elicit(E_AGENT, 0.75), ip=ip, asn=asn, tls=tls, ua=ua, model=model, max_tokens=8192, n_tools=4)
    else:
        text = perturb(CODE_WRAPPERS[rng.integers(len(CODE_WRAPPERS))], rng).replace(
            "{task}", c.code[rng.integers(len(c.code))])
        a.add(ts, text, capability=CODING, elicit=w.elicit(E_REASONING, 0.7), ip=ip, asn=asn, tls=tls, ua=ua,
              model=model, max_tokens=8192)


def population(n_accounts: int, seed: int = 7, per_account: float = 100.0) -> list[Actor]:
    """About `n_accounts` accounts; campaigns hold ~3% of them, hard cases ~10%."""
    w = World(seed, Corpus())
    scale = n_accounts / 20_000
    actors: list[Actor] = []
    specs = (
        Campaign("reasoning", max(20, int(150 * scale)), ("cot", "rubric")),
        Campaign("agentic", max(30, int(250 * scale)), ("agentic",)),
        Campaign("coding", max(40, int(300 * scale)), ("code",), pivot=True),
    )
    for spec in specs:
        actors += campaign(w, spec, per_account)
    for _ in range(max(2, int(12 * scale))):
        actors += classroom(w, int(w.rng.integers(25, 60)))
    for _ in range(max(3, int(40 * scale))):
        actors += enterprise(w, int(w.rng.integers(3, 9)))
    for _ in range(max(4, int(60 * scale))):
        actors += bench_team(w, int(w.rng.integers(1, 4)))
    for _ in range(max(4, int(80 * scale))):
        actors += grader_team(w, int(w.rng.integers(1, 3)))
    actors += [developer(w) for _ in range(max(20, int(600 * scale)))]
    actors += [researcher(w) for _ in range(max(5, int(40 * scale)))]
    actors += legit_users(w, max(0, n_accounts - len(actors)))
    return actors


def to_tables(actors: list[Actor], corpus: Corpus) -> tuple[pa.Table, pa.Table]:
    """The `signals` and `accounts` tables of a population."""
    cols: dict[str, list] = {k: [] for k in _ROW_KEYS}
    owner: list[str] = []
    for a in actors:
        for k in _ROW_KEYS:
            cols[k].extend(a.rows[k])
        owner.extend([a.account_id] * len(a.rows["ts"]))
    n = len(owner)
    fps = corpus.fingerprint(cols["text"])
    systems = corpus.fingerprint([s for s in cols["system"] if s])
    sys_iter = iter(systems)
    sys_hash = [next(sys_iter)[0] if s else None for s in cols["system"]]
    elicit = np.zeros((n, len(ELICITATION_COLUMNS)), dtype=np.float32)
    rng = np.random.default_rng(1)
    elicit[:] = rng.uniform(0, 0.3, elicit.shape)
    for i, e in enumerate(cols["elicit"]):
        if e is not None:
            elicit[i, e[0]] = e[1]
    data: dict[str, pa.Array] = {
        "request_id": pa.array([f"r{i}" for i in range(n)]),
        "ts": pa.array(np.asarray(cols["ts"], dtype="datetime64[ms]")).cast(SIGNALS_SCHEMA.field("ts").type),
        "account_id": pa.array(owner),
        "model": pa.array(cols["model"]),
        "ip": pa.array(cols["ip"]),
        "ip_prefix": pa.array([ip.rsplit(".", 1)[0] + ".0/24" if ip else None for ip in cols["ip"]]),
        "asn": pa.array(cols["asn"], pa.int64()),
        "tls_fingerprint": pa.array(cols["tls"], pa.string()),
        "user_agent": pa.array(cols["ua"], pa.string()),
        "max_tokens": pa.array(cols["max_tokens"], pa.int64()),
        "n_tools": pa.array(cols["n_tools"], pa.int32()),
        "n_messages": pa.array(np.ones(n, dtype=np.int32)),
        "n_user": pa.array(np.ones(n, dtype=np.int32)),
        "has_tool_turn": pa.array(np.zeros(n, dtype=bool)),
        "prompt_chars": pa.array(np.fromiter((len(t) for t in cols["text"]), dtype=np.int32, count=n)),
        "capability": pa.array(np.asarray(cols["capability"], dtype=np.int8)),
        "skel_hash": pa.array(np.fromiter((f[0] for f in fps), dtype=np.int64, count=n)),
        "frame_hash": pa.array(np.fromiter((f[1] for f in fps), dtype=np.int64, count=n)),
        "tail_hash": pa.array(np.fromiter((f[2] for f in fps), dtype=np.int64, count=n)),
        "sys_hash": pa.array(sys_hash, pa.int64()),
        "lsh": pa.FixedSizeListArray.from_arrays(pa.array(np.stack([f[3] for f in fps]).reshape(-1)), LSH_BANDS),
    }
    for j, c in enumerate(ELICITATION_COLUMNS):
        data[c] = pa.array(elicit[:, j])
    payment_of = {a.account_id: a.payment for a in actors}
    data["payment_fingerprint"] = pa.array([payment_of[o] for o in owner], pa.string())
    signals = pa.table({f.name: data[f.name] if f.name in data else pa.nulls(n, f.type) for f in SIGNALS_SCHEMA},
                       schema=SIGNALS_SCHEMA)
    accounts = pa.table(
        {
            "account_id": [a.account_id for a in actors],
            "created_at": pa.array(np.asarray([a.created_at for a in actors], dtype="datetime64[ms]")).cast(
                ACCOUNTS_SCHEMA.field("created_at").type),
            "tier": [a.tier for a in actors],
            "verified": [a.tier in ("paid", "enterprise") for a in actors],
            "email_domain": [a.email_domain for a in actors],
            "country": [None] * len(actors),
            "payment_fingerprint": [a.payment for a in actors],
        },
        schema=ACCOUNTS_SCHEMA,
    )
    return signals, accounts


def quality(accounts: pa.Table, truth: dict[str, str]) -> dict[str, object]:
    """Per campaign: coverage of its best cluster and that cluster's purity; hard cases clustered with campaigns."""
    cluster = dict(zip(accounts["account_id"].to_pylist(), accounts["cluster_id"].to_pylist(), strict=True))
    content = dict(zip(accounts["account_id"].to_pylist(), accounts["content_risk"].to_pylist(), strict=True))
    members: dict[str, list[str]] = {}
    for acct, cid in cluster.items():
        if cid is not None:
            members.setdefault(cid, []).append(acct)
    report: dict[str, object] = {}
    campaign_clusters: set[str] = set()
    for name in sorted({t for t in truth.values() if t.startswith("campaign:")}):
        accts = [a for a, t in truth.items() if t == name]
        counts: dict[str, int] = {}
        for acct in accts:
            if cluster.get(acct):
                counts[cluster[acct]] = counts.get(cluster[acct], 0) + 1
        best = max(counts, key=counts.__getitem__) if counts else None
        campaign_clusters.update(counts)
        report[name] = {
            "accounts": len(accts),
            "coverage": round(counts.get(best, 0) / len(accts), 3) if best else 0.0,
            "purity": round(counts[best] / len(members[best]), 3) if best else 0.0,
            "clusters": len(counts),
            "mean_content_risk": round(float(np.mean([content[a] for a in accts])), 3),
        }
    legit_types = sorted({t for t in truth.values() if t.startswith("legit:")})
    for t in legit_types:
        accts = [a for a, lt in truth.items() if lt == t]
        in_campaign = sum(1 for a in accts if cluster.get(a) in campaign_clusters)
        clustered = sum(1 for a in accts if cluster.get(a))
        report[t] = {
            "accounts": len(accts),
            "clustered": clustered,
            "in_campaign_cluster": in_campaign,
            "p99_content_risk": round(float(np.quantile([content[a] for a in accts], 0.99)), 3),
        }
    return report


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_size(n_accounts: int, per_account: float, queue: mp.Queue) -> None:
    t0 = time.perf_counter()
    corpus = Corpus()
    actors = population(n_accounts, per_account=per_account)
    signals, accounts = to_tables(actors, corpus)
    truth = {a.account_id: a.label for a in actors}
    t_gen = time.perf_counter() - t0
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("signals_in", signals)
    con.register("accounts_in", accounts)
    con.execute("CREATE TABLE signals AS SELECT * FROM signals_in")
    con.execute("CREATE TABLE accounts AS SELECT * FROM accounts_in")
    rss_before = _peak_rss_mb()
    timings: dict[str, float] = {}
    t1 = time.perf_counter()
    result = link_accounts(con, timings=timings)
    t_link = time.perf_counter() - t1
    queue.put({
        "accounts": len(actors),
        "exchanges": signals.num_rows,
        "generate_s": round(t_gen, 1),
        "link_s": round(t_link, 2),
        "stages_s": {k: round(v, 2) for k, v in timings.items()},
        "clusters": result.clusters.num_rows,
        "edges_in_clusters": result.edges.num_rows,
        "peak_rss_mb": round(_peak_rss_mb()),
        "peak_rss_before_link_mb": round(rss_before),
        "quality": quality(result.accounts, truth),
    })


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[500_000, 2_000_000], help="exchanges per run")
    parser.add_argument("--per-account", type=float, default=100.0, help="median exchanges per account")
    args = parser.parse_args(argv)
    ctx = mp.get_context("spawn")
    results = []
    for size in args.sizes:
        queue: mp.Queue = ctx.Queue()
        proc = ctx.Process(target=run_size, args=(int(size / args.per_account), args.per_account, queue))
        proc.start()
        results.append(queue.get())
        proc.join()
        print(json.dumps(results[-1], indent=1), flush=True)
    if len(results) == 2:
        a, b = results
        growth: Callable[[str], float] = lambda k: round(b[k] / max(a[k], 1e-9), 2)  # noqa: E731
        print(f"growth x{growth('exchanges')} exchanges: link time x{growth('link_s')}, "
              f"peak RSS x{growth('peak_rss_mb')}", file=sys.stderr)


if __name__ == "__main__":
    main()
