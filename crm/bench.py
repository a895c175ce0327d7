"""`python -m crm bench`: demo generation time, database size, every page's render time, peak memory, contact-list
times and import speed.

Results are printed and appended to docs/benchmarks.md with the machine and commit they were measured on.
Later issues add their own rows through `extra_rows`; `parts` picks which of the slow measurements run.
"""
import importlib
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from crm.clock import utcnow
from crm.config import ROOT
from crm.db import make_engine, session_scope
from crm.errors import CRMError
from crm.schema import seed_reference_data, upgrade_schema

CHROMIUM = "/usr/bin/chromium"
TARGETS = {"cold_ms": 1000, "warm_ms": 250, "rss_mb": 1536, "generation_s": 600, "search_ms": 50,
           "import_rows_per_s": 5000}
PARTS = ("pages", "search", "pipeline", "models", "segments", "kpis", "duplicates", "import")
MODELS_DIR = ROOT / "data" / "bench" / "models"  # what the bench trains, and what its page run reads  # generation is skipped with reuse instead


@dataclass
class BenchResult:
    size: str
    generation_s: float | None
    db_mb: float
    pages: list[dict]
    peak_rss_mb: float | None
    summary: dict = field(default_factory=dict)
    server_rss_mb: float | None = None
    search: dict | None = None  # crm.bench_search.bench_search
    imports: dict | str | None = None  # crm.imports.bench.bench_import, or why it was not measured
    pipeline: dict | None = None  # crm.bench_pipeline.bench_pipeline
    models: dict | None = None  # crm.bench_models.bench_models
    segments: dict | None = None  # crm.bench_segments.bench_segments
    kpis: dict | None = None  # crm.bench_kpis.bench_kpis
    duplicates: dict | None = None  # crm.bench_duplicates.bench_duplicates
    load: tuple[float, float] | None = None  # the 1-minute load average before and after measuring


def _prepare(size: str, seed: int, reuse: bool) -> tuple[str, float | None, dict]:
    """A database with the demo at this size; generated afresh (and timed) unless reuse is asked and possible."""
    from crm.demo import generate_demo

    path = ROOT / "data" / "bench" / f"{size}.db"
    url = f"sqlite:///{path}"
    if reuse and path.exists():  # upgraded first, as a customer's database would be: the pages need the schema
        engine = make_engine(url)
        upgrade_schema(engine)
        engine.dispose()
        return url, None, {}
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f"{size}.db*"):
        stale.unlink()
    engine = make_engine(url)
    upgrade_schema(engine)
    with session_scope(engine) as session:
        seed_reference_data(session)
    start = time.perf_counter()
    summary = generate_demo(engine, size=size, seed=seed)
    elapsed = time.perf_counter() - start
    engine.dispose()
    return url, elapsed, summary


def _db_megabytes(url: str) -> float:
    path = Path(url.removeprefix("sqlite:///"))
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 2**20


def _render_pages(url: str, rounds: int) -> dict:
    env = {**os.environ, "CRM_DATABASE_URL": url, "PYTHONPATH": str(ROOT), "CRM_MODELS_DIR": str(MODELS_DIR)}
    server = ["--server"] if Path(CHROMIUM).exists() else []  # the real server's RSS needs a browser to drive it
    done = subprocess.run([sys.executable, "-m", "ui.perf", "--rounds", str(rounds), *server], capture_output=True,
                          text=True, env=env, cwd=ROOT)
    if done.returncode != 0:
        raise CRMError(f"page rendering failed: {(done.stderr or done.stdout).strip().splitlines()[-1:]}")
    return json.loads(done.stdout)


def _on(url: str, module: str, function: str, *args) -> dict:
    """Run one part's bench function (crm.<module>.<function>(engine, *args)) on its own engine, imported late so
    that `--only` loads only what it measures."""
    bench = getattr(importlib.import_module(f"crm.{module}"), function)
    engine = make_engine(url)
    try:
        return bench(engine, *args)
    finally:
        engine.dispose()


def _import() -> dict | str:
    try:
        from crm.imports.bench import bench_import
    except ImportError:
        return "not measured (crm.imports.bench missing)"
    return bench_import(rows=100_000, seed=1)


def _mark(value: float, target: float) -> str:
    return "✅" if value <= target else "❌ over target"


def _import_row(imports: dict | str) -> tuple[str, str, str]:
    target = f"≥ {TARGETS['import_rows_per_s']:,} rows/s"
    if isinstance(imports, str):
        return "import speed", imports, target
    rate = imports["rows_per_second"]
    cpu = f", {imports['rows_per_cpu_second']:,} per CPU second" if "rows_per_cpu_second" in imports else ""
    return (f"import of {imports['rows']:,} generated contacts from CSV, into a new database",
            f"{rate:,} rows/s ({imports['seconds']:.1f} s{cpu})",
            f"{target} {'✅' if rate >= TARGETS['import_rows_per_s'] else '❌ under target'}")


