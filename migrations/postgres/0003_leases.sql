-- Credit leases (issue #12, part 3) and the meter's transaction watermark (part 6).
--
-- An instance admits calls against a slice of a user's balance that it leased, in memory.
-- credit_balances.leased is the sum of the users' live lease rows; what may still be leased is
-- balance - leased. Every function below locks the user's credit_balances row first, so that
-- leasing, consuming, returning and reclaiming of one user's credits take turns, always in the
-- same lock order (the balance, then the lease rows).
ALTER TABLE credit_balances ADD COLUMN leased BIGINT NOT NULL DEFAULT 0 CHECK (leased >= 0);

CREATE TABLE credit_leases (
    instance    TEXT NOT NULL,                -- the instance that holds it
    user_id     BIGINT NOT NULL REFERENCES users (id),
    amount      BIGINT NOT NULL CHECK (amount >= 0),   -- micro-credits still leased
    expires_at  BIGINT NOT NULL,              -- Unix ms; the holder renews it, anyone reclaims it after
    PRIMARY KEY (instance, user_id)
);
CREATE INDEX credit_leases_expiry ON credit_leases (expires_at);

-- Lease up to p_want of the user's unleased balance, and at least p_need of it (else nothing):
-- returns what was leased (0: not enough is free). The issue's one atomic statement,
-- UPDATE ... SET leased = leased + slice WHERE balance - leased >= slice, with the slice
-- chosen under the row's lock.
CREATE FUNCTION credit_lease(p_instance TEXT, p_user BIGINT, p_want BIGINT, p_need BIGINT,
                             p_expires_at BIGINT) RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
    free    BIGINT;
    slice   BIGINT;
BEGIN
    SELECT balance - leased INTO free FROM credit_balances WHERE user_id = p_user FOR UPDATE;
    IF free IS NULL OR free < GREATEST(p_need, 1) THEN
        RETURN 0;
    END IF;
    slice := LEAST(GREATEST(p_want, p_need), free);
    UPDATE credit_balances SET leased = leased + slice
    WHERE user_id = p_user AND balance - leased >= slice;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    INSERT INTO credit_leases (instance, user_id, amount, expires_at)
    VALUES (p_instance, p_user, slice, p_expires_at)
    ON CONFLICT (instance, user_id) DO UPDATE
    SET amount = credit_leases.amount + EXCLUDED.amount, expires_at = EXCLUDED.expires_at;
    RETURN slice;
END;
$$;

-- A settled call's cost comes out of the lease it was held against, in the same transaction as
-- its debit (which lowers the balance): balance - leased is unchanged by a call that cost no
-- more than the lease had. Run before the debit's insert: a call already debited (a replayed
-- unit) consumes nothing again.
CREATE FUNCTION credit_lease_consume(p_instance TEXT, p_user BIGINT, p_call_id TEXT,
                                     p_amount BIGINT) RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
    n BIGINT;
BEGIN
    PERFORM 1 FROM credit_balances WHERE user_id = p_user FOR UPDATE;
    IF EXISTS (SELECT 1 FROM credit_ledger WHERE kind = 'debit' AND call_id = p_call_id) THEN
        RETURN 0;
    END IF;
    SELECT LEAST(amount, p_amount) INTO n FROM credit_leases
    WHERE instance = p_instance AND user_id = p_user FOR UPDATE;
    IF n IS NULL OR n <= 0 THEN
        RETURN 0;
    END IF;
    UPDATE credit_leases SET amount = amount - n WHERE instance = p_instance AND user_id = p_user;
    UPDATE credit_balances SET leased = leased - n WHERE user_id = p_user;
    RETURN n;
END;
$$;

-- Give back up to p_amount of a lease (NULL: all of it, and the row goes); returns what was
-- given back.
CREATE FUNCTION credit_lease_return(p_instance TEXT, p_user BIGINT, p_amount BIGINT)
RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
    n BIGINT;
BEGIN
    PERFORM 1 FROM credit_balances WHERE user_id = p_user FOR UPDATE;
    SELECT LEAST(amount, COALESCE(p_amount, amount)) INTO n FROM credit_leases
    WHERE instance = p_instance AND user_id = p_user FOR UPDATE;
    IF n IS NULL THEN
        RETURN 0;
    END IF;
    IF p_amount IS NULL THEN
        DELETE FROM credit_leases WHERE instance = p_instance AND user_id = p_user;
    ELSE
        UPDATE credit_leases SET amount = amount - n
        WHERE instance = p_instance AND user_id = p_user;
    END IF;
    UPDATE credit_balances SET leased = leased - n WHERE user_id = p_user;
    RETURN n;
END;
$$;

-- Free the leases that expired by p_now (their holder stopped renewing: it is dead), or every
-- lease of p_instance (an instance known dead, or one shutting down). Returns how many.
CREATE FUNCTION credit_lease_reclaim(p_now BIGINT, p_instance TEXT) RETURNS INTEGER
LANGUAGE plpgsql AS $$
DECLARE
    l RECORD;
    n INTEGER := 0;
BEGIN
    FOR l IN SELECT instance, user_id FROM credit_leases
             WHERE (p_instance IS NULL AND expires_at < p_now) OR instance = p_instance
             ORDER BY user_id, instance LOOP
        PERFORM 1 FROM credit_balances WHERE user_id = l.user_id FOR UPDATE;
        -- Renewed, or reclaimed by someone else, while this one waited for the lock?
        IF p_instance IS NULL THEN
            PERFORM 1 FROM credit_leases WHERE instance = l.instance AND user_id = l.user_id
                AND expires_at < p_now;
            IF NOT FOUND THEN
                CONTINUE;
            END IF;
        END IF;
        PERFORM credit_lease_return(l.instance, l.user_id, NULL);
        n := n + 1;
    END LOOP;
    RETURN n;
END;
$$;

-- The meter's cursor is over (xid, id): a ledger row is exported only once every transaction
-- older than its own has ended (pg_snapshot_xmin), so ids that commit out of order are not
-- skipped (docs/scaling.md).
ALTER TABLE credit_ledger ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX credit_ledger_meter ON credit_ledger (xid, id) WHERE kind = 'debit';
ALTER TABLE meter_cursor ADD COLUMN xid xid8 NOT NULL DEFAULT '0';
-- Rows already in the ledger all carry this migration's xid: the cursor starts at it, so that
-- the debits accepted before (ids up to ledger_id) are not sent again.
UPDATE meter_cursor SET xid = pg_current_xact_id();
