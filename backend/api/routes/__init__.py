"""One router module per resource; ``backend.api.app.ROUTER_MODULES`` lists them."""
