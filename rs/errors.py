"""User-facing errors: the CLI prints `error: <message>` on one line and exits 2, no traceback."""


class RsError(Exception):
    """Base of errors caused by user input (config, files, paths); the message says what to do."""
