"""Knights and knaves: the study's KK logic puzzles (loader, verifier, solver, generator).

Every inhabitant of the island is a knight (always tells the truth) or a knave (always lies) and makes
one statement about the others. The task is to name each person's role.

Formats kept as the study released them:
- ground truth: ``{"solution_text_format": "(1) Aurora is a knight\\n(2) Logan is a knave", "statements":
  "(('lying', 1), ...)"}`` as a dict or a JSON string. Only ``solution_text_format`` is needed to score;
  ``statements`` (optional) is what the solver reads.
- statements: nested tuples over 0-based person indices: ``('telling-truth', i)``, ``('lying', i)``,
  ``('not', s)``, ``('and', s1, s2, ...)``, ``('or', s1, s2, ...)``, ``('->', a, b)``, ``('<=>', a, b)``.

The verifier reads the last ``<answer>`` block and matches people by NAME, case-insensitively, never by
position. It accepts numbered lists ("(1) Aurora is a knight"), prose ("Aurora is a knight, Logan is a
knave, and Henry is a knave."), "Aurora: knight", "Aurora — knave", group phrasings ("Knights: Aurora,
Henry", "Logan and Henry are knaves"), and Chinese ("张伟是骑士", "李娜是无赖/骗子/恶棍").
Decisions, and why:
- "X is not a knight" counts as "X is a knave": the puzzle states that everyone is one or the other, so
  the negation is an unambiguous claim ("不是骑士" likewise).
- Words that counted nothing in the study's scorer do not count here either: we never compare the number
  of knight/knave words with the number of people (the study's bug: a correct list followed by "So there
  are 2 knights." scored 0).
- A person claimed to be both a knight and a knave anywhere in the answer is wrong ("contradictory"):
  hedging over both roles must not earn reward.
- Names that are not in the puzzle are ignored for the score and listed in ``details["unknown_names"]``.
- Explanations inside the answer claim nothing: quoted sentences (cited statements), names after
  "if/suppose/assume" or "says/claims/claim that" in the same clause, and clauses with "would/could/might".
  The price: a JSON list of quoted sentences (["Aurora is a knight", ...]) claims nothing either.
What is NOT covered: claims whose subject is a pronoun ("she is a knight"), "X is a knight, and so is
Y" (Y gets no role), "neither X nor Y is a knight", double negation, and role words placed before a
name in the middle of a sentence ("... so a knight is Aurora"). Those people count as missing (or wrong),
which costs reward but never grants it. Unknown names are flagged for Latin-script names only.
"""

from __future__ import annotations

import ast
import bisect
import json
import random
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any

from mdrl.plain import plain
from mdrl.domains.base import DataError, Domain, Problem, SuiteDef, by_difficulty
from mdrl.domains.registry import register_domain
from mdrl.verify.extract import answer_block
from mdrl.verify.result import Verdict, parse_json_field
from mdrl.verify.shaping import RewardConfig

DOMAIN_NAME = "knights_knaves"
STUDY_SOURCE = "kk_logic"
KNIGHT, KNAVE = "knight", "knave"
MIN_PEOPLE, MAX_PEOPLE = 2, 8
DIFFICULTIES = tuple(range(MIN_PEOPLE, MAX_PEOPLE + 1))
#: The solver enumerates 2**n assignments as the bits of one integer: cap n so that stays small.
SOLVER_MAX_PEOPLE = 16

INSTRUCTIONS = {
    "en": (
        "After thinking, when you finally reach a conclusion, clearly state the identity of each "
        "character within <answer> </answer> tags. List the identity of each person one by one, for "
        "example, <answer> (1) Zoey is a knight\n(2) Oliver is a knight\n(3)... </answer>."
    ),
    "zh": (
        "思考之后，当你最终得出结论时，请在 <answer> </answer> 标签内清楚地说明每个角色的身份。"
        "逐一列出每个人的身份，例如：<answer> (1) 张伟是骑士\n(2) 王芳是无赖\n(3)... </answer>。"
    ),
}

# ---------------------------------------------------------------------------------------------------
# Logic: the statements format and a solver that enumerates every assignment
# ---------------------------------------------------------------------------------------------------

LEAF_OPS = ("telling-truth", "lying")
UNARY_OPS = ("not",)
VARIADIC_OPS = ("and", "or")
BINARY_OPS = ("->", "<=>")

Statement = tuple  # nested tuples, see the module docstring


def parse_statements(value: Any) -> tuple[Statement, ...]:
    """The statements tuple from the study's string (read with ast.literal_eval, never eval) or a tuple.

    Checks the structure (known ops, arities, person indices in range) and raises DataError otherwise.
    """
    if isinstance(value, (str, bytes)):
        text = value.decode() if isinstance(value, bytes) else value
        try:
            value = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
            raise DataError(f"statements are not a Python literal: {exc}") from None
    if not isinstance(value, (tuple, list)) or not value:
        raise DataError("statements must be a non-empty tuple, one statement per person")
    people = len(value)
    if people > SOLVER_MAX_PEOPLE:
        raise DataError(f"{people} people: the solver handles at most {SOLVER_MAX_PEOPLE}")
    return tuple(_check_statement(s, people) for s in value)


