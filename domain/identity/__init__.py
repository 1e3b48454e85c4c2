"""Users, roles, passwords and sign-in sessions of a tenant."""
