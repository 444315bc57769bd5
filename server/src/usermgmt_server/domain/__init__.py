"""The account rules of usermgmt, free of any transport, storage or crypto library."""
