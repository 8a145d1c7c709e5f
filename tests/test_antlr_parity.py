r"""Math verdicts do not depend on the antlr4 runtime: mdrl leaves its version to whoever pins it.

math-verify parses LaTeX through latex2sympy2, which runs on antlr4-python3-runtime. mdrl used to pin
4.13.2; veRL's hydra-core pins 4.9.*. The golden file holds mdrl's verdicts (fast path off, so every
pair goes through math-verify's parser) recorded under antlr 4.13.2 by

    python tests/test_antlr_parity.py --record      # in an environment with antlr4-python3-runtime 4.13.2

over three sets: the math table of tests/test_math.py; the 530 MATH-500/AIME references of the study's
test set with two wrong answers each; and the layout perturbations of every test gold. The tests assert
the installed runtime gives the same verdict for every pair (a sample by default, all with -m slow).
"""

from __future__ import annotations

import hashlib
import json
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_math import TABLE, _off_by_one, _rows, _wrong_answer, layout_variants

from mdrl.domains import get_domain
from mdrl.domains.math import MathConfig, MathVerifier

GOLDEN = Path(__file__).parent / "golden" / "math_verdicts_antlr.json"
SAMPLE_EVERY = 12


def _key(gold: str, response: str) -> str:
    return hashlib.sha1(f"{gold}\0{response}".encode()).hexdigest()[:16]


def cases(paper: Path) -> list[tuple[str, str, str]]:
    """(set, gold, response) for the three sets, in a fixed order."""
    out = [("table", gold, pred) for gold, pred, _ in TABLE]
    rows = _rows(paper, "test")
    math = get_domain("math")
    for i, row in enumerate(rows):
        gold = row["reward_model"]["ground_truth"]
        out.append(("references", gold, math.load_row(row, f"test:{i}").reference))
        wrong = [_wrong_answer(rows, i)] + ([_off_by_one(gold)] if _off_by_one(gold) else [])
        out += [("references", gold, f"</think>\n<answer> \\boxed{{{w}}} </answer>") for w in wrong]
    for gold in sorted({row["reward_model"]["ground_truth"] for row in rows}):
        out += [("perturbations", gold, f"<answer> \\boxed{{{v}}} </answer>") for v in layout_variants(gold)]
    return out


def verdicts(items: list[tuple[str, str, str]]) -> dict[str, bool]:
    verifier = MathVerifier(MathConfig(fast_path=False))
    return {_key(gold, response): verifier(response, gold, None).acc for _, gold, response in items}


def _check(paper: Path, every: int) -> None:
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert golden["antlr4-python3-runtime"] == "4.13.2"
    items = cases(paper)[::every]
    got = verdicts(items)
    differ = [(s, g, r) for s, g, r in items if golden["verdicts"][_key(g, r)] != got[_key(g, r)]]
    assert not differ, (version("antlr4-python3-runtime"), differ[:10])
    counts = {s: sum(1 for item in items if item[0] == s) for s in ("table", "references", "perturbations")}
    assert min(counts.values()) > 0 and sum(got.values()) > len(got) // 4  # both verdicts occur


def test_verdicts_match_antlr_4_13_2_on_a_sample(paper_data) -> None:
    _check(paper_data, SAMPLE_EVERY)


@pytest.mark.slow
def test_verdicts_match_antlr_4_13_2_on_every_pair(paper_data) -> None:
    _check(paper_data, 1)


def _record() -> None:
    from conftest import PAPER

    items = cases(PAPER)
    GOLDEN.parent.mkdir(exist_ok=True)
    data = {
        "antlr4-python3-runtime": version("antlr4-python3-runtime"),
        "math-verify": version("math-verify"),
        "counts": {s: sum(1 for item in items if item[0] == s) for s in ("table", "references", "perturbations")},
        "verdicts": verdicts(items),
    }
    GOLDEN.write_text(json.dumps(data, indent=0, sort_keys=True) + "\n", encoding="utf-8")
    print(f"{len(items)} verdicts under antlr {data['antlr4-python3-runtime']} -> {GOLDEN}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--record"]:
        sys.exit(__doc__)
    _record()
