"""Build a byte-level BPE tokenizer with a chat template and a randomly initialised Qwen2 causal LM.

Byte-level BPE never meets an unknown character (Chinese prompts included); merges are learned
from a corpus so prompts stay short enough for CPU training. Everything is deterministic in the
corpus and seed, so `mdrl tiny build` regenerates identical files.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable

log = logging.getLogger(__name__)

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
# Tags every domain uses; single tokens make the format easy to learn and cheap to emit.
TAG_TOKENS = ("<think>", "</think>", "<answer>", "</answer>")
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@dataclass(frozen=True)
class TinyModelConfig:
    """Size of the embedded model. The defaults train at a few steps per second on 2 CPU cores."""

    vocab_size: int = field(default=2048, metadata={"help": "BPE vocabulary size, special tokens included."})
    hidden_size: int = field(default=128, metadata={"help": "Width of the residual stream."})
    num_hidden_layers: int = field(default=4, metadata={"help": "Transformer blocks."})
    num_attention_heads: int = field(default=4, metadata={"help": "Query heads."})
    num_key_value_heads: int = field(default=2, metadata={"help": "Key/value heads (grouped-query attention)."})
    intermediate_size: int = field(default=384, metadata={"help": "MLP width."})
    max_position_embeddings: int = field(default=2048, metadata={"help": "Longest prompt + response."})
    seed: int = field(default=0, metadata={"help": "Seed of the random initialisation."})


#: Qwen2's pre-tokenizer pattern (words, single digits, punctuation runs). transformers loads every Qwen2
#: checkpoint's tokenizer with this pattern whatever tokenizer.json says, so the merges are learned under it too.
QWEN2_PRETOKENIZE_REGEX = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
                           r"""|\s*[\r\n]+|\s+(?!\S)|\s+""")


def build_tokenizer(corpus: Iterable[str], vocab_size: int = 2048):
    """A byte-level BPE `PreTrainedTokenizerFast` trained on `corpus`, with a Qwen-style chat template."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PRETOKENIZE_REGEX), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(list(corpus), trainer=trainer)
    # Tags are whole tokens but not "special": decoders that skip special tokens (vLLM's default)
    # must keep them, or the verifiers would see no <answer>.
    tokenizer.add_tokens([AddedToken(tag, special=False, normalized=False) for tag in TAG_TOKENS])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token=None,
        additional_special_tokens=["<|im_start|>"],
        padding_side="left",  # saved with the tokenizer: batched generation needs left padding
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_random_model(config: TinyModelConfig, tokenizer):
    """A randomly initialised Qwen2ForCausalLM sized by `config`, matched to `tokenizer`."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(config.seed)
    model_config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        num_key_value_heads=config.num_key_value_heads,
        intermediate_size=config.intermediate_size,
        max_position_embeddings=config.max_position_embeddings,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id,
    )
    model = Qwen2ForCausalLM(model_config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def default_corpus() -> list[str]:
    """Text the tokenizer learns merges from: every template and generated items of every domain."""
    from mdrl.domains import all_domains
    from mdrl.templates import TEMPLATES, Template

    texts: list[str] = []
    for domain in all_domains().values():
        if domain.generate is None:
            continue
        for lang in ("en", "zh"):
            for difficulty in domain.difficulties:
                for index in range(20):
                    problem = domain.generate(index, 0, difficulty, lang)
                    user = domain.render_question(problem, lang)
                    for name in TEMPLATES:
                        if name != "chat":
                            texts.append(Template(name, lang).render(user))
                    texts.append(problem.reference or "")
    if not texts:
        texts = [Template(name, lang).render("1 + 1 = 2") for name in ("r1-base", "plain") for lang in ("en", "zh")]
    return texts


def build_tiny(out_dir: str | Path, config: TinyModelConfig = TinyModelConfig(),
               corpus: Iterable[str] | None = None) -> Path:
    """Write a tokenizer and a randomly initialised tiny model to `out_dir`; load it with
    `AutoModelForCausalLM.from_pretrained(out_dir)` / `AutoTokenizer.from_pretrained(out_dir)`."""
    import json

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(default_corpus() if corpus is None else corpus, config.vocab_size)
    model = build_random_model(config, tokenizer)
    tokenizer.save_pretrained(out)
    model.save_pretrained(out)
    (out / "mdrl_tiny.json").write_text(json.dumps({"config": asdict(config), "kind": "random"}, indent=2))
    log.info("built tiny model (%d parameters) at %s", model.num_parameters(), out)
    return out
