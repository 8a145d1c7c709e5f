"""Zebra (logic-grid) puzzles: the study's Logic Puzzle Baron grids, ZebraLogic, and a generator.

The answer is a JSON grid ``{"House 1": {"Names": "...", ...}, ...}``, optionally wrapped as
``{"reasoning": "...", "solution": {...}}`` (the study's prompt asks for the wrapper).

Verifier rules (each fixes a fault of the study's reward or pins down a choice):

* Where: the LAST complete JSON grid inside the last ``<answer>...</answer>`` block; after an
  unclosed ``<answer>`` tag, the text after it; with no tag, anywhere in the response. Code fences
  do not matter. The scan (``extract.json_objects_from_end``) is linear in the last 64k characters
  plus a bounded number of ``json.loads`` calls, so a multi-megabyte response costs no more than a
  long one. A grid is a non-empty object whose keys are all house labels; the wrapper's
  ``"solution"`` is looked into first. If the last object fails to parse, the one before it counts.
* Leniency: trailing commas (``{"a": 1,}``) and raw newlines inside strings are accepted, since
  they do not change what the grid says; single-quoted Python dicts are not JSON and are refused.
* Matching: houses are matched BY HOUSE LABEL ("House 1", "house1", "1", "房子1", "第一栋房子" all
  mean house 1), never by the first attribute value: the study matched each predicted house to the
  gold house holding its first listed value, so every house shifted by one scored 1.0 and a correct
  grid listing its attributes in another order scored 0. Categories are matched by name (case and
  spacing ignored), so attribute order does not matter. Cells compare after NFKC, casefold and
  whitespace collapsing; JSON numbers compare as their decimal text; lists, objects, booleans and
  nulls are wrong cells. A category written twice with different values is wrong (no hedging).
* Credit: fraction = correct cells / (gold cells + cells of extra houses). Missing houses' cells
  are wrong; an extra or duplicated house makes the answer not fully correct even when every gold
  cell is right. ``acc`` is True only for a whole, exact grid.
* Default reward: proportional (cell accuracy), as the study trained with; ``reward={"mode":
  "binary"}`` gives whole-grid reward.
* ``extra_info={"zebra_match": "anchor"}`` opts in to label-free matching for puzzles whose
  "houses" are only rows of a matching (the Logic Puzzle Baron grids never define house
  positions): each predicted row is matched to the gold row with the same value of the gold's
  FIRST category (not the prediction's first key), each gold row at most once. Default "house".

Difficulty: the generator's level d in 2..6 is a d x d grid (d houses, d categories); a two-digit
level 10*h + c (e.g. 43) asks for h houses x c categories. Study rows get difficulty = houses.
"""

from __future__ import annotations

import json
import math
import random
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mdrl.plain import plain
from mdrl.domains.base import LANGUAGES, DataError, Domain, Problem, SuiteDef
from mdrl.domains.registry import register_domain
from mdrl.domains.zebra_solver import (
    FOUND,
    LEFT_OF,
    NEXT_TO,
    NOT_AT,
    NOT_SAME,
    SAME,
    SOMEWHERE_LEFT,
    Grid,
    Puzzle,
    generate_puzzle,
)
from mdrl.verify.extract import answer_region, json_objects_from_end
from mdrl.verify.result import Verdict
from mdrl.verify.shaping import RewardConfig

NAME = "zebra"
DATA_SOURCES = ("zebra_puzzle", "zebralogic", "zebra_logic", "logic_puzzle_baron")
DIFFICULTIES = (2, 3, 4, 5, 6)
MATCH_MODES = ("house", "anchor")

# --------------------------------------------------------------------------------------------------
# House labels and cell values
# --------------------------------------------------------------------------------------------------

_HOUSE_WORDS_RE = re.compile(
    r"house|home|position|number|no\.|#|第|号|號|房子|房屋|房间|房間|房|栋|棟|座|间|間|户|戶|家|位置|位"
)
_LABEL_PUNCT_RE = re.compile(r"[\s_:：.\-()（）\[\]【】]+")
_ARABIC_RE = re.compile(r"([0-9]{1,4})(?:st|nd|rd|th)?")
_CHINESE_DIGITS = {"一": 1, "二": 2, "两": 2, "兩": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
                   "八": 8, "九": 9}
_SPACES_RE = re.compile(r"\s+")


