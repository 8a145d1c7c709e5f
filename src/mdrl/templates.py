"""Prompt templates: the study's R1-style base template, chat (instruct) and plain; English and Chinese.

A template turns a user message (the domain's rendered question) into what the model sees:
`messages()` gives the chat-format list that veRL parquet stores, `render()` the final string.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

TEMPLATES = ("r1-base", "chat", "plain")

_R1_PREAMBLE = {
    "en": (
        "A conversation between User and Assistant. The User asks a question, and the Assistant solves it. "
        "The Assistant first thinks about the reasoning process in the mind and then provides the User with "
        "the answer. The reasoning process is enclosed within <think> </think> and answer is enclosed within "
        "<answer> </answer> tags, respectively, i.e., <think> reasoning process here </think> "
        "<answer> answer here </answer>."
    ),
    "zh": (
        "这是用户与助手之间的对话。用户提出问题，助手解决问题。助手先在脑中思考推理过程，然后向用户给出答案。"
        "推理过程用 <think> </think> 标签包围，答案用 <answer> </answer> 标签包围，即 "
        "<think> 推理过程 </think> <answer> 答案 </answer>。"
    ),
}
_R1_TURNS = {"en": ("User: ", "Assistant: <think>"), "zh": ("用户：", "助手：<think>")}
_CHAT_SYSTEM = {
    "en": (
        "You are a helpful assistant. You first think about the reasoning process and then provide the "
        "answer. The reasoning process and answer are enclosed within <think> </think> and "
        "<answer> </answer> tags, respectively."
    ),
    "zh": "你是一个乐于助人的助手。你先思考推理过程，再给出答案。推理过程和答案分别用 <think> </think> 和 "
          "<answer> </answer> 标签包围。",
}


class ChatTokenizer(Protocol):
    def apply_chat_template(self, conversation: list[dict[str, str]], **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class Template:
    """A prompt template by name and language (`r1-base`/`chat`/`plain`, `en`/`zh`)."""

    name: str = "r1-base"
    lang: str = "en"

    def __post_init__(self) -> None:
        if self.name not in TEMPLATES:
            raise ValueError(f"unknown template {self.name!r}; known: {', '.join(TEMPLATES)}")
        if self.lang not in _R1_PREAMBLE:
            raise ValueError(f"unknown language {self.lang!r}; known: {', '.join(_R1_PREAMBLE)}")

    def messages(self, user_message: str) -> list[dict[str, str]]:
        """The prompt as chat messages (what veRL parquet stores in its `prompt` column)."""
        if self.name == "chat":
            return [{"role": "system", "content": _CHAT_SYSTEM[self.lang]},
                    {"role": "user", "content": user_message}]
        return [{"role": "user", "content": self.render(user_message)}]

    def render(self, user_message: str, tokenizer: ChatTokenizer | None = None) -> str:
        """The exact text the model continues from."""
        if self.name == "r1-base":
            user, assistant = _R1_TURNS[self.lang]
            return f"{_R1_PREAMBLE[self.lang]}\n{user}{user_message}\n{assistant}"
        if self.name == "plain":
            return f"{user_message}\n"
        if tokenizer is None or getattr(tokenizer, "chat_template", None) is None:
            raise ValueError("the chat template needs a tokenizer that has a chat template")
        return tokenizer.apply_chat_template(self.messages(user_message), tokenize=False,
                                             add_generation_prompt=True)

    @property
    def uses_chat_template(self) -> bool:
        return self.name == "chat"
