"""The embedded default: a tokenizer and tiny Qwen2-architecture models that mdrl builds itself,
so every pipeline runs offline with no downloaded weights."""

from mdrl.tiny.builder import TinyModelConfig, build_random_model, build_tiny, build_tokenizer

__all__ = ["TinyModelConfig", "build_random_model", "build_tiny", "build_tokenizer"]