def _check_statement(node: Any, people: int, depth: int = 0) -> Statement:
    if depth > 32 or not isinstance(node, (tuple, list)) or not node:
        raise DataError(f"malformed statement {node!r}")
    op, args = node[0], node[1:]
    if op in LEAF_OPS:
        if len(args) != 1 or not isinstance(args[0], int) or isinstance(args[0], bool) \
                or not 0 <= args[0] < people:
            raise DataError(f"statement {node!r}: expected ({op!r}, person index in [0, {people}))")
        return (op, args[0])
    if op in UNARY_OPS and len(args) == 1 or op in VARIADIC_OPS and args or op in BINARY_OPS and len(args) == 2:
        return (op, *(_check_statement(a, people, depth + 1) for a in args))
    raise DataError(f"statement {node!r}: unknown op or wrong number of operands")


@cache
def _truth_masks(people: int) -> tuple[int, tuple[int, ...]]:
    """Bit a of mask i is set when, in assignment a, person i is a knight (bit i of a).

    With every assignment a bit of one integer, a statement is evaluated for all 2**n assignments at
    once with &, |, ^: an 8-person puzzle costs a few dozen integer operations, not 256 evaluations.
    """
    assignments = 1 << people
    full = (1 << assignments) - 1
    masks = []
    for person in range(people):
        # assignments with bit `person` set form runs of 2**person ones every 2**(person+1) bits
        run = (1 << (1 << person)) - 1
        period = 1 << (person + 1)
        mask = 0
        for start in range(1 << person, assignments, period):
            mask |= run << start
        masks.append(mask)
    return full, tuple(masks)


def _truth_set(node: Statement, full: int, knights: tuple[int, ...]) -> int:
    op = node[0]
    if op == "telling-truth":
        return knights[node[1]]
    if op == "lying":
        return full ^ knights[node[1]]
    if op == "not":
        return full ^ _truth_set(node[1], full, knights)
    if op == "and":
        result = full
        for arg in node[1:]:
            result &= _truth_set(arg, full, knights)
        return result
    if op == "or":
        result = 0
        for arg in node[1:]:
            result |= _truth_set(arg, full, knights)
        return result
    left, right = _truth_set(node[1], full, knights), _truth_set(node[2], full, knights)
    if op == "->":
        return (full ^ left) | right
    return full ^ (left ^ right)  # '<=>'


def _consistent_set(statements: Sequence[Statement]) -> int:
    """Bit set of the assignments in which every knight's statement is true and every knave's false."""
    full, knights = _truth_masks(len(statements))
    consistent = full
    for person, statement in enumerate(statements):
        consistent &= full ^ (_truth_set(statement, full, knights) ^ knights[person])
        if not consistent:
            break
    return consistent


def solve(statements: Any) -> list[tuple[bool, ...]]:
    """Every consistent assignment (True = knight), by enumerating all 2**n of them."""
    parsed = parse_statements(statements)
    consistent = _consistent_set(parsed)
    people = len(parsed)
    return [tuple(bool(a >> i & 1) for i in range(people))
            for a in range(1 << people) if consistent >> a & 1]


def _unique_solution(statements: Sequence[Statement]) -> tuple[bool, ...] | None:
    consistent = _consistent_set(statements)
    if not consistent or consistent & (consistent - 1):
        return None  # none, or more than one
    a = consistent.bit_length() - 1
    return tuple(bool(a >> i & 1) for i in range(len(statements)))


# ---------------------------------------------------------------------------------------------------
# Ground truth
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Solution:
    """Names in puzzle order and their roles ("knight" / "knave")."""

    names: tuple[str, ...]
    roles: tuple[str, ...]

    def text_format(self) -> str:
        """The study's solution_text_format: "(1) Aurora is a knight\\n(2) ..."."""
        return "\n".join(f"({i}) {name} is a {role}" for i, (name, role) in
                         enumerate(zip(self.names, self.roles), start=1))


_GT_LINE = re.compile(
    r"^\(\s*(\d+)\s*\)\s*(?P<name>\S.*?)\s*(?:is\s+an?\s+(?P<en>knight|knave)|是(?P<zh>骑士|无赖))\s*[.。]?$",
    re.IGNORECASE,
)


