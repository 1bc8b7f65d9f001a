-- Accounts signed in through an OpenID Connect provider: the provider's subject, unique per issuer.
-- depends: 0300_roles_and_quotas

ALTER TABLE users
    ADD COLUMN oidc_issuer text,
    ADD COLUMN oidc_sub    text;

CREATE UNIQUE INDEX users_oidc_subject ON users (oidc_issuer, oidc_sub) WHERE oidc_sub IS NOT NULL;
