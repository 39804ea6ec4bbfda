"""Capability area of a request: which skill of the model it exercises.

Distillation campaigns concentrate on the capabilities most valuable for training (agentic coding,
tool use, reasoning, vision); an account whose traffic sits almost entirely in one area is one of the
signals the behaviour stage aggregates.

The area is the arg-max of a multinomial logistic model over the hashed word n-grams of the user text
plus the system prompt (the same features as the elicitation classifier, computed once for both), with
two facts the text cannot carry:
- a request that offers tools gets ``TOOL_LOGIT_BONUS`` added to the agentic logit: tools are the
  defining trait of agentic traffic, but a request with a strongly worded other area can still win;
- a request with images is ``vision``, whatever its text.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from distillguard.signals.textmodel import TextScorer, request_texts, shipped_scorer

CAPABILITIES: tuple[str, ...] = ("coding", "math", "agentic", "data_analysis", "vision", "writing", "reasoning", "chat")
HEAD = "capability"
AGENTIC = CAPABILITIES.index("agentic")
VISION = CAPABILITIES.index("vision")
# log(20): offering tools multiplies the odds of "agentic" against every other area by 20.
TOOL_LOGIT_BONUS = 3.0


def classify_with(
    scorer: TextScorer,
    prompts: Sequence[str],
    systems: Sequence[str | None],
    n_tools: np.ndarray,
    n_images: np.ndarray,
) -> np.ndarray:
    """``classify_capability`` with an explicit scorer (used by training to evaluate a fresh model)."""
    texts, prompt_row, system_row = request_texts(prompts, systems)
    return _codes(scorer, texts, prompt_row, system_row, n_tools, n_images)


def _codes(
    scorer: TextScorer,
    texts: list[str],
    prompt_row: np.ndarray,
    system_row: np.ndarray,
    n_tools: np.ndarray,
    n_images: np.ndarray,
) -> np.ndarray:
    tools = np.asarray(n_tools)
    images = np.asarray(n_images)
    if not (len(tools) == len(images) == len(prompt_row) == len(system_row)):
        raise ValueError(f"{len(prompt_row)} requests ({len(system_row)} system rows) but {len(tools)} tool counts "
                         f"and {len(images)} image counts")
    cols = scorer.model.columns(HEAD)
    text_logits = scorer.score(texts)[0][:, cols]
    logits = text_logits[prompt_row] + text_logits[system_row] + scorer.model.intercepts[cols]
    logits[tools > 0, AGENTIC] += TOOL_LOGIT_BONUS
    codes = np.argmax(logits, axis=1).astype(np.int8)
    codes[images > 0] = VISION
    return codes


def classify_capability(
    prompts: Sequence[str], systems: Sequence[str | None], n_tools: np.ndarray, n_images: np.ndarray
) -> np.ndarray:
    """Capability area of each request, as int8 codes indexing ``CAPABILITIES``.

    ``prompts[i]`` is the last user message of request i, ``systems[i]`` its system prompt (or None),
    ``n_tools[i]`` the number of tools offered and ``n_images[i]`` the number of images attached.
    """
    return classify_with(shipped_scorer(), prompts, systems, n_tools, n_images)


def classify_request_texts(
    texts: list[str], prompt_row: np.ndarray, system_row: np.ndarray, n_tools: np.ndarray, n_images: np.ndarray
) -> np.ndarray:
    """``classify_capability`` of requests already reduced by ``textmodel.request_texts``, so that a
    caller that also scores elicitation splits and scores the texts once for both."""
    return _codes(shipped_scorer(), texts, prompt_row, system_row, n_tools, n_images)
