"""`okaeri demo` only: the sandbox ColorMe shop, the local mail catcher and the demo's pages. Production code never imports it."""
