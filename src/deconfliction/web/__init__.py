"""The browser UI for duty officers: static files served by the API at `/`."""
