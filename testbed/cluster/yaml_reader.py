"""Read a YAML file strictly: syntax errors and repeated keys become one-line ConfigErrors."""

from __future__ import annotations

from pathlib import Path

import yaml

from testbed.errors import ConfigError


class _StrictLoader(yaml.SafeLoader):
    """A safe loader that refuses a key repeated in one mapping (PyYAML keeps the last)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"repeated key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def read_yaml(path: str | Path) -> object:
    """The document in ``path``; an empty file is an error, naming the file."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", source=source) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read file: {error}", source=source) from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = f"line {mark.line + 1}" if mark else None
        problem = error.problem or error.context or "invalid YAML"
        raise ConfigError(f"YAML syntax error: {problem}", source=source, field=line) from None
    except yaml.YAMLError as error:
        raise ConfigError(f"YAML syntax error: {error}", source=source) from None
    if data is None:
        raise ConfigError("file is empty; expected a YAML mapping", source=source)
    return data