def house_number(label: object) -> int | None:
    """The house a label names (1-based), or None: "House 1", "house_1", "1", "1号房子", "第一栋"."""
    if isinstance(label, bool) or not isinstance(label, (str, int)):
        return None
    text = _LABEL_PUNCT_RE.sub("", _HOUSE_WORDS_RE.sub("", unicodedata.normalize("NFKC", str(label)).casefold()))
    match = _ARABIC_RE.fullmatch(text)
    if match:
        number = int(match.group(1))
        return number
    return _chinese_number(text)


def _chinese_number(text: str) -> int | None:
    """一 .. 九十九 (a house number written in Chinese numerals)."""
    if not text or len(text) > 3 or any(ch not in _CHINESE_DIGITS and ch != "十" for ch in text):
        return None
    if "十" not in text:
        return _CHINESE_DIGITS[text] if len(text) == 1 else None
    tens, _, ones = text.partition("十")
    if "十" in ones or len(tens) > 1 or len(ones) > 1:
        return None
    return (_CHINESE_DIGITS[tens] if tens else 1) * 10 + (_CHINESE_DIGITS[ones] if ones else 0)


def normalize_text(value: str) -> str:
    """Light normalisation for names and cells: NFKC, casefold, collapse whitespace, strip."""
    return _SPACES_RE.sub(" ", unicodedata.normalize("NFKC", value).casefold()).strip()


