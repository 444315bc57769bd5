"""Several server processes on one port: the supervisor, its link to each worker, the port."""
