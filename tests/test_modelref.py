"""A model reference that names nothing fails in one line, not in a hub download's traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mdrl.modelref import ModelNotFound, check_model_reference, loading


@pytest.mark.parametrize("ref", ["runs/kk/final", "./model", "../x", "/nowhere/model", "~/none/here", "a b"])
def test_paths_to_nothing_are_refused(ref):
    with pytest.raises(ModelNotFound, match="does not exist"):
        check_model_reference(ref)


@pytest.mark.parametrize("ref", ["gpt2", "Qwen/Qwen2.5-7B", "org/name-1.5"])
def test_hub_ids_pass_the_check(ref):
    check_model_reference(ref)


def test_existing_folder_passes_and_a_file_is_refused(tmp_path):
    check_model_reference(str(tmp_path))
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(ModelNotFound, match="is a file"):
        check_model_reference(str(tmp_path / "weights.bin"))


def test_loading_errors_become_one_line():
    with pytest.raises(ModelNotFound, match="cannot load model 'org/x': no config.json"):
        with loading("org/x"):
            raise OSError("no config.json\nand a long story after it")


def test_eval_cli_names_a_missing_model_folder_in_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mdrl", "eval", "run", "-m", str(tmp_path / "runs/kk/final"),
                           "-s", "gen:countdown:3:2:1", "-o", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "does not exist" in proc.stderr and len(proc.stderr.strip().splitlines()) <= 3, proc.stderr
