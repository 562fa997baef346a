"""One line when the database goes, one when it is back; never its statements' data."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from node.outage import OutageLog, unavailable
from storage.errors import StorageError


def dropped(parameters: dict[str, str] | None = None) -> StorageError:
    driver = ConnectionError('connection to server at "127.0.0.1", port 5432 failed: refused')
    error = StorageError("index unavailable: OperationalError")
    error.__cause__ = OperationalError("INSERT INTO patients", parameters or {}, driver)
    error.__cause__.__cause__ = driver
    return error


def test_an_outage_is_told_once_with_its_duration_and_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outage = OutageLog("index database", "stores are refused")
    with caplog.at_level(logging.DEBUG, logger="node.outage"):
        outage.succeeded()
        for _ in range(50):
            outage.failed(dropped())
        outage.succeeded()
        outage.succeeded()
        outage.failed(dropped())
    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert [level for level, _ in messages] == ["ERROR", "WARNING", "ERROR"]
    assert "stores are refused until it is back" in messages[0][1]
    assert "port 5432 failed: refused" in messages[0][1]
    assert "(50 failed attempt(s) meanwhile)" in messages[1][1]
    assert outage.down


def test_the_line_carries_no_statement_parameters(caplog: pytest.LogCaptureFixture) -> None:
    outage = OutageLog("index database", "stores are refused")
    with caplog.at_level(logging.ERROR, logger="node.outage"):
        outage.failed(dropped({"patient_name": "DOE^JANE"}))
    assert "DOE" not in caplog.text and "INSERT" not in caplog.text


def test_only_connection_failures_count_as_an_outage() -> None:
    assert unavailable(dropped())
    constraint = StorageError("index refused the instance")
    constraint.__cause__ = IntegrityError("INSERT", {}, Exception("duplicate key"))
    assert not unavailable(constraint)
    assert not unavailable(RuntimeError("a bug"))
