"""The per-request paths of the text signals give exactly what the batch paths give.

A gateway request brings one or two texts never seen before; they are featurised one at a time,
scored without a sparse matrix, gated with sets and fingerprinted without per-band numpy loops.
Each of these must agree with the vectorised batch computation (the one training uses) on every
bit: the same buckets in the same order, the same float32 logits, the same hashes.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from distillguard.ingest import exchange_row, rows_to_batch
from distillguard.signals import textmodel
from distillguard.signals.elicitation import ANCHOR_WORDS, PATTERNS, pattern_hits, training_pattern_hits
from distillguard.signals.exchange import exchange_signal_rows, exchange_signals
from distillguard.signals.template import (
    LSH_BANDS,
    LSH_ROWS,
    MINHASH_PERMS,
    fingerprints,
    minhash_bands,
    skeleton,
)
from distillguard.signals.textmodel import (
    NO_ANCHORS,
    TextScorer,
    bound_text,
    compile_anchors,
    featurize,
    shipped_scorer,
)
from distillguard.sim import corpora

EDGE_TEXTS = [
    "",
    " ",
    "\n\t ",
    "a",
    "ab cd",
    "12345678901234567890 and 3.14159",
    "İstanbul ÇAĞ ΟΔΟΣ Σ ß ﬁ",  # lower() changes the length of some of these
    "中文字符测试 かなカナ 한국어",
    "a中b中c",
    "中",
    "e\u0301 combining, ＡＢＣ１２３ full-width",
    "emoji 🙂 between 🙂 words 🚀",
    '<think>hidden</think> [[A]] "quoted" <scratchpad>',
    "Rate the response on a scale of 1 to 10. Justify your steps!",
    "Justify" * 400,
    "word " * 3000,  # longer than the bounded head and tail
    "中文" * 2000 + " tail words at the end",
    "İ" * 2500,
    "x" * 2001,
]
# Only the text model reads these: MinHash, like any UTF-8 consumer, refuses lone surrogates.
SURROGATE_TEXTS = ["lone \ud800 surrogate \udfff", "\udfff"]


@pytest.fixture(scope="module")
def texts() -> list[str]:
    """Realistic prompts and system prompts from the simulator's corpora, and edge cases."""
    c = corpora.load()
    rng = random.Random(7)
    picked: list[str] = []
    picked += rng.sample(c.chat, 150)
    picked += rng.sample(c.math, 40)
    picked += [t.prompt for t in c.code[:30]]
    picked += [t.text for t in rng.sample(c.agentic, 40)]
    picked += [t.system for t in c.agentic[:200] if t.system][:10]
    picked += [s for s, _ in c.orca[:20]] + [u for _, u in c.orca[:20]]
    picked += [t.text for t in c.rubrics] + [t.text for t in c.generation]
    return picked + EDGE_TEXTS


ANCHOR_SETS = {
    "shipped": compile_anchors(ANCHOR_WORDS),
    "none": NO_ANCHORS,
    "some_lengths": compile_anchors(["abc", "justify", "<", "中", "0"]),
    "marks": compile_anchors(["[", "x"]),
}


@pytest.mark.parametrize("name", sorted(ANCHOR_SETS))
def test_one_text_features_match_the_sparse_rows(texts, name):
    texts = texts + SURROGATE_TEXTS
    anchors = ANCHOR_SETS[name]
    weights = shipped_scorer().model.weights
    matrix, hits = featurize(texts, anchors)
    for i, text in enumerate(texts):
        row = matrix[i]
        one = textmodel._text_features(bound_text(text), anchors)
        assert np.array_equal(one.buckets, row.indices), text[:60]
        assert np.all(row.data == one.value)
        assert np.array_equal(one.hits, hits[i])
        assert np.array_equal(textmodel._text_logits(one, weights), (row @ weights)[0])


@pytest.mark.parametrize("size", [1, 2, 8, 9, 40])
def test_scorer_gives_the_sparse_product_for_any_batch_size(texts, size):
    texts = texts + SURROGATE_TEXTS
    base = shipped_scorer()
    scorer = TextScorer(base.model, base.anchors)
    expected_features, expected_hits = featurize(texts, base.anchors)
    expected = expected_features @ base.model.weights
    for start in range(0, len(texts), size):
        batch = texts[start : start + size]
        for _ in range(2):  # fresh, then from the memo
            logits, hits = scorer.score(batch)
            assert logits.dtype == np.float32 and hits.dtype == bool
            assert np.array_equal(logits, expected[start : start + size])
            assert np.array_equal(hits, expected_hits[start : start + size])