@lru_cache(maxsize=65_536)
def parse_solution_text(text: str) -> Solution:
    """Names and roles from a solution_text_format string; DataError when it is not one."""
    names: list[str] = []
    roles: list[str] = []
    for line in text.strip().splitlines():
        if not line.strip():
            continue
        match = _GT_LINE.match(line.strip())
        if match is None:
            raise DataError(f"solution_text_format line {line.strip()!r} is not '(i) NAME is a knight|knave'")
        role = (match["en"] or "").lower() or (KNIGHT if match["zh"] == "骑士" else KNAVE)
        names.append(match["name"])
        roles.append(role)
    if not names:
        raise DataError("solution_text_format lists no people")
    if len({n.casefold() for n in names}) != len(names):
        raise DataError(f"solution_text_format names a person twice: {names}")
    return Solution(tuple(names), tuple(roles))


def parse_ground_truth(ground_truth: Any) -> Solution:
    """The study's ground truth (dict or JSON string), or a bare solution_text_format string."""

    value = parse_json_field(ground_truth, "knights_knaves ground_truth")
    if isinstance(value, Mapping):
        text = value.get("solution_text_format")
    else:
        text = value
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if not isinstance(text, str):
        raise DataError("knights_knaves ground_truth needs a 'solution_text_format' string, got "
                        f"{type(value).__name__}")
    return parse_solution_text(text)


# ---------------------------------------------------------------------------------------------------
# Answer parsing: who is claimed to be what
# ---------------------------------------------------------------------------------------------------

_LATIN = r"A-Za-z0-9_\u00C0-\u024F"
_ROLE = (rf"(?<![{_LATIN}])(?:knights?|knaves?|liars?|truth[- ]?tellers?)(?![{_LATIN}])"
         r"|骑士|无赖|骗子|恶棍|说谎者")
_ROLE_RE = re.compile(_ROLE, re.IGNORECASE)
#: A claim about one person ends at the end of its clause (or at the next name).
_CLAUSE_END = re.compile(r"[\n.;,!?。；，、！？]")
_NEGATION_EN = re.compile(
    r"(?:(?<![A-Za-z])(?:not|never|nor|neither)|n['’]t)\s+"
    r"(?:(?:a|an|the|one|of|really|actually|truly|in|fact|exactly|definitely|necessarily)\s+){0,3}$",
    re.IGNORECASE,
)
_NEGATION_ZH = re.compile(r"(?:不|非)(?:是|为)?(?:一个|一名|一位|个)?\s*$")
# Group patterns run on a normalised skeleton (names replaced by markers, markdown emphasis removed, runs
# of horizontal space collapsed to one), so every optional space below is one character: no pattern can
# backtrack over a long run of spaces, and lists are bounded, so matching stays linear in the answer.
_S = " ?"
# Each separator can match a given text in one way only: with two ways per separator, a failing list of
# k names would be retried 2**k times.
_LIST_SEP = r"(?:,? and |,? ?& ?| ?[,，、] ?| ?(?:以及|和|与|及) ?)"
_NUMBERS = r"(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten|only|sole)"
_LINE_LEAD = (rf"(?:^|(?<=[\n.;,!?。；，！？])){_S}(?:[-•>#]+{_S}|\(?\d+[.)]{_S})?"
              rf"(?:(?:so|thus|therefore|hence|finally|overall|in conclusion|and|while|but|whereas)[,，]?{_S})?"
              rf"(?:(?:the|there (?:are|is)){_S})?(?:{_NUMBERS}{_S})?")
_ROLE_FIRST_CONN = rf"{_S}(?:are|is|include|includes|[:：=\-—–]|是|为|有|包括){_S}"
_NAMES_FIRST_CONN = (rf"{_S}(?P<conn>are not|aren['’]t|were not|are|were|都不是|均不是|不是|"
                     rf"都是|均为|均是|是|为|[:：=\-—–]){_S}(?:both |all |all the |the )?")
#: Quoted spans, paired left to right on one line ("..." “...” 「...」 '...'; an apostrophe inside a word
#: opens or closes nothing).
_QUOTED_RE = re.compile(r'"[^"\n]*"|“[^”\n]*”|「[^」\n]*」|(?<![A-Za-z])\'[^\'\n]*\'(?![A-Za-z])')
_FILLER_RE = re.compile(r"(?<![A-Za-z])(?:an?|the)(?![A-Za-z])|[^\w\u4e00-\u9fff]+", re.IGNORECASE)
#: A name in a hypothetical or in reported speech makes no claim: "if he were a knight, Henry would be
#: a knight", "because Logan's claim that Henry is a knight is false", "因为她说王芳是骑士".
_NOT_A_CLAIM_BEFORE_RE = re.compile(
    r"(?<![A-Za-z])(?:if|assume|assuming|suppose|supposing|says|said|claims|claimed|states|stated|"
    r"(?:claim|statement) that)(?![A-Za-z])|假设|假如|如果|若|说(?!谎)|声称", re.IGNORECASE)
