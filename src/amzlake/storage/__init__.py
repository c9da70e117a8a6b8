"""Storage backends: the raw zone's object stores and the ledger, each chosen by location."""
