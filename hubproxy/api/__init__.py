"""HTTP handlers: thin, no business logic. openai (/v1), middleware (the edge of every request)."""