def normalize_cell(value: object) -> str | None:
    """A comparable form of one cell, or None when the value is not a string or number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return normalize_text(value)
    return None


def _house_label(number: int) -> str:
    return f"House {number}"


# --------------------------------------------------------------------------------------------------
# Ground truth
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GoldGrid:
    """A parsed ground truth: house number -> {normalised category: normalised value}."""

    cells: Mapping[int, Mapping[str, str]]
    categories: tuple[str, ...]  # as written in the gold, first house's order
    raw: Mapping[str, Mapping[str, Any]]

    @property
    def cell_count(self) -> int:
        return sum(len(row) for row in self.cells.values())


def parse_ground_truth(ground_truth: Any) -> GoldGrid:
    """The study's ground truth: a JSON string (or object) of the grid. Malformed -> DataError.

    Also accepted: the whole reward_model dict (its "ground_truth" is used) and the study's
    answer wrapper {"reasoning": ..., "solution": grid}.
    """
    value = ground_truth
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise DataError(f"zebra ground_truth is not valid JSON: {exc}") from None
    if isinstance(value, Mapping) and "ground_truth" in value:
        return parse_ground_truth(value["ground_truth"])
    if isinstance(value, Mapping) and isinstance(value.get("solution"), Mapping):
        value = value["solution"]
    if not isinstance(value, Mapping) or not value:
        raise DataError(f"zebra ground_truth must be a non-empty JSON object of houses, got {type(value).__name__}")
    cells: dict[int, dict[str, str]] = {}
    raw: dict[str, Mapping[str, Any]] = {}
    categories: tuple[str, ...] = ()
    for label, row in value.items():
        number = house_number(label)
        if number is None:
            raise DataError(f"zebra ground_truth has a key that is not a house label: {label!r}")
        if number in cells:
            raise DataError(f"zebra ground_truth names house {number} twice")
        if not isinstance(row, Mapping) or not row:
            raise DataError(f"zebra ground_truth house {label!r} is not a non-empty object")
        normalised: dict[str, str] = {}
        for category, cell in row.items():
            key, text = normalize_text(str(category)), normalize_cell(cell)
            if text is None or key in normalised:
                raise DataError(f"zebra ground_truth house {label!r} has a bad cell {category!r}: {cell!r}")
            normalised[key] = text
        cells[number] = normalised
        raw[str(label)] = row
        if not categories:
            categories = tuple(str(c) for c in row)
    return GoldGrid(cells=dict(sorted(cells.items())), categories=categories, raw=raw)


# --------------------------------------------------------------------------------------------------
# Extraction: the last JSON grid in the response
# --------------------------------------------------------------------------------------------------

_MAX_GRID_DEPTH = 4
_WRAPPER_KEYS = ("solution", "answer", "grid", "final answer", "答案", "解答")


def _is_grid(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and all(house_number(k) is not None for k in value)


def _grid_in(value: Any, depth: int = 0) -> dict | None:
    """The solution grid inside a parsed JSON value: the wrapper's "solution" first, else the value
    itself if its keys are house labels, else the last grid nested inside (bounded depth)."""
    if depth > _MAX_GRID_DEPTH:
        return None
    if isinstance(value, dict):
        for key, inner in value.items():
            if isinstance(key, str) and normalize_text(key) in _WRAPPER_KEYS:
                found = _grid_in(inner, depth + 1)
                if found is not None:
                    return found
        if _is_grid(value):
            return value
        children = list(value.values())
    elif isinstance(value, list):
        children = value
    else:
        return None
    for inner in reversed(children):
        found = _grid_in(inner, depth + 1)
        if found is not None:
            return found
    return None


def last_json_grid(text: str) -> dict | None:
    """The last complete JSON object in `text` that is (or wraps) a solution grid, or None."""
    for value in json_objects_from_end(text):
        grid = _grid_in(value)
        if grid is not None:
            return grid
    return None


def extract_grid(response: str) -> tuple[dict | None, str]:
    """The predicted grid and "ok", or None and why not."""
    scope, where = answer_region(response)
    if where == "ok" and not scope.strip():
        return None, "empty <answer>"
    grid = last_json_grid(scope)
    if grid is None:
        return None, "no JSON solution"
    return grid, "ok"


# --------------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------------


def _row_cells(row: Any) -> dict[str, str | None]:
    """{normalised category: normalised cell or None (wrong)} of one predicted house."""
    if not isinstance(row, Mapping):
        return {}
    cells: dict[str, str | None] = {}
    for category, value in row.items():
        key, cell = normalize_text(str(category)), normalize_cell(value)
        cells[key] = cell if key not in cells or cells[key] == cell else None  # conflicting duplicate
    return cells


def _labels(numbers: Sequence[int]) -> str:
    return ", ".join(_house_label(n) for n in sorted(numbers))


def score_grid(predicted: Mapping[str, Any], gold: GoldGrid, match: str = "house") -> Verdict:
    """Cell accuracy of a predicted grid (house label -> row) against the gold grid."""
    if match not in MATCH_MODES:
        raise DataError(f"zebra_match must be one of {MATCH_MODES}, got {match!r}")
    rows: dict[int, dict[str, str | None]] = {}
    duplicated: set[int] = set()
    for label, row in predicted.items():
        number = house_number(label)
        if number is None:
            return Verdict.fail(f"not a house label: {str(label)[:40]!r}")
        if number in rows:
            duplicated.add(number)
        rows[number] = _row_cells(row)
    for number in duplicated:
        rows[number] = {}  # two rows for one house: neither counts
    missing = [n for n in gold.cells if n not in rows]
    extra = [n for n in rows if n not in gold.cells]

    if match == "house":
        pairs = [(gold.cells[n], rows.get(n, {})) for n in gold.cells]
    else:
        anchor = normalize_text(gold.categories[0])
        by_anchor = {row[anchor]: n for n, row in gold.cells.items() if anchor in row}
        pairs, used = [], set()
        for number in sorted(rows):
            gold_number = by_anchor.get(rows[number].get(anchor))
            if gold_number is not None and gold_number not in used:
                used.add(gold_number)
                pairs.append((gold.cells[gold_number], rows[number]))
        pairs.extend((gold.cells[n], {}) for n in gold.cells if n not in used)

    correct = sum(1 for gold_row, row in pairs for key, cell in gold_row.items() if row.get(key) == cell)
    total = gold.cell_count
    categories = max((len(r) for r in gold.cells.values()), default=0)
    denominator = total + len(extra) * categories
    fraction = correct / denominator if denominator else 0.0
    problems = []
    if missing:
        problems.append(f"missing houses: {_labels(missing)}")
    if extra:
        problems.append(f"extra houses: {_labels(extra)}")
    if duplicated:
        problems.append(f"duplicate houses: {_labels(sorted(duplicated))}")
    if correct < total:
        problems.append(f"{total - correct}/{total} cells wrong")
    details = {"correct_cells": correct, "cells": total}
    if not problems:
        return Verdict(acc=True, fraction=1.0, reason="ok", details=details)
    return Verdict(acc=False, fraction=min(fraction, 1.0), reason="; ".join(problems), details=details)


def verify(response: str, ground_truth: Any, extra_info: Mapping[str, Any] | None = None) -> Verdict:
    """Score one response (the assistant turn) against the study's ground-truth grid."""
    gold = parse_ground_truth(ground_truth)
    match = "house"
    if extra_info and extra_info.get("zebra_match") is not None:
        match = str(extra_info["zebra_match"])
    if match not in MATCH_MODES:
        raise DataError(f"extra_info zebra_match must be one of {MATCH_MODES}, got {match!r}")
    grid, reason = extract_grid(response)
    if grid is None:
        return Verdict.fail(reason)
    return score_grid(grid, gold, match)


