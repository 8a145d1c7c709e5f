"""Answer extraction shared by every domain: the one place that knows the tag and box syntax.

Extraction is kept apart from scoring (as lm-evaluation-harness does): each function returns the
candidate text or None, never a score.
"""

from __future__ import annotations

import re

#: Responses are cut to this many characters from the end before any regex runs: the answer sits
#: at the end, and a multi-megabyte response must not cost more than a small one.
MAX_RESPONSE_CHARS = 64_000

_ASSISTANT_MARKERS = (
    "<|im_start|>assistant",
    "Assistant:",
    "<|assistant|>",
    "助手：",
    "助手:",
)
_ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
_THINK_ANSWER_RE = re.compile(
    # The opening <think> is optional: the r1 template ends the prompt with it, so the response alone
    # starts inside the thought.
    r"^\s*(?:<think>)?.*?</think>\s*<answer>.*?</answer>\s*$", re.DOTALL | re.IGNORECASE
)


def as_text(solution: object) -> str | None:
    """Return the response as text, or None when it is not text at all."""
    if solution is None:
        return None
    if isinstance(solution, bytes):
        solution = solution.decode("utf-8", errors="replace")
    if not isinstance(solution, str):
        return None
    return solution


def assistant_turn(solution: str) -> str:
    """The assistant's response from either the response alone or prompt + response.

    veRL reward managers hand over prompt + response for some setups and the response alone for
    others (the study's scripts each assumed one); we accept both by cutting at the last assistant
    header, if there is one.
    """
    best = -1
    best_len = 0
    for marker in _ASSISTANT_MARKERS:
        pos = solution.rfind(marker)
        if pos > best:
            best, best_len = pos, len(marker)
    if best >= 0:
        solution = solution[best + best_len:]
    solution = solution.replace("<|im_end|>", "").replace("<|endoftext|>", "").lstrip()
    if len(solution) > MAX_RESPONSE_CHARS:
        solution = solution[-MAX_RESPONSE_CHARS:]
    return solution


def last_answer_tag(text: str) -> str | None:
    """Content of the last complete <answer>...</answer> block (spans lines), or None."""
    last = None
    for match in _ANSWER_RE.finditer(text):
        last = match.group(1)
    return last


def last_boxed(text: str) -> str | None:
    r"""Content of the last \boxed{...} (or \fbox{...}) with balanced braces, or None."""
    for command in ("\\boxed", "\\fbox"):
        start = text.rfind(command)
        if start < 0:
            continue
        i = start + len(command)
        while i < len(text) and text[i] == " ":
            i += 1
        if i >= len(text) or text[i] != "{":
            continue
        depth = 0
        for j in range(i, len(text)):
            ch = text[j]
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    return text[i + 1:j]
        return None  # unbalanced: no answer rather than a guess
    return None


def answer_block(solution: object) -> tuple[str | None, str]:
    """The last <answer> block of the assistant turn, with a reason when there is none."""
    text = as_text(solution)
    if text is None:
        return None, "response is not text"
    text = assistant_turn(text)
    if not text.strip():
        return None, "empty response"
    answer = last_answer_tag(text)
    if answer is None:
        if "<answer>" in text.lower():
            return None, "unclosed <answer> tag"
        return None, "no <answer> tag"
    if not answer.strip():
        return None, "empty <answer>"
    return answer, "ok"


def has_think_answer_format(solution: object) -> bool:
    """True when the response is exactly <think>...</think> then <answer>...</answer>."""
    text = as_text(solution)
    if text is None:
        return False
    return bool(_THINK_ANSWER_RE.match(assistant_turn(text)))
