"""`lrs alignments load`, `lrs projections rebuild` and `lrs sql` against real files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lrs.cli.main import main

FRACTIONS = "https://example.org/c/fractions"
START = "2026-09-07"  # a Monday: the simulated school days do not depend on today's date


def simulate_and_rebuild(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--learners", "6", "--days", "6", "--start", START,
                 "--data-dir", str(data_dir)]) == 0
    assert main(["projections", "rebuild", "--data-dir", str(data_dir)]) == 0
    capsys.readouterr()


def test_sql_reads_the_views_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    simulate_and_rebuild(tmp_path, capsys)
    assert main(["sql", "SELECT count(*) AS learners FROM learner_profile", "--data-dir",
                 str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines()[2].strip() == "6"


def test_sql_refuses_writes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    simulate_and_rebuild(tmp_path, capsys)
    assert main(["sql", "DROP TABLE mastery", "--data-dir", str(tmp_path)]) == 2
    assert "read-only" in capsys.readouterr().err


def test_rebuild_reports_the_position(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["simulate", "--learners", "3", "--days", "3", "--start", START, "--data-dir", str(tmp_path)])
    capsys.readouterr()
    main(["projections", "rebuild", "--data-dir", str(tmp_path)])
    assert "rebuilt every view from position 0" in capsys.readouterr().out


def test_alignments_load_from_csv_with_parameters(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    csv_file = tmp_path / "framework.csv"
    csv_file.write_text("activity_id,competency_id,prior,learn,guess,slip\n"
                        f"https://example.org/q/1,{FRACTIONS},0.3,0.2,0.25,0.1\n")
    assert main(["alignments", "load", str(csv_file), "--data-dir", str(tmp_path)]) == 0
    assert "loaded 1 alignments and parameters for 1 competencies" in capsys.readouterr().out


def test_alignments_load_from_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    json_file = tmp_path / "framework.json"
    json_file.write_text(json.dumps({"framework": "https://case.example.org/uri/math-7",
                                     "alignments": [{"activity": "https://example.org/q/1",
                                                     "competency": FRACTIONS}]}))
    assert main(["alignments", "load", str(json_file), "--data-dir", str(tmp_path)]) == 0
    assert "math-7" in capsys.readouterr().out


def test_an_alignment_csv_without_the_columns_is_refused(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("activity,skill\nx,y\n")
    assert main(["alignments", "load", str(bad), "--data-dir", str(tmp_path)]) == 2
    assert "activity_id, competency_id" in capsys.readouterr().err


def test_roster_load_takes_emails_or_ifi_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text("learner,class_id\nAda@Example.org,7B\naccount:https://sis|s1,7C\n")
    assert main(["roster", "load", str(roster), "--data-dir", str(tmp_path)]) == 0
    assert "loaded 2 roster entries" in capsys.readouterr().out


@pytest.mark.parametrize(("values", "rule"), [
    ("0.2,0.15,1.7,0.1", "guess must be above 0 and below 1 (got 1.7)"),
    ("0,0.15,0,0.1", "guess must be above 0 and below 1 (got 0.0)"),
    ("0.2,0.15,0.6,0.5", "guess + slip must be below 1 (got 0.6 + 0.5)"),
    ("1.2,0.15,0.2,0.1", "prior must be between 0 and 1 (got 1.2)"),
])
def test_out_of_range_parameters_are_refused_naming_the_competency_and_the_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], values: str, rule: str
) -> None:
    csv_file = tmp_path / "framework.csv"
    csv_file.write_text(f"activity_id,competency_id,prior,learn,guess,slip\nhttps://example.org/q/1,{FRACTIONS},"
                        f"{values}\n")
    assert main(["alignments", "load", str(csv_file), "--data-dir", str(tmp_path)]) == 2
    assert f"BKT parameters of {FRACTIONS}: {rule}" in capsys.readouterr().err


def test_mastery_fit_records_the_parameters_as_an_event_and_the_views_use_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import duckdb

    assert main(["simulate", "--learners", "20", "--days", "10", "--start", START,
                 "--data-dir", str(tmp_path)]) == 0
    assert main(["mastery", "fit", "--data-dir", str(tmp_path)]) == 0
    assert "recorded the parameters of 8 competencies" in capsys.readouterr().out
    assert main(["projections", "rebuild", "--data-dir", str(tmp_path)]) == 0
    with duckdb.connect(str(tmp_path / "views.duckdb"), read_only=True) as con:
        assert con.execute("SELECT DISTINCT source FROM competency_parameters").fetchall() == [
            ("fit: EM (Baum-Welch), bounded",)]
        mismatched = con.execute("SELECT count(*) FROM mastery m JOIN competency_parameters p"
                                 " ON p.competency_id = m.competency WHERE m.prior <> p.prior").fetchone()
        assert mismatched == (0,)


def test_mastery_fit_of_a_competency_without_evidence_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["simulate", "--learners", "3", "--days", "3", "--start", START,
                 "--data-dir", str(tmp_path)]) == 0
    assert main(["mastery", "fit", "--competency", FRACTIONS, "--data-dir", str(tmp_path)]) == 2
    assert f"the log holds no evidence for {FRACTIONS}" in capsys.readouterr().err
