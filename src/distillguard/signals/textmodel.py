"""Hashed word n-gram features and the linear heads the exchange text classifiers share.

The per-exchange classifiers (elicitation type, capability area) are linear models over one
stateless feature map, so that:
- the features need no vocabulary: every token is hashed into ``N_BUCKETS`` buckets, and the same
  function produces the training matrix and the run-time features, so the two cannot drift apart;
- one featurisation of a text serves every head (all heads' weights sit side by side in one matrix),
  and the per-text result is a short row of logits that is cheap to memoise: system prompts and
  template skeletons repeat across millions of requests;
- a text's contribution is additive, so a request's logits are the sum of its user text's and its
  system prompt's rows, each computed (and cached) once.

Features of one text (lower-cased, only ``PREFIX_CHARS`` + ``SUFFIX_CHARS`` characters of it):
- tokens are runs of letters/digits (digits folded to ``0``, so "20 examples" and "50 examples" are
  the same feature) and single CJK / kana characters;
- each token gives its own hash, a long word also its ``STEM_CHARS``-character prefix (a cheap
  stemmer: "justify", "justifying" and "justification" share "justi"), and each pair of adjacent
  tokens the hash of their two prefixes;
- punctuation is not a feature: how a client formats a prompt (JSON, markdown, code) varies without
  bearing on what it asks for, and a linear model readily over-fits to it; the structural cues that
  do matter ("[[A]]", "<think>") belong to the elicitation pattern layer;
- a feature's value is its count divided by the square root of the text's feature count, so long
  texts do not dominate by length.
All of it is vectorised over a batch with numpy (prefix-sum polynomial hashing), which is what makes
tens of thousands of texts per second possible on one core.

Model files are ``.npz`` archives read with ``allow_pickle=False``: numbers and strings only.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import numpy as np
import scipy.sparse as sp

BUCKET_BITS = 18
N_BUCKETS = 1 << BUCKET_BITS
PREFIX_CHARS = 1500
SUFFIX_CHARS = 500
STEM_CHARS = 5
FORMAT_VERSION = 1
MODEL_PATH = Path(__file__).with_name("models") / "text_heads.npz"
# Distinct texts remembered across calls (recurring system prompts and template skeletons).
MEMO_ITEMS = 4096

# Texts featurised per numpy pass: big enough to amortise call overhead, small enough that the
# per-character arrays stay in cache.
_CHUNK_DOCS = 256
_MAX_CODEPOINT = 0x10FFFF

_Q = np.uint64(0x100000001B3)  # odd multiplier of the polynomial hash, invertible mod 2**64
_Q_INV = np.uint64(pow(0x100000001B3, -1, 1 << 64))
_MIX = np.uint64(0xFF51AFD7ED558CCD)
_PAIR = np.uint64(0x9E3779B97F4A7C15)
_LENGTH_MULT = np.uint64(0xC2B2AE3D27D4EB4F)  # odd: multiplying by it is a bijection of uint64
_SHIFT33 = np.uint64(33)
_BUCKET_SHIFT = np.uint64(64 - BUCKET_BITS)
# Salts keep the three feature families (token, stem, pair) in different parts of the hash space.
_SALT_TOKEN, _SALT_STEM, _SALT_PAIR = (np.uint64(s) for s in (0x51ED270B, 0x2545F491, 0x9E6C63D0))

_SPACE, _WORD, _SINGLE = 0, 1, 2

V = TypeVar("V")


def _token_classes() -> np.ndarray:
    """Class of every code point: space/ignored, word character, or a token on its own."""
    cls = np.full(_MAX_CODEPOINT + 1, _WORD, dtype=np.uint8)
    cls[:0x80] = _SPACE  # ASCII spaces, controls and punctuation
    for lo, hi in ((ord("0"), ord("9")), (ord("a"), ord("z")), (ord("A"), ord("Z"))):
        cls[lo : hi + 1] = _WORD
    cls[0x80:0xC0] = _SPACE  # Latin-1 punctuation and symbols («, ©, ¿ ...)
    cls[0xD7] = cls[0xF7] = _SPACE  # × ÷
    cls[0x2000:0x2BFF] = _SPACE  # general punctuation, arrows, maths operators, box drawing
    cls[0x3000:0x3040] = _SPACE  # CJK punctuation
    cls[0xFF00:0xFF10] = cls[0xFF1A:0xFF21] = cls[0xFF3B:0xFF41] = cls[0xFF5B:0xFF66] = _SPACE  # full-width punctuation
    # Scripts written without spaces: every character is a token, so pairs act as character bigrams.
    for lo, hi in ((0x2E80, 0x2FFF), (0x3040, 0x30FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF)):
        cls[lo : hi + 1] = _SINGLE
    cls[0xD800:0xE000] = _SPACE  # lone surrogates
    return cls


_CLASSES = _token_classes()


def bound_text(text: str) -> str:
    """The part of a text the classifiers read: its head and its tail.

    Instructions sit at the start or the end of a prompt; the middle of a long one is usually the
    pasted material. Bounding keeps the cost per text constant however long the input is.
    """
    if len(text) <= PREFIX_CHARS + SUFFIX_CHARS + 1:  # +1: a bounded text is returned unchanged
        return text
    return text[:PREFIX_CHARS] + "\n" + text[-SUFFIX_CHARS:]


def _mix_to_bucket(h: np.ndarray, salt: np.uint64) -> np.ndarray:
    """Finalise 64-bit polynomial hashes into bucket indices (murmur3-style avalanche)."""
    x = h ^ salt
    x ^= x >> _SHIFT33
    x *= _MIX
    x ^= x >> _SHIFT33
    return (x >> _BUCKET_SHIFT).astype(np.int32)


@dataclass(frozen=True)
class Anchors:
    """Word prefixes (and punctuation marks) whose presence in a text is reported with its features.

    A pattern layer built on regular expressions is only worth running on a text that contains one
    of the words every match of the pattern must contain. Checking that per text in Python costs more
    than the features themselves; checking it on the token hashes computed anyway costs nothing.
    A token matches a prefix when it starts with it; prefixes are at most ``STEM_CHARS`` long. A
    single punctuation character (e.g. "<") matches wherever it occurs.
    """

    prefixes: tuple[str, ...]
    # The distinct lengths of the word prefixes, and one sorted table of all of them: each prefix's
    # hash keyed with its length (`_length_key`), with its column number in the same order.
    lengths: np.ndarray
    keys: np.ndarray
    key_cols: np.ndarray
    # Column of each punctuation anchor by code point (-1 elsewhere); its last entry stands for every
    # code point beyond the table.
    mark_cols: np.ndarray


def _poly_hash(text: str) -> int:
    """The polynomial hash ``_chunk_features`` gives a token, computed on a plain string."""
    h, q = 0, 1
    for ch in text:
        c = 0x30 if "0" <= ch <= "9" else ord(ch)
        h = (h + c * q) % (1 << 64)
        q = (q * int(_Q)) % (1 << 64)
    return h


def _length_key(hashes: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """A prefix hash keyed with its length, to look all lengths up in one sorted table. For a fixed
    length this is a bijection of the hashes: two prefixes of one length share a key only if they
    shared a hash."""
    return hashes * _LENGTH_MULT + lengths.astype(np.uint64)


def compile_anchors(words: Sequence[str]) -> Anchors:
    """Anchors for ``words`` (each cut to its first ``STEM_CHARS`` characters and deduplicated)."""
    prefixes = tuple(sorted({w.lower()[:STEM_CHARS] for w in words}))
    marks: list[tuple[int, int]] = []
    token_cols: list[int] = []
    for i, p in enumerate(prefixes):
        classes = {int(_CLASSES[ord(ch)]) for ch in p}
        if len(p) == 1 and classes == {_SPACE} and not p.isspace():
            marks.append((ord(p), i))
        elif classes == {_WORD} or (len(p) == 1 and classes == {_SINGLE}):
            token_cols.append(i)
        else:
            raise ValueError(f"anchor {p!r} is neither the start of a single token nor a punctuation mark")
    lengths = np.array([len(prefixes[i]) for i in token_cols], dtype=np.int64)
    hashes = np.array([_poly_hash(prefixes[i]) for i in token_cols], dtype=np.uint64)
    keys = _length_key(hashes, lengths)
    order = np.argsort(keys)
    mark_cols = np.full(max((code for code, _ in marks), default=-1) + 2, -1, dtype=np.int64)
    for code, col in marks:
        mark_cols[code] = col
    return Anchors(prefixes, np.unique(lengths), keys[order], np.array(token_cols, dtype=np.int64)[order], mark_cols)


NO_ANCHORS = compile_anchors(())


def _anchor_hits(
    anchors: Anchors,
    codes: np.ndarray,
    doc_ends: np.ndarray,
    prefix: np.ndarray,
    q_inv: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    token_doc: np.ndarray,
) -> np.ndarray:
    """(n_docs, n_prefixes) bool: which anchors occur in each text.

    Every (token, prefix length) pair is looked up at once in the one table of all prefixes, and
    every punctuation anchor in one pass over the characters: a fixed dozen numpy calls per batch,
    which is what a single request (the gateway's case) pays for."""
    hits = np.zeros((doc_ends.size, len(anchors.prefixes)), dtype=bool)
    if anchors.mark_cols.size > 1:
        cols = anchors.mark_cols[np.minimum(codes, anchors.mark_cols.size - 1)]
        at = np.flatnonzero(cols >= 0)
        hits[np.searchsorted(doc_ends, at, side="right"), cols[at]] = True
    if anchors.keys.size and starts.size:
        token, which = np.nonzero((ends - starts)[:, None] >= anchors.lengths)
        s = starts[token]
        length = anchors.lengths[which]
        key = _length_key((prefix[s + length] - prefix[s]) * q_inv[s], length)
        pos = np.minimum(np.searchsorted(anchors.keys, key), anchors.keys.size - 1)
        found = anchors.keys[pos] == key
        hits[token_doc[token[found]], anchors.key_cols[pos[found]]] = True
    return hits


def _chunk_features(docs: list[str], anchors: Anchors) -> tuple[sp.csr_matrix, np.ndarray]:
    """Hashed features and anchor hits of already-bounded texts, one row each (see the module docstring)."""
    n_docs = len(docs)
    # Lower-case each text on its own: lower() may change a text's length ("İ" -> "i̇").
    docs = [d.lower() for d in docs]
    joined = "\n".join(docs)
    codes = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    n_chars = codes.size
    if n_chars == 0:
        empty = sp.csr_matrix((n_docs, N_BUCKETS), dtype=np.float32)
        return empty, np.zeros((n_docs, len(anchors.prefixes)), dtype=bool)
    cls = _CLASSES[np.minimum(codes, _MAX_CODEPOINT)]
    word = cls == _WORD
    single = cls == _SINGLE
    prev_word = np.zeros(n_chars, dtype=bool)
    prev_word[1:] = word[:-1]
    next_word = np.zeros(n_chars, dtype=bool)
    next_word[:-1] = word[1:]
    starts = np.flatnonzero(single | (word & ~prev_word))
    ends = np.flatnonzero(single | (word & ~next_word)) + 1

    # Prefix sums of c_i * Q**i give any substring's hash in O(1): (P[e] - P[s]) * Q**-s.
    folded = np.where((codes >= 0x30) & (codes <= 0x39), np.uint32(0x30), codes).astype(np.uint64)
    q_pow = np.full(n_chars, _Q, dtype=np.uint64)
    q_pow[0] = 1
    np.cumprod(q_pow, out=q_pow)
    q_inv = np.full(n_chars, _Q_INV, dtype=np.uint64)
    q_inv[0] = 1
    np.cumprod(q_inv, out=q_inv)
    prefix = np.zeros(n_chars + 1, dtype=np.uint64)
    np.cumsum(folded * q_pow, out=prefix[1:])
    token_hash = (prefix[ends] - prefix[starts]) * q_inv[starts]
    stem_ends = np.minimum(ends, starts + STEM_CHARS)
    stem_hash = (prefix[stem_ends] - prefix[starts]) * q_inv[starts]

    # Texts are joined with one newline: the document of a token is the number of separators before it.
    doc_ends = np.cumsum([len(d) + 1 for d in docs])
    token_doc = np.searchsorted(doc_ends, starts, side="right")
    is_long = (ends - starts) > STEM_CHARS
    same_doc = token_doc[1:] == token_doc[:-1]
    families = (
        (_mix_to_bucket(token_hash, _SALT_TOKEN), token_doc),
        (_mix_to_bucket(stem_hash[is_long], _SALT_STEM), token_doc[is_long]),
        (_mix_to_bucket((stem_hash[:-1] * _PAIR + stem_hash[1:])[same_doc], _SALT_PAIR), token_doc[:-1][same_doc]),
    )
    rows = np.concatenate([d for _, d in families])
    # Each family is already in document order, so a stable sort only merges three sorted runs.
    order = np.argsort(rows, kind="stable")
    rows = rows[order]
    buckets = np.concatenate([b for b, _ in families])[order]
    per_doc = np.bincount(rows, minlength=n_docs)
    scale = (1.0 / np.sqrt(np.maximum(per_doc, 1))).astype(np.float32)
    indptr = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(per_doc, out=indptr[1:])
    # A bucket hit twice in one text appears twice; products and sum_duplicates() both add them up.
    features = sp.csr_matrix((scale[rows], buckets, indptr), shape=(n_docs, N_BUCKETS))
    return features, _anchor_hits(anchors, codes, doc_ends, prefix, q_inv, starts, ends, token_doc)


def featurize(texts: Sequence[str], anchors: Anchors = NO_ANCHORS) -> tuple[sp.csr_matrix, np.ndarray]:
    """Features (len(texts) x N_BUCKETS, float32) and anchor hits (len(texts) x n_prefixes, bool) of raw texts.

    This is the one feature map used both to train and to score.
    """
    bounded = [bound_text(t) for t in texts]
    if not bounded:
        return sp.csr_matrix((0, N_BUCKETS), dtype=np.float32), np.zeros((0, len(anchors.prefixes)), dtype=bool)
    parts = [_chunk_features(bounded[i : i + _CHUNK_DOCS], anchors) for i in range(0, len(bounded), _CHUNK_DOCS)]
    if len(parts) == 1:
        return parts[0]
    return sp.vstack([f for f, _ in parts], format="csr"), np.concatenate([a for _, a in parts])


@dataclass(frozen=True)
class TextModel:
    """Linear heads over ``featurize``: a head's logits are ``X @ weights[:, cols] + intercepts[cols]``.

    ``heads`` maps a head name to its labels, in column order. ``extras`` holds small named arrays a
    head needs besides its hashed weights (e.g. the weights of the elicitation pattern features).
    """

    heads: dict[str, tuple[str, ...]]
    weights: np.ndarray  # (N_BUCKETS, n_columns) float32
    intercepts: np.ndarray  # (n_columns,) float32
    extras: dict[str, np.ndarray]

    def columns(self, head: str) -> slice:
        """Columns of ``weights`` that belong to ``head``."""
        start = 0
        for name, labels in self.heads.items():
            if name == head:
                return slice(start, start + len(labels))
            start += len(labels)
        raise KeyError(head)


def save_model(model: TextModel, path: Path) -> None:
    """Write a model as a compressed ``.npz``: only buckets with a weight, in float16."""
    used = np.flatnonzero(np.any(model.weights != 0, axis=1)).astype(np.int32)
    arrays: dict[str, np.ndarray] = {
        "format_version": np.array([FORMAT_VERSION, BUCKET_BITS, PREFIX_CHARS, SUFFIX_CHARS, STEM_CHARS]),
        "head_names": np.array(list(model.heads), dtype=np.str_),
        "rows": used,
        "weights": model.weights[used].astype(np.float16),
        "intercepts": model.intercepts.astype(np.float32),
    }
    for name, labels in model.heads.items():
        arrays[f"labels.{name}"] = np.array(labels, dtype=np.str_)
    for name, value in model.extras.items():
        arrays[f"extra.{name}"] = value
    np.savez_compressed(path, **arrays)


def load_model(path: Path) -> TextModel:
    """Read a model written by ``save_model``; refuses files made for another feature map."""
    with np.load(path, allow_pickle=False) as data:
        expected = [FORMAT_VERSION, BUCKET_BITS, PREFIX_CHARS, SUFFIX_CHARS, STEM_CHARS]
        if data["format_version"].tolist() != expected:
            raise ValueError(f"{path}: model was built for another feature map; retrain it")
        heads = {str(h): tuple(str(x) for x in data[f"labels.{h}"]) for h in data["head_names"]}
        weights = np.zeros((N_BUCKETS, sum(len(v) for v in heads.values())), dtype=np.float32)
        weights[data["rows"]] = data["weights"].astype(np.float32)
        extras = {k.removeprefix("extra."): data[k] for k in data.files if k.startswith("extra.")}
        return TextModel(heads, weights, data["intercepts"].astype(np.float32), extras)


class BoundedMemo(Generic[V]):
    """A thread-safe dict with a size cap that forgets its oldest half when full.

    Keys are bounded texts, so the memory held is at most ``max_items`` x (8 kB + value).
    """

    def __init__(self, max_items: int) -> None:
        self._max = max_items
        self._data: dict[str, V] = {}
        self._lock = threading.Lock()

    def get_many(self, keys: Sequence[str]) -> list[V | None]:
        """Values for ``keys`` (None where absent)."""
        with self._lock:
            return [self._data.get(k) for k in keys]

    def put_many(self, keys: Sequence[str], values: Sequence[V]) -> None:
        """Store values; when over the cap, drop the oldest half of the entries."""
        with self._lock:
            self._data.update(zip(keys, values, strict=True))
            if len(self._data) > self._max:
                for key in list(self._data)[: len(self._data) // 2]:
                    del self._data[key]


class TextScorer:
    """Per-text logits of every head of a model, and anchor hits, memoised across calls.

    ``score`` returns one row per input text (without intercepts) so that callers can add the rows of
    a request's parts (user text, system prompt) and then the intercepts once. Two levels of reuse:
    the last batch is kept whole (the elicitation and capability classifiers are called one after the
    other on the same batch, whatever its size), and a bounded memo keeps recurring texts.
    """

    def __init__(self, model: TextModel, anchors: Anchors = NO_ANCHORS, memo_items: int = MEMO_ITEMS) -> None:
        self.model = model
        self.anchors = anchors
        self._memo: BoundedMemo[tuple[np.ndarray, np.ndarray]] = BoundedMemo(memo_items)
        self._last: tuple[list[str], np.ndarray, np.ndarray] | None = None

    def score(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(len(texts), n_columns) float32 logits and (len(texts), n_prefixes) anchor hits.

        Each distinct text is featurised once, and not at all when a recent call saw it.
        """
        position: dict[str, int] = {}
        index = np.fromiter((position.setdefault(bound_text(t), len(position)) for t in texts), dtype=np.intp, count=len(texts))
        logits, hits = self._score_distinct(list(position))
        return logits[index], hits[index]

    def _score_distinct(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        last = self._last
        if last is not None and last[0] == texts:
            return last[1], last[2]
        logits = np.empty((len(texts), self.model.weights.shape[1]), dtype=np.float32)
        hits = np.empty((len(texts), len(self.anchors.prefixes)), dtype=bool)
        cached = self._memo.get_many(texts)
        known = [i for i, row in enumerate(cached) if row is not None]
        missing = [i for i, row in enumerate(cached) if row is None]
        if known:
            logits[known] = np.stack([cached[i][0] for i in known])
            hits[known] = np.stack([cached[i][1] for i in known])
        if missing:
            features, fresh_hits = featurize([texts[i] for i in missing], self.anchors)
            logits[missing] = features @ self.model.weights
            hits[missing] = fresh_hits
            # copies, so that a remembered row does not keep the whole batch's arrays alive
            self._memo.put_many([texts[i] for i in missing], [(logits[i].copy(), hits[i].copy()) for i in missing])
        self._last = (texts, logits, hits)
        return logits, hits


def request_texts(prompts: Sequence[str], systems: Sequence[str | None]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The distinct bounded texts of a batch of requests, and per request the index of its user text
    and of its system prompt among them (a missing system prompt is the empty text, which scores 0).

    Templates and system prompts repeat a lot within a batch; everything downstream runs once per
    distinct text.
    """
    if len(prompts) != len(systems):
        raise ValueError(f"{len(prompts)} prompts but {len(systems)} system prompts")
    texts = [bound_text(p or "") for p in prompts] + [bound_text(s or "") for s in systems]
    position: dict[str, int] = {}
    index = np.fromiter((position.setdefault(t, len(position)) for t in texts), dtype=np.intp, count=len(texts))
    n = len(prompts)
    return list(position), index[:n], index[n:]


@functools.cache
def shipped_scorer() -> TextScorer:
    """The scorer of the model shipped in the package, shared by all classifiers of the process.

    Sharing it means one featurisation (and one memo entry) per text serves every head. The
    anchors come from the model file, which records the ones its pattern features were built with.
    """
    model = load_model(MODEL_PATH)
    return TextScorer(model, compile_anchors([str(a) for a in model.extras.get("anchors", ())]))
