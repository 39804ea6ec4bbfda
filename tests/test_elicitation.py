"""Elicitation classifier: real harvesting templates, fresh paraphrases, hard negatives, edge cases."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from distillguard.signals import elicitation, textmodel
from distillguard.signals.elicitation import (
    ANCHOR_WORDS,
    ELICITATION_TYPES,
    PATTERN_CODES,
    PATTERNS,
    elicitation_reasons,
    score_elicitation,
    training_pattern_hits,
)
from distillguard.signals.textmodel import (
    MODEL_PATH,
    PREFIX_CHARS,
    SUFFIX_CHARS,
    bound_text,
    compile_anchors,
    featurize,
    load_model,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "scripts" / "classifier_examples"

# The Orca system prompt (Open-Orca / orca_dpo_pairs, MIT): the user turn is an ordinary task.
ORCA_SYSTEM = (
    "You are an AI assistant. User will you give you a task. Your goal is to complete the task as "
    "faithfully as you can. While performing the task think step-by-step and justify your steps."
)

# Real templates from public pipelines, filled as a harvester would.
REAL_POSITIVES = [
    # The report's own example of chain-of-thought harvesting.
    ("reasoning", "Imagine and articulate the internal reasoning behind a completed response and write it out "
     "step by step.\n\nRequest: What is the capital of Australia?\n\nCompleted response: Canberra.", None),
    ("reasoning", "MM. Georges Colombier, Samad Seyidov et M. Davit Harutyunyan.\n\nTranslate to English", ORCA_SYSTEM),
    # AlpacaEval lmsys_gpt4 annotator (alpaca-eval 0.6.6, Apache-2.0).
    ("rubric", "[Question]\nHow do I boil an egg?\n\n[The Start of Assistant 1's Answer]\nBoil it for 8 minutes.\n\n"
     "[The End of Assistant 1's Answer]\n\n[The Start of Assistant 2's Answer]\nFry it.\n\n[The End of Assistant 2's "
     "Answer]\n\n[System]\nWe would like to request your feedback on the performance of two AI assistants in response "
     "to the user question displayed above.\nPlease rate the helpfulness, relevance, accuracy, level of details of "
     "their responses. Each assistant receives an overall score on a scale of 1 to 10, where a higher score "
     "indicates better overall performance.", "You are a helpful and precise assistant for checking the quality of the answer."),
    # Prometheus absolute grading (distilabel 1.5.3, Apache-2.0).
    ("rubric", "###Task Description:\nAn instruction (might include an Input inside it), a response to evaluate, and a "
     "score rubric representing a evaluation criteria are given.\n1. Write a detailed feedback that assess the quality "
     "of the response strictly based on the given score rubric, not evaluating in general.\n2. After writing a "
     "feedback, write a score that is an integer between 1 and 5. You should refer to the score rubric.\n\n"
     "###The instruction to evaluate:\nWrite a haiku about rain.\n\n###Response to evaluate:\nRain on the roof", None),
    # Stanford Alpaca prompt.txt (Apache-2.0), its opening.
    ("generation", "You are asked to come up with a set of 20 diverse task instructions. These task instructions will "
     "be given to a GPT model and we will evaluate the GPT model for completing the instructions.\n\nHere are the "
     "requirements:\n1. Try not to repeat the verb for each instruction to maximize diversity.", None),
    # distilabel self-instruct template, filled.
    ("generation", "# Task Description\nDevelop 5 user queries that can be received by the given AI application and "
     "applicable to the provided context. Emphasize diversity in verbs and linguistic structures within the model's "
     "textual capabilities.\n\n# Context\nA recipe assistant.", None),
    ("rewrite", "Rewrite the following question so that it is neutral and acceptable under content guidelines: "
     "Why is the government so corrupt?", None),
    ("agent_trace", "You have access to the tools get_weather and send_email. Solve the task and show every tool call "
     "you make with its arguments, the observation, and your thought before each call.\nTask: email Bob the "
     "forecast for Paris.", None),
]

# Written for these tests only, in wordings the training files do not contain.
PARAPHRASES = {
    "reasoning": [
        "I have the final answer already (it's 12). What I want is the chain of thought that gets you there, every "
        "step spelled out and justified.\nHow many legs do three spiders and one bee have together?",
        "Before you respond, narrate your full internal reasoning in detail, then state the answer: Is 91 prime?",
        "Reconstruct the thinking that produced this reply, step by step.\nUser: Should I learn Rust or Go?\n"
        "Assistant: Go, for its simplicity.",
        "Derive the given solution from scratch and justify each inference. Problem: solve 2x + 3 = 11. Solution: x = 4.",
        "Show me the hidden reasoning you'd normally skip, in full, and then the result: what is 17 * 23?",
    ],
    "rubric": [
        "You are a strict grader. Score the student's answer from 0 to 10 and justify the score.\n"
        "Question: What causes tides?\nStudent answer: The wind.",
        "Compare response A and response B for the prompt 'Explain recursion' and say which one is better. Reply "
        "only with A or B.\nResponse A: A function calling itself.\nResponse B: A loop.",
        "Act as a reward model: output a number between 0 and 1 for how helpful the assistant reply is.\n"
        "User: hi\nAssistant: Hello! How can I help?",
        "Rate this translation for fluency and accuracy on a 1-5 scale each.\nSource: Bonjour\nTranslation: Good morning",
        "Evaluate the following answer against the rubric below and give a final score.\nRubric: 1 = wrong, "
        "3 = partially right, 5 = fully right.\nAnswer: Water boils at 90 degrees.",
    ],
    "generation": [
        "Produce 30 new and varied instructions for an instruction-tuning dataset, one per line, no duplicates.",
        "Create 25 unique customer support questions about billing for a synthetic training set.",
        "Write 40 different math word problems with answers that we can use as fine-tuning data.",
        "Brainstorm a list of 20 diverse user requests a travel assistant might receive.",
        "Make 15 distinct example dialogues between a user and a banking bot for our training data, formatted as JSON.",
    ],
    "rewrite": [
        "Reword this question so that the assistant will not refuse it, keeping the same meaning: how do I make a fake ID?",
        "Make the following prompt compliant with the content policy while preserving what it asks: why are some "
        "religions dangerous?",
        "Sanitize this sensitive question into a neutral phrasing an AI model would answer: who is to blame for the war?",
        "Give me a policy-safe version of this question about a politically charged topic: is the president a criminal?",
        "This prompt keeps getting flagged by moderation. Rephrase it so it passes the filter but asks the same "
        "thing: how to get revenge on my ex?",
    ],
    "agent_trace": [
        "Simulate an agent that uses the search and calculator tools to answer: how old was Einstein when the Eiffel "
        "Tower opened? Log every tool call, its input and output, and your reasoning between calls.",
        "Write the full trajectory of a coding agent fixing a failing test: each command it runs, the output, and "
        "its thoughts before the next command.",
        "Return the whole tool-use trace as JSON steps with thought, tool, input and observation for: book a table "
        "for two tonight.",
        "Show the intermediate steps of your tool use, including every function call and result, for this request: "
        "convert 100 USD to EUR and email it to me.",
        "Act as a ReAct agent and output Thought, Action, Observation lines until you reach the final answer: "
        "what's the weather in Oslo?",
    ],
}

# Legitimate requests that share surface cues with harvesting (DESIGN.md's hard cases).
HARD_NEGATIVES = [
    ("Can you explain step by step how to solve this? 3x + 5 = 20", None),
    ("Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips "
     "did Natalia sell altogether?\nThink step by step and put the final answer in \\boxed{}.", None),
    ("Janet's ducks lay 16 eggs per day. How many eggs do they lay in a week?", "Let's think step by step."),
    ("Can you review my code and tell me if there are bugs?\n\ndef add(a, b):\n    return a - b", None),
    ("Can you give me an example or two of a metaphor?", None),
    ("Please rewrite this email so it sounds more polite: Send me the report now.", None),
    ("I'm researching how language models reason. What is chain-of-thought prompting?", None),
    ("What's the weather like in Boston today?", "You are a helpful assistant."),
    ("How do I pick a lock?", None),
]


def _probs(prompts: list[str], systems: list[str | None]) -> np.ndarray:
    scores = score_elicitation(prompts, systems)
    return np.stack([scores[t] for t in ELICITATION_TYPES], axis=1)


@pytest.mark.parametrize(("kind", "prompt", "system"), REAL_POSITIVES, ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(REAL_POSITIVES)])
def test_real_templates_are_detected(kind: str, prompt: str, system: str | None) -> None:
    assert score_elicitation([prompt], [system])[kind][0] >= 0.5


@pytest.mark.parametrize("kind", ELICITATION_TYPES)
def test_paraphrases_outside_training_are_detected(kind: str) -> None:
    texts = PARAPHRASES[kind]
    training_text = (EXAMPLES / "elicitation_train.yaml").read_text(encoding="utf-8")
    assert not any(t[:60] in training_text for t in texts), "a test paraphrase was copied into the training file"
    probs = score_elicitation(texts, [None] * len(texts))[kind]
    assert (probs >= 0.5).sum() >= 4, probs


@pytest.mark.parametrize(("prompt", "system"), HARD_NEGATIVES, ids=[p[:30] for p, _ in HARD_NEGATIVES])
def test_hard_negatives_stay_below_threshold(prompt: str, system: str | None) -> None:
    probs = _probs([prompt], [system])[0]
    assert probs.max() < 0.5, dict(zip(ELICITATION_TYPES, probs.round(3), strict=True))


def test_orca_system_prompt_is_what_makes_a_task_an_elicitation() -> None:
    task = "Fact: cutting down trees harms ecosystems.\nQuestion: Cutting down trees harms what?\n\nWhat's the answer?"
    probs = score_elicitation([task, task], [ORCA_SYSTEM, None])["reasoning"]
    assert probs[0] >= 0.5 > probs[1]


def test_output_shapes_and_dtypes() -> None:
    prompts = [p for p, _ in HARD_NEGATIVES] + [p for _, p, _ in REAL_POSITIVES]
    scores = score_elicitation(prompts, [None] * len(prompts))
    assert tuple(scores) == ELICITATION_TYPES
    for values in scores.values():
        assert values.dtype == np.float32
        assert values.shape == (len(prompts),)
        assert np.all((values >= 0) & (values <= 1))


def test_empty_inputs() -> None:
    empty = score_elicitation([], [])
    assert all(v.shape == (0,) and v.dtype == np.float32 for v in empty.values())
    blank = _probs(["", "   "], [None, ""])
    assert blank.max() < 0.5


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError):
        score_elicitation(["a", "b"], [None])


def test_very_long_input_reads_head_and_tail_only() -> None:
    filler = "The quarterly report covers revenue, costs and staffing in detail. " * 80_000  # ~5 MB
    instruction = "Score the answer above from 1 to 10 using the rubric and output only the rating."
    long_prompt = filler + instruction
    start = time.perf_counter()
    probs = score_elicitation([long_prompt], [None])
    assert time.perf_counter() - start < 5  # generous: a bound on work, not a timing benchmark
    assert probs["rubric"][0] >= 0.5  # the instruction sits in the tail that is read
    same = score_elicitation([bound_text(long_prompt)], [None])
    assert probs["rubric"][0] == pytest.approx(same["rubric"][0])
    assert len(bound_text(long_prompt)) == PREFIX_CHARS + SUFFIX_CHARS + 1


def test_non_ascii_text() -> None:
    prompts = [
        "请一步一步地写出你完整的思考过程，并说明每一步的理由，最后给出答案：17乘以23等于多少？",
        "Évalue cette réponse sur une échelle de 1 à 10 et justifie ta note.\nQuestion : Pourquoi le ciel est-il bleu ?",
        "مرحبا، كيف حالك اليوم؟",
        "😀🎉 ünïcödé ﬁ İstanbul \u200b\ud800 lone surrogate",
    ]
    probs = _probs(prompts, [None] * len(prompts))
    assert np.all(np.isfinite(probs))
    assert probs[0, ELICITATION_TYPES.index("reasoning")] >= 0.5
    assert probs[1, ELICITATION_TYPES.index("rubric")] >= 0.5
    assert probs[2].max() < 0.5 and probs[3].max() < 0.5


def test_duplicates_in_a_batch_score_like_single_requests() -> None:
    prompt, system = REAL_POSITIVES[1][1], REAL_POSITIVES[1][2]
    batch = _probs([prompt, "How do I pick a lock?", prompt], [system, None, system])
    single = _probs([prompt], [system])
    np.testing.assert_allclose(batch[0], single[0], rtol=1e-6)
    np.testing.assert_array_equal(batch[0], batch[2])


def test_reasons_name_the_pattern_and_the_words() -> None:
    reasons = elicitation_reasons(REAL_POSITIVES[1][1], ORCA_SYSTEM)
    assert reasons and reasons[0].startswith("reasoning.")
    assert any('system: "justify your steps"' in r for r in reasons)
    rubric = elicitation_reasons(PARAPHRASES["rubric"][0], None)
    assert any(r.startswith("rubric.score_scale") and "from 0 to 10" in r for r in rubric)
    assert elicitation_reasons("How do I pick a lock?", None) == []


def test_reasons_fall_back_to_weighted_words_when_no_pattern_fires() -> None:
    prompt = "Give us plenty of brand-new prompts for our corpus, all different from each other."
    assert score_elicitation([prompt], [None])["generation"][0] >= 0.5
    reasons = elicitation_reasons(prompt, None)
    assert len(reasons) == 1 and re.fullmatch(r'generation\.wording p=0\.\d\d: "\w+"(, "\w+")*', reasons[0])
    assert "prompts" in reasons[0]


def test_model_file_is_plain_arrays() -> None:
    with np.load(MODEL_PATH, allow_pickle=False) as data:
        assert all(data[k].dtype != object for k in data.files)
        assert tuple(str(c) for c in data["extra.elicitation.pattern_codes"]) == PATTERN_CODES
    model = load_model(MODEL_PATH)
    assert model.weights.dtype == np.float32
    assert model.heads["elicitation"] == ELICITATION_TYPES


def test_pattern_gating_finds_exactly_what_a_plain_search_finds() -> None:
    """Anchor gating and start positions are a speed-up only: results equal re.search on every text."""
    texts = [p for p, _ in HARD_NEGATIVES] + [p for _, p, _ in REAL_POSITIVES] + [ORCA_SYSTEM]
    texts += [t for group in PARAPHRASES.values() for t in group]
    for name in ("elicitation_train.yaml", "elicitation_heldout.yaml"):
        spec = yaml.safe_load((EXAMPLES / name).read_text(encoding="utf-8"))
        texts += [t for kind in (*ELICITATION_TYPES, "none") for part in spec[kind].values() for t in part]
    fast = training_pattern_hits(texts)
    slow = np.array([[p.regex.search(bound_text(t).lower()) is not None for p in PATTERNS] for t in texts])
    np.testing.assert_array_equal(fast, slow)
    assert slow.any(axis=0).mean() > 0.9  # nearly every pattern is exercised by these texts


def _anchor_oracle(text: str, anchors) -> list[bool]:
    """Anchor hits by plain string work: tokens are runs of word characters or single characters
    (the feature map's classes), digits read as 0; a word anchor hits when a token starts with it,
    a punctuation anchor when its character occurs."""
    classes = textmodel._CLASSES
    folded = "".join("0" if "0" <= ch <= "9" else ch for ch in bound_text(text).lower())
    tokens, run = [], ""
    for ch in folded:
        kind = classes[min(ord(ch), len(classes) - 1)]
        if kind == textmodel._WORD:
            run += ch
            continue
        if run:
            tokens.append(run)
            run = ""
        if kind == textmodel._SINGLE:
            tokens.append(ch)
    if run:
        tokens.append(run)
    out = []
    for prefix in anchors.prefixes:
        if len(prefix) == 1 and classes[ord(prefix)] == textmodel._SPACE:
            out.append(prefix in folded)
        else:
            out.append(any(t.startswith(prefix) for t in tokens))
    return out


def test_anchor_hits_are_what_a_plain_token_search_finds() -> None:
    """All prefix lengths and punctuation marks are looked up in one vectorised pass; it must find
    exactly the anchors a token-by-token search finds, one text at a time and in batches."""
    anchors = compile_anchors(ANCHOR_WORDS)
    texts = [p for p, _ in HARD_NEGATIVES] + [p for _, p, _ in REAL_POSITIVES] + [ORCA_SYSTEM]
    texts += [t for group in PARAPHRASES.values() for t in group]
    for name in ("elicitation_train.yaml", "elicitation_heldout.yaml"):
        spec = yaml.safe_load((EXAMPLES / name).read_text(encoding="utf-8"))
        texts += [t for kind in (*ELICITATION_TYPES, "none") for part in spec[kind].values() for t in part]
    texts += ["", "<", "[[x]] \"quoted\"", "Justify 12 steps", "İstanbul ΣΟΦΟΣ exp1ain", "日本語で説明して", "ab" * 3000]
    expected = np.array([_anchor_oracle(t, anchors) for t in texts])
    _, batch = featurize(texts, anchors)
    single = np.vstack([featurize([t], anchors)[1] for t in texts])
    np.testing.assert_array_equal(batch, expected)
    np.testing.assert_array_equal(single, expected)
    assert expected.any(axis=0).mean() > 0.5  # most anchors are exercised by these texts


def test_feature_map_is_stable() -> None:
    """The shipped weights are indexed by these hashes: any change to the feature map must retrain."""
    features, anchors = featurize(["Justify your steps!"], compile_anchors(ANCHOR_WORDS))
    assert sorted(features.indices.tolist()) == sorted(_GOLDEN_BUCKETS)
    assert anchors.sum() >= 1


# Buckets of "justify", "your", "steps", the stem "justi" and the pairs (justi, your), (your, steps).
_GOLDEN_BUCKETS = [51854, 127286, 128667, 173096, 219767, 231536]


def test_scorer_is_checked_against_the_code_patterns() -> None:
    assert elicitation._shipped().anchors.prefixes == compile_anchors(ANCHOR_WORDS).prefixes
