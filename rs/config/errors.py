"""The one error type of configuration: its message is a single line a user can act on."""

from rs.errors import RsError


class ConfigError(RsError, ValueError):
    """Bad configuration input; `str(err)` is one line naming the dotted path or file."""
