"""Build a world, lay its sessions out in time and write the log, side tables and ground truth."""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from . import corpora as corpora_mod
from . import wording as W
from .campaigns import build_campaigns
from .content import GENERATORS, Conversation
from .entities import Activity
from .params import draw_world
from .population import Builder, build_legit
from .rand import label_key, np_stream, py_stream
from .responses import count_tokens, draw_output_tokens, render_text
from .timing import turn_offsets
from .writers import WRITERS, GzipSink

# clients keep only the latest turns of a long conversation in the request (context trimming)
_HISTORY_KEEP = 8
_REASONING_MEDIAN = {
    "steps": 1400,
    "rubric": 700,
    "code": 900,
    "list": 600,
    "prose": 350,
    "json": 120,
    "toolcall": 150,
}


_HARVEST_MORE = [
    "Continue.",
    "Go on.",
    "Now do the same for the next one.",
    "Expand step 2 in more detail.",
    "Give an alternative solution.",
]


@dataclass(slots=True)
class Plan:
    s_act: np.ndarray
    s_nturns: np.ndarray
    s_tag: np.ndarray
    s_model: np.ndarray
    e_ts: np.ndarray
    e_sess: np.ndarray
    e_turn: np.ndarray


def _choose_models(
    npr: np.random.Generator, act: Activity, starts: np.ndarray, models: list[dict]
) -> np.ndarray:
    keys = list(act.model_weights) or [0]
    w = np.array([act.model_weights.get(k, 1.0) for k in keys], dtype=float)
    out = np.array(keys, dtype=np.int16)[npr.choice(len(keys), size=starts.size, p=w / w.sum())]
    for j, t, share in act.adopt:
        moved = (starts >= max(t, models[j]["released_at"])) & (npr.random(starts.size) < share)
        out[moved] = j
    return out


def plan_sessions(b: Builder) -> Plan:
    """Flatten every activity's session batches into session and event arrays, clipped to the window."""
    npr = np_stream(b.seed, "plan")
    s_act, s_nt, s_tag, s_model, e_ts, e_sess, e_turn = [], [], [], [], [], [], []
    n_sess = 0
    for ai, act in enumerate(b.activities):
        for batch in act.batches:
            starts = np.asarray(batch.starts, dtype=float)
            keep = (starts >= b.t0) & (starts < b.t_end)
            if not keep.any():
                continue
            starts = starts[keep]
            nturns = np.asarray(batch.nturns, dtype=np.int64)[keep]
            tags = (
                np.asarray(batch.tags, dtype=np.int64)[keep]
                if batch.tags is not None
                else np.full(starts.size, -1, dtype=np.int64)
            )
            offs = turn_offsets(npr, nturns, batch.median_gap, batch.gap_sigma)
            ts = np.repeat(starts, nturns) + offs
            local = np.repeat(np.arange(starts.size), nturns)
            first = np.concatenate(([0], np.cumsum(nturns)[:-1]))
            turn = np.arange(ts.size) - np.repeat(first, nturns)
            inside = ts < b.t_end
            eff = np.bincount(local[inside], minlength=starts.size)
            s_act.append(np.full(starts.size, ai, dtype=np.int32))
            s_nt.append(eff.astype(np.int32))
            s_tag.append(tags)
            s_model.append(_choose_models(npr, act, starts, b.models))
            e_ts.append(ts[inside])
            e_sess.append((local[inside] + n_sess).astype(np.int64))
            e_turn.append(turn[inside].astype(np.int32))
            n_sess += starts.size
    cat = np.concatenate
    return Plan(cat(s_act), cat(s_nt), cat(s_tag), cat(s_model), cat(e_ts), cat(e_sess), cat(e_turn))


def _iso(ts: float, offset_h: float) -> str:
    tz = dt.timezone(dt.timedelta(hours=offset_h))
    return dt.datetime.fromtimestamp(ts, tz).isoformat(timespec="milliseconds")


def _text_of(content) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(p.get("text", "") for p in content if p.get("type") == "text")


