"""Persistence: connections and reads (db), the one writer (writer), schema migrations (migrate)."""
