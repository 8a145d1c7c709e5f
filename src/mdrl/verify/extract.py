"""Answer extraction shared by every domain: the one place that knows the tag and box syntax.

Extraction is kept apart from scoring (as lm-evaluation-harness does): each function returns the
candidate text or None, never a score.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

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
# The opening <think> is optional: the r1 template ends the prompt with it, so the response alone
# starts inside the thought.
_THINK_THEN_ANSWER_RE = re.compile(r"</think>\s*<answer>", re.IGNORECASE)


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
    """Content of the last complete <answer>...</answer> block (spans lines), or None.

    Found from the end with two reverse searches: linear time, where a lazy regex scan is quadratic
    on a response made of unclosed tags. A stray <answer> inside a block starts the block anew.
    """
    lowered = text.lower()
    close = lowered.rfind("</answer>")
    if close < 0:
        return None
    open_ = lowered.rfind("<answer>", 0, close)
    if open_ < 0:
        return None
    return text[open_ + len("<answer>"):close]


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
    # Equivalent to ^(<think>)?.*?</think>\s*<answer>.*?</answer>\s*$ but linear: a lazy regex of that
    # shape rescans to the end from every </think> and is quadratic on adversarial responses.
    text = assistant_turn(text).rstrip()
    if not text.lower().endswith("</answer>"):
        return False
    head = _THINK_THEN_ANSWER_RE.search(text)
    return head is not None and head.end() <= len(text) - len("</answer>")


def boxed_as_answer(solution: str) -> str | None:
    r"""Flexible extraction for evaluation: when the assistant turn has no <answer> block but has a
    \boxed{...}, the turn with that box's content appended as an <answer> block; None otherwise.

    Scoring this text next to the original reports "strict" (tag only) and "flexible" (tag or box)
    accuracy side by side, the way lm-evaluation-harness reports its two extraction filters.
    """
    text = assistant_turn(solution)
    if last_answer_tag(text) is not None:
        return None
    boxed = last_boxed(text)
    if boxed is None or not boxed.strip():
        return None
    return f"{text}\n<answer>{boxed}</answer>"


def final_answer(text: str) -> tuple[str | None, str]:
    r"""The final answer of a math-style response, and where it was found.

    1. The last complete <answer>...</answer> block (it may span lines): inside it the last \boxed{}
       ("answer_tag_boxed"), else the block's text ("answer_tag").
    2. Without a complete block, the last \boxed{} after the last </think> (anywhere when there is no
       </think>): instruct models box their answer without tags ("boxed"). The think block is scratch work.
    Never the last number of free text (the study's fallback, which rewards guesses). Returns
    (answer, source) or (None, reason); an empty answer comes back as "" with its source.
    """
    block = last_answer_tag(text)
    if block is not None:
        if "\\boxed" in block or "\\fbox" in block:
            boxed = last_boxed(block)
            if boxed is None:
                return None, "unclosed \\boxed{}"
            return boxed, "answer_tag_boxed"
        return block, "answer_tag"
    think_end = text.lower().rfind("</think>")
    tail = text[think_end + len("</think>"):] if think_end >= 0 else text
    if "\\boxed" in tail or "\\fbox" in tail:
        boxed = last_boxed(tail)
        if boxed is None:
            return None, "unclosed \\boxed{}"
        return boxed, "boxed"
    if "<answer>" in text.lower():
        return None, "unclosed <answer> tag"
    return None, "no <answer> tag"


_ANSWER_OPEN_RE = re.compile(r"<answer>", re.IGNORECASE)
_ANSWER_CLOSE_RE = re.compile(r"</answer>", re.IGNORECASE)


def answer_region(text: str) -> tuple[str, str]:
    """Where the answer is: the inside of the last <answer> block ("ok"), the text after a last
    <answer> left unclosed ("unclosed <answer> tag"), or the whole text ("no <answer> tag").

    Linear time, unlike a lazy `<answer>(.*?)</answer>` scan, which rescans to the end from every
    <answer> and so is quadratic on a response made of unclosed tags (seconds at 64k characters).
    """
    opened = None
    for opened in _ANSWER_OPEN_RE.finditer(text):
        pass
    if opened is None:
        return text, "no <answer> tag"
    closed = _ANSWER_CLOSE_RE.search(text, opened.end())
    if closed is None:
        return text[opened.end():], "unclosed <answer> tag"
    return text[opened.end():closed.start()], "ok"


_BRACE_RE = re.compile(r"[{}]")
_TRAILING_COMMA_RE = re.compile(r",(\s*[}\]])")
_JSON_FAILED = object()


def _loads_lenient(chunk: str) -> object:
    """json.loads that accepts raw control characters in strings and trailing commas."""
    for attempt in (chunk, None):
        if attempt is None:
            if not _TRAILING_COMMA_RE.search(chunk):
                break
            attempt = _TRAILING_COMMA_RE.sub(r"\1", chunk)
        try:
            return json.loads(attempt, strict=False)
        except (ValueError, RecursionError):  # bad JSON, over-long ints, absurd nesting
            continue
    return _JSON_FAILED


def json_objects_from_end(text: str, max_attempts: int = 200, max_chars: int = 4_000_000) -> Iterator[Any]:
    """Parsed JSON objects ({...}) of `text`, the one ending last first; objects nested in one
    already yielded are not yielded again.

    Braces are paired in one linear pass that ignores strings, so an unbalanced brace inside a
    string spoils only the objects around it; the complete objects inside remain candidates. Only
    the last MAX_RESPONSE_CHARS characters are read, and at most `max_attempts` parses of at most
    `max_chars` characters in all are tried, so a multi-megabyte response cannot cost quadratic time.
    Trailing commas and raw newlines inside strings are tolerated; single-quoted dicts are not JSON.
    """
    text = text[-MAX_RESPONSE_CHARS:]
    opens: list[int] = []
    spans: list[tuple[int, int]] = []
    for match in _BRACE_RE.finditer(text):
        if match.group() == "{":
            opens.append(match.start())
        elif opens:
            spans.append((opens.pop(), match.end()))
    attempts, budget = 0, max_chars
    parsed_from = len(text) + 1
    for start, end in reversed(spans):
        if start >= parsed_from:
            continue  # nested inside an object already yielded
        if attempts >= max_attempts or budget <= 0:
            return
        attempts += 1
        budget -= end - start
        value = _loads_lenient(text[start:end])
        if value is _JSON_FAILED:
            continue
        parsed_from = start
        yield value


# --- fenced code blocks (code domain) ------------------------------------------------------------

#: A fenced block: ``` or ~~~ (3+), an optional info string, a newline, the body, the same fence.
#: The closing fence starts a line but may be followed by text (models write "```</answer>").
_FENCE_RE = re.compile(r"(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`~]*)\n(?P<body>.*?)^[ \t]*(?P=fence)(?![`~\w])",
                       re.DOTALL | re.MULTILINE)
PYTHON_FENCE_LANGS = ("python", "py", "python3", "py3")


def code_blocks(text: str) -> list[tuple[str, str]]:
    """Closed fenced code blocks in order, as (language lower-cased or "", body). An unclosed
    final fence (a truncated response) is not a block."""
    text = text[-MAX_RESPONSE_CHARS:]
    blocks = []
    for match in _FENCE_RE.finditer(text):
        info = match.group("info").strip().split()
        lang = info[0].lower().lstrip("{.").rstrip("}") if info else ""
        blocks.append((lang, match.group("body")))
    return blocks


def last_python_block(text: str) -> str | None:
    """The last ```python block in `text`; failing that the last block with no language; else None."""
    blocks = code_blocks(text)
    for lang, body in reversed(blocks):
        if lang in PYTHON_FENCE_LANGS:
            return body
    for lang, body in reversed(blocks):
        if not lang:
            return body
    return None
