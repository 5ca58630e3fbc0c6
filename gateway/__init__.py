"""fleetcare edge gateway: store-and-forward, protocol bridging, edge inference."""
