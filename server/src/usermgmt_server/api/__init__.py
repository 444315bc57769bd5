"""The gRPC edge of usermgmt: servicers, interceptors and proto/domain conversion."""
