"""A local fake ColorMe Shop: the same HTTP shapes the connector calls, seeded deterministically.

It is mounted under /sandbox by `okaeri demo` and started by the end-to-end tests. Nothing in
connectors/ or scenarios/ knows it exists: they are pointed at it by COLORME_API_BASE.
"""
