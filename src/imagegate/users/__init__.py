"""People who sign in to the console: users, passwords, sessions, one-time links, throttling."""
