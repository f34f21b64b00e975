"""The web console under /console: pages for API users and operators. HTTP only: the rules live
in the features (keys, billing, tasks, users), the same functions the API and the admin CLI call."""