_NOT_A_CLAIM_AFTER_RE = re.compile(r"(?<![A-Za-z])(?:would|could|might)(?![A-Za-z])", re.IGNORECASE)
_UNKNOWN_NAME_RE = re.compile(
    r"(?<![A-Za-z])([A-Z][a-z]+)\**\s*(?:is|was|:|-|—|–)\s*(?:not\s+)?(?:an?\s+)?(?:knight|knave)s?(?![A-Za-z])"
)
#: capitalised words before "is a knight" that are not names
_NOT_NAMES = frozenset({
    "he", "she", "it", "this", "that", "who", "which", "each", "every", "everyone", "nobody", "none",
    "identity", "role", "answer", "person", "so", "thus", "therefore", "hence", "then", "a", "the", "one",
    "character", "status", "result", "final", "conclusion", "knight", "knave", "knights", "knaves",
})


#: Group claims are matched on a skeleton of the answer in which every mention of a puzzle person is
#: replaced by this marker (\x00 index \x01): the group patterns then compile once, not per puzzle.
_MARK = r"\x00\d+\x01"
_MARK_RE = re.compile(r"\x00(\d+)\x01")
_MAX_LIST = 20  # a list of more names than any puzzle has people is not a claim
_NAMES_FIRST_RE = re.compile(
    rf"(?P<names>{_MARK}(?:{_LIST_SEP}{_MARK}){{1,{_MAX_LIST}}}){_NAMES_FIRST_CONN}(?P<role>{_ROLE})",
    re.IGNORECASE)
_ROLE_FIRST_RE = re.compile(
    rf"{_LINE_LEAD}(?P<role>{_ROLE}){_ROLE_FIRST_CONN}(?P<names>{_MARK}(?:{_LIST_SEP}{_MARK}){{0,{_MAX_LIST}}})",
    re.IGNORECASE)
_EMPHASIS_RE = re.compile(r"[*`]+")
_SPACES_RE = re.compile(r"[^\S\n]+")
_WORD_RE = re.compile(rf"[{_LATIN}]+")


@lru_cache(maxsize=4096)
def _name_pattern(names: tuple[str, ...]) -> re.Pattern[str]:
    """A regex for names that are neither one Latin word nor free of Latin letters ("Mary Ann")."""
    latin = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return re.compile(rf"(?<![{_LATIN}])(?:{latin})(?![{_LATIN}])", re.IGNORECASE)


def _find_mentions(answer: str, names: Sequence[str]) -> list[tuple[int, int, int]]:
    """(person, start, end) of every mention of a puzzle name, in order, case-insensitively.

    A Latin name is a whole word ("Ava" is not in "Avery"): words are looked up in a dict, so a new puzzle
    costs no regex compilation. CJK names sit right next to other CJK text ("张伟是骑士") and are found as
    substrings. Where two mentions overlap, the longer wins ("张伟华" over "张伟").
    """
    words: dict[str, int] = {}
    cjk: list[tuple[int, str]] = []
    other: list[str] = []
    for person, name in enumerate(names):
        if _WORD_RE.fullmatch(name):
            words[name.casefold()] = person
        elif not re.search(rf"[{_LATIN}]", name):
            cjk.append((person, name))
        else:
            other.append(name)
    found: list[tuple[int, int, int]] = []
    if words:
        for word in _WORD_RE.finditer(answer):
            person = words.get(word.group(0).casefold())
            if person is not None:
                found.append((person, word.start(), word.end()))
    for person, name in cjk:
        at = answer.find(name)
        while at >= 0:
            found.append((person, at, at + len(name)))
            at = answer.find(name, at + len(name))
    if other:
        index = {n.casefold(): names.index(n) for n in other}
        found += [(index[m.group(0).casefold()], m.start(), m.end())
                  for m in _name_pattern(tuple(other)).finditer(answer) if m.group(0).casefold() in index]
    found.sort(key=lambda m: (m[1], m[1] - m[2]))  # by start, longer first
    mentions: list[tuple[int, int, int]] = []
    for mention in found:
        if not mentions or mention[1] >= mentions[-1][2]:
            mentions.append(mention)
    return mentions


def _negated(prefix: str) -> bool:
    return bool(_NEGATION_EN.search(prefix) or _NEGATION_ZH.search(prefix))


def _flip(role: str) -> str:
    return KNAVE if role == KNIGHT else KNIGHT


def _role_of(word: str) -> str:
    """The role a matched role word names ("Knights", "truth-teller", "骗子", ...)."""
    word = word.lower()
    return KNIGHT if word.startswith(("knight", "truth", "骑士")) else KNAVE


@dataclass(frozen=True)
class Claims:
    """What an answer says: the roles claimed for each puzzle person, and names outside the puzzle."""

    roles: Mapping[str, frozenset[str]]
    unknown_names: tuple[str, ...] = ()


