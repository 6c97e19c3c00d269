"""The PostgreSQL backend (asyncpg): connections and migrations (schema), statements written
once in SQLite's syntax and translated (sql), and the writer (writer)."""
