"""pytest plugin: ``--impl``, Hypothesis profiles, the conformance context and the report.

Loaded by the top-level ``conftest.py``. Options:

* ``--impl NAME|package.module:factory`` (default ``torchvision``): the implementation under test;
* ``--expectations PATH``: its expectations file (default ``conformance/expectations/<name>.toml``);
* ``--report-dir DIR``: write ``DIR/<name>.json`` and ``DIR/<name>.html`` and print the per-clause
  summary;
* ``--adapter-timeout S``: seconds one operation call may take before it counts as hung.

Hypothesis profiles: ``dev`` (default), ``ci`` (Hypothesis's own ``ci`` plus our database;
loaded when ``CI`` is set), ``thorough`` (1000 examples; ``dev`` has 40, ``ci`` 60).
Choose with ``--hypothesis-profile``.
"""

from __future__ import annotations

import datetime
import json
import os
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import hypothesis
import pytest
from detspec.conformance.expectations import Expectations, expectations_path, load_expectations
from detspec.conformance.guard import DEFAULT_TIMEOUT_S, GuardedImplementation
from detspec.conformance.loader import ImplementationSpecError, load_adapter
from detspec.conformance.report import build_report, summary_lines, write_report
from detspec.conformance.spec_index import Clause, load_clauses
from detspec.properties.registry import Property, all_properties
from hypothesis import settings
from hypothesis.database import DirectoryBasedExampleDatabase

from detspec import suite_version

#: The example database lives in the working directory of the run (a checkout or a user project).
DATABASE = DirectoryBasedExampleDatabase(str(Path.cwd() / ".hypothesis" / "examples"))
CI_EXAMPLES = 60  # keeps `CI=true make test` near two minutes on 2 cores; `thorough` is the deep search

settings.register_profile("dev", max_examples=40, deadline=None, database=DATABASE)
settings.register_profile(
    "ci", parent=settings.get_profile("ci"), max_examples=CI_EXAMPLES, database=DATABASE
)
settings.register_profile("thorough", max_examples=1000, deadline=None, database=DATABASE)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

OUTCOME_KEY = "detspec_outcome"
PROBLEMS_KEY = "detspec_problems"
FIGURE_KEY = "detspec_figure"


@dataclass
class ConformanceContext:
    impl: GuardedImplementation
    expectations: Expectations
    clauses: dict[str, Clause]
    properties: dict[str, Property]
    profile: str
    seed: int | str

    def header(self, profile_settings: settings) -> dict[str, Any]:
        return {
            "implementation": {
                "name": self.impl.name,
                "version": self.impl.version,
                "conventions": asdict(self.impl.conventions),
            },
            "suite_version": suite_version(),
            "hypothesis": {
                "version": hypothesis.__version__,
                "profile": self.profile,
                "seed": self.seed,
                "max_examples": profile_settings.max_examples,
            },
            "expectations": _shown_path(self.expectations.path),
            "generated_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        }


def _shown_path(path: Path | None) -> str | None:
    """A path relative to the working directory when it lies below it (reports get shared)."""
    if path is None:
        return None
    resolved = path.resolve()
    return str(resolved.relative_to(Path.cwd())) if resolved.is_relative_to(Path.cwd()) else str(path)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("detspec")
    group.addoption(
        "--impl",
        default="torchvision",
        help="implementation under test: a built-in name or package.module:factory",
    )
    group.addoption("--expectations", default=None, help="expectations TOML for --impl")
    group.addoption("--report-dir", default=None, help="write <impl>.json/.html here")
    group.addoption(
        "--adapter-timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help="seconds an operation may take before it counts as hung",
    )


def _seed(config: pytest.Config) -> int | str:
    if settings.default.derandomize:
        return "derandomized"
    if hasattr(config, "workerinput"):
        return config.workerinput["detspec_seed"]
    chosen = config.getoption("hypothesis_seed", default=None)
    return int(chosen) if chosen is not None else random.getrandbits(32)


def pytest_configure(config: pytest.Config) -> None:
    chosen_profile = config.getoption("hypothesis_profile", default=None)
    if chosen_profile:  # Hypothesis's own plugin loads it too, but maybe after this hook
        settings.load_profile(chosen_profile)
    try:
        adapter = load_adapter(config.getoption("impl"))
    except ImplementationSpecError as error:
        raise pytest.UsageError(str(error)) from None
    impl = GuardedImplementation(adapter, config.getoption("adapter_timeout"))
    properties = {p.name: p for p in all_properties()}
    clauses = load_clauses()
    explicit = config.getoption("expectations")
    path = Path(explicit) if explicit else expectations_path(impl.name)
    if explicit and not path.exists():
        raise pytest.UsageError(f"--expectations {explicit!r}: no such file")
    expectations = load_expectations(path, set(clauses), properties)
    profile = chosen_profile or ("ci" if os.environ.get("CI") else "dev")
    config.detspec = ConformanceContext(impl, expectations, clauses, properties, profile, _seed(config))
    if config.getoption("report_dir") and not hasattr(config, "workerinput"):
        config.pluginmanager.register(ReportCollector(config), "detspec-report")


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:  # xdist: every worker uses the controller's seed
    node.workerinput["detspec_seed"] = node.config.detspec.seed


@pytest.fixture(scope="session")
def conformance(request: pytest.FixtureRequest) -> ConformanceContext:
    return request.config.detspec


@pytest.fixture
def record_outcome(request: pytest.FixtureRequest):
    def record(outcome_json: dict[str, Any]) -> None:
        request.node.user_properties.append((OUTCOME_KEY, json.dumps(outcome_json)))

    return record


@pytest.fixture
def record_figure(request: pytest.FixtureRequest):
    def record(figure: dict[str, str]) -> None:
        request.node.user_properties.append((FIGURE_KEY, json.dumps(figure)))

    return record


@pytest.fixture
def record_problems(request: pytest.FixtureRequest):
    def record(problems: list[str]) -> None:
        request.node.user_properties.append((PROBLEMS_KEY, json.dumps(problems)))

    return record


class ReportCollector:
    """Gathers outcomes (from xdist workers too, via user_properties) and writes the report."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.outcomes: list[dict[str, Any]] = []
        self.problems: list[str] = []
        self.figures: list[dict[str, str]] = []
        self.report: dict[str, Any] | None = None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for key, value in report.user_properties:
            if key == OUTCOME_KEY and report.when == "call":
                self.outcomes.append(json.loads(value))
            elif key == PROBLEMS_KEY and report.when == "call":
                self.problems.extend(json.loads(value))
            elif key == FIGURE_KEY and report.when == "call":
                self.figures.append(json.loads(value))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        context: ConformanceContext = self.config.detspec
        self.report = build_report(
            context.header(settings.default),
            context.clauses,
            self.outcomes,
            self.problems,
            self.figures,
        )
        self.paths = write_report(self.report, Path(self.config.getoption("report_dir")))

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.report is None:
            return
        terminalreporter.section("detspec conformance")
        for line in summary_lines(self.report):
            terminalreporter.write_line(line)
        for path in self.paths:
            terminalreporter.write_line(f"wrote {path}")