def _single_claims(answer: str, mentions: Sequence[tuple[int, int, int]]) -> Iterator[tuple[int, str]]:
    """(mention number, role) for "NAME <connector> ROLE" claims: the role words between a name and the
    end of its clause or the next name ("Aurora is a knight", "Aurora: knave", "张伟不是骑士")."""
    clause_starts = [0] + [m.end() for m in _CLAUSE_END.finditer(answer)]
    # ends of "if"/"says"/... words: a mention is reported or hypothetical when one lies in its clause before it
    markers = [m.end() for m in _NOT_A_CLAIM_BEFORE_RE.finditer(answer)]
    for k, (_, begin, after) in enumerate(mentions):
        stop = mentions[k + 1][1] if k + 1 < len(mentions) else len(answer)
        end = _CLAUSE_END.search(answer, after, stop)
        window = answer[after:end.start() if end else stop]
        clause_start = clause_starts[bisect.bisect_right(clause_starts, begin) - 1]
        marker = bisect.bisect_right(markers, begin) - 1
        if marker >= 0 and markers[marker] > clause_start or _NOT_A_CLAIM_AFTER_RE.search(window):
            continue
        previous = 0
        for role in _ROLE_RE.finditer(window):
            claimed = _role_of(role.group(0))
            if _negated(window[previous:role.start()]):
                claimed = _flip(claimed)
            previous = role.end()
            yield k, claimed


def _group_claims(skeleton: str, own_claim: set[int]) -> Iterator[tuple[int, str]]:
    """(mention number, role) for "A and B are knaves" and "Knights: A, B" (also "骑士：张伟、王芳").

    `own_claim`: mentions followed by a claim of their own. In "Knaves: Logan and Henry, and Aurora is a
    knight" the list reaches Aurora, whose own claim shows that the list ended before her.
    """
    for match in _NAMES_FIRST_RE.finditer(skeleton):
        claimed = _role_of(match["role"])
        connector = match["conn"].lower()
        if "not" in connector or "n't" in connector or "n’t" in connector or "不" in connector:
            claimed = _flip(claimed)
        for mention in _MARK_RE.findall(match["names"]):
            yield int(mention), claimed
    for match in _ROLE_FIRST_RE.finditer(skeleton):
        claimed = _role_of(match["role"])
        listed = [int(m) for m in _MARK_RE.findall(match["names"])]
        if len(listed) > 1 and listed[-1] in own_claim:
            listed.pop()
        for mention in listed:
            yield mention, claimed


def _drop_cited_statement(quoted: re.Match[str]) -> str:
    """A quoted sentence with a role word cites the puzzle ('her statement "Logan is a knave" is true'):
    it claims nothing. A quoted role alone ({"Aurora": "knight"}, “骑士”) is kept."""
    content = quoted.group(0)[1:-1]
    if _ROLE_RE.search(content) and _FILLER_RE.sub("", _ROLE_RE.sub("", content)):
        return " "
    return quoted.group(0)


def parse_claims(answer: str, names: Sequence[str]) -> Claims:
    """Every role the answer claims for each of `names` (matched by name, case-insensitively)."""
    answer = answer.replace("\x00", "").replace("\x01", "")  # the skeleton's marker bytes
    answer = _QUOTED_RE.sub(_drop_cited_statement, answer)
    index = {n.casefold(): i for i, n in enumerate(names)}
    mentions = _find_mentions(answer, names)
    pieces, last = [], 0
    for k, (_, begin, after) in enumerate(mentions):
        pieces += [answer[last:begin], f"\x00{k}\x01"]
        last = after
    skeleton = _SPACES_RE.sub(" ", _EMPHASIS_RE.sub("", "".join(pieces) + answer[last:]))
    single = list(_single_claims(answer, mentions))
    roles: list[set[str]] = [set() for _ in names]
    for mention, role in (*single, *_group_claims(skeleton, {k for k, _ in single})):
        roles[mentions[mention][0]].add(role)
    unknown = sorted({m.group(1) for m in _UNKNOWN_NAME_RE.finditer(answer)
                      if m.group(1).casefold() not in index and m.group(1).lower() not in _NOT_NAMES})
    return Claims({n: frozenset(r) for n, r in zip(names, roles)}, tuple(unknown))


# ---------------------------------------------------------------------------------------------------
# Verifier
# ---------------------------------------------------------------------------------------------------


