"""HTTP routes: they parse and authorise; the work lives in plain service functions."""
