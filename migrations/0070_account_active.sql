-- account_active(user): whether the account exists and is not disabled, for reads that check the account in their own statement.
-- depends: 0050_api_keys

CREATE FUNCTION account_active(account uuid) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT EXISTS (SELECT 1 FROM users WHERE id = account AND disabled_at IS NULL) $$;
