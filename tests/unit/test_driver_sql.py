"""What shared/driver_sql.py refuses to compile: anything Core would have done per execution that the driver
path does not (a silent difference would write different data than Core did)."""

import pytest
from psycopg.types.json import Jsonb
from sqlalchemy import bindparam, insert, select, update

from shared.driver_sql import prepare
from shared.models import Message, Run, RunStep
from shared.rows import table


def test_a_column_not_in_the_table_is_refused() -> None:
    with pytest.raises(ValueError, match="not columns"):
        prepare(update(table(RunStep)).where(table(RunStep).c.id == bindparam("where_id")),
                column_keys=["status", "step_detials"])


def test_python_side_defaults_are_refused() -> None:
    with pytest.raises(ValueError, match="defaults"):
        prepare(insert(table(Message)), column_keys=["id", "content"])  # status has a Python-side default


def test_parameters_rendered_at_execution_are_refused() -> None:
    t = table(Run)
    with pytest.raises(ValueError, match="rendered at execution"):
        prepare(select(t.c.id).where(t.c.id.in_(["a", "b"])))


def test_values_fixed_in_the_statement_are_sent_with_it() -> None:
    s = table(RunStep)
    p = prepare(update(s).where(s.c.run_id == bindparam("where_run"), s.c.status == "in_progress",
                                s.c.usage == {"total_tokens": 0}), column_keys=["status"])
    assert "in_progress" in p.fixed.values()
    assert [v.obj for v in p.fixed.values() if isinstance(v, Jsonb)] == [{"total_tokens": 0}]
    assert set(p.json_params) >= {k for k, v in p.fixed.items() if isinstance(v, Jsonb)}