def format_markdown(result: BenchResult, extra_rows: list[tuple[str, str, str]] = ()) -> str:
    from crm.bench_search import case_table, summary_rows

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = f", load average {result.load[0]:.1f} before and {result.load[1]:.1f} after" if result.load else ""
    lines = [f"## {utcnow():%Y-%m-%d %H:%M} UTC — size `{result.size}`, SQLite, commit `{commit or 'n/a'}`", "",
             f"Machine: {os.cpu_count()} cores, {mem:.0f} GiB RAM, Python {platform.python_version()}{load}.", "",
             "| measure | value | target at large |", "|---|---|---|"]
    gen = "reused (not timed)" if result.generation_s is None else f"{result.generation_s:.1f} s"
    lines.append(f"| demo generation | {gen} | ≤ {TARGETS['generation_s']} s |")
    lines.append(f"| database size | {result.db_mb:.1f} MB | — |")
    if result.server_rss_mb is not None:
        lines.append(f"| peak RSS of the `streamlit run` server after every role opened every page in Chromium "
                     f"| {result.server_rss_mb:.0f} MB | ≤ {TARGETS['rss_mb']} MB {_mark(result.server_rss_mb, TARGETS['rss_mb'])} |")
    if result.peak_rss_mb is not None:
        lines.append(f"| peak RSS of the AppTest process rendering every page as every role | {result.peak_rss_mb:.0f} MB "
                     f"| ≤ {TARGETS['rss_mb']} MB {_mark(result.peak_rss_mb, TARGETS['rss_mb'])} |")
    if result.search:
        extra_rows = [*summary_rows(result.search), *extra_rows]
    if result.models is not None:
        from crm.bench_models import summary_rows as model_rows

        extra_rows = [*extra_rows, *model_rows(result.models)]
    if result.pipeline is not None:
        from crm.bench_pipeline import summary_rows as pipeline_rows

        extra_rows = [*extra_rows, *pipeline_rows(result.pipeline, result.pages)]
    if result.segments is not None:
        from crm.bench_segments import summary_rows as segment_rows

        extra_rows = [*extra_rows, *segment_rows(result.segments)]
    if result.kpis is not None:
        from crm.bench_kpis import summary_rows as kpi_rows

        extra_rows = [*extra_rows, *kpi_rows(result.kpis)]
    if result.duplicates is not None:
        from crm.bench_duplicates import summary_rows as duplicate_rows

        extra_rows = [*extra_rows, *duplicate_rows(result.duplicates)]
    if result.imports is not None:
        extra_rows = [*extra_rows, _import_row(result.imports)]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in extra_rows]
    if result.summary:
        counts = ", ".join(f"{k} {v:,}" for k, v in result.summary.items() if isinstance(v, int))
        lines += ["", f"Rows: {counts}."]
    if result.pages:
        lines += ["", "| page | role | cold (ms) | warm (ms) | cold ≤ 1000 ms | warm ≤ 250 ms |",
                  "|---|---|---|---|---|---|"]
    for row in result.pages:
        lines.append(f"| {row['page']} | {row['role']} | {row['cold_ms']:.0f} | {row['warm_ms']:.0f} "
                     f"| {_mark(row['cold_ms'], TARGETS['cold_ms'])} | {_mark(row['warm_ms'], TARGETS['warm_ms'])} |")
    if result.search:
        lines += ["", *case_table(result.search)]
    return "\n".join(lines) + "\n"


def run_bench(*, size: str, seed: int, output: Path, record: bool, reuse: bool = False, rounds: int = 3,
              parts: tuple[str, ...] = PARTS) -> BenchResult:
    load_before = os.getloadavg()[0]
    url, generation_s, summary = _prepare(size, seed, reuse)
    models = _on(url, "bench_models", "bench_models", MODELS_DIR) if "models" in parts else None  # first: the pages then show a live model
    rendered = _render_pages(url, rounds) if "pages" in parts else {"pages": [], "peak_rss_mb": None}
    search = _on(url, "bench_search", "bench_search") if "search" in parts else None
    pipeline = _on(url, "bench_pipeline", "bench_pipeline") if "pipeline" in parts else None
    segments = _on(url, "bench_segments", "bench_segments") if "segments" in parts else None
    kpis = _on(url, "bench_kpis", "bench_kpis") if "kpis" in parts else None
    duplicates = _on(url, "bench_duplicates", "bench_duplicates") if "duplicates" in parts else None
    imports = _import() if "import" in parts else None
    counts = summary.get("rows", summary) if isinstance(summary, dict) else {}
    result = BenchResult(size=size, generation_s=generation_s, db_mb=_db_megabytes(url), pages=rendered["pages"],
                         peak_rss_mb=rendered["peak_rss_mb"], summary=counts if isinstance(counts, dict) else {},
                         server_rss_mb=rendered.get("server_peak_rss_mb"), search=search, imports=imports, pipeline=pipeline, models=models, segments=segments, kpis=kpis, duplicates=duplicates,
                         load=(load_before, os.getloadavg()[0]))
    text = format_markdown(result)
    print(text)
    if record:
        path = output if output.is_absolute() else ROOT / output
        with path.open("a", encoding="utf-8") as fh:
            fh.write("\n" + text)
        print(f"Appended to {path}")
    return result
