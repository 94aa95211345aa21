"""HTTP routes: thin adapters from requests to the modules that do the work."""