def verify(response: str, ground_truth: Any, extra_info: Mapping[str, Any] | None = None) -> Verdict:
    """Score the last <answer> block: fraction = share of people whose one claimed role is right."""
    solution = parse_ground_truth(ground_truth)  # DataError propagates: a data problem, not a model one
    answer, reason = answer_block(response)
    if answer is None:
        return Verdict.fail(reason)
    claims = parse_claims(answer, solution.names)
    missing, contradictory, wrong = [], [], []
    for name, truth in zip(solution.names, solution.roles):
        claimed = claims.roles[name]
        if not claimed:
            missing.append(name)
        elif len(claimed) > 1:
            contradictory.append(name)
        elif truth not in claimed:
            wrong.append(name)
    problems = []
    if contradictory:
        problems.append(f"contradictory role for {', '.join(contradictory)}")
    if missing:
        problems.append(f"missing roles for: {', '.join(missing)}")
    if wrong:
        problems.append(f"wrong: {', '.join(wrong)}")
    right = len(solution.names) - len(missing) - len(contradictory) - len(wrong)
    details: dict[str, Any] = {"people": len(solution.names), "right": right}
    if claims.unknown_names:
        details["unknown_names"] = list(claims.unknown_names)
    for key, value in (("missing", missing), ("contradictory", contradictory), ("wrong", wrong)):
        if value:
            details[key] = value
    return Verdict.partial(right / len(solution.names), "; ".join(problems), **details)


# ---------------------------------------------------------------------------------------------------
# Generator
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GeneratorConfig:
    """How random puzzles are drawn (the defaults match the study's KK test set)."""

    max_depth: int = field(default=2, metadata={
        "help": "Nesting depth of a statement: 1 = only 'X is a knight/knave'; 2 (the study) = one "
                "connective (not/and/or/->/<=>) over such leaves; 3+ nests connectives."})
    max_width: int = field(default=2, metadata={
        "help": "Most operands of 'and'/'or' (the study: 2)."})
    max_tries: int = field(default=100_000, metadata={
        "help": "Puzzles drawn before giving up on finding one with exactly one solution."})

    def __post_init__(self) -> None:
        if self.max_depth < 1 or self.max_width < 2 or self.max_tries < 1:
            raise ValueError(f"invalid knights_knaves generator config {self}")


DEFAULT_CONFIG = GeneratorConfig()

NAMES_EN = (
    "Aurora", "Logan", "Henry", "Zoey", "Oliver", "Amelia", "Benjamin", "Charlotte", "Daniel", "Eleanor",
    "Ethan", "Fiona", "Gabriel", "Hannah", "Isaac", "Jasmine", "Julian", "Katherine", "Leo", "Lucy",
    "Marcus", "Natalie", "Nathan", "Olivia", "Oscar", "Penelope", "Quentin", "Rachel", "Samuel", "Sophia",
    "Theodore", "Ursula", "Victor", "Violet", "Wyatt", "Xavier", "Yasmin", "Zachary", "Abigail", "Caleb",
    "Delilah", "Elijah", "Felix", "Georgia", "Harper", "Ivy", "Jonah", "Madeline", "Miles", "Nora",
    "Owen", "Piper", "Riley", "Sebastian", "Tessa", "Vincent", "Wesley", "Adrian", "Bianca", "Clara",
)
NAMES_ZH = (
    "张伟", "王芳", "李娜", "刘洋", "陈静", "杨帆", "赵磊", "黄敏", "周杰", "吴婷", "徐浩", "孙丽", "马超",
    "朱琳", "胡斌", "郭颖", "何欣", "林峰", "高翔", "罗丹", "郑凯", "梁爽", "谢晨", "宋佳", "唐宁", "韩雪",
    "冯毅", "邓涛", "曹阳", "彭程", "曾琪", "肖然", "田甜", "董洁", "袁媛", "潘越", "蒋鹏", "蔡萌", "余航",
    "叶青", "苏畅", "吕薇", "丁一", "沈括", "姚远", "卢军", "钟灵", "汪洁", "任杰", "金辉",
)
_NAME_POOLS = {"en": NAMES_EN, "zh": NAMES_ZH}

_SPEAKER_EN = (
    '{name} said, "{quote}."',
    '{name} stated, "{quote}."',
    '{name} claimed, "{quote}."',
    'According to {name}, "{quote}."',
    '"{quote}," {name} declared.',
    "{name} told you that {clause}.",
    "In {name}'s words: \"{quote}.\"",
    'As {name} put it, "{quote}."',
    '{name} remarked, "{quote}."',
)
_SPEAKER_ZH = (
    "{name}说：“{quote}。”",
    "{name}声称：“{quote}。”",
    "据{name}所说：“{quote}。”",
    "{name}告诉你：{quote}。",
    "“{quote}，”{name}断言道。",
    "{name}表示：“{quote}。”",
)
_INTRO = {
    "en": ("A very special island is inhabited only by knights and knaves. Knights always tell the truth, "
           "and knaves always lie. You meet {n} inhabitants: {names}. {statements} "
           "So who is a knight and who is a knave?"),
    "zh": ("一座非常特别的岛上只住着骑士和无赖。骑士总是说真话，而无赖总是说谎。你遇到了{n}位居民：{names}。"
           "{statements}那么，谁是骑士，谁是无赖？"),
}
_ROLE_TEXT = {"en": {KNIGHT: "a knight", KNAVE: "a knave"}, "zh": {KNIGHT: "骑士", KNAVE: "无赖"}}


