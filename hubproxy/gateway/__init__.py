"""The gateway core: one model call from a parsed request to a settled record, with no HTTP.

Modules: core (the Gateway a face calls), auth (principals from hashed keys), routing (model
names to targets), transport (sending upstream), stream (relaying a stream), record (the
ModelCall row), demo (the local demo provider's answers).
"""
