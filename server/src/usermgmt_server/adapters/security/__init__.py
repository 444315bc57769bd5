"""Security adapters: password hashing, signing keys, access tokens, page tokens, clocks and ids."""
