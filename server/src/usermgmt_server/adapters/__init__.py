"""Adapters: concrete implementations of the ports the domain declares."""
