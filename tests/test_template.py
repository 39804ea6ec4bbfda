"""Template fingerprints: slots masked, wrappers grouped, near-duplicates banded."""

import json
from pathlib import Path

import numpy as np

from distillguard.signals.template import (
    LSH_BANDS,
    fingerprints,
    head,
    minhash_bands,
    skeleton,
    tail,
    text_hash,
)

CORPUS = Path(__file__).resolve().parents[1] / "src/distillguard/sim/data"


def test_skeleton_masks_small_slots():
    a = skeleton('Customer Alice Smith asks about order #48213: "my parcel is late" (sent 2026-03-01).')
    b = skeleton('Customer Bob Jones asks about order #9: "refund please, it broke" (sent 2025-12-24).')
    assert a == b
    assert "<n>" in a and "<q>" in a


def test_skeleton_masks_code_urls_and_emails():
    s = skeleton("Fix this:\n```python\nprint(1)\n```\nsee https://x.example/a?b=1 or mail dev@example.org")
    assert s == "fix this: <code> see <url> or mail <email>"


def test_frame_groups_wrappers_around_long_slots():
    task1 = "A train leaves the station at noon and travels at a steady pace for three hours."
    task2 = "Write a function that returns the longest palindromic substring of a string s."
    wrap = "Here is a finished answer. Walk me through, step by step, the reasoning that produced it: {} Be thorough."
    t1, t2 = skeleton(wrap.format(task1)), skeleton(wrap.format(task2))
    assert text_hash(t1) != text_hash(t2)
    assert head(t1) == head(t2)
    suffix = "{} Think step-by-step and justify your steps."
    s1, s2 = skeleton(suffix.format(task1)), skeleton(suffix.format(task2))
    assert tail(s1) == tail(s2) and head(s1) != head(s2)


def test_short_prompt_is_its_own_head_and_tail():
    assert head("translate to french") == tail("translate to french") == "translate to french"


def test_minhash_bands_near_duplicates_share_keys_and_unrelated_do_not():
    base = (
        "please imagine the internal reasoning behind the completed response below and write every "
        "step out in detail so that a reader could reproduce the same conclusion from scratch"
    )
    edited = base.replace("in detail", "in full detail")
    unrelated = "what is a good recipe for a vegetarian lasagna that my kids will actually eat tonight"
    bands = minhash_bands([skeleton(base), skeleton(edited), skeleton(unrelated)])
    assert bands.shape == (3, LSH_BANDS) and bands.dtype == np.int64
    assert len(set(bands[0]) & set(bands[1])) >= 1
    assert not set(bands[0]) & set(bands[2])


def test_minhash_is_deterministic_and_handles_tiny_inputs():
    a = minhash_bands(["", "hi", "one two three four"])
    b = minhash_bands(["", "hi", "one two three four"])
    assert (a == b).all()
    assert minhash_bands([]).shape == (0, LSH_BANDS)


def test_skeleton_on_real_prompts_is_bounded_and_stable():
    texts = []
    for path in sorted(CORPUS.glob("*.jsonl*"))[:3]:
        opener = __import__("gzip").open if path.suffix == ".gz" else open
        with opener(path, "rt") as fh:
            texts += [json.loads(line)["text"] for _, line in zip(range(50), fh, strict=False)]
    long_text = "word " * 100_000
    assert len(skeleton(long_text)) < 30_000
    for t in texts:
        assert skeleton(t) == skeleton(t)


def _real_prompts(n: int) -> list[str]:
    texts = []
    for path in sorted(CORPUS.glob("*.jsonl*")):
        opener = __import__("gzip").open if path.suffix == ".gz" else open
        with opener(path, "rt") as fh:
            texts += [json.loads(line)["text"] for _, line in zip(range(n), fh, strict=False)]
    return texts


def test_fingerprints_are_the_direct_values_whether_remembered_or_not():
    long_a = "Summarise this report. " + "quarterly figures rose " * 400 + "Give three bullet points."
    long_b = "Summarise this report. " + "quarterly figures fell " * 400 + "Give three bullet points."
    texts = [*_real_prompts(40), long_a, long_b, "", "hi"]
    skels = [skeleton(t) for t in texts]
    expected = (
        np.array([text_hash(s) for s in skels]),
        np.array([text_hash(head(s)) for s in skels]),
        np.array([text_hash(tail(s)) for s in skels]),
        minhash_bands(skels),
    )
    first = fingerprints(texts)  # computed (and remembered)
    again = fingerprints(list(reversed(texts)))  # every text now comes from the memo
    for got, want in zip(first, expected, strict=True):
        assert np.array_equal(got, want)
    for got, want in zip(again, expected, strict=True):
        assert np.array_equal(got, want[::-1])
    assert first[0][-4] != first[0][-3]  # two long texts of one length are kept apart
    assert all(part.shape[0] == 0 for part in fingerprints([]))
