"""District export bundles: Parquet tables, a OneRoster CSV set, pseudonymised statements, a data
dictionary and a manifest, all as of one event-log position.

The exporter keeps its own projections file (the LRS's embedded one belongs to the running
server: DuckDB allows one writer process) and brings it to exactly the bundle's position, so an
export runs beside a live LRS and two exports of one position are byte-identical: every file is
written in a total order (ORDER BY ALL, one DuckDB thread), and nothing in a bundle depends on
the wall clock. Files go to a hidden folder beside the output and move into place only once the
manifest is written, so an interrupted export never leaves a bundle that looks complete.
"""

from __future__ import annotations

import csv
import hashlib
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import orjson
from tqdm import tqdm

from ingest.enrich import format_stored
from lrs import __version__
from lrs.application import LearningRecordStore
from lrs.errors import BadRequest
from lrs.export.pseudonyms import Disclosure, Pseudonymiser
from lrs.export.statements import KnownPeople, PseudonymousStatements
from lrs.export.tables import EXPORT_MASTERY, FREE_TEXTS, ONEROSTER, OTHER_FILES, PARQUET, ExportFile
from projections.facts import actor_key, statement_time
from projections.runner import (
    ERASED_TOPIC,
    RETENTION_TOPIC,
    STATEMENT_TOPIC,
    TOPICS,
    ProjectionRunner,
)

FORMAT = "lrs-district-export/1"
# Which rules wrote the statements: 2 leaves out free text and pseudonymises agents wherever they
# are (rules 1 kept names and LMS ids in extensions, and message text in descriptions). An
# incremental bundle only follows a bundle written under the same rules.
STATEMENT_RULES = 2
_ONEROSTER_FILES = ("academicSessions", "categories", "classes", "classResources", "courses",
                    "courseResources", "demographics", "enrollments", "lineItemLearningObjectiveIds",
                    "lineItems", "lineItemScoreScales", "orgs", "resources",
                    "resultLearningObjectiveIds", "results", "resultScoreScales", "roles",
                    "scoreScales", "userProfiles", "userResources", "users")
MERGE_RULE = ("To apply an incremental bundle to the one before it: in every table and OneRoster file"
              " keyed by learner, drop the rows of the learners in changed_learners.csv and add this"
              " bundle's rows; classes, orgs and lineItems are upserted by sourcedId; statements.jsonl"
              " is appended.")


def parse_day(text: str | None, flag: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"{flag} {text!r}: must be a date as YYYY-MM-DD") from None


@dataclass(frozen=True)
class ExportRequest:
    out: Path
    since_export: Path | None = None
    org: str | None = None
    start: date | None = None
    end: date | None = None
    position: int | None = None
    disclosure: Disclosure = field(default_factory=Disclosure)

    def period(self) -> tuple[datetime, datetime]:
        """[start, end) of the --from/--to days (UTC): the one bound for tables and statements."""
        start = datetime.combine(self.start, time.min) if self.start else datetime.min
        end = (datetime.combine(self.end + timedelta(days=1), time.min)
               if self.end and self.end < date.max else datetime.max)
        return start, end

    def scope(self) -> dict[str, Any]:
        return {"org": self.org, "from": self.start and self.start.isoformat(),
                "to": self.end and self.end.isoformat(), "disclosed": asdict(self.disclosure)}


def is_bundle(folder: Path) -> bool:
    try:
        manifest = orjson.loads((folder / "manifest.json").read_bytes())
        return isinstance(manifest, dict) and manifest.get("format") == FORMAT
    except (OSError, orjson.JSONDecodeError, AttributeError):
        return False


