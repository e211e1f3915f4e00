"""The health department's collector: receives kiosk logs exactly once, publishes the
trust list, venue rules and deny list, and answers daily reports and tracing queries.

Run it with one command: `collector serve` (SQLite in ./collector.db), or
`collector serve --db postgresql://user@host/db` for a province-wide deployment.
"""

__all__ = ["create_app", "Store"]


def __getattr__(name: str):
    # Lazy: `import collector` stays cheap; FastAPI loads only when the app is built.
    if name == "create_app":
        from collector.app import create_app
        return create_app
    if name == "Store":
        from collector.storage import Store
        return Store
    raise AttributeError(name)
