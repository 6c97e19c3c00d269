-- The ledger's followers (issue #12): the balances and the keys' spend that other instances
-- wrote are read by snapshot (hubproxy/store/follow.py), every row whose transaction had not
-- ended in the last snapshot read: xid >= that snapshot's xmin. This index bounds that scan
-- to the recent rows, of every kind (the meter's index holds debits only).
CREATE INDEX credit_ledger_xid ON credit_ledger (xid);
