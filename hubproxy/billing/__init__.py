"""Billing: prices and rates, token estimates, holds and balances in memory, the meter.

Modules: prices (rates × usage → micro-credits, pure), pricing (validating rate tables and
amounts from the API and CLI), tokens (estimates), credits (holds and balances), meter (the
usage webhook export).
"""
