"""Feeds in and out: Cursor-on-Target (TAK) and SBS-1 (BaseStation)."""
