"""Train the per-exchange text classifiers (elicitation type, capability area) and ship their weights.

    .venv/bin/python scripts/train_classifiers.py [--data /work/shared/data] [--out src/distillguard/signals/models]

Reads the prompt corpora in --data and the hand-written examples in scripts/classifier_examples/,
then:
1. fits on the TRAINING split and reports precision / recall on the HELD-OUT split, which comes from
   other sources (``make_pools``, ``corpus_elicitation``, ``corpus_capability``; docs/classifiers.md);
2. refits on both splits with the same settings and writes ``text_heads.npz`` to --out.
Everything is seeded, so two runs write the same weights.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import yaml
from sklearn.linear_model import LogisticRegression

from distillguard.signals.capability import CAPABILITIES
from distillguard.signals.capability import HEAD as CAPABILITY_HEAD
from distillguard.signals.elicitation import (
    ANCHOR_WORDS,
    ELICITATION_TYPES,
    PATTERN_CODES,
    training_pattern_hits,
)
from distillguard.signals.elicitation import HEAD as ELICITATION_HEAD
from distillguard.signals.textmodel import N_BUCKETS, TextModel, featurize, save_model

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "scripts" / "classifier_examples"
DEFAULT_DATA = Path("/work/shared/data")
DEFAULT_OUT = ROOT / "src" / "distillguard" / "signals" / "models"

SEED = 20260223
ELICITATION_C = 16.0  # inverse L2 strength of each per-type logistic model
CAPABILITY_C = 4.0
FILLS = {"train": 8, "heldout": 4}  # how many times each hand-written entry is filled
MAX_PER_SOURCE = 900  # caps the large corpora so that they do not drown the hand-written classes
HUMANEVAL_SPLIT = 82  # HumanEval/0..81 train, HumanEval/82..163 held out
FINAL_TEST = "final test (hand-written)"
# (file, source tag) of the hand-written elicitation examples of each split. The final test file was
# written after everything else was settled and is reported on its own.
ELICITATION_FILES = {
    "train": (("elicitation_train.yaml", "hand-written elicitation"),),
    "heldout": (("elicitation_heldout.yaml", "hand-written elicitation"), ("elicitation_test.yaml", FINAL_TEST)),
}
AGENTIC_BFCL = ("multi_turn", "memory", "web_search")
ORCA_AREA_RULES = (
    ("writing", re.compile(r"\btranslat|\bwrite (?:a|an)\b|\bcontinue the (?:following )?story|\bgood title\b|\bsummar|\bgenerate (?:a|an)\b", re.I)),
    ("math", re.compile(r"\bsolve\b.*\bfor [a-z]\b|\bmath problem\b", re.I)),
)
COUNTS = ("5", "8", "10", "12", "15", "20", "25", "30", "40", "50", "100", "ten", "twenty", "fifty")


@dataclass
class Example:
    """One request: user text, optional system prompt, and what it should be classified as."""

    prompt: str
    system: str | None
    source: str
    types: frozenset[str] = frozenset()  # elicitation types it is a positive of
    unknown: frozenset[str] = frozenset()  # types it is neither a positive nor a negative of
    capability: str | None = None
    n_tools: int = 0


@dataclass
class Pools:
    """Real texts of one split, used to fill the slots of templates."""

    tasks: list[str]
    questions: list[str]
    agent_rows: list[dict]
    code: list[str]
    passages: list[str]
    responses: list[str]
    extras: dict = field(default_factory=dict)  # the YAML file's topics, answers, emails


# ---------------------------------------------------------------------------------------------
# corpora and splits


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def load_corpora(data: Path) -> dict[str, list[dict]]:
    names = {
        "hh": "chat_hh_rlhf_harmless_base_test_first_turn.jsonl",
        "oasst": "chat_oasst_prompt_lottery_en.jsonl",
        "gsm8k": "math_gsm8k_test.jsonl",
        "humaneval": "code_humaneval.jsonl",
        "bfcl": "agentic_bfcl_v4_user_queries.jsonl",
        "orca": "reasoning_orca_dpo_pairs_system_prompted.jsonl",
        "alpaca_eval": "rubric_alpaca_eval_annotator_templates.jsonl",
        "distilabel": "distill_distilabel_task_templates.jsonl",
        "alpaca": "generation_stanford_alpaca_prompt.jsonl",
    }
    missing = [f for f in names.values() if not (data / f).exists()]
    if missing:
        sys.exit(f"error: {data} lacks {', '.join(missing)}")
    return {key: read_jsonl(data / name) for key, name in names.items()}


def humaneval_half(rows: list[dict], split: str) -> list[dict]:
    def number(row: dict) -> int:
        return int(row["meta"]["task_id"].split("/")[1])

    return [r for r in rows if (number(r) < HUMANEVAL_SPLIT) == (split == "train")]


def bfcl_split(rows: list[dict], split: str) -> list[dict]:
    """BFCL live_* categories (queries contributed by users) are held out; the rest is training."""
    return [r for r in rows if r["meta"]["bfcl_category"].startswith("live_") == (split == "heldout")]


def capped(rows: list, rng: random.Random, cap: int = MAX_PER_SOURCE) -> list:
    return rows if len(rows) <= cap else rng.sample(rows, cap)


def make_pools(corpora: dict[str, list[dict]], split: str, extras: dict) -> Pools:
    if split == "train":
        tasks = [r["text"] for r in corpora["gsm8k"] + corpora["hh"] + bfcl_split(corpora["bfcl"], "train") + corpora["orca"]]
        return Pools(
            tasks=tasks,
            questions=[r["text"] for r in corpora["hh"]],
            agent_rows=[r for r in bfcl_split(corpora["bfcl"], "train") if r.get("tools")],
            code=[r["text"] for r in humaneval_half(corpora["humaneval"], "train")],
            passages=[r["text"] for r in corpora["orca"] if len(r["text"]) > 200],
            responses=[r["text"] for r in corpora["orca"] + corpora["hh"] + corpora["gsm8k"]],
            extras=extras,
        )
    oasst = [r["text"] for r in corpora["oasst"]]
    return Pools(
        tasks=oasst + [r["text"] for r in bfcl_split(corpora["bfcl"], "heldout")],
        questions=oasst,
        agent_rows=[r for r in bfcl_split(corpora["bfcl"], "heldout") if r.get("tools")],
        code=[r["text"] for r in humaneval_half(corpora["humaneval"], "heldout")],
        passages=[t for t in oasst if len(t) > 200],
        responses=oasst,
        extras=extras,
    )


# ---------------------------------------------------------------------------------------------
# filling templates

_SLOT = re.compile(r"\{(task|task2|task3|question|agent_task|tools|tool|code|response|response_b|response_c|answer|n|topic|text|email)\}")


def fill_slots(template: str, pools: Pools, rng: random.Random) -> tuple[str, int]:
    """Fill a hand-written template; returns the text and the number of tools it mentions."""
    agent = rng.choice(pools.agent_rows)
    values = {
        "task": rng.choice(pools.tasks),
        "task2": rng.choice(pools.tasks),
        "task3": rng.choice(pools.tasks),
        "question": rng.choice(pools.questions),
        "agent_task": agent["text"],
        "tools": ", ".join(agent["tools"]),
        "tool": agent["tools"][0],
        "code": rng.choice(pools.code),
        "response": rng.choice(pools.responses),
        "response_b": rng.choice(pools.responses),
        "response_c": rng.choice(pools.responses),
        "answer": rng.choice(pools.extras["answers"]),
        "n": rng.choice(COUNTS),
        "topic": rng.choice(pools.extras["topics"]),
        "text": rng.choice(pools.passages),
        "email": rng.choice(pools.extras["emails"]),
    }
    used_tools = len(agent["tools"]) if "{tools}" in template or "{tool}" in template else 0
    return _SLOT.sub(lambda m: values[m.group(1)], template), used_tools


def place_directive(directive: str, pools: Pools, rng: random.Random) -> tuple[str, str | None]:
    """Put an instruction without slots where real clients put it: system prompt, or around a task."""
    task = rng.choice(pools.tasks)
    where = rng.random()
    if where < 0.4:
        return task, directive
    sep = rng.choice(["\n\n", "\n", " ", "\n---\n"])
    return (directive + sep + task, None) if where < 0.7 else (task + sep + directive, None)


_JINJA_BLOCK = re.compile(r"\{%.*?%\}|\{#.*?#\}", re.S)
_JINJA_EXPR = re.compile(r"\{\{(.*?)\}\}", re.S)
_SINGLE_BRACE = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
_CHATML_SYSTEM = re.compile(r"<\|im_start\|>system\n(.*?)<\|im_end\|>\s*", re.S)


def _corpus_value(expr: str, pools: Pools, rng: random.Random) -> str:
    expr = expr.lower()
    if any(k in expr for k in ("length", "number", "num_", "score")):
        return str(rng.choice([3, 4, 5, 10]))
    if any(k in expr for k in ("output", "response", "generation", "answer", "completion", "solution", "call", "result")):
        return rng.choice(pools.responses)
    return rng.choice(pools.tasks)


def fill_corpus_template(text: str, pools: Pools, rng: random.Random) -> tuple[str, str | None]:
    """Fill a pipeline template (Jinja2 or str.format style) with real texts, as a harvester would.

    Half the time a leading ChatML system block becomes the system prompt, as an API client sends it.
    """
    text = _JINJA_BLOCK.sub("", text)
    text = _JINJA_EXPR.sub(lambda m: _corpus_value(m.group(1), pools, rng), text)
    text = _SINGLE_BRACE.sub(lambda m: _corpus_value(m.group(1), pools, rng), text)
    match = _CHATML_SYSTEM.search(text)
    if match and rng.random() < 0.5:
        user = (text[: match.start()] + text[match.end() :]).replace("<|im_start|>user\n", "").replace("<|im_end|>", "")
        return user.strip(), match.group(1).strip()
    return text, None


# ---------------------------------------------------------------------------------------------
# example sets


def hand_written_elicitation(spec: dict, pools: Pools, split: str, tag: str, rng: random.Random) -> Iterator[Example]:
    fills = FILLS[split]
    for kind in (*ELICITATION_TYPES, "none"):
        types = frozenset() if kind == "none" else frozenset({kind})
        source = f"{tag}: {kind}"
        for template in spec[kind].get("user", []):
            for _ in range(fills):
                prompt, n_tools = fill_slots(template, pools, rng)
                system = rng.choice(spec["none"]["directive"]) if kind == "none" and rng.random() < 0.3 else None
                yield Example(prompt, system, source, types, n_tools=n_tools)
        for directive in spec[kind].get("directive", []):
            for _ in range(fills):
                prompt, system = place_directive(directive, pools, rng)
                yield Example(prompt, system, source, types)


def corpus_elicitation(corpora: dict[str, list[dict]], pools: Pools, split: str, rng: random.Random) -> Iterator[Example]:
    """Real corpus texts: templates as positives of their kind, everything else as negatives."""
    templates = {
        "train": [(r, "rubric") for r in corpora["alpaca_eval"]] + [(r, "generation") for r in corpora["alpaca"]],
        "heldout": [(r, r["kind"]) for r in corpora["distilabel"] if r["kind"] in ("rubric", "generation")],
    }[split]
    for row, kind in templates:
        # A pipeline template may also elicit other things (a judge prompt asking for an explanation),
        # so it is not used as a negative of the other types.
        unknown = frozenset(ELICITATION_TYPES) - {kind}
        for _ in range(FILLS[split]):
            prompt, system = fill_corpus_template(row["text"], pools, rng)
            yield Example(prompt, system, f"{row['source'].split('/')[0]} {kind} template", frozenset({kind}), unknown)
    benign_systems = [r.get("system") for r in corpora["bfcl"] if r.get("system")]
    if split == "train":
        for row in corpora["orca"]:
            yield Example(row["text"], row["system"], "orca system prompt + task", frozenset({"reasoning"}))
            yield Example(row["text"], None, "orca task alone", frozenset())
        plain = corpora["hh"] + corpora["gsm8k"] + bfcl_split(corpora["bfcl"], "train") + humaneval_half(corpora["humaneval"], "train")
    else:
        plain = corpora["oasst"] + bfcl_split(corpora["bfcl"], "heldout") + humaneval_half(corpora["humaneval"], "heldout")
    by_source: dict[str, list[dict]] = {}
    for row in plain:
        by_source.setdefault(row["source"].split("/")[0], []).append(row)
    for source, rows in by_source.items():
        for row in capped(rows, rng):
            system = row.get("system") or (rng.choice(benign_systems) if rng.random() < 0.1 else None)
            tools = row.get("tools") or []
            prompt = with_function_specs(row["text"], tools) if tools and rng.random() < 0.3 else row["text"]
            yield Example(prompt, system, f"{source} ({row['kind']})", n_tools=len(tools))


def with_function_specs(query: str, tools: list[str]) -> str:
    """A function-calling prompt as many clients write it: the query, then the functions as JSON.

    Keeps structured text (JSON schemas) among the negatives, so that format alone never reads as
    a harvesting template.
    """
    specs = [
        {"name": t, "description": t.replace("_", " ").replace(".", " "), "parameters": {"type": "dict", "properties": {}}}
        for t in tools
    ]
    return f"{query}\n\nHere is a list of functions in JSON format that you can invoke:\n{json.dumps(specs, indent=2)}"


def hand_written_capability(spec: dict, split: str, rng: random.Random) -> Iterator[Example]:
    for area, entries in spec.items():
        systems = entries.get("system", [])
        for prompt in entries["prompt"]:
            system = rng.choice(systems) if systems and rng.random() < 0.3 else None
            yield Example(prompt, system, f"hand-written capability: {area}", capability=area)


def corpus_capability(corpora: dict[str, list[dict]], split: str, rng: random.Random) -> Iterator[Example]:
    if split == "train":
        areas = [
            ("chat", corpora["hh"]),
            ("math", corpora["gsm8k"]),
            ("coding", humaneval_half(corpora["humaneval"], "train")),
            # Most BFCL queries read as calculations, code-library calls or look-ups ("Find the area of a
            # triangle..."): only their tools make them agentic, and that is the tool rule's job. The text
            # model learns "agentic" from the categories that ask for actions over several steps.
            ("agentic", [r for r in bfcl_split(corpora["bfcl"], "train") if r["meta"]["bfcl_category"].startswith(AGENTIC_BFCL)]),
        ]
        # Orca's FLAN tasks carry no area label; the ones whose wording makes the area plain are used.
        for area, rule in ORCA_AREA_RULES:
            areas.append((area, [r for r in corpora["orca"] if rule.search(r["text"])]))
    else:
        areas = [("coding", humaneval_half(corpora["humaneval"], "heldout")), ("agentic", bfcl_split(corpora["bfcl"], "heldout"))]
    for area, rows in areas:
        for row in capped(rows, rng):
            source = f"{row['source'].split('/')[0]} ({row['kind']})"
            yield Example(row["text"], row.get("system") or None, source, capability=area, n_tools=len(row.get("tools") or []))


def oasst_labelled(corpora: dict[str, list[dict]]) -> Iterator[Example]:
    labels = yaml.safe_load((EXAMPLES / "capability_oasst_labels.yaml").read_text(encoding="utf-8"))["labels"]
    texts = [r["text"] for r in corpora["oasst"]]
    for area, start in labels:
        text = next(t for t in texts if t.startswith(start))
        yield Example(text, None, "OpenAssistant (hand-labelled)", capability=area)


def build_examples(corpora: dict[str, list[dict]], split: str) -> tuple[list[Example], list[Example]]:
    """(elicitation examples, capability examples) of one split."""
    rng = random.Random(f"{SEED}-{split}")
    cap_spec = yaml.safe_load((EXAMPLES / f"capability_{split}.yaml").read_text(encoding="utf-8"))
    capability = [*hand_written_capability(cap_spec, split, rng), *corpus_capability(corpora, split, rng)]
    if split == "heldout":
        capability += list(oasst_labelled(corpora))
    elicitation: list[Example] = []
    for name, tag in ELICITATION_FILES[split]:
        spec = yaml.safe_load((EXAMPLES / name).read_text(encoding="utf-8"))
        pools = make_pools(corpora, split, {k: spec[k] for k in ("topics", "answers", "emails")})
        elicitation += hand_written_elicitation(spec, pools, split, tag, rng)
    elicitation += [
        *corpus_elicitation(corpora, pools, split, rng),
        # Ordinary requests of every area are negatives for elicitation too.
        *(Example(e.prompt, e.system, e.source) for e in capability if e.source.startswith("hand-written")),
    ]
    return elicitation, capability


# ---------------------------------------------------------------------------------------------
# matrices and fitting


def text_matrix(examples: list[Example]) -> sp.csr_matrix:
    """Features of a request: its user text's plus its system prompt's (what the classifiers add up)."""
    prompts, _ = featurize([e.prompt for e in examples])
    systems, _ = featurize([e.system or "" for e in examples])
    matrix = (prompts + systems).tocsr()
    matrix.sum_duplicates()
    return matrix


def pattern_matrix(examples: list[Example]) -> np.ndarray:
    return training_pattern_hits([e.prompt for e in examples]) | training_pattern_hits([e.system or "" for e in examples])


def fit_elicitation(examples: list[Example]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per type: n-gram weights (N_BUCKETS x T), pattern weights (P x T), intercepts (T)."""
    x = sp.hstack([text_matrix(examples), sp.csr_matrix(pattern_matrix(examples).astype(np.float32))], format="csr")
    coefs, intercepts = [], []
    for kind in ELICITATION_TYPES:
        keep = np.array([kind not in e.unknown for e in examples])
        y = np.array([kind in e.types for e in examples])[keep]
        model = LogisticRegression(
            C=ELICITATION_C, class_weight="balanced", solver="liblinear", max_iter=2000, random_state=SEED
        )
        model.fit(x[keep], y)
        coefs.append(model.coef_[0])
        intercepts.append(model.intercept_[0])
    coef = np.array(coefs, dtype=np.float32).T
    return coef[:N_BUCKETS], coef[N_BUCKETS:], np.array(intercepts, dtype=np.float32)


