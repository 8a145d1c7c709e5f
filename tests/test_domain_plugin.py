"""A domain from outside mdrl: one file plus its registration (an entry point), seen by every command.

The plug-in lives in a temporary folder put on PYTHONPATH: `units_domain.py` (the whole domain) and a
`.dist-info` folder whose entry_points.txt registers it in the group `mdrl.domains`, exactly what
`pip install` of a user's package writes. Each command runs in a fresh interpreter, as a user's would,
and no file of mdrl is edited.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

UNITS_DOMAIN = textwrap.dedent('''
    """Unit conversion, a domain of group "science": "How many grams are in 7 kilograms?" -> 7000."""
    from mdrl.domains import Domain, Problem, Reader, SuiteDef, register_domain
    from mdrl.verify.extract import answer_block
    from mdrl.verify.result import Verdict

    FACTORS = {1: [("kilograms", "grams", 1000), ("metres", "centimetres", 100)],
               2: [("hours", "seconds", 3600), ("kilometres", "millimetres", 1000000)]}


    def generate(index, seed, difficulty, lang):
        big, small, factor = FACTORS[difficulty][(seed + index) % len(FACTORS[difficulty])]
        amount = 1 + (seed * 7919 + index * 104729) % 997
        answer = amount * factor
        return Problem(domain="units", data_source="units", question=f"How many {small} are in {amount} {big}?",
                       ground_truth=str(answer), difficulty=difficulty, lang=lang,
                       reference=f"<answer>{answer}</answer>")


    def verify(response, ground_truth, extra_info=None):
        answer, reason = answer_block(response)
        if answer is None:
            return Verdict.fail(reason)
        return Verdict.ok() if answer.strip() == str(ground_truth).strip() else Verdict.fail("wrong value")


    def fixed_table(path):
        return [generate(i, 99, 1, "en") for i in range(6)]


    register_domain(Domain(
        name="units", group="science", data_sources=("unit_conversion",), verify=verify,
        instructions={"en": "Put the number in <answer></answer>.", "zh": "把数字写在 <answer></answer> 中。"},
        difficulties=(1, 2), generate=generate,
        readers=(Reader("units_table", fixed_table),),
        suites=(SuiteDef("units_fixed", "six fixed conversions", None, reader="units_table"),),
    ))
''')


@pytest.fixture(scope="module")
def plugin(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("plugin")
    (root / "units_domain.py").write_text(UNITS_DOMAIN, encoding="utf-8")
    dist = root / "units_domain-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: units-domain\nVersion: 0.1\n", encoding="utf-8")
    (dist / "entry_points.txt").write_text("[mdrl.domains]\nunits = units_domain\n", encoding="utf-8")
    return root


def _mdrl(plugin: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(plugin), os.environ.get("PYTHONPATH")]))}
    env.pop("MDRL_DOMAINS", None)
    result = subprocess.run([sys.executable, "-m", "mdrl", *args], env=env, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, plugin) -> Path:
    """A very small random Qwen2 whose tokenizer has seen the plug-in's questions (read in another
    interpreter: importing the plug-in here would register it in this test process for good)."""
    from mdrl.templates import Template
    from mdrl.tiny import TinyModelConfig, build_tiny

    code = ("import json, units_domain\n"
            "print(json.dumps([[p.question, p.reference] for p in "
            "(units_domain.generate(i, 0, 1 + i % 2, 'en') for i in range(12))]))")
    listed = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(plugin)},
                            capture_output=True, text=True, check=True, timeout=120).stdout
    corpus = []
    for question, reference in json.loads(listed):
        corpus += [Template("plain").render(question + "\n\nPut the number in <answer></answer>."), reference]
    folder = tmp_path_factory.mktemp("tiny")
    build_tiny(folder, TinyModelConfig(vocab_size=300, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                       num_key_value_heads=1, intermediate_size=64), corpus=corpus)
    return folder


def test_data_build_and_score_see_the_plugin_domain(plugin, tmp_path):
    import pyarrow.parquet as pq

    _mdrl(plugin, "data", "build", "--mix", "units:1,knights_knaves:1", "--n", "20", "--out", str(tmp_path / "d"))
    rows = pq.read_table(tmp_path / "d" / "train.parquet").to_pylist()
    units = [row for row in rows if row["data_source"] == "units"]
    assert len(units) == 10 and {row["ability"] for row in units} == {"science"}

    lines = [{"data_source": "unit_conversion", "solution_str": "<answer>7000</answer>", "ground_truth": "7000"},
             {"data_source": "units", "solution_str": "<answer>7</answer>", "ground_truth": "7000"}]
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    scored = _mdrl(plugin, "score", "--input", str(tmp_path / "rows.jsonl")).stdout.splitlines()
    assert [json.loads(line)["score"] for line in scored] == [1.0, 0.0]


def test_two_grpo_steps_and_an_eval_of_its_suites(plugin, tiny_model, tmp_path):
    run = tmp_path / "run"
    _mdrl(plugin, "train", "--preset", "tiny", "--model", str(tiny_model), "-o", str(run), "--max-steps", "2",
          "--set", "data.mix=units:1", "--set", "data.n=16", "--set", "grpo.num_generations=2",
          "--set", "grpo.train_batch_size=4", "--set", "grpo.micro_batch_size=4",
          "--set", "grpo.max_completion_length=8", "--set", "grpo.max_prompt_length=512")
    steps = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps if "step" in s][-1] == 2
    assert any(key.startswith("rewards/units") for s in steps for key in s), steps[-1]

    out = tmp_path / "eval"
    _mdrl(plugin, "eval", "run", "-m", str(tiny_model), "-s", "units_fixed", "-s", "gen:units:2:4:7",
          "-o", str(out), "--max-new-tokens", "8", "--temperature", "0")
    summary = json.loads((out / "summary.json").read_text())
    text = json.dumps(summary)
    assert "units_fixed" in text and "gen:units:2:4:7" in text


def test_a_study_grid_with_the_plugin_domain_dry_runs(plugin, tmp_path):
    config = tmp_path / "study.yaml"
    config.write_text(textwrap.dedent("""
        name: units-study
        models: [{name: base, path: tiny:base, kind: base}]
        mixtures: [science, "science+puzzle", "units:1,knights_knaves:1"]
        suites: ["gen:units:1:20:7", units_fixed, "gen:knights_knaves:2:20:7"]
        seeds: [1]
    """))
    result = _mdrl(plugin, "study", "--config", str(config), "--dry-run", "--out", str(tmp_path / "s"))
    assert "science+puzzle" in result.stdout and "units" in result.stdout


def test_domains_option_loads_a_module_without_an_entry_point(tmp_path):
    (tmp_path / "units_domain.py").write_text(UNITS_DOMAIN, encoding="utf-8")
    row = {"data_source": "units", "solution_str": "<answer>5</answer>", "ground_truth": "5"}
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    env.pop("MDRL_DOMAINS", None)
    result = subprocess.run([sys.executable, "-m", "mdrl", "--domains", "units_domain", "score"],
                            input=json.dumps(row) + "\n", env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["acc"] is True
    without = subprocess.run([sys.executable, "-m", "mdrl", "score"], input=json.dumps(row) + "\n", env=env,
                             capture_output=True, text=True, timeout=120)
    assert "unknown data_source 'units'" in without.stdout + without.stderr


def test_a_broken_plugin_is_named_in_the_unknown_domain_error(tmp_path):
    (tmp_path / "broken_domain.py").write_text("raise RuntimeError('missing dependency')\n")
    code = ("import mdrl\n"
            "try:\n    mdrl.compute_score('units', 'x', '1')\n"
            "except KeyError as exc:\n    print(exc)\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "MDRL_DOMAINS": "broken_domain"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert "broken_domain" in result.stdout and "missing dependency" in result.stdout


def test_no_module_outside_the_domains_lists_domains_by_name():
    """No hand table: a literal (dict, list, tuple, set) outside `mdrl/domains/` that names two or more
    domains, suites, data sources or released folders would go stale when a domain is added."""
    import ast

    import mdrl
    from mdrl.domains import all_domains

    names = set()
    for domain in all_domains().values():
        names |= {domain.name, *domain.data_sources, *domain.released, *(s.name for s in domain.suites),
                  *(r.name for r in domain.readers)}
    names -= {"math", "code"}  # also ordinary words (a math module, a status "code"): too noisy to count alone
    package = Path(mdrl.__file__).parent
    found = []
    for path in sorted(package.rglob("*.py")):
        if path.relative_to(package).parts[0] in ("domains", "sandbox"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Dict):
                elements = node.keys
            elif isinstance(node, (ast.List, ast.Tuple, ast.Set)):
                elements = node.elts
            else:
                continue
            named = {e.value for e in elements if isinstance(e, ast.Constant) and e.value in names}
            if len(named) >= 2:
                found.append(f"{path.relative_to(package)}:{node.lineno} {sorted(named)}")
    assert not found, found


def test_the_veRL_reward_module_and_the_server_see_the_plugin(plugin, tmp_path):
    import signal
    import threading

    import httpx

    env = {**os.environ, "PYTHONPATH": str(plugin), "PYTHONUNBUFFERED": "1"}
    env.pop("MDRL_DOMAINS", None)
    code = ("from mdrl.train.verl_reward import compute_score\n"
            "print(compute_score('unit_conversion', '<answer>7000</answer>', '7000')['score'])")
    verl = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert verl.stdout.strip() == "1.0", verl.stderr

    proc = subprocess.Popen([sys.executable, "-m", "mdrl", "serve", "--port", "0", "--workers", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        banner: list[str] = []
        reader = threading.Thread(target=lambda: banner.append(proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(120)
        url = banner[0].split()[-1]
        items = [{"data_source": "units", "solution_str": "<answer>7000</answer>", "ground_truth": "7000"},
                 {"data_source": "units", "solution_str": "<answer>70</answer>", "ground_truth": "7000"}]
        response = httpx.post(f"{url}/score", json=items, timeout=120)
        assert response.status_code == 200, response.text
        body = response.json()
        rows = body["results"] if isinstance(body, dict) else body
        assert [row["score"] for row in rows] == [1.0, 0.0]
        assert "units" in json.dumps(httpx.get(f"{url}/domains", timeout=30).json())
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        proc.stdout.close()
