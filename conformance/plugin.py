"""pytest plugin of detspec, registered through the ``pytest11`` entry point and inert unless asked.

It only registers its options and Hypothesis profiles until a session asks for the conformance
suite, with ``--detspec-impl`` (``detspec run`` does) or with the ini setting
``detspec_default_impl`` (the checkout's ``pyproject.toml``). Options:

* ``--detspec-impl NAME|package.module:factory``: the implementation under test;
* ``--detspec-expectations PATH``: its expectations file (built-ins default to the shipped one;
  a third-party adapter has none unless given);
* ``--detspec-report-dir DIR``: write ``DIR/<name>.json`` and ``DIR/<name>.html`` and print the
  per-clause summary;
* ``--detspec-adapter-timeout S``: seconds one operation call may take (finite, > 0);
* ``--detspec-isolation auto|on|off``: run the adapter in a worker process (``auto``: every
  implementation but the reference);
* ``--detspec-profile dev|ci|thorough``: the Hypothesis profile (``detspec-dev``, 40 examples, the
  default; ``detspec-ci``, Hypothesis's ``ci`` with 60 examples, when ``CI`` is set;
  ``detspec-thorough``, 1000 examples). ``--hypothesis-profile detspec-...`` works too.
"""

from __future__ import annotations

import datetime
import json
import os
import random
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import hypothesis
import pytest
from detspec.conformance.expectations import Expectations, expectations_path, load_expectations
from detspec.conformance.fingerprint import Observation, mismatches
from detspec.conformance.guard import DEFAULT_TIMEOUT_S, GuardedImplementation, check_timeout
from detspec.conformance.loader import BUILTIN, ImplementationSpecError, open_implementation
from detspec.conformance.report import build_report, summary_lines, write_report
from detspec.conformance.runner import Outcome
from detspec.conformance.spec_index import Clause, load_clauses
from detspec.conformance.verdicts import Verdict
from detspec.properties.registry import Property, all_properties
from hypothesis import settings
from hypothesis.database import DirectoryBasedExampleDatabase

from detspec import suite_version

#: The example database lives in the working directory of the run (a checkout or a user project).
DATABASE = DirectoryBasedExampleDatabase(str(Path.cwd() / ".hypothesis" / "examples"))
CI_EXAMPLES = 60  # keeps `CI=true make test` near two minutes on 2 cores; `thorough` is the deep search

# Parents are explicit: Hypothesis makes its own `ci` profile the default when CI is set, and a
# profile derived from *that* would silently derandomise the nightly `thorough` search.
settings.register_profile(
    "detspec-dev",
    parent=settings.get_profile("default"),
    max_examples=40,
    deadline=None,
    derandomize=False,
    database=DATABASE,
)
settings.register_profile(
    "detspec-ci", parent=settings.get_profile("ci"), max_examples=CI_EXAMPLES, database=DATABASE
)
settings.register_profile(
    "detspec-thorough",
    parent=settings.get_profile("default"),
    max_examples=1000,
    deadline=None,
    derandomize=False,
    database=DATABASE,
)
PROFILES = ("dev", "ci", "thorough")

OUTCOME_KEY = "detspec_outcome"
FIGURE_KEY = "detspec_figure"
FINGERPRINT_KEY = "detspec_fingerprint"
PROPERTY_NODE = re.compile(r"::test_property\[(?P<clause>[^:\]]+):(?P<property>[^\]]+)\]$")


@dataclass
class ConformanceContext:
    impl: GuardedImplementation
    expectations: Expectations
    clauses: dict[str, Clause]
    properties: dict[str, Property]
    profile: str
    seed: int | str
    replay_input: dict[str, Any] | None = None  # --detspec-input

    def header(self, profile_settings: settings) -> dict[str, Any]:
        return implementation_header(self.impl, self.expectations, self.profile, self.seed, profile_settings)


