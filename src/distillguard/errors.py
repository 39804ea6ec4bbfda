"""Errors that end a command with a one-line message and a non-zero exit status."""


class DistillguardError(Exception):
    """An unusable input or option. The message is shown to the user as one line."""

    exit_code = 2


class InputError(DistillguardError):
    """A whole input is unusable: missing file, unknown format, unreadable table."""
