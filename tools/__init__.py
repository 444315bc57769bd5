"""Developer tools that run the service, not part of any distribution."""
