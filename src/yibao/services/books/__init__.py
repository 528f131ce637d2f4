"""The books: the double-entry ledger (ledger_accounts, transfers), the year's accumulators per person,
the hash-chained audit log, and read models over them (a holder's account, settlement volumes)."""