def fit_capability(examples: list[Example]) -> tuple[np.ndarray, np.ndarray]:
    x = text_matrix(examples)
    y = np.array([CAPABILITIES.index(e.capability) for e in examples])
    model = LogisticRegression(C=CAPABILITY_C, class_weight="balanced", max_iter=3000, random_state=SEED)
    model.fit(x, y)
    coef = np.zeros((N_BUCKETS, len(CAPABILITIES)), dtype=np.float32)
    intercepts = np.zeros(len(CAPABILITIES), dtype=np.float32)
    coef[:, model.classes_] = model.coef_.T
    intercepts[model.classes_] = model.intercept_
    # Classes absent from training (none today) can never win.
    intercepts[np.setdiff1d(np.arange(len(CAPABILITIES)), model.classes_)] = -1e4
    return coef, intercepts


def fit(elicitation: list[Example], capability: list[Example]) -> TextModel:
    eli_w, eli_p, eli_b = fit_elicitation(elicitation)
    cap_w, cap_b = fit_capability(capability)
    return TextModel(
        heads={ELICITATION_HEAD: ELICITATION_TYPES, CAPABILITY_HEAD: CAPABILITIES},
        weights=np.hstack([eli_w, cap_w]).astype(np.float32),
        intercepts=np.concatenate([eli_b, cap_b]).astype(np.float32),
        extras={
            "anchors": np.array(ANCHOR_WORDS, dtype=np.str_),
            "elicitation.pattern_codes": np.array(PATTERN_CODES, dtype=np.str_),
            "elicitation.pattern_weights": eli_p.astype(np.float32),
        },
    )


