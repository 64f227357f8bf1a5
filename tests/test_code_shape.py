"""Issue 12's size rule for the library's code: no function longer than 150 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import finsam_eval

MAX_FUNCTION_LINES = 150


def _long_functions(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    found.append(
                        f"{path.relative_to(root.parent)}:{node.lineno} {node.name} ({lines})"
                    )
    return found


def test_no_library_function_is_longer_than_150_lines():
    root = Path(finsam_eval.__file__).parent
    assert _long_functions(root) == []


def test_the_rule_finds_a_long_function(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    (package / "long.py").write_text(f"def long():\n{body}\n", encoding="utf-8")
    (package / "short.py").write_text("def short():\n    return 1\n", encoding="utf-8")
    assert _long_functions(package) == [f"pkg/long.py:1 long ({MAX_FUNCTION_LINES + 1})"]


def test_estimate_is_reached_without_loading_scipy_or_plotting():
    # issue 16: `import finsam_eval; finsam_eval.estimate` under 0.6 s; scipy.linalg alone costs
    # ~0.15 s, scipy.stats ~0.5 s, matplotlib more: they are imported where they are used
    import subprocess
    import sys

    code = (
        "import sys, finsam_eval; finsam_eval.estimate; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'scipy', 'matplotlib', "
        "'statsmodels', 'jinja2', 'duckdb'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_the_run_module_leaves_scipy_stats_and_plotting_to_the_workers():
    # issue 16: the run's main process estimates; matplotlib (figures), scipy.stats (HonestDiD)
    # and statsmodels are imported by the report workers or where a non-default option needs them
    import subprocess
    import sys

    code = (
        "import sys, finsam_eval.pipeline.run, finsam_eval.inference, finsam_eval.report, "
        "finsam_eval.report.html, finsam_eval.report.figure_jobs; "
        "print(sorted({m for m in sys.modules} & {'scipy.stats', 'matplotlib', 'statsmodels', "
        "'openpyxl'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
