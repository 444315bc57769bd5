"""The benchmark of usermgmt-server (``make bench``): see ``runner`` for its phases and
``report`` for the targets it judges."""
