"""The one error type for bad input, rendered as a single line.

Every malformed config, topology, trace or model file raises :class:`ConfigError` naming
the file, the field (or line), the bad value and what was expected. The CLI prints
``str(error)`` and exits with status 2, without a traceback.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """Bad input: ``source: field: got <value>; expected <expected>``."""

    def __init__(self, message: str, *, source: str | None = None, field: str | None = None,
                 value: object = None, expected: str | None = None):
        self.message = message
        self.source = source
        self.field = field
        self.value = value
        self.expected = expected
        super().__init__(self._render())

    def _render(self) -> str:
        parts = []
        if self.source:
            parts.append(str(self.source))
        if self.field:
            parts.append(str(self.field))
        text = ": ".join(parts + [self.message])
        return " ".join(text.split())  # always one line

    def located(self, source: str | None = None, field_prefix: str | None = None) -> "ConfigError":
        """A copy of this error with the file and/or an outer field path filled in."""
        field = self.field
        if field_prefix:
            field = f"{field_prefix}.{field}" if field else field_prefix
        return ConfigError(self.message, source=self.source or source, field=field,
                           value=self.value, expected=self.expected)


def bad_value(value: object, expected: str, *, source: str | None = None,
              field: str | None = None) -> ConfigError:
    """Build the standard ``got X; expected Y`` error."""
    return ConfigError(f"got {value!r}; expected {expected}", source=source, field=field,
                       value=value, expected=expected)


def close_matches(name: object, known) -> str:
    """``"close matches: a, b; "`` for the known names most like ``name`` (or "")."""
    import difflib
    close = difflib.get_close_matches(str(name).lower(), [str(k) for k in known], n=3,
                                      cutoff=0.5)
    return f"close matches: {', '.join(close)}; " if close else ""