def implementation_header(impl, expectations: Expectations, profile: str, seed, profile_settings) -> dict:
    return {
        "implementation": {
            "name": impl.name,
            "version": impl.version,
            "conventions": asdict(impl.conventions),
            "facts": impl.facts,
            "isolated": impl.isolated,
        },
        "suite_version": suite_version(),
        "hypothesis": {
            "version": hypothesis.__version__,
            "profile": profile,
            "seed": seed,
            "max_examples": profile_settings.max_examples,
        },
        "expectations": {
            "path": _shown_path(expectations.path),
            "verified": expectations.verified,
        },
        "generated_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def _shown_path(path: Path | None) -> str | None:
    """A path relative to the working directory when it lies below it (reports get shared)."""
    if path is None:
        return None
    resolved = path.resolve()
    return str(resolved.relative_to(Path.cwd())) if resolved.is_relative_to(Path.cwd()) else str(path)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("detspec", "detspec conformance suite")
    group.addoption(
        "--detspec-impl",
        default=None,
        help="implementation under test: a built-in name or package.module:factory",
    )
    group.addoption("--detspec-expectations", default=None, help="expectations TOML for the implementation")
    group.addoption("--detspec-report-dir", default=None, help="write <impl>.json/.html here")
    group.addoption(
        "--detspec-adapter-timeout",
        default=str(DEFAULT_TIMEOUT_S),
        help="seconds an operation may take before it counts as hung (finite, > 0)",
    )
    group.addoption(
        "--detspec-isolation",
        choices=("auto", "on", "off"),
        default="auto",
        help="run the adapter in a worker process (auto: all but the reference; off to debug)",
    )
    group.addoption("--detspec-profile", choices=PROFILES, default=None, help="Hypothesis profile")
    group.addoption(
        "--detspec-input",
        default=None,
        help="replay this one input (JSON, or @file.json) on the selected property instead of searching",
    )
    parser.addini("detspec_default_impl", "implementation when --detspec-impl is not given (a checkout's)")


def _requested_impl(config: pytest.Config) -> str | None:
    return config.getoption("detspec_impl") or config.getini("detspec_default_impl") or None


def _profile(config: pytest.Config) -> str:
    chosen = config.getoption("detspec_profile")
    if chosen:
        return f"detspec-{chosen}"
    hypothesis_profile = config.getoption("hypothesis_profile", default=None)
    if hypothesis_profile:
        return hypothesis_profile
    return "detspec-ci" if os.environ.get("CI") else "detspec-dev"


def _seed(config: pytest.Config) -> int | str:
    if settings.default.derandomize:
        return "derandomized"
    if hasattr(config, "workerinput"):
        return config.workerinput["detspec_seed"]
    chosen = config.getoption("hypothesis_seed", default=None)
    return int(chosen) if chosen is not None else random.getrandbits(32)


def _replay_input(config: pytest.Config) -> dict[str, Any] | None:
    text = config.getoption("detspec_input")
    if text is None:
        return None
    try:
        if text.startswith("@"):
            text = Path(text[1:]).read_text(encoding="utf-8")
        data = json.loads(text)
    except (OSError, ValueError) as error:
        raise pytest.UsageError(f"--detspec-input: not a JSON input ({error})") from None
    if not isinstance(data, dict):
        raise pytest.UsageError("--detspec-input: expected a JSON object of the property's fields")
    return data


def _isolation(config: pytest.Config) -> bool | None:
    return {"auto": None, "on": True, "off": False}[config.getoption("detspec_isolation")]


def pytest_configure(config: pytest.Config) -> None:
    config.detspec_state = _State(config)
    if _requested_impl(config) is None:
        return  # not a detspec session: stay inert
    try:
        config.detspec_state.timeout_s = check_timeout(config.getoption("detspec_adapter_timeout"))
    except ValueError as error:
        raise pytest.UsageError(f"--detspec-adapter-timeout: {error}") from None
    profile = _profile(config)
    try:
        settings.load_profile(profile)
    except Exception as error:
        raise pytest.UsageError(f"Hypothesis profile {profile!r}: {error}") from None
    config.detspec_state.profile = profile
    config.detspec_state.seed = _seed(config)
    explicit = config.getoption("detspec_expectations")
    if explicit and not Path(explicit).exists():
        raise pytest.UsageError(f"--detspec-expectations {explicit!r}: no such file")
    if config.getoption("detspec_impl") or config.getoption("detspec_report_dir"):
        config.detspec_state.open()  # a bad implementation is a usage error before any test runs
        if _is_xdist_controller(config):
            config.detspec_state.release_implementation()
    if config.getoption("detspec_report_dir") and not hasattr(config, "workerinput"):
        config.pluginmanager.register(ReportCollector(config), "detspec-report")


def _is_xdist_controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput") and bool(getattr(config.option, "numprocesses", None))


def pytest_unconfigure(config: pytest.Config) -> None:
    state = getattr(config, "detspec_state", None)
    if state is not None:
        state.release_implementation()


class _State:
    """The session's conformance context, built on first use."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.timeout_s = DEFAULT_TIMEOUT_S
        self.profile = "detspec-dev"
        self.seed: int | str = "unset"
        self.context: ConformanceContext | None = None
        self.metadata: dict[str, Any] | None = None  # the header, kept when the worker is closed
        self.problems: list[str] = []

    def open(self) -> ConformanceContext:
        if self.context is not None:
            return self.context
        spec = _requested_impl(self.config)
        try:
            impl = open_implementation(spec, self.timeout_s, _isolation(self.config))
        except ImplementationSpecError as error:
            raise pytest.UsageError(str(error)) from None
        properties = {p.name: p for p in all_properties()}
        clauses = load_clauses()
        explicit = self.config.getoption("detspec_expectations")
        if explicit:
            path: Path | None = Path(explicit)
        else:  # only built-ins pick up shipped expectations implicitly
            path = expectations_path(impl.expectations_name) if spec in BUILTIN else None
        expectations = load_expectations(path, set(clauses), properties, impl.facts)
        self.context = ConformanceContext(
            impl, expectations, clauses, properties, self.profile, self.seed, _replay_input(self.config)
        )
        return self.context

    def release_implementation(self) -> None:
        """Close the implementation's worker; keep what the report header needs."""
        if self.context is not None:
            self.metadata = self.context.header(settings.default)
            self.problems = list(self.context.expectations.problems)
            self.context.impl.close()


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:  # xdist: every worker uses the controller's seed
    node.workerinput["detspec_seed"] = node.config.detspec_state.seed


@pytest.fixture(scope="session")
def conformance(request: pytest.FixtureRequest) -> ConformanceContext:
    state: _State = request.config.detspec_state
    if _requested_impl(request.config) is None:
        raise pytest.UsageError("the detspec conformance suite needs --detspec-impl")
    return state.open()


@pytest.fixture
def record_outcome(request: pytest.FixtureRequest):
    def record(outcome: Outcome) -> None:
        request.node.user_properties.append((OUTCOME_KEY, json.dumps(outcome.to_json())))

    return record


@pytest.fixture
def record_fingerprint(request: pytest.FixtureRequest):
    def record(observations: dict[str, dict]) -> None:
        request.node.user_properties.append((FINGERPRINT_KEY, json.dumps(observations)))

    return record


@pytest.fixture
def record_figure(request: pytest.FixtureRequest):
    def record(figure: dict[str, str]) -> None:
        request.node.user_properties.append((FIGURE_KEY, json.dumps(figure)))

    return record


class ReportCollector:
    """Gathers outcomes (from xdist workers too, via user_properties) and writes the report. A test
    that ended without an outcome (its worker crashed) is an ``error``; a property that never ran
    (deselected) is ``not-run``; expectations problems fail the run even when the consistency
    test was deselected."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.outcomes: dict[str, dict[str, Any]] = {}
        self.figures: list[dict[str, str]] = []
        self.fingerprint: dict[str, dict] = {}
        self.report: dict[str, Any] | None = None
        self.paths: tuple[Path, ...] = ()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for key, value in report.user_properties:
            if key == OUTCOME_KEY and report.when == "call":
                outcome = json.loads(value)
                self.outcomes[outcome["property"]] = outcome
            elif key == FIGURE_KEY and report.when == "call":
                self.figures.append(json.loads(value))
            elif key == FINGERPRINT_KEY and report.when == "call":
                self.fingerprint = json.loads(value)
        match = PROPERTY_NODE.search(report.nodeid)
        if match and report.failed and match["property"] not in self.outcomes:
            text = str(report.longrepr).strip().splitlines()
            self.outcomes[match["property"]] = Outcome(
                match["property"],
                match["clause"],
                Verdict.ERROR,
                code="property.error",
                message=f"the property did not finish ({report.when}): {(text or ['?'])[-1][:300]}",
            ).to_json()

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        state: _State = self.config.detspec_state
        if state.context is not None and state.metadata is None:
            header = state.context.header(settings.default)
            problems = list(state.context.expectations.problems)
        else:
            header, problems = state.metadata, list(state.problems)
        properties = {p.name: p for p in all_properties()}
        problems += mismatches([Observation.from_json(name, o) for name, o in self.fingerprint.items()])
        self.report = build_report(
            {**header, "fingerprint": self.fingerprint},
            load_clauses(),
            properties,
            list(self.outcomes.values()),
            problems,
            self.figures,
        )
        self.paths = write_report(self.report, Path(self.config.getoption("detspec_report_dir")))
        if session.exitstatus == 0 and (
            problems or any(Verdict(c["status"]).fails_the_run for c in self.report["clauses"])
        ):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.report is None:
            return
        terminalreporter.section("detspec conformance")
        for line in summary_lines(self.report):
            terminalreporter.write_line(line)
        for path in self.paths:
            terminalreporter.write_line(f"wrote {path}")