# --------------------------------------------------------------------------------------------------
# Generator: value pools, clue sentences, prompt
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CategoryPool:
    """One attribute category in both languages; values[i] in English translates zh_values[i]."""

    name: str
    zh_name: str
    phrase: str      # English noun phrase with {v}: "the {v} drinker"
    zh_phrase: str   # Chinese noun phrase with {v}: "喝{v}的人"
    values: tuple[str, ...]
    zh_values: tuple[str, ...]


#: Names always come first; the other categories are drawn per puzzle. Values are unique across all
#: pools in each language, so a value names exactly one cell of the grid.
POOLS: tuple[CategoryPool, ...] = (
    CategoryPool("Names", "姓名", "{v}", "{v}",
                 ("Alice", "Bob", "Carol", "David", "Emma", "Frank", "Grace", "Henry"),
                 ("张伟", "李娜", "王芳", "刘洋", "陈静", "杨磊", "赵敏", "黄涛")),
    CategoryPool("Colors", "颜色", "the person whose favorite color is {v}", "最喜欢{v}的人",
                 ("red", "green", "blue", "yellow", "white", "purple", "orange", "black"),
                 ("红色", "绿色", "蓝色", "黄色", "白色", "紫色", "橙色", "黑色")),
    CategoryPool("Pets", "宠物", "the {v} owner", "养{v}的人",
                 ("cat", "dog", "bird", "fish", "rabbit", "hamster", "turtle", "horse"),
                 ("猫", "狗", "鸟", "鱼", "兔子", "仓鼠", "乌龟", "马")),
    CategoryPool("Drinks", "饮料", "the {v} drinker", "喝{v}的人",
                 ("tea", "coffee", "milk", "water", "juice", "soda", "cocoa", "lemonade"),
                 ("茶", "咖啡", "牛奶", "水", "果汁", "汽水", "可可", "柠檬水")),
    CategoryPool("Sports", "运动", "the {v} fan", "喜欢{v}的人",
                 ("soccer", "tennis", "basketball", "swimming", "cycling", "golf", "baseball", "volleyball"),
                 ("足球", "网球", "篮球", "游泳", "骑行", "高尔夫", "棒球", "排球")),
    CategoryPool("Jobs", "职业", "the {v}", "职业是{v}的人",
                 ("teacher", "doctor", "engineer", "artist", "chef", "pilot", "lawyer", "nurse"),
                 ("教师", "医生", "工程师", "艺术家", "厨师", "飞行员", "律师", "护士")),
    CategoryPool("Cars", "汽车", "the {v} driver", "开{v}的人",
                 ("Toyota", "Ford", "BMW", "Honda", "Tesla", "Audi", "Volvo", "Kia"),
                 ("丰田", "福特", "宝马", "本田", "特斯拉", "奥迪", "沃尔沃", "起亚")),
    CategoryPool("Flowers", "花卉", "the {v} grower", "种{v}的人",
                 ("rose", "tulip", "lily", "daisy", "orchid", "sunflower", "carnation", "iris"),
                 ("玫瑰", "郁金香", "百合", "雏菊", "兰花", "向日葵", "康乃馨", "鸢尾")),
    CategoryPool("Music", "音乐", "the {v} listener", "听{v}音乐的人",
                 ("jazz", "rock", "pop", "classical", "blues", "hip-hop", "country", "reggae"),
                 ("爵士", "摇滚", "流行", "古典", "蓝调", "嘻哈", "乡村", "雷鬼")),
    CategoryPool("Fruits", "水果", "the {v} lover", "爱吃{v}的人",
                 ("apple", "banana", "cherry", "grape", "mango", "peach", "pear", "kiwi"),
                 ("苹果", "香蕉", "樱桃", "葡萄", "芒果", "桃子", "梨", "猕猴桃")),
    CategoryPool("Hobbies", "爱好", "the person whose hobby is {v}", "爱好是{v}的人",
                 ("reading", "painting", "gardening", "cooking", "chess", "hiking", "photography", "knitting"),
                 ("阅读", "绘画", "园艺", "烹饪", "下棋", "徒步", "摄影", "编织")),
    CategoryPool("Nationalities", "国籍", "the {v} person", "{v}人",
                 ("British", "German", "Japanese", "Brazilian", "Canadian", "Indian", "French", "Mexican"),
                 ("英国", "德国", "日本", "巴西", "加拿大", "印度", "法国", "墨西哥")),
    CategoryPool("Books", "书籍", "the {v} reader", "爱读{v}的人",
                 ("mystery", "fantasy", "romance", "science fiction", "history", "poetry", "biography", "horror"),
                 ("推理小说", "奇幻小说", "爱情小说", "科幻小说", "历史书", "诗歌", "传记", "恐怖小说")),
    CategoryPool("Instruments", "乐器", "the {v} player", "演奏{v}的人",
                 ("piano", "guitar", "violin", "drums", "flute", "cello", "trumpet", "harp"),
                 ("钢琴", "吉他", "小提琴", "鼓", "长笛", "大提琴", "小号", "竖琴")),
)

