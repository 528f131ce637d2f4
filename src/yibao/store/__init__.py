"""Storage adapters: tables, the database and its units of work, migrations."""
