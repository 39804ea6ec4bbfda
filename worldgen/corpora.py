"""Prompt corpora: the real prompt files shipped in data/, and Python's own documentation.

Everything is loaded once per process and kept read-only; the lists are in file order, so draws by
index are deterministic.
"""

from __future__ import annotations

import gzip
import importlib
import inspect
import re
import types
import warnings
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import orjson

DATA_DIR = Path(__file__).with_name("data")


@dataclass(frozen=True, slots=True)
class Prompt:
    text: str
    system: str | None = None
    tools: tuple[str, ...] = ()
    followups: tuple[str, ...] = ()


@dataclass(slots=True)
class Corpora:
    chat_oasst: list[str] = field(default_factory=list)
    chat_hh: list[str] = field(default_factory=list)
    math: list[str] = field(default_factory=list)
    humaneval: list[str] = field(default_factory=list)
    agentic: list[Prompt] = field(default_factory=list)
    orca: list[Prompt] = field(default_factory=list)
    rubric_templates: list[str] = field(default_factory=list)
    generation_templates: list[str] = field(default_factory=list)
    doc_topics: list[tuple[str, str]] = field(default_factory=list)
    stdlib_funcs: list[tuple[str, str, str]] = field(default_factory=list)
    code_snippets: list[tuple[str, str]] = field(default_factory=list)
    prose: list[str] = field(default_factory=list)


def _read(name: str) -> list[dict]:
    with gzip.open(DATA_DIR / f"{name}.jsonl.gz", "rb") as fh:
        return [orjson.loads(line) for line in fh if line.strip()]


# Pure-Python standard-library modules whose functions make believable "explain / fix / extend this"
# coding requests. Fixed list so that the corpus does not depend on what happens to be importable.
_STDLIB_MODULES = (
    "textwrap",
    "statistics",
    "heapq",
    "bisect",
    "fractions",
    "shlex",
    "colorsys",
    "difflib",
    "calendar",
    "string",
    "ipaddress",
    "json.decoder",
    "json.encoder",
    "csv",
    "pathlib",
    "functools",
    "itertools",
    "collections",
    "datetime",
    "re",
    "os.path",
    "urllib.parse",
    "base64",
    "html",
    "random",
    "uuid",
    "fnmatch",
    "glob",
    "shutil",
    "tempfile",
    "zipfile",
    "gzip",
    "configparser",
    "argparse",
    "logging",
    "dataclasses",
    "enum",
    "typing",
    "contextlib",
    "copy",
    "pprint",
    "operator",
    "secrets",
    "hashlib",
    "hmac",
    "sqlite3",
    "email.utils",
    "http.cookies",
    "mimetypes",
    "quopri",
    "graphlib",
    "tomllib",
    "zoneinfo",
    "wave",
    "sched",
    "queue",
    "threading",
    "asyncio.queues",
)


def _stdlib_corpus() -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]]:
    """(qualified name, signature, first docstring paragraph) and (name, source) of stdlib functions."""
    funcs: list[tuple[str, str, str]] = []
    snippets: list[tuple[str, str]] = []
    for modname in _STDLIB_MODULES:
        try:
            mod = importlib.import_module(modname)
        except ImportError:
            continue
        with warnings.catch_warnings():  # typing's deprecated aliases warn when their docstrings are read
            warnings.simplefilter("ignore", DeprecationWarning)
            _module_corpus(modname, mod, funcs, snippets)
    return funcs, snippets


_ADDRESS = re.compile(r" at 0x[0-9a-f]+>")


def _module_corpus(
    modname: str, mod: types.ModuleType, funcs: list[tuple[str, str, str]], snippets: list[tuple[str, str]]
) -> None:
    """Functions of one module with a usable docstring, and the source of the shorter ones."""
    for name, obj in sorted(vars(mod).items()):
        if name.startswith("_") or not callable(obj) or getattr(obj, "__module__", None) != mod.__name__:
            continue
        doc = inspect.getdoc(obj) or ""
        first = doc.split("\n\n")[0].replace("\n", " ").strip()
        if len(first) < 20:
            continue
        try:
            # A default's repr can carry its memory address (`<object object at 0x7f...>`), which
            # changes from one process to the next: the same seed must give the same bytes.
            sig = _ADDRESS.sub(">", str(inspect.signature(obj)))
        except (TypeError, ValueError):
            sig = "(...)"
        funcs.append((f"{modname}.{name}", sig, first))
        if inspect.isfunction(obj):
            try:
                src = inspect.getsource(obj)
            except (OSError, TypeError):
                continue
            if 120 <= len(src) <= 2500:
                snippets.append((f"{modname}.{name}", src))


def _doc_topics() -> list[tuple[str, str]]:
    try:
        from pydoc_data.topics import topics
    except ImportError:  # stripped-down interpreters ship without it
        return []
    return [(k, topics[k]) for k in sorted(topics)]


_SENT_RE = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def _prose(doc_topics: list[tuple[str, str]]) -> list[str]:
    """Sentences of ordinary prose taken from the documentation, used to give answers their length."""
    out: list[str] = []
    for _, text in doc_topics:
        for para in text.split("\n\n"):
            if para.startswith((" ", "*", "=")) or "::=" in para:
                continue
            flat = " ".join(para.split())
            for sent in _SENT_RE.split(flat):
                if 40 <= len(sent) <= 260 and sent.endswith("."):
                    out.append(sent)
    return out


@cache
def load() -> Corpora:
    c = Corpora()
    c.chat_oasst = [r["text"] for r in _read("chat_oasst_prompt_lottery_en")]
    c.chat_hh = [r["text"] for r in _read("chat_hh_rlhf_harmless_base_test_first_turn")]
    c.math = [r["text"] for r in _read("math_gsm8k_test")]
    c.humaneval = [r["text"] for r in _read("code_humaneval")]
    c.agentic = [
        Prompt(
            r["text"], r.get("system") or None, tuple(r.get("tools") or ()), tuple(r.get("followups") or ())
        )
        for r in _read("agentic_bfcl_v4_user_queries")
    ]
    c.orca = [
        Prompt(r["text"], r.get("system") or None) for r in _read("reasoning_orca_dpo_pairs_system_prompted")
    ]
    rubric = _read("rubric_alpaca_eval_annotator_templates")
    distil = _read("distill_distilabel_task_templates")
    c.rubric_templates = [r["text"] for r in rubric] + [r["text"] for r in distil if r["kind"] == "rubric"]
    c.generation_templates = [r["text"] for r in distil if r["kind"] == "generation"] + [
        r["text"] for r in _read("generation_stanford_alpaca_prompt")
    ]
    c.doc_topics = _doc_topics()
    c.stdlib_funcs, c.code_snippets = _stdlib_corpus()
    c.prose = _prose(c.doc_topics)
    return c
