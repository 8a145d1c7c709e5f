"""Cross-domain studies: a grid of training runs (models x mixtures x rewards x templates x curricula x
languages x seeds), each evaluated on every suite, resumable after a kill, summarised as results
tables, a synergy/conflict matrix, plots and a self-contained HTML report.

    from mdrl.study import StudyConfig, run_study
    results = run_study(StudyConfig.from_yaml("study.yaml"), "runs/study")
    results.markdown, results.report_path  # the tables, and the HTML report
"""

from mdrl.study.config import (
    Baseline,
    Cell,
    DataSettings,
    EvalSettings,
    MixtureSpec,
    ModelSpec,
    RewardVariant,
    StudyConfig,
    StudyConfigError,
    subsets,
)
from mdrl.study.runner import CellRunner, MdrlCellRunner, Plan, Study, StudyResults, load_runner, run_study
from mdrl.study.tables import mean_se, results_tables, synergy

__all__ = [
    "Baseline", "Cell", "CellRunner", "DataSettings", "EvalSettings", "MdrlCellRunner", "MixtureSpec", "ModelSpec",
    "Plan", "RewardVariant", "Study", "StudyConfig", "StudyConfigError", "StudyResults", "load_runner",
    "mean_se", "results_tables", "run_study", "subsets", "synergy",
]
