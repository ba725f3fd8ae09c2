//! Several `doudi serve` replicas on one PostgreSQL database (issue 6, item 4): real processes. Runs only in the PostgreSQL half (`tests/api_pg`).