_CLUE_TEXT = {
    "en": {
        FOUND: "{a} lives in house {k}.",
        NOT_AT: "{a} does not live in house {k}.",
        SAME: "{a} is {b}.",
        NOT_SAME: "{a} is not {b}.",
        LEFT_OF: "{a} lives directly left of {b}.",
        SOMEWHERE_LEFT: "{a} lives somewhere to the left of {b}.",
        NEXT_TO: "{a} and {b} live next to each other.",
    },
    "zh": {
        FOUND: "{a}住在{k}号房子。",
        NOT_AT: "{a}不住在{k}号房子。",
        SAME: "{a}就是{b}。",
        NOT_SAME: "{a}不是{b}。",
        LEFT_OF: "{a}的房子紧挨在{b}的房子左边。",
        SOMEWHERE_LEFT: "{a}住在{b}左边的某栋房子里（不一定相邻）。",
        NEXT_TO: "{a}和{b}住在相邻的两栋房子里。",
    },
}

_PROMPT_TEXT = {
    "en": {
        "title": "# Puzzle to Solve",
        "intro": ("There are {n} houses in a row, numbered 1 to {n} from left to right. Each house is "
                  "occupied by a different person, and for each category below every house has a "
                  "different value. Using only the clues below, work out which value of each category "
                  "belongs to each house."),
        "clues": "### Clues for the Puzzle",
        "choices": "### Choices",
        "instruction": ("# Instruction\n\nNow please solve the above puzzle. Present your reasoning and "
                        "solution in the following json format:"),
        "reasoning": "Checking all {k} clues leaves exactly one arrangement: {rows}.",
        "reasoning_any": "Checking the clues leaves exactly one arrangement: {rows}.",
        "row": "House {h}: {values}",
        "joiner": "; ",
        "value_joiner": ", ",
    },
    "zh": {
        "title": "# 待解谜题",
        "intro": ("有{n}栋房子排成一排，从左到右依次编号为1到{n}。每栋房子里住着一个不同的人；对于下面的"
                  "每个类别，每栋房子的取值各不相同。请仅根据下面的线索，确定每个类别的每个取值属于哪栋房子。"),
        "clues": "### 谜题线索",
        "choices": "### 选项",
        "instruction": "# 说明\n\n现在请解答上面的谜题。请按以下 JSON 格式给出你的推理过程和答案：",
        "reasoning": "逐条检验全部{k}条线索，只有一种排列满足所有线索：{rows}。",
        "reasoning_any": "逐条检验线索，只有一种排列满足所有线索：{rows}。",
        "row": "{h}号房子：{values}",
        "joiner": "；",
        "value_joiner": "、",
    },
}

INSTRUCTIONS = {
    "en": ("Give the final JSON object (with your reasoning and solution, in the format above) inside "
           "<answer> </answer> tags."),
    "zh": "请把最终的 JSON 对象（按上面的格式，包含推理过程和答案）放在 <answer> </answer> 标签中。",
}


