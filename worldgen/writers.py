"""Output shapes of the exchange log: the contract's JSONL, a gateway access log, OpenAI batch files."""

from __future__ import annotations

import gzip
import queue
import random
import threading
from pathlib import Path
from typing import BinaryIO

import orjson

_FLUSH_BYTES = 4 << 20


class GzipSink:
    """Buffered gzip writer that compresses on a background thread (zlib releases the GIL).

    The gzip header carries no file name and a zero mtime, so the same content gives the same bytes.
    """

    def __init__(self, path: Path, level: int = 5) -> None:
        self._raw = open(path, "wb")  # noqa: SIM115 - closed in close()
        self._gz = gzip.GzipFile(filename="", mode="wb", fileobj=self._raw, compresslevel=level, mtime=0)
        self._buf: list[bytes] = []
        self._size = 0
        self._q: queue.Queue[bytes | None] = queue.Queue(maxsize=8)
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while (chunk := self._q.get()) is not None:
            self._gz.write(chunk)

    def write(self, data: bytes) -> None:
        self._buf.append(data)
        self._size += len(data)
        if self._size >= _FLUSH_BYTES:
            self._q.put(b"".join(self._buf))
            self._buf, self._size = [], 0

    def close(self) -> None:
        if self._buf:
            self._q.put(b"".join(self._buf))
        self._q.put(None)
        self._t.join()
        self._gz.close()
        self._raw.close()


class PlainSink:
    def __init__(self, path: Path) -> None:
        self._fh: BinaryIO = open(path, "wb", buffering=_FLUSH_BYTES)  # noqa: SIM115 - closed in close()

    def write(self, data: bytes) -> None:
        self._fh.write(data)

    def close(self) -> None:
        self._fh.close()


class ContractWriter:
    """CONTRACT.md section 1: one JSON object per exchange, gzip-compressed JSON Lines."""

    def __init__(self, out: Path, seed: int) -> None:
        self.sink = GzipSink(out / "exchanges.jsonl.gz")

    def write(self, rec: dict, prompt: str, epoch: int) -> None:
        self.sink.write(orjson.dumps(rec) + b"\n")

    def close(self) -> None:
        self.sink.close()


_FINISH = {"end_turn": "stop", "max_tokens": "length", "tool_use": "tool_calls", "stop_sequence": "stop"}


class AccessLogWriter:
    """A flat gateway log as nginx writes JSON: numbers sometimes quoted, missing values as "-"."""

    def __init__(self, out: Path, seed: int) -> None:
        self.sink = GzipSink(out / "access.jsonl.gz")
        self.rng = random.Random(seed ^ 0x5EED)

    def _num(self, v: int | None) -> int | str:
        if v is None:
            return "-"
        return str(v) if self.rng.random() < 0.3 else v

    def write(self, rec: dict, prompt: str, epoch: int) -> None:
        line = {
            "timestamp": rec["ts"],
            "request_id": rec["request_id"],
            "account_id": rec["account_id"],
            "model": rec["model"],
            "prompt": prompt,
            "system_prompt": rec.get("system") or _system_message(rec) or "-",
            "ip_address": rec.get("ip", "-"),
            "asn_number": self._num(rec.get("asn")),
            "country_code": rec.get("country", "-"),
            "user_agent": rec.get("user_agent", "-"),
            "ja3_hash": rec.get("tls_fingerprint", "-"),
            "payment_method_hash": rec.get("payment_fingerprint") or "-",
            "max_tokens": self._num(rec.get("max_tokens")),
            "token_count": self._num(rec.get("output_tokens")),
            "prompt_tokens": self._num(rec.get("input_tokens")),
            "finish_reason": _FINISH.get(rec.get("stop_reason") or "", "-"),
            "status": self._num(rec.get("status")),
        }
        self.sink.write(orjson.dumps(line) + b"\n")

    def close(self) -> None:
        self.sink.close()


def _system_message(rec: dict) -> str | None:
    msgs = rec["messages"]
    if msgs and msgs[0]["role"] == "system":
        c = msgs[0]["content"]
        return c if isinstance(c, str) else None
    return None


class BatchWriter:
    """OpenAI Batch API files: the requests (batch_input.jsonl) and their results (batch_output.jsonl)."""

    def __init__(self, out: Path, seed: int) -> None:
        self.inp = PlainSink(out / "batch_input.jsonl")
        self.outp = PlainSink(out / "batch_output.jsonl")
        self.rng = random.Random(seed ^ 0xBA7C)
        self.n = 0

    def write(self, rec: dict, prompt: str, epoch: int) -> None:
        self.n += 1
        custom_id = f"task-{self.n:07d}"
        messages = rec["messages"]
        if rec.get("system"):
            messages = [{"role": "system", "content": rec["system"]}, *messages]
        body: dict = {"model": rec["model"], "messages": messages}
        if rec.get("max_tokens") is not None:
            body["max_tokens"] = rec["max_tokens"]
        if rec.get("temperature") is not None:
            body["temperature"] = rec["temperature"]
        if rec.get("tools"):
            body["tools"] = [{"type": "function", "function": {"name": t}} for t in rec["tools"]]
        body["metadata"] = {"account_id": rec["account_id"], "ts": rec["ts"]}
        self.inp.write(
            orjson.dumps(
                {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}
            )
            + b"\n"
        )
        status = rec.get("status", 200)
        if status == 200:
            rbody: dict = {
                "id": f"chatcmpl-{self.rng.getrandbits(96):024x}",
                "object": "chat.completion",
                "created": epoch,
                "model": rec["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": rec.get("response_text", "")},
                        "finish_reason": _FINISH.get(rec.get("stop_reason") or "", "stop"),
                    }
                ],
                "usage": {
                    "prompt_tokens": rec.get("input_tokens", 0),
                    "completion_tokens": rec.get("output_tokens", 0),
                },
            }
        else:
            rbody = {
                "error": {
                    "message": "Rate limit reached" if status == 429 else "The server had an error",
                    "type": "rate_limit_error" if status == 429 else "server_error",
                }
            }
        line = {
            "id": f"batch_req_{self.rng.getrandbits(96):024x}",
            "custom_id": custom_id,
            "response": {"status_code": status, "request_id": rec["request_id"], "body": rbody},
            "error": None,
        }
        self.outp.write(orjson.dumps(line) + b"\n")

    def close(self) -> None:
        self.inp.close()
        self.outp.close()


WRITERS = {"contract": ContractWriter, "access-log": AccessLogWriter, "openai-batch": BatchWriter}