class DistrictExporter:
    def __init__(self, store: LearningRecordStore, views_path: Path, secret: bytes,
                 progress: bool | None = None) -> None:
        self.store = store
        self.views_path = views_path
        self._departed: dict[str, str | None] = {}
        self._removed: list[str] = []
        self.secret = secret
        self.progress = sys.stderr.isatty() if progress is None else progress

    # --- checks: everything that can be wrong is found before anything is written ---------------

    def _check(self, request: ExportRequest, pseudonyms: Pseudonymiser) -> tuple[int, int]:
        """(the bundle's position, the previous bundle's position or 0)."""
        if request.start and request.end and request.start > request.end:
            raise BadRequest(f"--from {request.start} is after --to {request.end}")
        out = request.out
        if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not is_bundle(out))):
            raise BadRequest(f"--out {out}: exists and is not an earlier bundle; choose a new folder")
        since = 0
        if request.since_export is not None:
            previous = request.since_export
            if not is_bundle(previous):
                raise BadRequest(f"--since-export {previous}: not a bundle (no {FORMAT} manifest.json)")
            if previous.resolve() == out.resolve():
                raise BadRequest("--out must differ from --since-export: the previous bundle is kept")
            manifest = orjson.loads((previous / "manifest.json").read_bytes())
            if manifest["pseudonyms"]["key_check"] != pseudonyms.key_check:
                raise BadRequest(f"--since-export {previous}: made under another district secret")
            if manifest["pseudonyms"].get("statement_rules") != STATEMENT_RULES:
                raise BadRequest(f"--since-export {previous}: made by an older lrs whose statements"
                                 " kept names, LMS ids and message text; make a full export")
            if manifest["scope"] != request.scope():
                raise BadRequest(f"--since-export {previous}: made with another scope"
                                 f" {manifest['scope']}; an incremental export keeps the same"
                                 " --org, --from, --to and --include flags")
            since = int(manifest["position"])
        head = self.store.recorder.max_notification_id() or 0
        position = head if request.position is None else request.position
        if position < 0 or position > head:
            raise BadRequest(f"--position {position}: the log holds positions 1..{head}")
        if position and not self.store.recorder.select_notifications(position, 1, stop=position):
            raise BadRequest(f"--position {position}: no event has that position")
        if position < since:
            raise BadRequest(f"--since-export is at position {since}, after --position {position}")
        return position, since

    # --- the projections at exactly the bundle's position ---------------------------------------

    @contextmanager
    def _views_at(self, position: int) -> Iterator[ProjectionRunner]:
        self.views_path.parent.mkdir(parents=True, exist_ok=True)
        runner = _bounded(ProjectionRunner(self.store, self.views_path, page_size=5000))
        scratch: tempfile.TemporaryDirectory[str] | None = None
        try:
            if runner.position() > position:
                # The export's own views are past this position (an older bundle asked again):
                # rebuild a private copy up to it.
                runner.close()
                scratch = tempfile.TemporaryDirectory(prefix="lrs-export-views-")
                runner = _bounded(ProjectionRunner(self.store, Path(scratch.name) / "views.duckdb",
                                                   page_size=5000))
            behind = self.store.index.events_after(runner.position(), TOPICS, through=position)
            present = _learner_orgs(runner.con)
            start = runner.position()
            with self._bar(behind, "projections", "events") as bar:
                runner.catch_up(until=position, progress=bar.update)
            # Learners the views held at the previous bundle and no longer hold (forgotten, or
            # retention took every statement of theirs): an incremental bundle lists them removed.
            self._departed = {learner: org for learner, org in present.items()
                              if learner not in _learner_orgs(runner.con)} if start else {}
            yield runner
        finally:
            runner.close()
            if scratch is not None:
                scratch.cleanup()

    # --- the bundle -----------------------------------------------------------------------------

    def export(self, request: ExportRequest) -> dict[str, Any]:
        pseudonyms = Pseudonymiser(self.secret, request.disclosure)
        position, since = self._check(request, pseudonyms)
        with self._views_at(position) as runner:
            con = runner.con
            con.execute("SET threads = 1")  # one writer thread: the same rows give the same bytes
            con.execute("SET preserve_insertion_order = true")
            learners_in_org, changed = self._fill_scope(con, request, pseudonyms, runner, since)
            people = self._known_people(con, pseudonyms) if request.disclosure.free_text else None
            self._fill_free_texts(con, people)
            as_of = self._as_of(position)
            con.execute("CREATE OR REPLACE TEMP TABLE export_meta AS SELECT ? AS as_of_text",
                        [as_of])
            request.out.resolve().parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{request.out.name}.partial-",
                                            dir=request.out.resolve().parent))
            try:
                statements = PseudonymousStatements(pseudonyms, people)
                files = self._write(con, staging, request, statements, position, since,
                                    learners_in_org, changed)
                manifest = {
                    "format": FORMAT, "tool": {"name": "lrs", "version": __version__},
                    "kind": "incremental" if request.since_export else "full",
                    "position": position, "since_position": since if request.since_export else None,
                    "as_of": as_of, "scope": request.scope(),
                    "pseudonyms": {"scheme": "HMAC-SHA256(district secret, learner IFI key), hex",
                                   "key_check": pseudonyms.key_check,
                                   "statement_rules": STATEMENT_RULES},
                    "merge": MERGE_RULE if request.since_export else None,
                    "files": files,
                }
                (staging / "manifest.json").write_bytes(
                    orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
                _move_into_place(staging, request.out)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
        return manifest

    def _fill_scope(self, con: Any, request: ExportRequest, pseudonyms: Pseudonymiser,
                    runner: ProjectionRunner, since: int) -> tuple[set[str] | None, list[str] | None]:
        """The temporary tables the queries read; returns the org's learners (None: everyone)
        and, for an incremental bundle, the pseudonyms of the learners whose rows it replaces."""
        orgs = [row[0] for row in con.execute(
            "SELECT DISTINCT org FROM roster WHERE org IS NOT NULL ORDER BY org").fetchall()]
        in_org: set[str] | None = None
        if request.org is not None:
            if request.org not in orgs:
                known = ", ".join(orgs[:10]) if orgs else "none (load a roster with an org column)"
                raise BadRequest(f"--org {request.org!r}: unknown; the roster's orgs are {known}")
            in_org = {row[0] for row in con.execute(
                "SELECT learner FROM roster WHERE org = ?", [request.org]).fetchall()}
        keys = sorted({row[0] for row in con.execute(
            "SELECT learner FROM learner_profile UNION SELECT unnest(peers_helped) FROM learner_profile"
            " UNION SELECT learner FROM roster").fetchall()})
        names = dict(con.execute("SELECT learner, names[1] FROM learner_profile").fetchall())
        con.execute("CREATE OR REPLACE TEMP TABLE export_people (learner VARCHAR, pseudonym VARCHAR,"
                    " name VARCHAR, email VARCHAR)")
        if keys:
            con.execute("INSERT INTO export_people SELECT unnest(?), unnest(?), unnest(?), unnest(?)", [
                keys, [pseudonyms.learner(k) for k in keys], [names.get(k) for k in keys],
                [k.removeprefix("mbox:mailto:") if k.startswith("mbox:") else None for k in keys]])
        scope = runner.learners_changed_after(since) if request.since_export else \
            [row[0] for row in con.execute("SELECT learner FROM learner_profile").fetchall()]
        scope = sorted(learner for learner in scope if in_org is None or learner in in_org)
        changed = sorted(pseudonyms.learner(k) for k in scope) if request.since_export else None
        departed = [k for k, org in self._departed.items()
                    if request.org is None or org == request.org]
        self._removed = sorted(pseudonyms.learner(k) for k in departed)
        if changed is not None:  # the merge rule drops their rows, and this bundle adds none
            changed = sorted({*changed, *self._removed})
        con.execute("CREATE OR REPLACE TEMP TABLE export_scope (learner VARCHAR)")
        if scope:
            con.execute("INSERT INTO export_scope SELECT unnest(?)", [scope])
        classes = con.execute(
            "SELECT c.learner, c.class_id, (SELECT min(r.org) FROM roster r WHERE r.learner = c.learner"
            " AND r.class_id = c.class_id) FROM learner_class c").fetchall()
        con.execute("CREATE OR REPLACE TEMP TABLE export_classes (learner VARCHAR, class_id VARCHAR,"
                    " org VARCHAR)")
        if classes:
            con.execute("INSERT INTO export_classes SELECT unnest(?), unnest(?), unnest(?)", [
                [c[0] for c in classes],
                [pseudonyms.class_id(c[1]) if c[1] else None for c in classes],
                [c[2] for c in classes]])
        low, high = request.period()
        con.execute("CREATE OR REPLACE TEMP TABLE export_range AS"
                    " SELECT CAST(? AS TIMESTAMP) AS lo, CAST(? AS TIMESTAMP) AS hi", [low, high])
        con.execute(EXPORT_MASTERY)
        return in_org, changed

    @staticmethod
    def _known_people(con: Any, pseudonyms: Pseudonymiser) -> KnownPeople:
        """Every learner's names and identifiers, for the free text that repeats them."""
        people = KnownPeople(pseudonyms)
        for learner, names in con.execute(
                "SELECT learner, names FROM learner_profile UNION ALL"
                " SELECT DISTINCT learner, CAST([] AS VARCHAR[]) FROM roster ORDER BY ALL").fetchall():
            people.add(learner, names or [])
        return people

    @staticmethod
    def _fill_free_texts(con: Any, people: KnownPeople | None) -> None:
        """Goal and reflection texts with the people in them pseudonymised, by statement id."""
        con.execute("CREATE OR REPLACE TEMP TABLE export_free_text (statement_id VARCHAR, text VARCHAR)")
        if people is None:
            return
        texts = con.cursor()
        texts.execute(FREE_TEXTS)
        while batch := texts.fetchmany(5000):
            con.execute("INSERT INTO export_free_text SELECT unnest(?), unnest(?)",
                        [[row[0] for row in batch], [people.scrub(row[1]) for row in batch]])
        texts.close()

    def _as_of(self, position: int) -> str:
        """The time of the event at the position: a bundle's dates never read the wall clock."""
        if not position:
            return "1970-01-01T00:00:00.000Z"
        notification = self.store.recorder.select_notifications(position, 1, stop=position)[0]
        event: Any = self.store.mapper.to_domain_event(notification)
        moment: datetime = event.timestamp
        return format_stored(moment)[:-4] + "Z"  # milliseconds

    def _write(self, con: Any, folder: Path, request: ExportRequest,
               statements: PseudonymousStatements, position: int, since: int, in_org: set[str] | None,
               changed: list[str] | None) -> list[dict[str, Any]]:
        disclosed = {name for name, on in asdict(request.disclosure).items() if on}
        rows: dict[str, int] = {}
        (folder / "tables").mkdir()
        (folder / "oneroster").mkdir()
        with self._bar(len(PARQUET) + len(ONEROSTER), "tables", "files") as bar:
            for spec in PARQUET:
                rows[spec.path] = _copy(con, spec, disclosed, folder,
                                        "FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 100000")
                bar.update(1)
            for spec in ONEROSTER:
                rows[spec.path] = _copy(con, spec, disclosed, folder, "FORMAT csv, HEADER true")
                bar.update(1)
        mode = "delta" if request.since_export else "bulk"
        written = {Path(spec.path).stem for spec in ONEROSTER}
        _write_csv(folder / "oneroster/manifest.csv", ["propertyName", "value"], [
            ["manifest.version", "1.0"], ["oneroster.version", "1.2"],
            *[[f"file.{name}", mode if name in written else "absent"] for name in _ONEROSTER_FILES],
            ["source.systemName", "lrs"], ["source.systemCode", f"lrs {__version__}"]])
        rows["oneroster/manifest.csv"] = 2 + len(_ONEROSTER_FILES) + 2
        rows["statements.jsonl"] = self._write_statements(
            folder / "statements.jsonl", request, statements, position, since, in_org)
        if changed is not None:
            _write_csv(folder / "changed_learners.csv", ["learner"], [[p] for p in changed])
            rows["changed_learners.csv"] = len(changed)
            _write_csv(folder / "removed_learners.csv", ["learner"], [[p] for p in self._removed])
            rows["removed_learners.csv"] = len(self._removed)
        rows["data_dictionary.csv"] = _write_dictionary(folder / "data_dictionary.csv", disclosed,
                                                        changed is not None)
        return [{"path": path, "rows": count, "bytes": (folder / path).stat().st_size,
                 "sha256": _sha256(folder / path)} for path, count in sorted(rows.items())]

    def _write_statements(self, path: Path, request: ExportRequest,
                          statements: PseudonymousStatements, position: int, since: int,
                          in_org: set[str] | None) -> int:
        low, high = request.period()
        count, start = 0, since + 1
        total = self.store.index.events_after(since, [STATEMENT_TOPIC], through=position)
        forgotten = _Forgotten(self.store, position)
        with path.open("wb") as out, self._bar(total, "statements", "statements") as bar:
            while position and start <= position:
                page = self.store.index.event_states(start, 2000, [STATEMENT_TOPIC], stop=position)
                if not page:
                    break
                opened_page = self.store.open_statement_states([state for _, _, state in page])
                for (seq, _, _), opened in zip(page, opened_page, strict=True):
                    if opened is None:
                        continue  # its learner was erased
                    statement: dict[str, Any] = orjson.loads(opened)["statement"]
                    if forgotten.holds(seq, statement):
                        continue
                    if in_org is not None and actor_key(statement.get("actor")) not in in_org:
                        continue
                    moment = statement_time(statement)
                    if not low <= moment < high:
                        continue
                    out.write(orjson.dumps(statements.rewrite(statement),
                                           option=orjson.OPT_SORT_KEYS) + b"\n")
                    count += 1
                bar.update(len(page))
                start = page[-1][0] + 1
        return count

    def _bar(self, total: int, what: str, unit: str) -> tqdm[Any]:
        return tqdm(total=total, desc=what, unit=f" {unit}", disable=not self.progress,
                    file=sys.stderr, leave=False, dynamic_ncols=True)


class _Forgotten:
    """Erasures and retentions in the log up to a position, for statements that still open:
    those written before sealing existed, whose bytes an erasure could not shred."""

    def __init__(self, store: LearningRecordStore, position: int) -> None:
        self.store = store
        self.erased: dict[str, int] = {}  # pseudonym -> the position of its latest erasure
        self.retained: list[tuple[int, str]] = []  # (position, first day kept)
        if not position:
            return
        start = 1
        while page := store.index.event_states(start, 5000, [ERASED_TOPIC, RETENTION_TOPIC],
                                               stop=position):
            for seq, topic, state in page:
                event = store.decode_state(state)
                if topic == ERASED_TOPIC:
                    self.erased[event["pseudonym"]] = seq
                else:
                    self.retained.append((seq, event["before"]))
            start = page[-1][0] + 1

    def holds(self, seq: int, statement: dict[str, Any]) -> bool:
        """Whether a later erasure or retention forgot this statement."""
        if self.erased:
            learner = actor_key(statement.get("actor"))
            if learner is not None and self.erased.get(self.store.key_ring.pseudonym(learner), 0) > seq:
                return True
        stored = str(statement.get("stored", ""))[:10]
        return any(seq < at and stored < before for at, before in self.retained)


def _bounded(runner: ProjectionRunner) -> ProjectionRunner:
    """DuckDB spills to disk past this, so an export's memory does not grow with the data."""
    runner.con.execute("SET memory_limit = '512MB'")
    opened = runner.reopen

    def reopen() -> Any:  # after the file is compacted (an erasure): the same limit
        con = opened()
        con.execute("SET memory_limit = '512MB'")
        return con

    runner.reopen = reopen
    return runner


def _copy(con: Any, spec: ExportFile, disclosed: set[str], folder: Path, options: str) -> int:
    target = str(folder / spec.path).replace("'", "''")
    row = con.execute(f"COPY ({spec.select(disclosed)}) TO '{target}' ({options})").fetchone()
    return int(row[0]) if row else 0


def _learner_orgs(con: Any) -> dict[str, str | None]:
    """Every learner the views hold, with their org in the roster (None: none)."""
    return dict(con.execute(
        "SELECT learner, min(org) FROM (SELECT learner, NULL AS org FROM learner_profile"
        " UNION ALL SELECT learner, org FROM roster) GROUP BY learner").fetchall())


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _write_dictionary(path: Path, disclosed: set[str], incremental: bool) -> int:
    rows: list[list[str]] = []
    for spec in (*PARQUET, *ONEROSTER):
        rows.append([spec.path, "", "file", spec.description])
        rows += [[spec.path, c.name, c.type, c.description] for c in spec.described(disclosed)]
    for name, description in sorted(OTHER_FILES.items()):
        if name not in ("changed_learners.csv", "removed_learners.csv") or incremental:
            rows.append([name, "", "file", description])
    if incremental:
        rows.append(["changed_learners.csv", "learner", "string", "a learner's pseudonym"])
        rows.append(["removed_learners.csv", "learner", "string", "a learner's pseudonym"])
    _write_csv(path, ["file", "column", "type", "description"], rows)
    return len(rows)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _move_into_place(staging: Path, out: Path) -> None:
    """Replace an earlier bundle (or an empty folder) only once the new one is complete."""
    if out.exists():
        retired = staging.with_name(staging.name + "-replaced")
        out.rename(retired)
        staging.rename(out)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        staging.rename(out)
