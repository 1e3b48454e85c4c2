"""Loading existing people data into a tenant: employee files, Oracle's HR sample, IBM's table.

Each importer reads its source as a stream, validates everything before writing anything,
and writes in one tenant transaction with bulk inserts. Employment facts become
effective-dated events; periods are derived from them with `domain.people.history.replay`,
exactly as the domain actions do. Re-importing the same source changes nothing.
"""
