-- Secrets of the installation as a whole, created once by whichever instance needs one first and
-- then shared by every instance (the first insert wins; the others read it back). The key that signs
-- state handed to anonymous browsers (sign-in form CSRF tokens, passwordless sign-in ceremonies)
-- lives here, so that visiting a page creates no row.
CREATE TABLE installation_secrets (
    name       TEXT PRIMARY KEY,
    secret     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
