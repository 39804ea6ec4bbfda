"""Capability classifier: each area on fresh examples, the tool and image rules, edge cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from distillguard.signals.capability import CAPABILITIES, classify_capability

EXAMPLES = Path(__file__).resolve().parent.parent / "scripts" / "classifier_examples"

# Written for these tests only; none appears in the training files.
AREAS = {
    "coding": [
        "My Python script raises KeyError when reading a dict from JSON, how do I fix it?",
        "Write a JavaScript function that debounces another function.",
        "Why does my Go program deadlock when two goroutines write to the same unbuffered channel?",
    ],
    "math": [
        "What is the integral of x^2 from 0 to 3?",
        "A shop sells pens at $3 each. Tom buys 7 pens and pays with a $50 bill. How much change does he get?",
        "Solve the equation 5x - 7 = 18.",
    ],
    "agentic": [
        "Book a flight from Paris to Berlin for next Friday and add it to my calendar.",
        "Send an email to my team saying the meeting moved to 3pm.",
        "Open the shared drive, find last month's invoices and move them to the archive folder.",
    ],
    "data_analysis": [
        "Here is our monthly churn data: Jan 5%, Feb 6%, Mar 8%. What trend do you see and what could explain it?",
        "Which statistical test should I use to compare the average order value between two customer segments?",
        "Group these sales by region and tell me which region's revenue is declining: north 10, 9, 7; south 5, 6, 8.",
    ],
    "vision": [
        "What objects can you see in this photo?",
        "Read the handwritten text in the attached image.",
        "Describe the chart in this screenshot and tell me what it shows.",
    ],
    "writing": [
        "Write a short poem about the ocean at night.",
        "Draft a polite email declining a job offer.",
        "Write a two-paragraph bedtime story about a sleepy owl.",
    ],
    "reasoning": [
        "All cats are mammals and some mammals can swim. Does it follow that some cats can swim? Explain.",
        "Which number comes next: 3, 6, 12, 24, ?",
        "If Mary is taller than Sue and Sue is taller than Ann, who is the shortest?",
    ],
    "chat": [
        "What's your favourite season and why?",
        "How are you doing today?",
        "Can you recommend a good movie for a rainy evening?",
    ],
}


def _classify(prompts: list[str], n_tools: int = 0, n_images: int = 0, system: str | None = None) -> list[str]:
    n = len(prompts)
    codes = classify_capability(prompts, [system] * n, np.full(n, n_tools), np.full(n, n_images))
    return [CAPABILITIES[c] for c in codes]


def test_fresh_examples_are_not_in_training() -> None:
    training = (EXAMPLES / "capability_train.yaml").read_text(encoding="utf-8")
    assert not any(text[:50] in training for texts in AREAS.values() for text in texts)


@pytest.mark.parametrize("area", CAPABILITIES)
def test_each_area_on_fresh_examples(area: str) -> None:
    predicted = _classify(AREAS[area])
    assert predicted.count(area) >= 2, predicted


def test_overall_accuracy_on_fresh_examples() -> None:
    prompts = [t for texts in AREAS.values() for t in texts]
    truth = [a for a, texts in AREAS.items() for _ in texts]
    predicted = _classify(prompts)
    assert np.mean([p == t for p, t in zip(predicted, truth, strict=True)]) >= 0.85


def test_images_make_a_request_vision() -> None:
    assert _classify(["Write a short poem about the ocean at night.", "Solve 5x - 7 = 18."], n_images=1) == ["vision", "vision"]


def test_tools_push_towards_agentic() -> None:
    query = "Calculate the area of a triangle with base 10 and height 5."  # a BFCL-style query
    assert _classify([query], n_tools=0) == ["math"]
    assert _classify([query], n_tools=3) == ["agentic"]


def test_system_prompt_counts() -> None:
    analyst = "You are a senior data analyst. Turn raw tables into quantified insights and recommend next steps."
    assert _classify(["Here are last quarter's numbers, what stands out?"], system=analyst) == ["data_analysis"]


def test_output_shape_and_dtype() -> None:
    prompts = [t for texts in AREAS.values() for t in texts]
    codes = classify_capability(prompts, [None] * len(prompts), np.zeros(len(prompts)), np.zeros(len(prompts)))
    assert codes.dtype == np.int8
    assert codes.shape == (len(prompts),)
    assert codes.min() >= 0 and codes.max() < len(CAPABILITIES)


def test_empty_and_blank_inputs() -> None:
    empty = classify_capability([], [], np.zeros(0), np.zeros(0))
    assert empty.shape == (0,) and empty.dtype == np.int8
    blank = classify_capability(["", " "], [None, ""], np.zeros(2), np.zeros(2))
    assert blank.shape == (2,)


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError):
        classify_capability(["a", "b"], [None, None], np.zeros(1), np.zeros(2))
    with pytest.raises(ValueError):
        classify_capability(["a", "b"], [None], np.zeros(2), np.zeros(2))


def test_very_long_and_non_ascii_inputs() -> None:
    long_code = "def f(x):\n    return x * 2\n" * 200_000 + "\nWhy does this Python function return None?"
    prompts = [long_code, "请帮我写一个Python函数，计算列表的平均值。", "这张照片里有什么动物？", "😀 ünïcödé \ud800"]
    predicted = _classify(prompts)
    assert predicted[0] == "coding"
    assert predicted[1] == "coding"
    assert len(predicted) == 4
