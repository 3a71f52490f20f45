"""A shop's install lifecycle: installing -> active -> revoked / uninstalled, for any platform plug-in."""
