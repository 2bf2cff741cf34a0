"""Throwaway PostgreSQL databases for the benchmarks that need a real server (chaos.py, many_workers.py)."""

from __future__ import annotations

import uuid


def admin(server: str, sql: str) -> None:
    """Run ``sql`` on ``server``'s postgres database, through a connection of its own."""
    import psycopg2

    connection = psycopg2.connect(f"{server}/postgres", connect_timeout=10)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
    finally:
        connection.close()


def create_database(server: str, prefix: str) -> tuple[str, str]:
    """A new empty database on ``server``: its name and URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin(server, f"CREATE DATABASE {name}")
    return name, f"{server}/{name}"


def drop_database(server: str, name: str) -> None:
    admin(server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