class Materializer:
    """Turns planned events into exchange records, in time order, conversation state kept while open."""

    def __init__(self, b: Builder, plan: Plan, corpora) -> None:
        self.b, self.plan, self.c = b, plan, corpora
        self.rngs: dict[int, random.Random] = {}
        self.open: dict[int, Conversation] = {}
        self.gateway = b.world["gateway_offsets"]
        self.rotate_rng = py_stream(b.seed, "rotate", b.world["profile"])

    def _rng(self, ai: int) -> random.Random:
        r = self.rngs.get(ai)
        if r is None:
            r = random.Random(label_key(self.b.seed, self.b.activities[ai].key))
            self.rngs[ai] = r
        return r

    def _gateway_offset(self, tz: float) -> float:
        return min(self.gateway, key=lambda g: abs(g - tz))

    def _open(self, s: int, act: Activity, rng: random.Random) -> Conversation:
        n = int(self.plan.s_nturns[s])
        conv = GENERATORS[act.kind](rng, act, n, int(self.plan.s_tag[s]), self.c)
        # single-shot generators may still be continued by a user who asks something more
        pool = _HARVEST_MORE if act.harvest else W.CHAT_FOLLOWUPS
        while len(conv.inputs) < n:
            conv.inputs.append(("user", rng.choice(pool)))
        a = act.account
        addrs = act.addrs or a.addrs
        weights = [1.0] * len(addrs) if act.addrs else a.addr_weights
        addr = addrs[0] if len(addrs) == 1 else rng.choices(addrs, weights)[0]
        client = act.client or (
            a.clients[0] if len(a.clients) == 1 else rng.choices(a.clients, a.client_weights)[0]
        )
        conv_id = (
            f"conv_{rng.getrandbits(80):020x}"
            if client.sends_conversation_id or (n > 1 and rng.random() < 0.15)
            else None
        )
        conv.infra = (
            addr,
            client,
            rng.choice(a.api_keys),
            conv_id,
            rng.choice(act.max_tokens),
            rng.choice(act.temperature),
            rng.random() < client.stream_prob,
        )
        return conv

    def exchange(self, k: int) -> tuple[dict, str, int, int]:
        p, b = self.plan, self.b
        s = int(p.e_sess[k])
        turn = int(p.e_turn[k])
        ai = int(p.s_act[s])
        act = b.activities[ai]
        a = act.account
        rng = self._rng(ai)
        if turn == 0:
            conv = self._open(s, act, rng)
            if p.s_nturns[s] > 1:
                self.open[s] = conv
        else:
            conv = self.open[s]
        last = turn == p.s_nturns[s] - 1
        if last and turn > 0:
            del self.open[s]
        addr, client, key, conv_id, max_tokens, temperature, stream = conv.infra
        if a.rotate == "request":
            addr = b.nets.address(self.rotate_rng, b.nets.pick(self.rotate_rng, "residential"))
        role, content = conv.inputs[turn]
        msg = {"role": role, "content": content}
        messages = [*conv.history, msg]
        model = b.models[int(p.s_model[s])]
        ts = float(p.e_ts[k])
        rec: dict = {
            "request_id": f"req_{rng.getrandbits(96):024x}",
            "ts": _iso(ts, self._gateway_offset(a.tz)),
            "account_id": a.account_id,
            "model": model["name"],
        }
        system = conv.system
        anthropic_style = client.family.startswith("anthropic")
        if system and not anthropic_style:
            messages = [{"role": "system", "content": system}, *messages]
        rec["messages"] = messages
        if system and anthropic_style:
            rec["system"] = system
        rec["org_id"] = a.org_id
        rec["api_key_id"] = key
        if conv_id:
            rec["conversation_id"] = conv_id
        rec["ip"], rec["asn"], rec["country"] = addr.ip, addr.asn, addr.country
        rec["user_agent"] = client.user_agent
        rec["tls_fingerprint"] = client.tls
        if a.payment_fingerprint:
            rec["payment_fingerprint"] = a.payment_fingerprint
        if max_tokens is not None:
            rec["max_tokens"] = max_tokens
        if temperature is not None:
            rec["temperature"] = temperature
        if conv.tools:
            rec["tools"] = conv.tools
        rec["stream"] = stream
        in_tok = (
            conv.hidden_tokens
            + sum(count_tokens(_text_of(m["content"])) + 4 for m in messages)
            + 30 * len(conv.tools)
        )
        in_tok += 765 * sum(
            1
            for m in messages
            if not isinstance(m["content"], str)
            for part in m["content"]
            if part.get("type") != "text"
        )
        if system and anthropic_style:
            in_tok += count_tokens(system)
        status = 200
        r = rng.random()
        if r < act.error_429:
            status = 429
        elif r < act.error_429 + 0.002:
            status = rng.choice((500, 529, 400))
        next_tool = turn + 1 < len(conv.inputs) and conv.inputs[turn + 1][0] == "tool"
        if status != 200:
            rec |= {"response_text": "", "input_tokens": in_tok, "output_tokens": 0, "status": status}
            text = ""
        else:
            style = "toolcall" if next_tool else conv.style
            budget = max_tokens or 8192
            want = draw_output_tokens(rng, 90 if next_tool else conv.out_median, 0.5 if next_tool else 0.65)
            stop = "tool_use" if next_tool else "end_turn"
            if want >= budget:
                want, stop = budget, "max_tokens"
            text = render_text(rng, self.c, style, want)
            out_tok = want if stop == "max_tokens" else max(1, count_tokens(text) + (40 if next_tool else 0))
            rec |= {"response_text": text, "input_tokens": in_tok, "output_tokens": out_tok}
            if model["reasoning"]:
                rec["reasoning_tokens"] = int(
                    rng.lognormvariate(math.log(_REASONING_MEDIAN[conv.style]), 0.8)
                )
            rec["stop_reason"] = stop
            rec["status"] = 200
        if not last:
            reply = (
                text
                if not next_tool
                else (text + f"\n[tool call: {conv.tools[0] if conv.tools else 'tool'}]").strip()
            )
            conv.history += [msg, {"role": "assistant", "content": reply}]
            while len(conv.history) > _HISTORY_KEEP:
                gone = conv.history[:2]
                conv.history = conv.history[2:]
                conv.hidden_tokens += sum(count_tokens(_text_of(m["content"])) for m in gone)
        prompt = _text_of(content) if role == "user" else self._last_user(conv, turn)
        return rec, prompt, int(ts), int(act.harvest)

    @staticmethod
    def _last_user(conv: Conversation, turn: int) -> str:
        for role, content in reversed(conv.inputs[:turn]):
            if role == "user":
                return _text_of(content)
        return ""


