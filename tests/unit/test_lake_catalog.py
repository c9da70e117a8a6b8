"""Opening the embedded catalog: a lost race to create its tables on a new lake is not an error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from amzlake.lake import catalog as catalog_module


def test_a_lost_race_to_create_the_catalog_tables_opens_it_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real, calls = catalog_module.load_catalog, []

    def racing(name: str, **props: Any) -> Any:
        calls.append(name)
        if len(calls) == 1:  # another worker created the tables between check and CREATE
            real(name, **props)
            raise OperationalError("CREATE TABLE iceberg_tables", {},
                                   Exception("table iceberg_tables already exists"))
        return real(name, **props)

    monkeypatch.setattr(catalog_module, "load_catalog", racing)
    cat = catalog_module.open_catalog(tmp_path / "lake")
    cat.create_namespace("amzlake")
    assert ("amzlake",) in cat.list_namespaces() and len(calls) == 2


def test_other_catalog_database_errors_are_not_hidden(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(name: str, **props: Any) -> Any:
        raise OperationalError("SELECT 1", {}, Exception("disk I/O error"))

    monkeypatch.setattr(catalog_module, "load_catalog", broken)
    with pytest.raises(OperationalError, match="disk I/O error"):
        catalog_module.open_catalog(tmp_path / "lake")
