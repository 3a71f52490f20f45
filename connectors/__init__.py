"""Shop platform connectors: each knows one platform's API and nothing of scenarios."""