def grid_for_difficulty(difficulty: int) -> Grid:
    """Level d in 2..6 -> d houses x d categories; 10*h + c (h, c in 2..8) -> h houses x c categories."""
    if 2 <= difficulty <= 6:
        return Grid(difficulty, difficulty)
    houses, categories = divmod(difficulty, 10)
    if 2 <= houses <= 8 and 2 <= categories <= 8:
        return Grid(houses, categories)
    raise ValueError(f"zebra difficulty must be 2..6 (an n x n grid) or 10*houses + categories "
                     f"with both in 2..8 (e.g. 43), got {difficulty}")


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _answer_template(categories: Sequence[str], houses: int) -> str:
    solution = {_house_label(h): {c: "___" for c in categories} for h in range(1, houses + 1)}
    return json.dumps({"reasoning": "___", "solution": solution}, ensure_ascii=False)


def reference_response(grid: Mapping[str, Mapping[str, str]], lang: str = "en", clue_count: int | None = None) -> str:
    """A response in the study's answer shape that scores 1 against `grid`."""
    text = _PROMPT_TEXT[lang]
    rows = text["joiner"].join(
        text["row"].format(h=house_number(label) or label, values=text["value_joiner"].join(map(str, row.values())))
        for label, row in grid.items())
    template = text["reasoning"] if clue_count is not None else text["reasoning_any"]
    reasoning = template.format(k=clue_count, rows=rows)
    answer = json.dumps({"reasoning": reasoning, "solution": grid}, ensure_ascii=False)
    return f"<think>\n{reasoning}\n</think>\n<answer>\n{answer}\n</answer>"


def _render_puzzle(puzzle: Puzzle, pools: Sequence[CategoryPool], values: Sequence[Sequence[int]],
                   lang: str) -> tuple[str, dict[str, dict[str, str]], list[str], list[list[str]]]:
    """The question text, the solution grid, category names and Choices lists in `lang`."""
    n = puzzle.grid.houses
    text = _PROMPT_TEXT[lang]
    zh = lang == "zh"
    names = [p.zh_name if zh else p.name for p in pools]
    labels = [[(p.zh_values if zh else p.values)[i] for i in chosen] for p, chosen in zip(pools, values)]

    def phrase(variable: int) -> str:
        category, value = divmod(variable, n)
        pool = pools[category]
        return (pool.zh_phrase if zh else pool.phrase).format(v=labels[category][value])

    clue_lines = []
    for number, clue in enumerate(puzzle.clues, start=1):
        template = _CLUE_TEXT[lang][clue.kind]
        sentence = template.format(a=phrase(clue.a), b=phrase(clue.b) if clue.b >= 0 else "",
                                   k=clue.house + 1)
        clue_lines.append(f"{number}. {_sentence(sentence)}")
    choices = [f"{name}: {json.dumps(label, ensure_ascii=False)}" for name, label in zip(names, labels)]
    question = "\n\n".join([
        text["title"],
        text["intro"].format(n=n),
        text["clues"],
        "\n".join(clue_lines),
        text["choices"],
        "\n".join(choices),
        text["instruction"],
        _answer_template(names, n),
    ])
    grid = {
        _house_label(h + 1): {names[c]: labels[c][puzzle.value_at(c, h)] for c in range(len(pools))}
        for h in range(n)
    }
    return question, grid, names, labels


@dataclass(frozen=True)
class GeneratedPuzzle:
    """The language-free puzzle behind one generated item, and the pools and values it names."""

    puzzle: Puzzle
    pools: tuple[CategoryPool, ...]
    values: tuple[tuple[int, ...], ...]  # per category, indices into its pool, in Choices order


def build_puzzle(index: int, seed: int, difficulty: int) -> GeneratedPuzzle:
    """Deterministic in (seed, index, difficulty); the same for every language."""
    shape = grid_for_difficulty(difficulty)
    if shape.categories > len(POOLS) or shape.houses > min(len(p.values) for p in POOLS):
        raise ValueError(f"no value pools for a {shape.houses} x {shape.categories} grid")
    rng = random.Random(f"{NAME}-{seed}-{difficulty}-{index}")
    pools = (POOLS[0], *rng.sample(POOLS[1:], shape.categories - 1))
    values = tuple(tuple(sorted(rng.sample(range(len(p.values)), shape.houses))) for p in pools)
    return GeneratedPuzzle(generate_puzzle(rng, shape), pools, values)


