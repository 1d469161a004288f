"""Omvärld: monitoring of public-sector feeds and social accounts, with weekly digests."""

__version__ = "0.1.0"
