-- How many times the user has signed in to the service (each Integrate, pasted token or
-- sandbox account counts one; a token refresh does not). A stage whose token the service
-- refused marks the account "sign in again" only if no sign-in came while it ran.
ALTER TABLE accounts ADD COLUMN sign_ins INTEGER NOT NULL DEFAULT 0;