def generate(index: int, seed: int, difficulty: int, lang: str = "en") -> Problem:
    """One puzzle, deterministic in (seed, index, difficulty); both languages get the same puzzle."""
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}; known: {', '.join(LANGUAGES)}")
    built = build_puzzle(index, seed, difficulty)
    question, grid, names, labels = _render_puzzle(built.puzzle, built.pools, built.values, lang)
    return Problem(
        domain=NAME,
        data_source=NAME,
        question=question,
        ground_truth=json.dumps(grid, ensure_ascii=False),
        difficulty=difficulty,
        lang=lang,
        reference=reference_response(grid, lang, clue_count=len(built.puzzle.clues)),
        extra_info={"categories": names, "labels": labels, "houses": built.puzzle.grid.houses,
                    "clues": len(built.puzzle.clues), "seed": seed, "index": index},
    )


# --------------------------------------------------------------------------------------------------
# The study's parquet rows
# --------------------------------------------------------------------------------------------------

_PUZZLE_START = "# Puzzle to Solve"
_ASSISTANT_TAIL_RE = re.compile(r"\s*(?:Assistant:|<\|im_start\|>assistant)\s*(?:<think>)?\s*$")




def puzzle_text(prompt_text: str) -> str:
    """The puzzle, clues, choices and JSON format of a study prompt, without the R1 preamble and
    the trailing "Assistant: <think>"."""
    start = prompt_text.find(_PUZZLE_START)
    text = prompt_text[start:] if start >= 0 else prompt_text
    return _ASSISTANT_TAIL_RE.sub("", text).strip()


def load_row(row: Mapping[str, Any], where: str) -> Problem:
    """One row of the study's zebra parquet."""
    reward_model = row.get("reward_model")
    if not isinstance(reward_model, Mapping) or "ground_truth" not in reward_model:
        raise DataError(f"{where}: zebra row has no reward_model.ground_truth")
    ground_truth = reward_model["ground_truth"]
    try:
        gold = parse_ground_truth(ground_truth)
    except DataError as exc:
        raise DataError(f"{where}: {exc}") from None
    messages = plain(row.get("prompt"))
    if isinstance(messages, str):
        content = messages
    elif isinstance(messages, list) and messages and all(isinstance(m, Mapping) for m in messages):
        users = [m for m in messages if m.get("role") == "user"] or messages
        content = str(users[-1].get("content", ""))
    else:
        raise DataError(f"{where}: zebra row has no prompt messages")
    question = puzzle_text(content)
    if not question:
        raise DataError(f"{where}: zebra row has an empty prompt")
    categories = plain(reward_model.get("categories"))
    labels = plain(reward_model.get("labels"))
    grid = {str(label): {str(k): v for k, v in r.items()} for label, r in gold.raw.items()}
    return Problem(
        domain=NAME,
        data_source=str(row.get("data_source") or NAME),
        question=question,
        ground_truth=ground_truth if isinstance(ground_truth, str) else json.dumps(plain(ground_truth)),
        difficulty=len(gold.cells),
        lang="en",
        reference=reference_response(grid, "en"),
        extra_info={"categories": [str(c) for c in categories] if categories else list(gold.categories),
                    "labels": [[str(v) for v in vs] for vs in labels] if labels else [],
                    "houses": len(gold.cells)},
    )


def _grid_size(problem: Problem) -> str | None:
    """houses x attributes, read from the ground-truth grid (the study's files carry no size column)."""
    grid = problem.ground_truth
    if isinstance(grid, str):
        try:
            grid = json.loads(grid)
        except json.JSONDecodeError:
            return None
    if isinstance(grid, dict) and "solution" in grid and isinstance(grid["solution"], dict):
        grid = grid["solution"]
    if not isinstance(grid, dict) or not grid:
        return None
    first = next(iter(grid.values()))
    return f"{len(grid)}x{len(first)}" if isinstance(first, dict) else None


DOMAIN = register_domain(Domain(
    released=("zebra",), ability="logic",
    suites=(SuiteDef("zebra", "ZebraLogic (Logic Puzzle Baron grids), by grid size houses x attributes",
                     "paper/zebra/test.parquet", group=_grid_size),),
    name=NAME,
    group="puzzle",
    data_sources=DATA_SOURCES,
    verify=verify,
    instructions=INSTRUCTIONS,
    default_reward=RewardConfig(mode="proportional"),
    difficulties=DIFFICULTIES,
    generate=generate,
    load_row=load_row,
    description="Logic-grid (zebra) puzzles: JSON grid answers scored by cell accuracy, houses matched by label.",
))
