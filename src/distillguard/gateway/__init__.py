"""The online gateway: a reverse proxy for OpenAI- and Anthropic-compatible model APIs that enforces
policy decisions inline (CONTRACT section 4), and a stand-in upstream for tests and demos.

`app` (the proxy), `coalesce` (detection once per turn of the loop), `headers` (client address and
header rules), `observe` (audit log and metrics), `translate` (pure wire-format work, reading bodies
with `distillguard.wire`), `keys` (API keys and accounts), `standin`
(the stand-in provider), `server` (uvicorn settings) and `command` (the `gateway` and `standin`
commands). Submodules are not imported here so that importing one piece does not pull in the web
stack.
"""

# Largest request line and headers accepted, in bytes (`--max-header-bytes`).
DEFAULT_MAX_HEADER_BYTES = 16 * 1024