def _sample_statement(rng: random.Random, people: int, depth: int, config: GeneratorConfig) -> Statement:
    # At the last level only leaves remain; above it each of the six statement shapes of the study
    # (leaf, not, and, or, ->, <=>) is equally likely.
    kind = "leaf" if depth >= config.max_depth else rng.choice(("leaf", "not", "and", "or", "->", "<=>"))
    if kind == "leaf":
        return (rng.choice(LEAF_OPS), rng.randrange(people))
    if kind == "not":
        return ("not", _sample_statement(rng, people, depth + 1, config))
    width = 2 if kind in BINARY_OPS else rng.randint(2, config.max_width)
    return (kind, *(_sample_statement(rng, people, depth + 1, config) for _ in range(width)))


def sample_puzzle(rng: random.Random, people: int,
                  config: GeneratorConfig = DEFAULT_CONFIG) -> tuple[tuple[Statement, ...], tuple[bool, ...]]:
    """Random statements, re-drawn until the solver proves exactly one solution; (statements, solution)."""
    for _ in range(config.max_tries):
        statements = tuple(_sample_statement(rng, people, 1, config) for _ in range(people))
        solution = _unique_solution(statements)
        if solution is not None:
            return statements, solution
    raise RuntimeError(f"no uniquely solvable {people}-person puzzle in {config.max_tries} draws")


def _render(node: Statement, names: Sequence[str], lang: str, nested: bool = False) -> str:
    op = node[0]
    if op in LEAF_OPS:
        role = KNIGHT if op == "telling-truth" else KNAVE
        return f"{names[node[1]]} is {_ROLE_TEXT['en'][role]}" if lang == "en" \
            else f"{names[node[1]]}是{_ROLE_TEXT['zh'][role]}"
    if op == "not" and node[1][0] in LEAF_OPS:
        role = KNIGHT if node[1][0] == "telling-truth" else KNAVE
        return f"{names[node[1][1]]} is not {_ROLE_TEXT['en'][role]}" if lang == "en" \
            else f"{names[node[1][1]]}不是{_ROLE_TEXT['zh'][role]}"
    parts = [_render(arg, names, lang, nested=True) for arg in node[1:]]
    if op == "not":
        text = f"it is not the case that {parts[0]}" if lang == "en" else f"并非{parts[0]}"
    elif op in VARIADIC_OPS:
        joiner = {("and", "en"): " and ", ("or", "en"): " or ", ("and", "zh"): "并且", ("or", "zh"): "或者"}
        text = joiner[op, lang].join(parts)
    elif op == "->":
        text = f"if {parts[0]} then {parts[1]}" if lang == "en" else f"如果{parts[0]}，那么{parts[1]}"
    else:
        text = f"{parts[0]} if and only if {parts[1]}" if lang == "en" else f"{parts[0]}当且仅当{parts[1]}"
    if nested:
        return f"({text})" if lang == "en" else f"（{text}）"
    return text


def _join_names(names: Sequence[str], lang: str) -> str:
    if lang == "zh":
        return "、".join(names[:-1]) + "和" + names[-1]
    if len(names) == 2:
        return f"{names[0]} and {names[1]}"
    return ", ".join(names[:-1]) + ", and " + names[-1]


def render_quiz(statements: Sequence[Statement], names: Sequence[str], lang: str, rng: random.Random) -> str:
    """The puzzle text in the study's style ("A very special island is inhabited only by ...")."""
    lines = []
    for speaker, statement in enumerate(statements):
        clause = _render(statement, names, lang)
        template = rng.choice(_SPEAKER_EN if lang == "en" else _SPEAKER_ZH)
        quote = clause[:1].upper() + clause[1:]
        lines.append(template.format(name=names[speaker], quote=quote, clause=clause))
    joiner = " " if lang == "en" else ""
    return _INTRO[lang].format(n=len(names), names=_join_names(names, lang), statements=joiner.join(lines))


def reference_response(solution: Solution, lang: str, statements: Sequence[Statement] | None = None) -> str:
    """A response that scores 1: a short derivation in <think>, the numbered list in <answer>."""
    steps = []
    if statements is not None:
        for name, role, statement in zip(solution.names, solution.roles, statements):
            said = _render(statement, solution.names, lang)
            if lang == "en":
                truth = "true" if role == KNIGHT else "false"
                steps.append(f"{name} is {_ROLE_TEXT['en'][role]}, so \"{said}\" is {truth}.")
            else:
                truth = "为真" if role == KNIGHT else "为假"
                steps.append(f"{name}是{_ROLE_TEXT['zh'][role]}，所以“{said}”{truth}。")
    if lang == "en":
        think = " ".join(["Check every assignment of roles against every statement."] + steps +
                         ["Every other assignment leads to a contradiction."])
        answer = solution.text_format()
    else:
        think = "".join(["逐一检验每种身份分配是否与所有陈述一致。"] + steps + ["其他任何分配都会导致矛盾。"])
        answer = "\n".join(f"({i}) {name}是{_ROLE_TEXT['zh'][role]}" for i, (name, role) in
                           enumerate(zip(solution.names, solution.roles), start=1))
    return f"<think>{think}</think>\n<answer> {answer} </answer>"


