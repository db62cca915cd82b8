"""The social networks the sandbox plays, one Blueprint module per network."""
