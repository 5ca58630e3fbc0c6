"""The web console for field service and CSMs: server-rendered pages, the API's roles."""
