from tests.storage.conftest import database_url, db, empty_db, repo  # noqa: F401
