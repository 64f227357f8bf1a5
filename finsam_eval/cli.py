"""The ``finsam-eval`` command line: run, synthetic, panel, validate, report, fetch.

Errors end with a one-line message on stderr and a non-zero exit code (2 for bad input or
configuration, 1 for anything unexpected).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]


def _run(args: argparse.Namespace) -> int:
    from finsam_eval.pipeline import load_config, run_analysis

    config = load_config(args.config)
    summary = run_analysis(config, Path(args.out), progress=not args.quiet)
    if not args.quiet:
        print(summary)
    return 0


def _synthetic(args: argparse.Namespace) -> int:
    if args.persons is not None:
        return _synthetic_microdata(args)
    from finsam_eval.synthetic import write_synthetic

    written = write_synthetic(Path(args.out), seed=args.seed)
    if not args.quiet:
        print(f"synthetic data (seed {args.seed}) written to {Path(args.out).resolve()}")
        for name, path in written.items():
            print(f"{name}: {path}")
    return 0


def _synthetic_microdata(args: argparse.Namespace) -> int:
    """Synthetic person-years: OUT/persons/ (hive-partitioned parquet), cohorts.csv, truth.csv."""
    from finsam_eval.synthetic.microdata import generate_microdata

    out = Path(args.out)
    world = generate_microdata(persons=args.persons, seed=args.seed, path=out / "persons")
    world.cohorts.to_csv(out / "cohorts.csv", index=False, lineterminator="\n")
    world.truth.to_csv(out / "truth.csv", index=False, lineterminator="\n", float_format="%.10g")
    if not args.quiet:
        print(f"persons: {world.persons:,}  person-years: {world.person_years:,}")
        print(f"person-years: {out / 'persons'}  cohorts: {out / 'cohorts.csv'}")
    return 0


def _microdata_panel(args: argparse.Namespace) -> int:
    import time

    import pandas as pd

    from finsam_eval.microdata import build_microdata_panel
    from finsam_eval.registry.membership import calendar_to_cohorts

    cohorts = None
    if args.calendar:
        cohorts = calendar_to_cohorts(pd.read_csv(args.calendar, dtype=str))
    elif args.cohorts:
        cohorts = pd.read_csv(args.cohorts, dtype={"kommun_kod": str, "forbund": str})
        if "forbund" in cohorts.columns:
            cohorts["forbund"] = cohorts["forbund"].fillna("")
    start = time.perf_counter()

    def say(message: str) -> None:
        if not args.quiet:
            print(f"[{time.perf_counter() - start:6.1f} s] {message}", flush=True)

    built = build_microdata_panel(
        args.microdata,
        cohorts,
        outcome_only=args.outcome_only,
        engine=args.engine,
        memory_limit=args.memory_limit,
        progress=say,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    built.panel.to_csv(out / "panel.csv", index=False, lineterminator="\n", float_format="%.12g")
    report = built.report
    text = report.summary() + "\n\n## Transitions\n\n" + report.transitions.to_string(index=False)
    text += "\n\n## Panel build (ISF outcomes)\n\n" + report.panel_report.to_markdown()
    (out / "build_report.md").write_text(text, encoding="utf-8")
    if not args.quiet:
        print(report.summary())
        print(f"panel: {out / 'panel.csv'}  report: {out / 'build_report.md'}")
    return 0


def _panel(args: argparse.Namespace) -> int:
    if args.microdata:
        return _microdata_panel(args)
    import pandas as pd

    from finsam_eval.panel import build_panel

    if not args.calendar and not args.outcome_only:
        raise ValueError(
            "a panel needs the adoption calendar: pass --calendar CALENDAR.csv, or "
            "--outcome-only for a panel of outcomes only (cohort 0 as a placeholder; the "
            "pipeline's [design] calendar then supplies the cohorts)"
        )
    if not (args.numerators and args.population):
        raise ValueError(
            "a panel is built from --numerators NUMERATORS.csv and --population POPULATION.csv, "
            "or from --microdata PATH"
        )
    if args.cohorts:
        raise ValueError("--cohorts is for --microdata; source tables take --calendar")
    numerators = pd.read_csv(args.numerators, dtype={"kommun_kod": str})
    population = pd.read_csv(args.population, dtype={"kommun_kod": str})
    cohorts = None
    if args.calendar:
        from finsam_eval.pipeline.calendar import calendar_cohorts

        cohorts = calendar_cohorts(pd.read_csv(args.calendar, dtype=str, keep_default_na=False))
    built = build_panel(numerators, population, cohorts=cohorts, outcome_only=args.outcome_only)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    built.panel.to_csv(out / "panel.csv", index=False, lineterminator="\n", float_format="%.12g")
    (out / "build_report.md").write_text(built.report.to_markdown(), encoding="utf-8")
    if not args.quiet:
        print(built.report.summary())
        print(f"panel: {out / 'panel.csv'}  report: {out / 'build_report.md'}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from finsam_eval.pipeline import load_config
    from finsam_eval.pipeline.run import load_analysis_panel

    config = load_config(args.config)
    # the same checks as `run`: the calendar against every documented fact, then the window
    panel, plan = load_analysis_panel(config)
    if not args.quiet:
        print(
            f"configuration OK: {len(config.series())} series × {len(config.methods)} methods "
            f"on {panel['kommun_kod'].nunique()} kommuner, {panel['year'].min()}–"
            f"{panel['year'].max()}"
        )
        for note in plan.notes:
            print(note)
    return 0


def _report(args: argparse.Namespace) -> int:
    from finsam_eval.report import rebuild_report

    path = rebuild_report(Path(args.out), language=args.language)
    if not args.quiet:
        print(f"report: {path}")
    if args.pdf:
        from finsam_eval.report.pdf import report_pdf

        pdf = report_pdf(path)
        if not args.quiet:
            print(f"pdf: {pdf}")
    return 0


def _fetch(args: argparse.Namespace) -> int:
    from finsam_eval.sources import fetch

    years = _years(args.years)
    files = {}
    for entry in args.file or []:
        outcome, sep, path = entry.partition("=")
        if not sep:
            raise ValueError(f"--file takes OUTCOME=PATH, got {entry!r}")
        files[outcome] = Path(path)
    # accept both "--outcomes a b" and "--outcomes a,b"
    from finsam_eval.panel.populations import OUTCOMES

    outcomes = [o for entry in args.outcomes or [] for o in entry.split(",") if o]
    outcomes = outcomes or list(OUTCOMES)
    result = fetch(
        outcomes=outcomes,
        years=years,
        cache_dir=Path(args.cache),
        offline=args.offline,
        progress=not args.quiet,
        files=files or None,
        interface="cli",  # error messages say --file OUTCOME=PATH, not files={...}
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result.numerators.to_csv(out / "numerators.csv", index=False, lineterminator="\n")
    result.population.to_csv(out / "population.csv", index=False, lineterminator="\n")
    if not args.quiet:
        print(result.summary())
        print(f"numerators: {out / 'numerators.csv'}  population: {out / 'population.csv'}")
    return 0


def _years(text: str) -> list[int]:
    if "-" in text:
        first, last = text.split("-", 1)
        return list(range(int(first), int(last) + 1))
    return [int(part) for part in text.split(",") if part]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="finsam-eval",
        description="Staggered-adoption DiD evaluation of samordningsförbund (Finsam).",
    )
    from finsam_eval import __version__

    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}", help="print the version"
    )
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="print nothing but errors (no progress lines, no summary)",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run an analysis: config → output folder")
    run.add_argument("--config", help="analysis TOML (default: ISF 2019 design, synthetic data)")
    run.add_argument("--out", default="results", help="output folder (default: results)")
    run.set_defaults(handler=_run)

    synthetic = commands.add_parser("synthetic", help="write the synthetic data to a folder")
    synthetic.add_argument(
        "--out",
        required=True,
        help="output folder (created; `make synthetic-data` regenerates the bundled package data)",
    )
    from finsam_eval.synthetic.generator import DEFAULT_SEED

    synthetic.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        help=f"seed of the synthetic data (default: {DEFAULT_SEED}, the bundled data)",
    )
    synthetic.add_argument(
        "--persons",
        type=int,
        help="write synthetic person-year microdata for this many persons instead",
    )
    synthetic.set_defaults(handler=_synthetic)

    panel = commands.add_parser("panel", help="build a panel from source tables")
    panel.add_argument("--numerators", help="CSV of numerator counts (source tables)")
    panel.add_argument("--population", help="CSV of population by age (source tables)")
    panel.add_argument("--microdata", help="person-year parquet/CSV file or folder instead")
    calendar = panel.add_mutually_exclusive_group()
    calendar.add_argument(
        "--calendar",
        help="membership calendar CSV: kommun, forbund, start_year[, end_year] (one row per "
        "membership) or kommun_kod, cohort (0 = not a member)",
    )
    calendar.add_argument("--cohorts", help="(microdata) cohorts CSV: kommun_kod, cohort, forbund")
    calendar.add_argument(
        "--outcome-only",
        action="store_true",
        help="build without a calendar: cohort 0 is a placeholder for every kommun",
    )
    panel.add_argument(
        "--engine", default="duckdb", choices=["duckdb", "spark"], help="(microdata) engine"
    )
    panel.add_argument("--memory-limit", default="2GB", help="(microdata) DuckDB memory bound")
    panel.add_argument("--out", default="panel", help="output folder")
    panel.set_defaults(handler=_panel)

    validate = commands.add_parser("validate", help="check a configuration and its data")
    validate.add_argument(
        "--config", help="analysis TOML to check (default: ISF 2019 design, synthetic data)"
    )
    validate.set_defaults(handler=_validate)

    report = commands.add_parser("report", help="rebuild the HTML report of an output folder")
    report.add_argument(
        "--out", default="results", help="output folder of a finished run (default: results)"
    )
    report.add_argument(
        "--language",
        choices=("sv", "en"),
        default=None,
        help="language of the report (default: the run's [report] language, else sv)",
    )
    report.add_argument(
        "--pdf",
        action="store_true",
        help="also print report.pdf with headless Chromium ($FINSAM_CHROMIUM or on PATH)",
    )
    report.set_defaults(handler=_report)

    fetch = commands.add_parser("fetch", help="fetch real data (Kolada, SCB) into a cache")
    fetch.add_argument(
        "--outcomes", nargs="+", default=None, help="outcomes to fetch (default: all six)"
    )
    fetch.add_argument("--years", default="1998-2018", help="e.g. 1998-2018 or 2005,2006")
    fetch.add_argument(
        "--cache", default=".finsam_cache", help="cache folder (default: .finsam_cache)"
    )
    fetch.add_argument(
        "--out",
        default="sources",
        help="folder for numerators.csv and population.csv (default: sources)",
    )
    fetch.add_argument("--offline", action="store_true", help="use only the cache")
    fetch.add_argument(
        "--file",
        action="append",
        metavar="OUTCOME=PATH",
        help="a downloaded agency file for an outcome (repeatable)",
    )
    fetch.set_defaults(handler=_fetch)
    for sub in (run, synthetic, panel, validate, report, fetch):
        sub.add_argument(
            "--quiet",
            action="store_true",
            default=argparse.SUPPRESS,
            help="print nothing but errors (no progress lines, no summary)",
        )
    return parser


# library messages give Python syntax (files={'sa': path}); on the command line that is --file
_FILES_HINT = re.compile(r"""files=\{\s*['"]([^'"]+)['"]\s*:\s*path\s*\}""")


def _cli_syntax(message: str) -> str:
    """A library error message with its Python-call hints rewritten as command-line options."""
    return _FILES_HINT.sub(lambda m: f"--file {m.group(1)}=PATH", message)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``finsam-eval`` console script."""
    from finsam_eval.sources.http import SourceError

    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "panel" and not args.microdata and not (args.numerators and args.population):
        parser.error("panel needs --numerators and --population, or --microdata")
    args.quiet = getattr(args, "quiet", False)
    try:
        return int(args.handler(args) or 0)
    except (ValueError, KeyError, OSError, SourceError) as error:
        conflicts = getattr(error, "conflict_lines", None)
        if conflicts is not None:
            # a calendar refused for its conflicts (pipeline.calendar.CalendarConflictError):
            # one line per conflict (kommun, förbund, fact), so that each can be checked
            print(f"finsam-eval {args.command}: error: {error.header}", file=sys.stderr)
            for line in conflicts:
                print(f"  {line}", file=sys.stderr)
            return 2
        problems = getattr(error, "problems", None)
        if isinstance(problems, list) and len(problems) > 1:
            # a configuration with several problems (pipeline.config.ConfigError): one line each
            for problem in problems:
                line = _cli_syntax(" ".join(str(problem).split()))
                print(f"finsam-eval {args.command}: error: {line}", file=sys.stderr)
            return 2
        # one line, whatever the error's own layout
        lines = [line.strip(" -") for line in str(error).splitlines() if line.strip()]
        # a header line ending in ":" runs on into its first item ("configuration: a.b must …")
        joined = "".join(
            line + ("" if i == len(lines) - 1 else " " if line.endswith(":") else "; ")
            for i, line in enumerate(lines)
        )
        message = _cli_syntax(joined or type(error).__name__)
        print(f"finsam-eval {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
