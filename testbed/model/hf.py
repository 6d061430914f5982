"""Read a Hugging Face ``config.json`` (a local file or a directory holding one) as a spec.

Only the architecture is read; nothing is downloaded. Keys differ between model families,
so each spec field accepts several JSON keys (Llama-style first, then GPT-2/OPT style).
Every problem raises a one-line :class:`ConfigError` naming the file and the JSON key.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from testbed.errors import ConfigError
from testbed.model.spec import ModelSpec

# spec field -> JSON keys, first present (and not null) wins
_KEYS = {
    "n_layers": ("num_hidden_layers", "n_layer"),
    "d_model": ("hidden_size", "n_embd", "d_model"),
    "n_heads": ("num_attention_heads", "n_head"),
    "vocab_size": ("vocab_size",),
    "max_position": ("max_position_embeddings", "n_positions", "n_ctx"),
}
_OPTIONAL_KEYS = {
    "n_kv_heads": ("num_key_value_heads",),
    "head_dim": ("head_dim",),
    "ffn_dim": ("intermediate_size", "n_inner", "ffn_dim"),
}
_GATED_TYPES = {"llama", "mistral", "mixtral", "qwen2", "qwen3", "gemma", "gemma2", "phi3",
                "olmo", "olmo2"}
_PLAIN_TYPES = {"gpt2", "opt", "gpt_neox", "gptj", "gpt_bigcode", "bloom", "falcon", "phi"}
_DTYPES = {"float16": "f16", "bfloat16": "bf16", "float32": "f32"}


def _config_file(path: str | Path) -> Path:
    path = Path(path)
    return path / "config.json" if path.is_dir() else path


def _read_json(file: Path) -> dict:
    source = str(file)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("got no such file; expected a Hugging Face config.json",
                          source=source) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"got unreadable file ({error}); expected a UTF-8 config.json",
                          source=source) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"got invalid JSON at line {error.lineno} column {error.colno} "
                          f"({error.msg}); expected a JSON object", source=source) from None
    if not isinstance(data, dict):
        raise ConfigError(f"got a JSON {type(data).__name__}; expected a JSON object",
                          source=source, value=data)
    return data


def _integer(data: dict, keys: tuple[str, ...], source: str) -> tuple[str, int | None]:
    """The first present key among ``keys`` and its value (None if none is present)."""
    for key in keys:
        value = data.get(key)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ConfigError(f"got {value!r}; expected a positive integer", source=source,
                              field=key, value=value)
        return key, value
    return keys[0], None


def _ffn_kind(data: dict) -> str:
    """swiglu (gated, 3 matrices) or gelu-mlp (2 matrices), from model_type or activation."""
    model_type = str(data.get("model_type", "")).lower()
    if model_type in _GATED_TYPES:
        return "swiglu"
    if model_type in _PLAIN_TYPES:
        return "gelu-mlp"
    activation = str(data.get("hidden_act") or data.get("activation_function") or "").lower()
    return "swiglu" if "silu" in activation or "swiglu" in activation else "gelu-mlp"


def _dtype(data: dict, source: str) -> str:
    """The checkpoint's dtype name (f16 when the file does not say)."""
    key = "torch_dtype" if "torch_dtype" in data else "dtype"
    dtype = data.get(key)
    if dtype is None:
        return "f16"
    if not isinstance(dtype, str) or dtype not in _DTYPES:
        raise ConfigError(f"got {dtype!r}; expected one of {', '.join(_DTYPES)}",
                          source=source, field=key, value=dtype)
    return _DTYPES[dtype]


def _name(data: dict, file: Path) -> str:
    name_or_path = data.get("_name_or_path")
    if isinstance(name_or_path, str) and name_or_path.strip("/ "):
        return name_or_path.strip("/ ").replace("\\", "/").split("/")[-1]
    return file.resolve().parent.name or "hf-model"


def load_hf_config(path: str | Path) -> ModelSpec:
    """A :class:`ModelSpec` from a Hugging Face ``config.json`` (file or its directory)."""
    file = _config_file(path)
    source = str(file)
    data = _read_json(file)
    fields: dict[str, Any] = {}   # keyword arguments of ModelSpec, which validates them
    used: dict[str, str] = {}  # spec field -> JSON key it came from
    for field, keys in _KEYS.items():
        key, value = _integer(data, keys, source)
        if value is None:
            also = f" (or {', '.join(keys[1:])})" if len(keys) > 1 else ""
            raise ConfigError(f"got nothing; expected a positive integer{also}",
                              source=source, field=key)
        fields[field], used[field] = value, key
    for field, keys in _OPTIONAL_KEYS.items():
        key, value = _integer(data, keys, source)
        fields[field], used[field] = value, key
    d_model, n_heads = fields["d_model"], fields["n_heads"]
    if fields["n_kv_heads"] is None:
        fields["n_kv_heads"] = n_heads
    if fields["head_dim"] is None:
        if d_model % n_heads:
            raise ConfigError(f"got {d_model} not divisible by {n_heads} heads and no "
                              "head_dim; expected a head_dim", source=source, field="head_dim")
        fields["head_dim"] = d_model // n_heads
    if fields["ffn_dim"] is None:
        fields["ffn_dim"] = 4 * d_model
    dtype = _dtype(data, source)
    try:
        return ModelSpec(name=_name(data, file), ffn_kind=_ffn_kind(data),
                         weight_dtype=dtype, kv_dtype=dtype, activation_dtype=dtype, **fields)
    except ConfigError as error:
        where = used.get(error.field, error.field) if error.field is not None else None
        raise ConfigError(error.message, source=source, field=where,
                          value=error.value, expected=error.expected) from None
