-- model_calls (user_id, id) serves a user's calls in time order (ids are time-ordered), so
-- (user_id, created_at) was a second index to update with every call for nothing.
DROP INDEX IF EXISTS model_calls_user_time;
