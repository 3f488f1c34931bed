"""A simulated Jira Cloud site (and the Atlassian side of app installation) for demos, tests and benchmarks.

Nothing in the product imports this package; it only talks to it over HTTP.
"""
