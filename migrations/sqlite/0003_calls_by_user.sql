-- A user's calls, newest first by their time-ordered id: the pages of /api/user/calls.
CREATE INDEX model_calls_user_id ON model_calls (user_id, id);