# ---------------------------------------------------------------------------------------------
# evaluation (through the public API, exactly as callers see it)


def precision_recall(examples: list[Example], probs: dict[str, np.ndarray]) -> list[str]:
    """Markdown table: per type, precision and recall at 0.5 and the false-positive rate on negatives."""
    lines = ["| type | positives | negatives | precision | recall | false-positive rate |", "|---|---:|---:|---:|---:|---:|"]
    for kind in ELICITATION_TYPES:
        keep = np.array([kind not in e.unknown for e in examples])
        truth = np.array([kind in e.types for e in examples])[keep]
        pred = probs[kind][keep] >= 0.5
        tp, fp, fn = int((pred & truth).sum()), int((pred & ~truth).sum()), int((~pred & truth).sum())
        negatives = int((~truth).sum())
        lines.append(
            f"| {kind} | {int(truth.sum())} | {negatives} | {tp / max(tp + fp, 1):.3f} | {tp / max(tp + fn, 1):.3f} "
            f"| {fp / max(negatives, 1):.4f} |"
        )
    return lines


def evaluate(model: TextModel, elicitation: list[Example], capability: list[Example]) -> str:
    from distillguard.signals import capability as capability_module
    from distillguard.signals import elicitation as elicitation_module
    from distillguard.signals.textmodel import TextScorer, compile_anchors

    scorer = TextScorer(model, compile_anchors(ANCHOR_WORDS))
    probs = elicitation_module.score_with(scorer, [e.prompt for e in elicitation], [e.system for e in elicitation])
    lines = ["Elicitation, all held-out examples (threshold 0.5):", "", *precision_recall(elicitation, probs)]
    final = np.array([e.source.startswith(FINAL_TEST) for e in elicitation])
    final_examples = [e for e, f in zip(elicitation, final, strict=True) if f]
    lines += ["", "Elicitation, final test file only:", ""]
    lines += precision_recall(final_examples, {k: v[final] for k, v in probs.items()})
    lines += ["", "Per source (share flagged as any type at 0.5; for positive sources, share flagged as their own type):", ""]
    lines += ["| source | n | flagged |", "|---|---:|---:|"]
    by_source: dict[str, list[int]] = {}
    for i, e in enumerate(elicitation):
        by_source.setdefault(e.source, []).append(i)
    for source, idx in sorted(by_source.items()):
        kinds = elicitation[idx[0]].types or frozenset(ELICITATION_TYPES)
        flagged = np.zeros(len(idx), dtype=bool)
        for kind in kinds:
            flagged |= probs[kind][idx] >= 0.5
        lines.append(f"| {source} | {len(idx)} | {flagged.mean():.3f} |")

    truth = np.array([CAPABILITIES.index(e.capability) for e in capability])
    prompts, systems = [e.prompt for e in capability], [e.system for e in capability]
    n_tools = np.array([e.n_tools for e in capability])
    no_images = np.zeros(len(capability), dtype=np.int64)
    with_tools = capability_module.classify_with(scorer, prompts, systems, n_tools, no_images)
    text_only = capability_module.classify_with(scorer, prompts, systems, np.zeros_like(n_tools), no_images)
    lines += ["", f"Capability: accuracy {np.mean(with_tools == truth):.3f} with the request's tools, "
              f"{np.mean(text_only == truth):.3f} from the text alone (n={len(capability)}).", ""]
    lines += ["| area | n | recall | precision | recall (text alone) |", "|---|---:|---:|---:|---:|"]
    for code, area in enumerate(CAPABILITIES):
        n = int((truth == code).sum())
        if not n:
            continue
        recall = np.mean(with_tools[truth == code] == code)
        precision = np.mean(truth[with_tools == code] == code) if (with_tools == code).any() else 0.0
        lines.append(f"| {area} | {n} | {recall:.3f} | {precision:.3f} | {np.mean(text_only[truth == code] == code):.3f} |")
    lines += ["", "| capability source | n | accuracy | accuracy (text alone) |", "|---|---:|---:|---:|"]
    by_source = {}
    for i, e in enumerate(capability):
        by_source.setdefault(e.source.split(":")[0], []).append(i)
    for source, idx in sorted(by_source.items()):
        lines.append(f"| {source} | {len(idx)} | {np.mean(with_tools[idx] == truth[idx]):.3f} | {np.mean(text_only[idx] == truth[idx]):.3f} |")
    return "\n".join(lines)


def describe(name: str, examples: Iterable[Example]) -> str:
    counts = Counter(sorted(e.types)[0] if e.types else (e.capability or "none") for e in examples)
    return f"{name}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of the prompt corpora")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder to write text_heads.npz to")
    parser.add_argument("--no-save", action="store_true", help="only report the held-out figures")
    args = parser.parse_args(argv)

    corpora = load_corpora(args.data)
    train_eli, train_cap = build_examples(corpora, "train")
    held_eli, held_cap = build_examples(corpora, "heldout")
    for name, examples in (("train elicitation", train_eli), ("held-out elicitation", held_eli),
                           ("train capability", train_cap), ("held-out capability", held_cap)):
        print(describe(name, examples))
    print()
    print(evaluate(fit(train_eli, train_cap), held_eli, held_cap))
    if not args.no_save:
        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / "text_heads.npz"
        save_model(fit(train_eli + held_eli, train_cap + held_cap), path)
        print(f"\nwrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
