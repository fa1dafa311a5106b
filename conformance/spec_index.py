"""Read the clauses out of ``spec/*.md``.

A clause is a level-3 heading of the form ``### `area.topic.rule` (MUST)`` followed by its text,
up to the next heading. IDs are stable dotted names; levels are MUST, SHOULD or MAY.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

#: The spec files, wherever detspec is installed (a checkout, an editable install or a wheel).
SPEC_DIR = Path(str(resources.files("detspec.spec")))
LEVELS = ("MUST", "SHOULD", "MAY")
CLAUSE_HEADING = re.compile(r"^### `(?P<id>[a-z0-9]+(?:\.[a-z0-9-]+)+)` \((?P<level>[A-Z]+)\)\s*$")
ANY_HEADING = re.compile(r"^#{1,3} ")


@dataclass(frozen=True)
class Clause:
    id: str
    level: str
    path: Path
    line: int
    text: str

    @property
    def area(self) -> str:
        return self.id.split(".", 1)[0]


def parse_spec_file(path: Path) -> list[Clause]:
    """Parse one spec file; raises ``ValueError`` on a malformed clause heading or level."""
    clauses: list[Clause] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    current: tuple[str, str, int] | None = None
    body: list[str] = []

    def close() -> None:
        if current is not None:
            clause_id, level, line = current
            clauses.append(Clause(clause_id, level, path, line, "\n".join(body).strip()))

    for number, line in enumerate(lines, start=1):
        if line.startswith("### `"):
            match = CLAUSE_HEADING.match(line)
            if not match or match["level"] not in LEVELS:
                raise ValueError(f"{path.name}:{number}: malformed clause heading {line!r}")
            close()
            current, body = (match["id"], match["level"], number), []
        elif ANY_HEADING.match(line):
            close()
            current, body = None, []
        elif current is not None:
            body.append(line)
    close()
    return clauses


@cache
def load_clauses(spec_dir: Path = SPEC_DIR) -> dict[str, Clause]:
    """All clauses of all areas, by ID; raises ``ValueError`` on a duplicate ID."""
    clauses: dict[str, Clause] = {}
    for path in sorted(spec_dir.glob("*.md")):
        for clause in parse_spec_file(path):
            if clause.id in clauses:
                raise ValueError(f"duplicate clause ID {clause.id} in {path.name}")
            clauses[clause.id] = clause
    return clauses