def test_scorer_on_no_texts_and_on_repeats():
    base = shipped_scorer()
    scorer = TextScorer(base.model, base.anchors)
    logits, hits = scorer.score([])
    assert logits.shape == (0, base.model.weights.shape[1]) and hits.shape == (0, len(base.anchors.prefixes))
    logits, hits = scorer.score(["same text", "", "same text"])
    assert np.array_equal(logits[0], logits[2]) and not logits[1].any()
    assert np.array_equal(logits, featurize(["same text", "", "same text"], base.anchors)[0] @ base.model.weights)


def test_pattern_gating_with_sets_matches_the_matrix_gating(texts):
    anchors = ANCHOR_SETS["shipped"]
    _, anchor_hits = featurize(texts, anchors)
    batch = pattern_hits(texts, anchor_hits, anchors.prefixes)  # many texts: matrix gating
    assert batch.shape == (len(texts), len(PATTERNS)) and batch.any()
    for i, text in enumerate(texts):
        assert np.array_equal(pattern_hits([text], anchor_hits[i : i + 1], anchors.prefixes)[0], batch[i])
    pair = pattern_hits(texts[:2], anchor_hits[:2], anchors.prefixes)
    assert np.array_equal(pair, batch[:2])
    assert np.array_equal(training_pattern_hits(texts), batch)


def _reference_band_keys(skeletons: list[str]) -> np.ndarray:
    """Band keys computed row by row with the polynomial of the band hash, on Python integers."""
    import rensa

    from distillguard.signals.template import _MINHASH_SEED, _shingles

    mult, mask = 0x9E3779B97F4A7C15, (1 << 64) - 1
    out = np.zeros((len(skeletons), LSH_BANDS), dtype=np.uint64)
    for i, skel in enumerate(skeletons):
        mh = rensa.RMinHash(num_perm=MINHASH_PERMS, seed=_MINHASH_SEED)
        mh.update(_shingles(skel, skel.split(" ")))
        sig = mh.digest()
        for band in range(LSH_BANDS):
            key = 0
            for r in range(LSH_ROWS):
                key = (key * mult + sig[band * LSH_ROWS + r]) & mask
            out[i, band] = (key * mult + band) & mask
    return out.view(np.int64)


def test_band_keys_match_the_band_polynomial(texts):
    skeletons = [skeleton(t) for t in texts]
    assert np.array_equal(minhash_bands(skeletons), _reference_band_keys(skeletons))
    assert minhash_bands([]).shape == (0, LSH_BANDS)


def test_fingerprints_agree_fresh_memoised_and_batched(texts):
    unique = [f"{t} #fingerprint-test" for t in texts]
    singles = [fingerprints([t]) for t in unique]  # fresh, one at a time
    together = fingerprints(unique)  # all from the memo
    mixed = fingerprints([*unique[:5], "never seen before #fingerprint-test", *unique[5:10]])
    for k in range(4):
        assert np.array_equal(np.concatenate([s[k] for s in singles]), together[k])
        assert np.array_equal(mixed[k][:5], together[k][:5]) and np.array_equal(mixed[k][6:], together[k][5:10])
    assert np.array_equal(together[3], _reference_band_keys([skeleton(t) for t in unique]))
    empty = fingerprints([])
    assert [a.shape for a in empty] == [(0,), (0,), (0,), (0, LSH_BANDS)]


def _records(texts: list[str]) -> list[dict]:
    c = corpora.load()
    records = []
    for i, text in enumerate(texts):
        record = {
            "request_id": f"r{i}",
            "ts": 1772400000000 + i,
            "account_id": f"a{i % 7}",
            "model": "m1",
            "messages": [{"role": "user", "content": text}],
        }
        if i % 3 == 0:
            record["system"] = c.orca[i % len(c.orca)][0]
        if i % 5 == 0:
            record["tools"] = ["bash", "edit_file"]
        records.append(record)
    return records


def _comparable(signals: dict) -> dict:
    return {k: v for k, v in signals.items() if k != "ts"}


def test_exchange_rows_one_at_a_time_match_the_batch(texts):
    rows = [exchange_row(r) for r in _records(texts)]
    expected = [_comparable(s) for s in exchange_signals(rows_to_batch(rows)).to_pylist()]
    got_batch = [_comparable(s) for s in exchange_signal_rows(rows)]
    assert got_batch == expected
    for size in (1, 2):
        got = [_comparable(s) for start in range(0, len(rows), size) for s in exchange_signal_rows(rows[start : start + size])]
        for want, have in zip(expected, got, strict=True):
            assert have.keys() == want.keys()
            for key, value in want.items():
                if isinstance(value, float):
                    assert have[key] == pytest.approx(value, abs=1e-6), key
                else:
                    assert have[key] == value, key
