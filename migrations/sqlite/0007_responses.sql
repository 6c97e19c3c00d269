-- Stored Responses API answers (/v1/responses with store), owned by the caller's user, so that
-- previous_response_id continues a conversation for any provider. Items are JSON text.

CREATE TABLE responses (
    id                    TEXT PRIMARY KEY,      -- resp_…
    user_id               INTEGER NOT NULL,
    model                 TEXT NOT NULL,
    previous_response_id  TEXT,
    input_items           TEXT NOT NULL,         -- this turn's input items (JSON list)
    output_items          TEXT NOT NULL,         -- this turn's output items (JSON list)
    response              TEXT NOT NULL,         -- the Response object as the client got it
    created_at            INTEGER NOT NULL
);
-- [responses] keep_days prunes by age.
CREATE INDEX responses_created ON responses (created_at);