def _rfc3339(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds")


def generate(
    seed: int, profile: str, out: Path, scale: float = 1.0, shape: str = "contract", days: int | None = None
) -> dict:
    """Generate one world into out; returns the summary written to world.json."""
    t_start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    world = draw_world(seed, profile, scale, days)
    c = corpora_mod.load()
    b = Builder(world)
    build_legit(b, len(c.rubric_templates))
    build_campaigns(b)
    plan = plan_sessions(b)
    order = np.lexsort((plan.e_turn, plan.e_sess, plan.e_ts))
    acct_of_event = np.array([a.account.idx for a in b.activities], dtype=np.int64)[plan.s_act[plan.e_sess]]
    harvest_of_event = np.array([a.harvest for a in b.activities], dtype=bool)[plan.s_act[plan.e_sess]]
    n_acc = len(b.accounts)
    per_acct = np.bincount(acct_of_event, minlength=n_acc)
    first_ts = np.full(n_acc, np.inf)
    np.minimum.at(first_ts, acct_of_event, plan.e_ts)
    present = [a for a in b.accounts if per_acct[a.idx] > 0]
    fix = py_stream(seed, "created-fix")
    for a in present:  # an account exists before its first request
        a.created_at = min(a.created_at, float(first_ts[a.idx]) - fix.uniform(120, 6 * 3600))

    writer = WRITERS[shape](out, seed)
    truth = GzipSink(out / "exchange_truth.csv.gz")
    truth.write(b"request_id,account_id,harvest\n")
    mat = Materializer(b, plan, c)
    for k in order:
        rec, prompt, epoch, harvest = mat.exchange(int(k))
        writer.write(rec, prompt, epoch)
        truth.write(f"{rec['request_id']},{rec['account_id']},{harvest}\n".encode())
    writer.close()
    truth.close()

    _write_side_tables(out, b, present)
    summary = _summary(world, b, present, per_acct, acct_of_event, harvest_of_event)
    (out / "world.json").write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    summary["_seconds"] = round(time.perf_counter() - t_start, 2)
    return summary


def _write_side_tables(out: Path, b: Builder, present: list) -> None:
    with open(out / "accounts.jsonl", "wb") as fh:
        for a in present:
            fh.write(
                orjson.dumps(
                    {
                        "account_id": a.account_id,
                        "created_at": _rfc3339(a.created_at),
                        "tier": a.tier,
                        "verified": a.verified,
                        "email_domain": a.email_domain,
                        "country": a.country,
                        "payment_fingerprint": a.payment_fingerprint,
                    }
                )
                + b"\n"
            )
    with open(out / "releases.jsonl", "wb") as fh:
        for m in b.models:
            fh.write(orjson.dumps({"model": m["name"], "released_at": _rfc3339(m["released_at"])}) + b"\n")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["account_id", "label", "actor_type", "campaign_id", "campaign_shape"])
    for a in present:
        w.writerow([a.account_id, a.label, a.actor_type, a.campaign_id, a.campaign_shape])
    (out / "truth.csv").write_text(buf.getvalue())


def _summary(
    world: dict,
    b: Builder,
    present: list,
    per_acct: np.ndarray,
    acct_of_event: np.ndarray,
    harvest_of_event: np.ndarray,
) -> dict:
    by_type: dict[str, dict[str, int]] = {}
    for a in present:
        d = by_type.setdefault(a.actor_type, {"accounts": 0, "exchanges": 0})
        d["accounts"] += 1
        d["exchanges"] += int(per_acct[a.idx])
    camp_of_acct = np.array([a.campaign_id for a in b.accounts], dtype=object)
    realised = []
    for c in world["campaigns"]:
        mask = camp_of_acct[acct_of_event] == c["campaign_id"]
        accs = sum(1 for a in present if a.campaign_id == c["campaign_id"])
        realised.append(
            {
                "campaign_id": c["campaign_id"],
                "accounts": accs,
                "exchanges": int(mask.sum()),
                "harvest_exchanges": int((mask & harvest_of_event).sum()),
            }
        )
    world = dict(world)
    for m in world["models"]["existing"] + world["models"]["releases"]:
        m["released_at_rfc3339"] = _rfc3339(m["released_at"])
    world["realised"] = {
        "accounts": len(present),
        "exchanges": int(acct_of_event.size),
        "harvest_exchanges": int(harvest_of_event.sum()),
        "campaign_accounts": sum(1 for a in present if a.label == "campaign"),
        "by_actor_type": dict(sorted(by_type.items())),
        "campaigns": realised,
    }
    return world
