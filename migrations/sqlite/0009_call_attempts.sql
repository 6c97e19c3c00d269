-- How many targets a call tried: more than one when a fallback target answered it.
ALTER TABLE model_calls ADD COLUMN attempts INTEGER NOT NULL DEFAULT 1;
