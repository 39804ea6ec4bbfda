"""The model APIs' wire formats, one module each (`openai`, `anthropic`; shared checks in `common`).

Each reads a request body into the exchange-record fields of CONTRACT section 1, and a response
(whole, or one streamed chunk at a time) into a `common.Usage`. The gateway reads live traffic with
them and ingest reads OpenAI Batch files with them, so a body means the same thing in both.
"""
