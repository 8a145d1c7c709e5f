"""The data layer: sources (study parquet, jsonl, HF datasets, MBPP/HumanEval, generators), mixtures,
curricula, and export to veRL parquet and HF Datasets.

Typical use:
    config = BuildConfig(mix="countdown:1,knights_knaves:1", n=2000, curriculum="difficulty")
    result = build_dataset(config)            # ordered Problems + manifest numbers
    write_build(result, "data/cd_kk")         # train.parquet (veRL), manifest.json
    problems = load_source("paper:kk/test")   # any single source as Problems
"""

from mdrl.data.build import (
    BuildConfig,
    BuildResult,
    build_dataset,
    load_manifest,
    problems_of,
    summarize,
    write_build,
)
from mdrl.data.curriculum import CURRICULA, curriculum_keys, is_non_decreasing, order_by_curriculum
from mdrl.data.export import (
    hf_records,
    is_curriculum_file,
    prompt_messages,
    read_verl_parquet,
    to_hf_dataset,
    user_message,
    verl_records,
    write_verl_parquet,
)
from mdrl.data.mixture import interleave, largest_remainder, max_prefix_deviation, parse_mix, resolve_mix
from mdrl.data.rows import problem_from_row, to_python
from mdrl.data.sources import (
    source_kinds,
    SourceSpec,
    generate,
    load_hf,
    load_jsonl,
    load_source,
    load_verl_parquet,
    paper_file,
    paper_root,
    parquet_metadata,
    parse_levels,
)

__all__ = [
    "BuildConfig",
    "BuildResult",
    "CURRICULA",
    "source_kinds",
    "SourceSpec",
    "build_dataset",
    "curriculum_keys",
    "generate",
    "hf_records",
    "interleave",
    "is_curriculum_file",
    "is_non_decreasing",
    "largest_remainder",
    "load_hf",
    "load_jsonl",
    "load_manifest",
    "load_source",
    "load_verl_parquet",
    "max_prefix_deviation",
    "order_by_curriculum",
    "paper_file",
    "paper_root",
    "parquet_metadata",
    "parse_levels",
    "parse_mix",
    "problem_from_row",
    "problems_of",
    "prompt_messages",
    "read_verl_parquet",
    "resolve_mix",
    "summarize",
    "to_hf_dataset",
    "to_python",
    "user_message",
    "verl_records",
    "write_build",
    "write_verl_parquet",
]
