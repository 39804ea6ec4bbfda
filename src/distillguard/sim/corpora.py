"""Real prompt corpora packaged with the simulator (see data/LICENSES.md), loaded into pools.

Every actor draws its task texts from these pools; what differs between actors is how they wrap,
repeat and time them.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

import orjson

_MAX_FILE_BYTES = 16 * 1024 * 1024  # the packaged files are ~3.4 MB uncompressed in total

# Questions a censorship-safe rewrite campaign would target: politics, states, conflicts.
_POLITICAL = re.compile(
    r"\b(government|president|politic\w*|election\w*|vot(e|ing)|democra\w*|communis\w*|protest\w*|"
    r"trump|biden|obama|republican\w*|democrat\w*|china|chinese|taiwan|tibet|hong kong|russia\w*|"
    r"putin|ukrain\w*|israel\w*|palestin\w*|immigra\w*|abortion|gun control|censor\w*|dictator\w*|"
    r"propaganda|regime|socialis\w*|capitalis\w*|congress|senator|terroris\w*|war|military|"
    r"nazi\w*|racis\w*|muslim\w*|islam\w*|refugee\w*|sanction\w*|parliament\w*)\b",
    re.IGNORECASE,
)
_DEF_NAME = re.compile(r"^def (\w+)\(", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class AgenticTask:
    text: str
    tools: tuple[str, ...]
    followups: tuple[str, ...]
    system: str | None


@dataclass(frozen=True, slots=True)
class CodeTask:
    prompt: str
    func: str  # the function to implement, from the HumanEval signature


@dataclass(frozen=True, slots=True)
class Template:
    text: str
    origin: str  # e.g. "alpaca_eval", "ultrafeedback", "prometheus", "distilabel"


@dataclass(frozen=True)
class Corpora:
    chat: tuple[str, ...]  # OASST then HH first turns
    n_oasst: int
    political: tuple[str, ...]
    math: tuple[str, ...]
    code: tuple[CodeTask, ...]
    agentic: tuple[AgenticTask, ...]
    agentic_multi: tuple[int, ...]  # indices of agentic tasks that have follow-up turns
    orca: tuple[tuple[str, str], ...]  # (system, user)
    rubrics: tuple[Template, ...]  # judge / grading templates with unfilled slots
    generation: tuple[Template, ...]  # synthetic-data generation templates


def _read(name: str) -> list[dict]:
    ref = resources.files("distillguard.sim") / "data" / f"{name}.jsonl.gz"
    with ref.open("rb") as fh, gzip.open(fh, "rb") as gz:
        raw = gz.read(_MAX_FILE_BYTES + 1)
    if len(raw) > _MAX_FILE_BYTES:
        raise ValueError(f"packaged corpus {name} is larger than expected")
    return [orjson.loads(line) for line in raw.splitlines() if line.strip()]


def _origin(source: str) -> str:
    for key in ("ultrafeedback", "prometheus", "alpaca_eval"):
        if key in source:
            return key
    return "distilabel"


@cache
def load() -> Corpora:
    """Load and index the packaged corpora (cached: they are read-only)."""
    oasst = [r["text"] for r in _read("chat_oasst_prompt_lottery_en") if len(r["text"]) <= 4000]
    hh = [r["text"] for r in _read("chat_hh_rlhf_harmless_base_test_first_turn")]
    chat = tuple(oasst + hh)
    code = tuple(CodeTask(r["text"], _function_name(r["text"])) for r in _read("code_humaneval"))
    agentic = tuple(
        AgenticTask(r["text"], tuple(r.get("tools") or ()), tuple(r.get("followups") or ()), r.get("system"))
        for r in _read("agentic_bfcl_v4_user_queries")
        if 3 <= len(r["text"]) <= 3000
    )
    rubric_records = _read("rubric_alpaca_eval_annotator_templates") + [
        r for r in _read("distill_distilabel_task_templates") if r["kind"] == "rubric"
    ]
    rubrics = tuple(
        Template(r["text"], _origin(r["source"]))
        for r in rubric_records
        if _origin(r["source"]) in ("alpaca_eval", "ultrafeedback", "prometheus")
    )
    generation = tuple(
        Template(r["text"], "distilabel")
        for r in _read("distill_distilabel_task_templates")
        if r["kind"] == "generation"
    ) + tuple(Template(r["text"], "alpaca") for r in _read("generation_stanford_alpaca_prompt"))
    return Corpora(
        chat=chat,
        n_oasst=len(oasst),
        political=tuple(t for t in chat if _POLITICAL.search(t)),
        math=tuple(r["text"] for r in _read("math_gsm8k_test")),
        code=code,
        agentic=agentic,
        agentic_multi=tuple(i for i, t in enumerate(agentic) if t.followups),
        orca=tuple((r["system"], r["text"]) for r in _read("reasoning_orca_dpo_pairs_system_prompted")),
        rubrics=rubrics,
        generation=generation,
    )


def _function_name(prompt: str) -> str:
    """The last top-level `def` of a HumanEval prompt: helpers come first, the task last."""
    names = _DEF_NAME.findall(prompt)
    return names[-1] if names else "solution"
