"""Apply Alembic migrations. Safe to call from every replica at start-up: a Postgres advisory lock
serialises them, and the second one finds the schema already at head."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from shared.db import sync_engine

_MIGRATIONS = Path(__file__).parent / "migrations"
_LOCK_KEY = 0x61737369  # arbitrary constant shared by every process of this project ("assi")


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return cfg


def upgrade() -> None:
    with sync_engine().connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _LOCK_KEY})
        try:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            conn.commit()
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK_KEY})
            conn.commit()


if __name__ == "__main__":
    upgrade()