def generate(index: int, seed: int, difficulty: int, lang: str = "en",
             config: GeneratorConfig = DEFAULT_CONFIG) -> Problem:
    """Puzzle number `index` of `seed` with `difficulty` people; the same arguments give the same item,
    and the en and zh items of one (seed, index, difficulty) share the puzzle (names and wording differ)."""
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"knights_knaves difficulty is the number of people, one of {DIFFICULTIES}; "
                         f"got {difficulty!r}")
    if lang not in _NAME_POOLS:
        raise ValueError(f"knights_knaves has no language {lang!r}; known: {sorted(_NAME_POOLS)}")
    rng = random.Random(f"{DOMAIN_NAME}-{seed}-{difficulty}-{index}")
    # statements first: the en and zh items of one (seed, index, difficulty) are the same puzzle
    statements, assignment = sample_puzzle(rng, difficulty, config)
    names = tuple(rng.sample(_NAME_POOLS[lang], difficulty))
    solution = Solution(names, tuple(KNIGHT if knight else KNAVE for knight in assignment))
    return Problem(
        domain=DOMAIN_NAME,
        data_source=STUDY_SOURCE,
        question=render_quiz(statements, names, lang, rng),
        ground_truth={"solution_text_format": solution.text_format(), "statements": repr(statements)},
        difficulty=difficulty,
        lang=lang,
        reference=reference_response(solution, lang, statements),
        extra_info={"index": index, "seed": seed, "names": list(names)},
    )


# ---------------------------------------------------------------------------------------------------
# Loader for the study's parquet rows
# ---------------------------------------------------------------------------------------------------




def load_row(row: Mapping[str, Any], where: str) -> Problem:
    """One row of the study's kk parquet (quiz, names, reward_model.ground_truth, ...)."""
    quiz = row.get("quiz")
    if not isinstance(quiz, str) or not quiz.strip():
        raise DataError(f"{where}: knights_knaves row has no 'quiz' text")
    reward_model = plain(row.get("reward_model"))
    raw_truth = reward_model.get("ground_truth") if isinstance(reward_model, Mapping) else None
    if raw_truth is None:
        raise DataError(f"{where}: knights_knaves row has no reward_model.ground_truth")
    try:
        if isinstance(raw_truth, str):
            raw_truth = json.loads(raw_truth)
        if not isinstance(raw_truth, Mapping):
            raise DataError(f"ground_truth is a {type(raw_truth).__name__}, not an object")
        solution = parse_ground_truth(raw_truth)
        statements = raw_truth.get("statements")
        parsed = parse_statements(statements) if statements is not None else None
        if parsed is not None and len(parsed) != len(solution.names):
            raise DataError(f"{len(parsed)} statements for {len(solution.names)} people")
    except (DataError, json.JSONDecodeError) as exc:
        raise DataError(f"{where}: {exc}") from None
    names = plain(row.get("names"))
    if names is not None and [str(n) for n in names] != list(solution.names):
        raise DataError(f"{where}: names {names} differ from solution_text_format {list(solution.names)}")
    ground_truth = {"solution_text_format": raw_truth["solution_text_format"]}
    if statements is not None:
        ground_truth["statements"] = statements
    extra = plain(row.get("extra_info"))
    return Problem(
        domain=DOMAIN_NAME,
        data_source=str(row.get("data_source") or STUDY_SOURCE),
        question=quiz.strip(),
        ground_truth=ground_truth,
        difficulty=len(solution.names),
        lang="en",
        reference=reference_response(solution, "en", parsed),
        extra_info=dict(extra) if isinstance(extra, Mapping) else {},
    )


DOMAIN = register_domain(Domain(
    released=("kk",), ability="logic",
    suites=(SuiteDef("kk", "Knights and Knaves test, by number of people", "paper/kk/test.parquet",
                     group=by_difficulty("ppl")),),
    name=DOMAIN_NAME,
    group="puzzle",
    data_sources=(STUDY_SOURCE, "kk", "knights_knaves", "knights-and-knaves", "knights_and_knaves"),
    verify=verify,
    instructions=INSTRUCTIONS,
    default_reward=RewardConfig(mode="binary"),
    difficulties=DIFFICULTIES,
    generate=generate,
    load_row=load_row,
    description="Knights and knaves logic puzzles (the study's KK, 3-8 people): name every person's role. "
                "Generator for 2-8 people whose solver proves each puzzle has exactly one solution.",
))
