"""Errors that end a command with a one-line message and a non-zero exit status."""


class DistillguardError(Exception):
    """An unusable input or option. The message is shown to the user as one line."""

    exit_code = 2


class InputError(DistillguardError):
    """A whole input is unusable: missing file, unknown format, unreadable table."""


class StateUnavailableError(RuntimeError):
    """The shared state store did not answer in time or at all. Every request of the moment fails
    alike, so the gateway applies the policy's `on_state_unavailable` to all of them at once rather
    than retrying each alone (which would multiply the wait)."""
