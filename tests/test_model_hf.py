"""Reading Hugging Face config.json files written into tmp_path."""

import json

import pytest

from testbed.errors import ConfigError
from testbed.model import get_model, load_hf_config

LLAMA_LIKE = {  # the architecture keys of a Llama-3-8B config.json
    "_name_or_path": "meta-llama/Meta-Llama-3-8B", "model_type": "llama",
    "architectures": ["LlamaForCausalLM"], "hidden_act": "silu", "hidden_size": 4096,
    "intermediate_size": 14336, "max_position_embeddings": 8192, "num_attention_heads": 32,
    "num_hidden_layers": 32, "num_key_value_heads": 8, "torch_dtype": "bfloat16",
    "vocab_size": 128256, "rope_theta": 500000.0,
}
GPT2_LIKE = {
    "model_type": "gpt2", "activation_function": "gelu_new", "n_ctx": 1024, "n_embd": 768,
    "n_head": 12, "n_inner": None, "n_layer": 12, "n_positions": 1024, "vocab_size": 50257,
}


def write(tmp_path, content, name="config.json"):
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content, indent=1))
    return path


def test_llama_like_config_gives_the_catalog_figures(tmp_path):
    spec = load_hf_config(write(tmp_path, LLAMA_LIKE))
    assert spec.name == "Meta-Llama-3-8B"
    catalog = get_model("llama-3-8b")
    assert spec.weight_dtype == "bf16"     # the checkpoint says bfloat16; the catalog uses f16
    assert spec.with_overrides(name="llama-3-8b", params_billion=8.030, weight_dtype="f16",
                               kv_dtype="f16", activation_dtype="f16") == catalog


def test_gpt2_like_config_from_its_directory(tmp_path):
    folder = tmp_path / "gpt2"
    folder.mkdir()
    write(folder, GPT2_LIKE)
    spec = load_hf_config(folder)
    assert spec.name == "gpt2"                                  # the directory name
    expected = get_model("gpt2-small").with_overrides(name="gpt2", params_billion=None)
    assert spec == expected                                     # n_inner null -> 4*768


@pytest.mark.parametrize("changes, kind", [
    ({"model_type": "opt", "ffn_dim": 8192}, "gelu-mlp"),
    ({"model_type": "somenew", "hidden_act": "silu"}, "swiglu"),
    ({"model_type": "somenew", "hidden_act": "gelu"}, "gelu-mlp"),
    ({"model_type": "gemma2", "hidden_act": "gelu_pytorch_tanh"}, "swiglu"),
])
def test_ffn_kind(tmp_path, changes, kind):
    assert load_hf_config(write(tmp_path, {**GPT2_LIKE, **changes})).ffn_kind == kind


@pytest.mark.parametrize("dtype, name, size", [("float32", "f32", 4.0), ("float16", "f16", 2.0),
                                               ("bfloat16", "bf16", 2.0), (None, "f16", 2.0)])
def test_element_size_from_torch_dtype(tmp_path, dtype, name, size):
    spec = load_hf_config(write(tmp_path, {**LLAMA_LIKE, "torch_dtype": dtype}))
    assert spec.weight_dtype == spec.kv_dtype == spec.activation_dtype == name
    assert spec.bytes_per_weight == spec.bytes_per_kv == spec.bytes_per_activation == size


def test_explicit_head_dim_wins(tmp_path):
    spec = load_hf_config(write(tmp_path, {**LLAMA_LIKE, "head_dim": 256}))
    assert spec.head_dim == 256


def without(config, *keys):
    return {k: v for k, v in config.items() if k not in keys}


@pytest.mark.parametrize("content, field, message", [
    (without(LLAMA_LIKE, "num_hidden_layers"), "num_hidden_layers", "got nothing"),
    (without(GPT2_LIKE, "n_layer"), "num_hidden_layers", "or n_layer"),
    ({**LLAMA_LIKE, "hidden_size": "4096"}, "hidden_size", "got '4096'"),
    ({**LLAMA_LIKE, "num_attention_heads": 32.5}, "num_attention_heads", "positive integer"),
    ({**LLAMA_LIKE, "num_key_value_heads": 5}, "num_key_value_heads", "divisor of n_heads"),
    ({**LLAMA_LIKE, "vocab_size": True}, "vocab_size", "got True"),
    ({**LLAMA_LIKE, "torch_dtype": "int4"}, "torch_dtype", "got 'int4'"),
    ({**LLAMA_LIKE, "torch_dtype": ["float16"]}, "torch_dtype", "expected one of float16"),
    ({**GPT2_LIKE, "n_embd": 770}, "head_dim", "not divisible"),
    (without(GPT2_LIKE, "n_ctx", "n_positions"), "max_position_embeddings", "got nothing"),
])
def test_malformed_configs_name_the_file_and_the_key(tmp_path, content, field, message):
    path = write(tmp_path, content)
    with pytest.raises(ConfigError) as caught:
        load_hf_config(path)
    error = caught.value
    assert (error.source, error.field) == (str(path), field)
    assert str(error).startswith(f"{path}: {field}: ") and message in str(error)
    assert "\n" not in str(error)


@pytest.mark.parametrize("content, message", [
    ('{"n_layer": 12,\n "n_embd": 768,,\n}', "invalid JSON at line 2"),
    ("[1, 2]", "got a JSON list; expected a JSON object"),
])
def test_unparseable_files_are_one_line_errors(tmp_path, content, message):
    path = write(tmp_path, content)
    with pytest.raises(ConfigError, match=message) as caught:
        load_hf_config(path)
    assert caught.value.source == str(path) and "\n" not in str(caught.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="no such file") as caught:
        load_hf_config(tmp_path)                # a directory without config.json
    assert caught.value.source == str(tmp_path / "config.json")
